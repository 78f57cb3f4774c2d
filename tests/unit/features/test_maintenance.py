"""Asset metadata: validated imports (all or nothing), type defaults overlaid per asset."""

from __future__ import annotations

import pandas as pd
import pytest

from features import datastore
from features.maintenance import (
    MetadataError,
    criticality_of,
    profiles_of,
    read_metadata_file,
)
from features.settings import get_settings
from features.sources.simulator import simulate_fleet
from features.validation import validate_readings
from tests.layout import TURBOFAN


@pytest.fixture
def settings(tmp_path):
    s = get_settings(state_dir=tmp_path / "state", data_dir=tmp_path / "data")
    readings, _ = simulate_fleet(3, seed=1)
    with datastore.write_lock(s):
        datastore.register_assets(s, validate_readings(readings, TURBOFAN).valid)
    return s


def _csv(tmp_path, text: str):
    path = tmp_path / "assets.csv"
    path.write_text(text)
    return path


def test_an_import_overrides_the_type_defaults_per_asset(settings, tmp_path):
    ids = sorted(datastore.load_assets(settings)["asset_id"].astype(str))
    rows = read_metadata_file(_csv(tmp_path, f"asset_id,criticality,failure_cost,site\n"
                                              f"{ids[0]},3,2000000,plant-a\n"))
    assert datastore.import_asset_metadata(settings, rows) == {"updated": 1, "registered": 0}
    profiles = profiles_of(settings, ids)
    default = settings.type.maintenance
    assert profiles[ids[0]].criticality == 3 and profiles[ids[0]].failure_cost == 2_000_000
    assert profiles[ids[0]].planned_cost == default.planned_cost  # not in the file: default
    assert profiles[ids[1]] == default
    crit = criticality_of(settings, datastore.load_assets(settings))
    assert crit[ids[0]] == 3 and crit[ids[1]] == default.criticality
    assert datastore.load_assets(settings).set_index("asset_id").loc[ids[0], "site"] == "plant-a"


@pytest.mark.parametrize(("text", "says"), [
    ("asset_id,failure_cost\nx,-5\n", "row 1 (asset_id 'x'): failure_cost: Input should be "
                                      "greater than or equal to 0"),
    ("asset_id,criticality\nx,high\n", "criticality: Input should be a valid number"),
    ("asset_id,parts_lead_time\nx,inf\n", "parts_lead_time: must be a finite number"),
    ("asset_id,cost\nx,1\n", "unknown column(s) cost"),
    ("site\nplant\n", "no asset_id column"),
    ("asset_id,criticality\nx,1\nx,2\n", "asset_id 'x' appears more than once"),
])
def test_a_bad_file_names_the_row_and_field(tmp_path, text, says):
    with pytest.raises(MetadataError) as err:
        read_metadata_file(_csv(tmp_path, text))
    assert says in str(err.value)


def test_a_bad_row_refuses_the_whole_import(settings, tmp_path):
    ids = sorted(datastore.load_assets(settings)["asset_id"].astype(str))
    before = datastore.load_assets(settings)
    rows = read_metadata_file(_csv(tmp_path, f"asset_id,asset_type,criticality\n"
                                              f"{ids[0]},turbofan,5\n{ids[1]},pump,2\n"
                                              f"new-1,,2\nnew-2,rocket,1\n"))
    with pytest.raises(MetadataError) as err:
        datastore.import_asset_metadata(settings, rows)
    message = str(err.value)
    assert "3 problem(s), nothing imported" in message
    assert f"row 2 (asset_id '{ids[1]}'): asset_type: registered as 'turbofan', not 'pump'" \
        in message
    assert "row 3 (asset_id 'new-1'): asset_type: required" in message
    assert "'rocket' is not a declared type" in message
    pd.testing.assert_frame_equal(datastore.load_assets(settings), before)


def test_an_asset_imported_before_it_reports_gets_its_life_start_from_its_readings(
        settings, tmp_path):
    rows = read_metadata_file(_csv(tmp_path, "asset_id,asset_type,criticality\n"
                                             "later-1,turbofan,2\n"))
    assert datastore.import_asset_metadata(settings, rows) == {"updated": 0, "registered": 1}
    assert "later-1" not in datastore.life_starts(settings)
    readings, _ = simulate_fleet(1, seed=2)
    readings["asset_id"] = "later-1"
    with datastore.write_lock(settings):
        datastore.register_assets(settings, validate_readings(readings, TURBOFAN).valid)
    start = datastore.life_starts(settings)["later-1"]
    assert start == pd.Timestamp(readings["timestamp"].min())
    assert profiles_of(settings, ["later-1"])["later-1"].criticality == 2
