"""CSV / Parquet import mapped onto the contract."""

import pandas as pd
import pytest

from features.sources.simulator import simulate_fleet
from features.sources.tabular import MissingColumnsError, read_tabular
from features.validation import validate_readings
from tests.layout import READING_COLUMNS, TURBOFAN


@pytest.fixture
def readings():
    r, _ = simulate_fleet(2, seed=2)
    return r.groupby("asset_id").head(5).reset_index(drop=True)


def test_csv_roundtrip_with_rename(readings, tmp_path):
    src = readings.rename(columns={"asset_id": "unit", "sensor_4": "T50"})
    src["extra"] = 1
    src.to_csv(tmp_path / "r.csv", index=False)
    df = read_tabular(tmp_path / "r.csv", TURBOFAN, columns={"unit": "asset_id", "T50": "sensor_4"})
    assert list(df.columns) == READING_COLUMNS
    res = validate_readings(df, TURBOFAN)
    assert res.counts["quarantined"] == 0
    pd.testing.assert_frame_equal(res.valid, readings)


def test_parquet_folder(readings, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    readings.iloc[:5].to_parquet(d / "a.parquet")
    readings.iloc[5:].to_parquet(d / "b.parquet")
    df = read_tabular(d, TURBOFAN)
    assert len(df) == len(readings)
    pd.testing.assert_frame_equal(validate_readings(df, TURBOFAN).valid, readings)


def test_missing_columns_named(readings, tmp_path):
    readings.drop(columns=["sensor_3", "timestamp"]).to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(MissingColumnsError, match="timestamp, sensor_3") as err:
        read_tabular(tmp_path / "x.csv", TURBOFAN)
    assert err.value.missing == ["timestamp", "sensor_3"]


def test_allow_missing_measurements_fills_nan_and_validation_flags(readings, tmp_path):
    readings.drop(columns=["sensor_3"]).to_csv(tmp_path / "x.csv", index=False)
    df = read_tabular(tmp_path / "x.csv", TURBOFAN, allow_missing_measurements=True)
    res = validate_readings(df, TURBOFAN)
    assert res.counts["missing_value"] == len(df)


def test_bad_path(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_tabular(tmp_path / "nope.csv", TURBOFAN)
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ValueError, match="unsupported"):
        read_tabular(tmp_path / "a.txt", TURBOFAN)
