"""Monitor alerts reach a real webhook once, and survive a receiver that is down.

    `twinops run --drift bias -t turbofan` (alerts off): a tiny fleet, its champion, a live
    fleet with biased sensors, scored and monitored
    a feed with a frozen sensor_3 (alert-frozen) and a sensor_4 out of range (alert-range,
    quarantined) ─► `twinops ingest`
    a CustomWebhookNotificationBlock saved on the session's Prefect server, pointing at a
    stdlib HTTP receiver on a free port; `alerts.notify` names it
    monitor_flow ─► the receiver gets each expected alert exactly once (risk at or above
        the threshold, the two sensor faults, the drift), and a second run sends nothing
    receiver down, a dead sensor_7 (alert-dead) ─► monitor_flow completes, the alert is
        pending in the store ─► receiver up ─► the next run delivers it, once
    an at-risk asset fails 5 h after its alert's reading (`twinops feedback`) ─►
        `twinops monitor errors`: one warned failure of the champion, lead time 5 h

The risk alerts expected are those of serving.fleet.fleet_risk over the same champion and
online features, at a threshold between the ranked risks (the model decides which assets
are at risk; the test only decides where the line is).
"""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest

from benchmarks.processes import free_port

pytestmark = pytest.mark.integration


class Receiver:
    """A webhook receiver on 127.0.0.1:port in a thread; `got` holds the JSON bodies."""

    def __init__(self, port: int):
        self.port, self.got = port, []
        got = self.got

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def alerts(self) -> list[tuple[str, str]]:
        """(kind, asset) of each notification, from its subject `twinops SEV: KIND TYPE/ASSET`."""
        out = []
        for note in self.got:
            kind, where = note["subject"].split(": ", 1)[1].split(" ")
            out.append((kind, where.split("/", 1)[1]))
        return sorted(out)


def faulty_feed(settings, tmp_path, name: str, fault) -> None:
    """Ingest 12 readings of a new asset copied from a stored one, with `fault` applied."""
    from typer.testing import CliRunner

    from features.datastore import load_readings
    from pipelines.cli import app

    stored = load_readings(settings)
    first = sorted(a for a in stored["asset_id"].astype(str).unique()
                   if not a.startswith("alert-"))[0]  # not an earlier faulty copy
    rows = stored[stored["asset_id"].astype(str) == first].head(12).copy()
    rows["asset_id"] = name
    fault(rows)
    folder = tmp_path / f"feed-{name}"
    folder.mkdir()
    rows.to_csv(folder / "readings.csv", index=False)
    done = CliRunner().invoke(app, ["ingest", str(folder), "-t", "turbofan"])
    assert done.exit_code == 0, done.output[-3000:]


def test_alerts_reach_a_webhook_once_and_wait_for_a_receiver_that_is_down(
        isolated_env, prefect_server, monkeypatch, tmp_path):
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from typer.testing import CliRunner

    from features.datastore import last_failures, load_assets
    from features.maintenance import criticality_of
    from features.settings import get_settings
    from monitoring.alert_store import load_alerts
    from pipelines.cli import app
    from pipelines.monitor_flow import monitor_flow
    from serving.decision_schemas import FleetRiskRequest
    from serving.fleet import fleet_risk, local_lanes

    monkeypatch.setenv("TWINOPS_ALERTS__ENABLED", "false")
    done = CliRunner().invoke(app, ["run", "--drift", "bias", "-t", "turbofan"])
    assert done.exit_code == 0, done.output[-4000:]
    settings = get_settings()

    def freeze(rows):
        rows["sensor_3"] = rows["sensor_3"].iloc[0]

    def overheat(rows):
        rows.loc[rows.index[-1], "sensor_4"] = 9999.0  # outside [500, 2500]: quarantined

    faulty_feed(settings, tmp_path, "alert-frozen", freeze)
    faulty_feed(settings, tmp_path, "alert-range", overheat)

    lanes = local_lanes(settings, ["turbofan"])
    assets = load_assets(settings)
    ranked = fleet_risk(FleetRiskRequest(asset_type="turbofan", page_size=1000), lanes=lanes,
                        assets=assets, criticality=criticality_of(settings, assets),
                        failed_at=last_failures(settings)).items
    risks = sorted((i.risk for i in ranked if i.risk is not None), reverse=True)
    threshold = max(risks[min(2, len(risks) - 1)], 1e-6)  # about the top three
    at_risk = [("risk", i.asset_id) for i in ranked if i.risk is not None and i.risk >= threshold]

    receiver = Receiver(free_port())
    block = f"twinops-alerts-{uuid.uuid4().hex[:8]}"
    CustomWebhookNotificationBlock(
        name="twinops alerts", url=f"http://127.0.0.1:{receiver.port}/hook", timeout=5,
        json_data={"subject": "{{subject}}", "body": "{{body}}"}).save(block)
    monkeypatch.setenv("TWINOPS_ALERTS__ENABLED", "true")
    monkeypatch.setenv("TWINOPS_ALERTS__NOTIFY", json.dumps([f"custom-webhook/{block}"]))
    monkeypatch.setenv("TWINOPS_ALERTS__RISK_THRESHOLD", repr(threshold))
    settings = get_settings()

    try:
        first = monitor_flow(settings, retrain_on_drift=False)
        assert first.drift, "the biased live fleet should drift"
        expected = sorted([*at_risk, ("drift", "*"), ("sensor_frozen", "alert-frozen"),
                           ("sensor_out_of_range", "alert-range")])
        assert receiver.alerts() == expected, (first.alerts, receiver.got)
        assert sorted(first.alerts["notified"]) == sorted(a["alert_id"]
                                                          for a in first.alerts["raised"])
        drift_note = next(n for n in receiver.got if " drift " in n["subject"])
        assert "sensor_3" in drift_note["body"] or "sensor_4" in drift_note["body"]
        assert "twinops alerts ack" in drift_note["body"]

        again = monitor_flow(settings, retrain_on_drift=False)
        assert not again.alerts["raised"] and again.alerts["repeated"] == len(expected)
        assert len(receiver.got) == len(expected)  # nothing twice

        receiver.stop()  # the channel is down; a new fault arrives

        def kill(rows):
            rows["sensor_7"] = np.nan  # a required sensor: every row is quarantined

        faulty_feed(settings, tmp_path, "alert-dead", kill)
        down = monitor_flow(settings, retrain_on_drift=False)
        (dead,) = down.alerts["raised"]
        assert (dead["kind"], dead["asset_id"], dead["sensor"]) == (
            "sensor_dead", "alert-dead", "sensor_7")
        assert list(down.alerts["failed"]) == [dead["alert_id"]] and not down.alerts["notified"]
        frame = load_alerts(settings).set_index("alert_id")
        assert pd.isna(frame.loc[dead["alert_id"], "notified_at"])
        assert frame.loc[dead["alert_id"], "notify_attempts"] == 1

        receiver = Receiver(receiver.port)  # back up, on the same port
        back = monitor_flow(settings, retrain_on_drift=False)
        assert back.alerts["notified"] == [dead["alert_id"]] and not back.alerts["raised"]
        assert receiver.alerts() == [("sensor_dead", "alert-dead")]
        frame = load_alerts(settings)
        assert frame["notified_at"].notna().all() and len(frame) == len(expected) + 1
        version = lanes["turbofan"].holder.current.version
        assert set(frame.loc[frame["kind"] == "risk", "model_version"]) == {version}

        # outcomes: an at-risk asset fails 5 h after the reading its alert was raised on
        from features.datastore import load_readings

        asset = at_risk[0][1]
        readings = load_readings(settings)
        last = readings[readings["asset_id"].astype(str) == asset].sort_values("cycle").iloc[-1]
        failed_at = pd.Timestamp(last["timestamp"]) + pd.Timedelta(hours=5)
        done = CliRunner().invoke(app, ["feedback", "--asset-id", asset, "--cycle",
                                        str(int(last["cycle"]) + 1), "--timestamp",
                                        failed_at.isoformat()])
        assert done.exit_code == 0, done.output[-3000:]
        done = CliRunner().invoke(app, ["monitor", "errors", "-t", "turbofan"])
        assert done.exit_code == 0, done.output[-3000:]
        outcomes = {r["model_version"]: r for r in json.loads(done.output)["outcomes"]}
        mine = outcomes[version]
        assert (mine["failures"], mine["warned_failures"], mine["missed_failures"]) == (1, 1, 0)
        assert mine["lead_time_h_median"] == pytest.approx(5.0, abs=0.01)
        assert mine["realised_cost"] == pytest.approx(mine["run_to_failure_cost"])
        assert mine["risk_alerts"] == len(at_risk)
    finally:
        receiver.stop()
