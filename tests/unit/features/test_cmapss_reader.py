"""C-MAPSS reader against the real FD001 files (skipped when they are absent)."""

import os
from pathlib import Path

import pytest

from features.contract import EVENT_COLUMNS
from features.sources.cmapss import read_cmapss, read_true_rul
from features.validation import validate_readings
from tests.layout import READING_COLUMNS, TURBOFAN

# tests/unit/features/ -> repo root is parents[3]; the shared data sits beside it.
CMAPSS_DIR = Path(
    os.environ.get("TWINOPS_CMAPSS_DIR", Path(__file__).parents[3] / "../shared/data/cmapss")
).resolve()

pytestmark = [
    pytest.mark.cmapss,
    pytest.mark.skipif(
        not (CMAPSS_DIR / "train_FD001.txt").exists(),
        reason=f"C-MAPSS FD001 not found at {CMAPSS_DIR} (set TWINOPS_CMAPSS_DIR)",
    ),
]


def test_train_split_maps_to_contract_with_failures():
    r, e = read_cmapss(CMAPSS_DIR, "FD001", "train")
    assert list(r.columns) == READING_COLUMNS and list(e.columns) == EVENT_COLUMNS
    assert len(r) == 20631 and r["asset_id"].nunique() == 100
    assert r["asset_id"].iloc[0] == "FD001-train-1"
    # First row of the file: unit 1, cycle 1, sensor_2 = 641.82, sensor_21 = 23.4190.
    first = r.iloc[0]
    assert first["cycle"] == 1 and first["sensor_2"] == 641.82 and first["sensor_21"] == 23.419
    assert first["op_setting_1"] == -0.0007
    assert len(e) == 100 and set(e["event"]) == {"failure"}
    last = r.groupby("asset_id")["cycle"].max()
    assert (e.set_index("asset_id")["cycle"] == last.loc[e["asset_id"]].to_numpy()).all()
    assert e.set_index("asset_id").loc["FD001-train-1", "cycle"] == 192
    assert validate_readings(r, TURBOFAN).counts["quarantined"] == 0


def test_timestamps_deterministic_and_utc():
    r1, _ = read_cmapss(CMAPSS_DIR, "FD001", "train")
    r2, _ = read_cmapss(CMAPSS_DIR, "FD001", "train")
    assert r1["timestamp"].equals(r2["timestamp"])
    assert str(r1["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert r1["timestamp"].is_unique


def test_test_split_and_true_rul():
    r, e = read_cmapss(CMAPSS_DIR, "FD001", "test")
    assert len(r) == 13096 and r["asset_id"].nunique() == 100 and e.empty
    assert list(e.columns) == EVENT_COLUMNS
    rul = read_true_rul(CMAPSS_DIR, "FD001")
    assert list(rul.columns) == ["asset_id", "rul"] and len(rul) == 100
    assert rul.iloc[0].tolist() == ["FD001-test-1", 112]
    assert set(rul["asset_id"]) == set(r["asset_id"])


def test_bad_split_and_missing_file(tmp_path):
    with pytest.raises(ValueError):
        read_cmapss(CMAPSS_DIR, split="valid")
    with pytest.raises(FileNotFoundError):
        read_cmapss(tmp_path, "FD001", "train")
