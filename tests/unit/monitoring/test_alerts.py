"""Alert rules, episodes, throttle, acknowledgement and failed notifications, without servers.

The rules (monitoring.alerts) are fed frames and values; the store (monitoring.alert_store)
is a SQLite file in tmp_path; notification blocks are fakes with the two methods the store
calls on a Prefect NotificationBlock (`raise_on_failure`, `notify`).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from features.asset_types import AssetType, Channel
from monitoring.alert_store import AlertStore, load_alerts, run_alerts, store_path
from monitoring.alerts import (
    Rules,
    drift_alerts,
    feed_readings,
    reference_flat_share,
    risk_alerts,
    sensor_alerts,
)

NOW = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
FAN = AssetType(name="fan", sensors=(Channel(name="temp", unit="K", min=200, max=400),
                                     Channel(name="vib", unit="mm/s", min=0, max=50)))


def item(asset: str, risk: float | None, **more) -> dict:
    return {"asset_id": asset, "asset_type": "fan", "risk": risk, "p_fail": risk,
            "criticality": 1.0, "horizon": 30.0, "rul_unit": "cycles", "rul": 12.0,
            "rul_lower": 5.0, "rul_upper": 20.0, "data_quality": "ok", **more}


def readings(asset: str, n: int, *, temp=None, vib=None, start=0) -> pd.DataFrame:
    """n hourly readings of a fan whose sensors move (unless given)."""
    rng = np.random.default_rng(len(asset) + n + start)
    times = pd.date_range("2026-12-01", periods=n, freq="h", tz="UTC")[start:]
    k = len(times)
    return pd.DataFrame({
        "asset_id": asset, "timestamp": times, "cycle": np.arange(start + 1, start + k + 1),
        "temp": rng.normal(300, 5, k) if temp is None else temp,
        "vib": rng.normal(10, 1, k) if vib is None else vib})


class FakeBlock:
    """A notification block: records what it sent; `fail` makes it fail as Apprise does
    (only when asked to raise) or as a webhook does (always)."""

    def __init__(self, fail: str | None = None):
        self.sent: list[tuple[str, str]] = []
        self.fail = fail
        self._raise = False

    @contextmanager
    def raise_on_failure(self):
        self._raise = True
        try:
            yield
        finally:
            self._raise = False

    def notify(self, body: str, subject: str | None = None) -> None:
        if self.fail == "webhook":
            raise ConnectionError("connection refused")
        if self.fail == "apprise":
            if self._raise:
                raise RuntimeError("apprise: sending failed")
            return  # an Apprise block swallows the failure unless asked to raise
        self.sent.append((subject, body))


def deliver(store: AlertStore, blocks: dict, *, now=NOW, cap=20, minutes=60.0):
    return store.deliver_pending(list(blocks), blocks, now=now, max_notifications=cap,
                                 throttle=timedelta(minutes=minutes))


# ---- rules ----------------------------------------------------------------------------------


def test_risk_alert_at_or_above_the_threshold_with_words_and_evidence():
    rules = risk_alerts([item("f1", 0.7), item("f2", 0.5), item("f3", 0.49), item("f4", None)],
                        0.5, now=NOW, model_versions={"fan": "3"})
    assert [a.asset_id for a in rules.alerts] == ["f1", "f2"]
    first = rules.alerts[0]
    assert first.kind == "risk" and first.severity == "critical" and first.model_version == "3"
    assert "risk 0.70 at or above 0.5" in first.message and "p_fail 70% within 30 cycles" in \
        first.message
    assert first.evidence["risk"] == 0.7 and first.evidence["threshold"] == 0.5
    assert first.episode == "fan/f1/risk" and first.raised_at == NOW
    # an asset without a risk is not judged: its open episode must not close
    assert ("risk", "fan", "f4") not in rules.checked and ("risk", "fan", "f3") in rules.checked


def test_feed_readings_adds_the_quarantine_and_drops_resent_rows():
    stored = readings("f1", 3)
    quarantined = pd.DataFrame({  # strings, as features.validation writes them
        "asset_id": ["f1", "f1", "f2"],
        "timestamp": [str(stored["timestamp"][0]), "2026-12-01T05:00:00+00:00",
                      "2026-12-01T00:00:00Z"],
        "temp": ["301.0", "999", "nan"], "vib": ["10", "oops", "11"],
        "quarantine_reason": ["duplicate", "temp=999 K outside [200, 400]", "NaN in temp"]})
    feed = feed_readings(stored, quarantined, ["temp", "vib"])
    assert len(feed) == 5  # the re-sent copy of a stored row is dropped
    late = feed[feed["timestamp"] == pd.Timestamp("2026-12-01T05:00:00Z")].iloc[0]
    assert late["temp"] == 999.0 and np.isnan(late["vib"])  # unparsable → no value
    assert np.isnan(feed[feed["asset_id"] == "f2"]["temp"].iloc[0])


def test_dead_frozen_and_out_of_range_sensors():
    n = 12
    fleet = pd.concat([
        readings("ok", n),
        readings("dead", n, vib=np.r_[np.full(2, 10.0), np.full(n - 2, np.nan)]),
        readings("frozen", n, temp=np.full(n, 301.5)),
        readings("hot", n, temp=np.r_[np.full(n - 1, 300.0) + np.arange(n - 1), 450.0]),
        readings("young", 3, temp=np.full(3, 300.0)),
    ], ignore_index=True)
    moving = reference_flat_share(readings("ok", 200), ["temp", "vib"], 10)
    assert moving == {"temp": 0.0, "vib": 0.0}
    rules = sensor_alerts(fleet, FAN, 10, now=NOW, reference_flat=moving)
    found = {(a.asset_id, a.kind, a.sensor) for a in rules.alerts}
    assert found == {("dead", "sensor_dead", "vib"), ("frozen", "sensor_frozen", "temp"),
                     ("hot", "sensor_out_of_range", "temp")}
    hot = next(a for a in rules.alerts if a.asset_id == "hot")
    assert hot.evidence["worst"] == 450.0 and "declared range [200.0, 400.0] K" in hot.message
    assert "frozen at 301.5 K over its last 10 readings" in next(
        a.message for a in rules.alerts if a.asset_id == "frozen")
    # too few readings to call a sensor dead or frozen: not judged (no episode closes)
    assert ("sensor_frozen", "fan", "young") not in rules.checked
    assert ("sensor_out_of_range", "fan", "young") in rules.checked


def test_a_sensor_flat_in_the_fleet_history_is_not_frozen_and_out_of_service_is_skipped():
    n = 12
    fleet = readings("f1", n, temp=np.full(n, 300.0))
    flat_fleet = pd.concat([readings(f"r{i}", 40, temp=np.full(40, 300.0)) for i in range(3)])
    share = reference_flat_share(flat_fleet, ["temp", "vib"], 10)
    assert share["temp"] == 1.0
    assert not sensor_alerts(fleet, FAN, 10, now=NOW, reference_flat=share).alerts
    moving = {"temp": 0.0, "vib": 0.0}
    skipped = sensor_alerts(fleet, FAN, 10, now=NOW, reference_flat=moving,
                            out_of_service={"f1"})
    assert not skipped.alerts and not skipped.checked


def verdict(drift: bool, columns=("s1", "s2", "s3"), drifted=("s2",)):
    return SimpleNamespace(
        drift=drift, share=len(drifted) / len(columns) if drift else 0.0,
        columns={c: {"statistic": 1e-6, "shift": 0.8, "method": "welch", "drifted": c in drifted}
                 for c in columns},
        drifted_columns=tuple(drifted) if drift else (), n_current_assets=12,
        n_reference_assets=40, stage="champion_predicted_rul", verdict_json="/r/verdict.json",
        report_html="/r/verdict.evidently.html", mlflow_run_id="run-1")


def test_drift_is_one_fleet_level_alert_naming_the_columns():
    rules = drift_alerts(verdict(True), "fan", now=NOW, model_version="3")
    (alert,) = rules.alerts
    assert alert.asset_id is None and alert.episode == "fan/*/drift"
    assert "1 of 3 monitored columns (s2)" in alert.message
    assert alert.evidence["verdict_json"] == "/r/verdict.json"
    assert alert.evidence["model_version"] == "3"
    assert drift_alerts(verdict(False), "fan", now=NOW).checked == {("drift", "fan", None)}
    assert not drift_alerts(verdict(False, columns=()), "fan", now=NOW).checked


# ---- episodes -------------------------------------------------------------------------------


def test_an_open_episode_is_not_raised_again_and_closes_when_the_condition_clears(tmp_path):
    store = AlertStore(tmp_path / "alerts.sqlite")
    high = risk_alerts([item("f1", 0.8), item("f2", 0.9)], 0.5, now=NOW)
    first = store.record(high, NOW)
    assert len(first.opened) == 2
    again = store.record(risk_alerts([item("f1", 0.85), item("f2", 0.9)], 0.5, now=NOW), NOW)
    assert not again.opened and again.repeated == 2
    # f1 cleared; f2 has no risk this run (not judged): only f1's episode closes
    later = NOW + timedelta(hours=1)
    cleared = store.record(risk_alerts([item("f1", 0.1), item("f2", None)], 0.5, now=later),
                           later)
    f1 = next(r for r in store.rows() if r["asset_id"] == "f1")
    assert cleared.closed == [f1["alert_id"]] and f1["closed_at"].startswith("2026-12-03T07")
    # a new crossing opens a new episode with a new alert id
    again_high = store.record(risk_alerts([item("f1", 0.9)], 0.5, now=later), later)
    assert [a.asset_id for a in again_high.opened] == ["f1"]
    assert again_high.opened[0].alert_id != f1["alert_id"]
    assert len(store.rows()) == 3


def test_two_runs_cannot_open_the_same_episode_twice(tmp_path):
    one, two = AlertStore(tmp_path / "a.sqlite"), AlertStore(tmp_path / "a.sqlite")
    one.record(risk_alerts([item("f1", 0.8)], 0.5, now=NOW), NOW)
    two.record(risk_alerts([item("f1", 0.8)], 0.5, now=NOW), NOW)  # its own candidate id
    assert len(one.rows()) == 1


# ---- notification, throttle, acknowledgement --------------------------------------------------


def test_each_alert_is_notified_once_per_block(tmp_path):
    store = AlertStore(tmp_path / "alerts.sqlite")
    store.record(risk_alerts([item("f1", 0.8)], 0.5, now=NOW), NOW)
    ops, slack = FakeBlock(), FakeBlock()
    assert len(deliver(store, {"custom-webhook/ops": ops, "slack-webhook/s": slack}).sent) == 1
    assert not deliver(store, {"custom-webhook/ops": ops, "slack-webhook/s": slack}).sent
    (subject, body), = ops.sent
    assert subject == "twinops critical: risk fan/f1" and "risk 0.80" in body
    alert_id = store.rows()[0]["alert_id"]
    assert f"twinops alerts ack {alert_id} --by NAME" in body and len(slack.sent) == 1


def test_the_throttle_caps_notifications_per_window_and_the_rest_wait(tmp_path):
    store = AlertStore(tmp_path / "alerts.sqlite")
    store.record(risk_alerts([item(f"f{i}", 0.6 + i / 10) for i in range(3)], 0.5, now=NOW),
                 NOW)
    block = FakeBlock()
    first = deliver(store, {"custom-webhook/ops": block}, cap=2)
    assert len(first.sent) == 2 and len(first.throttled) == 1
    soon = deliver(store, {"custom-webhook/ops": block}, now=NOW + timedelta(minutes=30), cap=2)
    assert not soon.sent and soon.throttled == first.throttled  # the window is not over
    later = deliver(store, {"custom-webhook/ops": block}, now=NOW + timedelta(minutes=61), cap=2)
    assert later.sent == first.throttled and len(block.sent) == 3


@pytest.mark.parametrize("failure", ["webhook", "apprise"])
def test_a_failed_notification_stays_pending_and_goes_out_next_run(tmp_path, failure):
    store = AlertStore(tmp_path / "alerts.sqlite")
    store.record(risk_alerts([item("f1", 0.8), item("f2", 0.7)], 0.5, now=NOW), NOW)
    down = deliver(store, {"custom-webhook/ops": FakeBlock(fail=failure)})
    assert not down.sent and len(down.failed) == 2
    # the channel is tried once per run, not once per alert
    assert sum("not tried" in e for e in down.failed.values()) == 1
    frame = load_alerts(SimpleNamespace(state_dir=tmp_path))
    assert frame["notified_at"].isna().all() and frame["notify_attempts"].sum() == 1
    assert frame["notify_error"].notna().sum() == 1
    up = FakeBlock()
    back = deliver(store, {"custom-webhook/ops": up}, now=NOW + timedelta(minutes=5))
    assert len(back.sent) == 2 and len(up.sent) == 2
    assert not deliver(store, {"custom-webhook/ops": up}).sent


def test_an_alert_that_cleared_before_it_was_sent_is_still_sent_as_cleared(tmp_path):
    store = AlertStore(tmp_path / "alerts.sqlite")
    store.record(risk_alerts([item("f1", 0.8)], 0.5, now=NOW), NOW)
    store.record(risk_alerts([item("f1", 0.1)], 0.5, now=NOW), NOW)
    block = FakeBlock()
    assert len(deliver(store, {"custom-webhook/ops": block}).sent) == 1
    assert "the condition has cleared" in block.sent[0][1]


def test_a_block_that_failed_to_load_keeps_alerts_pending(tmp_path):
    store = AlertStore(tmp_path / "alerts.sqlite")
    store.record(risk_alerts([item("f1", 0.8)], 0.5, now=NOW), NOW)
    missing = ValueError("alerts.notify: cannot load Prefect block 'custom-webhook/ops'")
    failed = deliver(store, {"custom-webhook/ops": missing}).failed
    assert "cannot load Prefect block" in next(iter(failed.values()))


def test_acked_alerts_are_not_notified_and_ack_is_all_or_nothing(tmp_path):
    store = AlertStore(tmp_path / "alerts.sqlite")
    store.record(risk_alerts([item("f1", 0.8), item("f2", 0.7)], 0.5, now=NOW), NOW)
    ids = {r["asset_id"]: r["alert_id"] for r in store.rows()}
    with pytest.raises(KeyError, match="no such alert: nope"):
        store.ack([ids["f1"], "nope"], "ana", NOW)
    assert all(r["acked_by"] is None for r in store.rows())
    with pytest.raises(ValueError, match="--by"):
        store.ack([ids["f1"]], "  ", NOW)
    assert store.ack([ids["f1"]], "ana", NOW) == {"acked": [ids["f1"]], "already": []}
    assert store.ack([ids["f1"]], "bo", NOW)["already"] == [ids["f1"]]
    block = FakeBlock()
    assert deliver(store, {"custom-webhook/ops": block}).sent == [ids["f2"]]
    # still open: the condition persists, so the acked alert is not raised again either
    assert not store.record(risk_alerts([item("f1", 0.8)], 0.5, now=NOW), NOW).opened


def test_load_alerts_frame_for_lead_time_kpis(tmp_path):
    settings = SimpleNamespace(state_dir=tmp_path)
    empty = load_alerts(settings)
    assert empty.empty and {"alert_id", "asset_id", "asset_type", "kind", "raised_at",
                            "closed_at", "acked_by", "model_version"} <= set(empty.columns)
    store = AlertStore(store_path(settings))
    store.record(risk_alerts([item("f1", 0.8)], 0.5, now=NOW, model_versions={"fan": "4"}), NOW)
    frame = load_alerts(settings)
    row = frame.iloc[0]
    assert str(frame["raised_at"].dt.tz) == "UTC" and row["raised_at"] == pd.Timestamp(NOW)
    assert pd.isna(row["closed_at"]) and row["model_version"] == "4" and row["kind"] == "risk"
    assert row["evidence"]["risk"] == 0.8


# ---- the task and the settings ----------------------------------------------------------------


def test_run_alerts_goes_on_when_a_part_fails(tmp_path, monkeypatch):
    from features.settings import get_settings
    from monitoring import alert_store

    def broken(settings, now):
        raise RuntimeError("no registry")

    monkeypatch.setattr(alert_store, "_risk", broken)
    monkeypatch.setattr(alert_store, "_sensors", lambda settings, now: Rules())
    settings = get_settings(state_dir=tmp_path, data_dir=tmp_path / "data",
                            alerts={"notify": ["custom-webhook/ops"]})
    block = FakeBlock()
    summary = run_alerts(settings, verdict(True), now=NOW, blocks={"custom-webhook/ops": block})
    assert summary["errors"] == ["risk: RuntimeError: no registry"]
    assert [a["kind"] for a in summary["raised"]] == ["drift"]
    assert summary["notified"] == [summary["raised"][0]["alert_id"]] and len(block.sent) == 1
    off = get_settings(state_dir=tmp_path / "off", alerts={"enabled": False})
    assert run_alerts(off, verdict(True), now=NOW)["enabled"] is False
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    broken = get_settings(state_dir=not_a_dir, data_dir=tmp_path)
    broken_store = run_alerts(broken, verdict(True), now=NOW)
    assert [e.split(":")[0] for e in broken_store["errors"]] == ["risk", "store"]


def test_alert_settings_name_the_bad_field():
    from pydantic import ValidationError

    from features.settings import get_settings

    with pytest.raises(ValidationError, match=r"alerts\.notify"):
        get_settings(alerts={"notify": ["ops"]})
    with pytest.raises(ValidationError, match=r"alerts\.risk_treshold"):
        get_settings(alerts={"risk_treshold": 0.3})
    with pytest.raises(ValidationError, match=r"alerts\.readings_window"):
        get_settings(alerts={"readings_window": 1})


def test_cli_lists_and_acks(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from pipelines.cli import app

    monkeypatch.setenv("TWINOPS_CONFIG", str(tmp_path / "none.yaml"))
    saved = dict(os.environ)  # the CLI's runtime.prepare points library homes into state
    try:
        state = tmp_path / "state"
        store = AlertStore(state / "alerts.sqlite")
        store.record(risk_alerts([item("f1", 0.8)], 0.5, now=NOW), NOW)
        alert_id = store.rows()[0]["alert_id"]
        cli = ["--state-dir", str(state), "alerts"]
        listed = CliRunner().invoke(app, [*cli, "list"])
        assert listed.exit_code == 0 and alert_id in listed.output
        assert "stored (no alerts.notify block)" in listed.output
        refused = CliRunner().invoke(app, [*cli, "ack", "nope", "--by", "ana"])
        assert refused.exit_code == 2 and "no such alert: nope" in refused.output
        acked = CliRunner().invoke(app, [*cli, "ack", alert_id, "--by", "ana"])
        assert acked.exit_code == 0 and "acknowledged by ana" in acked.output
        shown = CliRunner().invoke(app, [*cli, "list", "--json"])
        assert '"acked_by": "ana"' in shown.output
    finally:
        os.environ.clear()
        os.environ.update(saved)
