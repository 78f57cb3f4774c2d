"""Validation: each bad-row class is quarantined with its reason; nothing is dropped."""

import json

import numpy as np
import pandas as pd
import pytest

from features.contract import QUARANTINE_REASON
from features.settings import get_settings
from features.sources.simulator import simulate_fleet
from features.validation import validate_readings, write_quarantine
from tests.layout import READING_COLUMNS, SENSOR_COLUMNS, TURBOFAN


@pytest.fixture
def good():
    r, _ = simulate_fleet(3, seed=11)
    return r.groupby("asset_id").head(10).reset_index(drop=True)  # 30 rows


def _reason(res, mask_col, value):
    q = res.quarantined
    return q.loc[q[mask_col] == value, QUARANTINE_REASON].tolist()


def test_clean_input_passes_typed_and_sorted(good):
    shuffled = good.sample(frac=1.0, random_state=0)
    res = validate_readings(shuffled, TURBOFAN)
    assert res.counts == {**res.counts, "input": 30, "valid": 30, "quarantined": 0}
    assert list(res.valid.columns) == READING_COLUMNS
    pd.testing.assert_frame_equal(res.valid, good)


def test_each_bad_row_class_has_its_reason(good):
    df = good.astype({c: object for c in good.columns}).copy()
    df.loc[1, "sensor_3"] = np.nan
    df.loc[2, "sensor_4"] = np.inf
    df.loc[3, "sensor_7"] = "abc"
    df.loc[4, "timestamp"] = "not a time"
    df.loc[5, "cycle"] = 2.5
    df.loc[6, "asset_id"] = None
    dup = df.iloc[[7]].copy()  # exact re-send of row 7
    late = df.iloc[[12]].copy()  # asset 2, cycle 3 sent again at a later time
    late["timestamp"] = df.loc[19, "timestamp"] + pd.Timedelta(minutes=30)
    df = pd.concat([df, dup, late], ignore_index=True)
    df.loc[len(df)] = df.loc[25].to_dict() | {"asset_id": "ghost", "cycle": 1}

    res = validate_readings(df, TURBOFAN, known_assets=set(good["asset_id"]))
    n = len(df)
    assert len(res.valid) + len(res.quarantined) == n
    reasons = res.quarantined[QUARANTINE_REASON]
    r = dict(zip(res.quarantined.index, reasons, strict=True))
    assert r[1] == "NaN in sensor_3"
    assert r[2] == "inf in sensor_4"
    assert r[3] == "unparsable sensor_7"
    assert r[4] == "unparsable or missing timestamp"
    assert r[5] == "cycle is not a positive integer"
    assert r[6] == "missing asset_id"
    assert r[30] == "duplicate (asset_id, cycle)"  # the re-sent copy, not the original
    assert 7 not in r
    assert r[31] == "duplicate (asset_id, cycle)"  # cycle 3 already seen for that asset
    assert r[32] == "unknown asset_id"
    c = res.counts
    assert c["quarantined"] == 9 and c["valid"] == n - 9
    assert c["missing_value"] == 1 and c["non_finite"] == 1 and c["unparsable"] == 1
    assert c["duplicate"] == 2 and c["unknown_asset"] == 1


def test_out_of_order_cycle_and_backwards_timestamp(good):
    df = good.copy()
    a = df[df["asset_id"] == "sim-0001"].index
    # Counter went backwards: the 6th and 7th readings carry cycles 7 then 6.
    df.loc[a[5], "cycle"], df.loc[a[6], "cycle"] = 7, 6
    res = validate_readings(df, TURBOFAN)
    q = res.quarantined
    assert q.index.tolist() == [a[6]]
    assert q[QUARANTINE_REASON].iloc[0].startswith("out-of-order cycle")
    # A timestamp going backwards is the same inversion seen from the clock's side.
    df2 = good.copy()
    df2.loc[a[8], "timestamp"] = df2.loc[a[2], "timestamp"] + pd.Timedelta(minutes=1)
    res2 = validate_readings(df2, TURBOFAN)
    # In time order the cycles read 1,2,3,9,4,5,6,7,8,10: the later-in-time rows
    # with lower cycles (4..8) are blamed — loud, never silent.
    assert res2.quarantined.index.tolist() == list(a[3:8])
    assert res2.counts["out_of_order"] == 5
    assert len(res2.valid) + len(res2.quarantined) == len(df2)


def test_multiple_reasons_joined(good):
    df = good.astype({"sensor_2": object, "sensor_9": object}).copy()
    df.loc[0, "sensor_2"] = "x"
    df.loc[0, "sensor_9"] = np.nan
    df.loc[0, "sensor_11"] = -np.inf
    res = validate_readings(df, TURBOFAN)
    assert res.quarantined.loc[0, QUARANTINE_REASON] == (
        "unparsable sensor_2; NaN in sensor_9; inf in sensor_11"
    )


def test_missing_columns_quarantine_everything_with_names(good):
    df = good.drop(columns=["sensor_5", "cycle"])
    res = validate_readings(df, TURBOFAN)
    assert res.valid.empty and len(res.quarantined) == len(df)
    assert res.missing_columns == ["cycle", "sensor_5"]
    assert set(res.quarantined[QUARANTINE_REASON]) == {
        "missing column(s) of asset type 'turbofan': cycle, sensor_5"}


def test_naive_timestamps_read_as_utc_and_strings_parsed(good):
    df = good.copy()
    df["timestamp"] = df["timestamp"].dt.tz_localize(None).astype(str)
    df["cycle"] = df["cycle"].astype(str)
    res = validate_readings(df, TURBOFAN)
    assert res.counts["quarantined"] == 0
    pd.testing.assert_frame_equal(res.valid, good)


def test_write_quarantine_appends_atomically(good, tmp_path):
    s = get_settings(state_dir=tmp_path / "state", data_dir=tmp_path / "data")
    df = good.astype({"sensor_2": object}).copy()
    df.loc[3, "sensor_2"] = "oops"
    res = validate_readings(df, TURBOFAN)
    p1 = write_quarantine(res, s)
    p2 = write_quarantine(res, s)
    assert p1 != p2 and p1.parent == s.quarantine_dir
    back = pd.read_parquet(p1)
    assert len(back) == 1 and back[QUARANTINE_REASON].iloc[0] == "unparsable sensor_2"
    assert back["sensor_2"].iloc[0] == "oops"
    lines = (s.quarantine_dir / "counts.jsonl").read_text().splitlines()
    assert [json.loads(x)["quarantined"] for x in lines] == [1, 1]
    assert not [p for p in s.quarantine_dir.iterdir() if p.name.startswith(".")]  # no temp files
    assert SENSOR_COLUMNS[0] in back.columns


def test_write_quarantine_accepts_a_bare_frame_with_source(good, tmp_path):
    s = get_settings(state_dir=tmp_path / "state", data_dir=tmp_path / "data")
    frame = good.iloc[:2].assign(**{QUARANTINE_REASON: ["already ingested", "x"]})
    p = write_quarantine(frame, s, source="simulator")
    back = pd.read_parquet(p)
    assert back["source"].tolist() == ["simulator", "simulator"]
    assert back[QUARANTINE_REASON].tolist() == ["already ingested", "x"]
    entry = json.loads((s.quarantine_dir / "counts.jsonl").read_text())
    assert entry["quarantined"] == 2 and entry["source"] == "simulator"
    assert entry["reasons"] == {"already ingested": 1, "x": 1}


def test_json_rows_are_checked_as_sent_never_coerced():
    from features.asset_types import builtin
    from features.validation import MAX_CYCLE, json_row_problems

    turbofan = builtin("turbofan")
    good = {"asset_id": "a", "cycle": 3, "timestamp": "2026-01-01T00:00:00Z",
            **{c: 1.0 for c in turbofan.measurement_columns}}
    assert json_row_problems(good, turbofan) == []
    for missing in (None, float("nan")):  # validate_readings decides (optional or not)
        assert json_row_problems({**good, "sensor_2": missing}, turbofan) == []
    cases = {
        "cycle": [True, "7", 2.5, 0, MAX_CYCLE + 1, 2**63],
        "timestamp": [1709251200, "2026-01-01T00:00:00", "yesterday"],
        "asset_id": [12345, ["a"], "", "a" * 257, "a\x00b", "a\nb"],
        "sensor_2": [True, "1.0", float("inf"), 1e308],
    }
    for field, values in cases.items():
        for value in values:
            problems = json_row_problems({**good, field: value}, turbofan)
            assert len(problems) == 1 and problems[0].startswith(f"{field}:"), (value, problems)


def test_a_reading_from_the_future_is_quarantined_and_clock_skew_is_allowed(good):
    from features.validation import MAX_CLOCK_SKEW

    now = pd.Timestamp.now(tz="UTC")
    df = good.copy()
    df.loc[df["asset_id"] == df["asset_id"].iloc[-1], "timestamp"] = [
        now + pd.Timedelta(hours=35 + i) for i in range(10)]  # the soak's 35 h ahead
    df.loc[9, "timestamp"] = now + MAX_CLOCK_SKEW / 2  # asset 0's newest, a clock a bit ahead
    res = validate_readings(df, TURBOFAN)
    assert res.counts["future_timestamp"] == 10 and res.counts["valid"] == 20
    assert all("timestamp in the future" in r for r in res.quarantined[QUARANTINE_REASON])
