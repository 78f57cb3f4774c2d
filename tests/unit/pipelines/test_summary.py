"""`twinops run`'s closing summary says who serves after the run."""

from pipelines.summary import _champion_line


def _summary(promoted=None, champion=None):
    return {"train": {"version": "3"}, "promoted": promoted, "champion": champion}


def test_a_promoted_candidate_is_the_champion():
    line = _champion_line(_summary({"version": "3", "champion": "2", "approved_by": "demo"},
                                   "2"))
    assert line.startswith("v2") and "candidate v3 promoted" in line and "demo" in line


def test_a_refused_candidate_leaves_the_old_champion_named():
    line = _champion_line(_summary(None, "2"))
    assert line.startswith("v2") and "kept" in line and "candidate v3 was not promoted" in line


def test_no_champion_at_all_says_none():
    assert _champion_line(_summary(None, None)).startswith("none")


def test_alert_lines_say_where_alerts_and_work_orders_went():
    from pipelines.summary import _alert_lines

    alerts = {"raised": [{"kind": "risk"}, {"kind": "risk"}, {"kind": "sensor_frozen"}],
              "repeated": 1, "notified": ["a1", "a2", "a3"], "targets": ["slack-webhook/ops"],
              "store": "/s/alerts.sqlite"}
    orders = {"proposed": 2, "already_proposed": 0,
              "delivery": {"cmms": "http://cmms/wo", "delivered": 1, "pending": 1}}
    first, second = _alert_lines(alerts, orders)
    assert "3 raised (risk 2, sensor_frozen 1)" in first
    assert "3 notified via slack-webhook/ops" in first and "/s/alerts.sqlite" in first
    assert "2 proposed" in second and "posted to http://cmms/wo: 1 delivered, 1 pending" in second
    quiet = _alert_lines({**alerts, "raised": [], "targets": []},
                         {"proposed": 0, "delivery": {"cmms": None}})
    assert "no notification block configured" in quiet[0]
    assert "no CMMS configured" in quiet[1]
    assert _alert_lines({}, {}) == []
