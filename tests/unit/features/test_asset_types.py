"""Asset-type declarations: the built-ins load, a user's YAML adds a type, and every bad
declaration is an error that names the field."""

from __future__ import annotations

import pytest
import yaml

from features.asset_types import AssetTypeError, builtin, load_asset_types, parse_asset_type
from features.settings import get_settings

MINIMAL = {
    "name": "fan",
    "time_index": "timestamp",
    "sampling_period_s": 60,
    "rul_unit": "hours",
    "rul_cap": 100,
    "settings": [{"name": "load", "unit": "kW", "min": 0, "max": 500}],
    "sensors": [
        {"name": "vibration", "unit": "mm/s", "min": 0, "max": 100},
        {"name": "bearing_temp", "unit": "degC", "optional": True},
        {"name": "current", "unit": "A"},
    ],
    "failure_modes": ["bearing"],
}


def test_builtins_declare_the_turbofan_and_the_pump():
    turbofan, pump = builtin("turbofan"), builtin("pump")
    assert len(turbofan.sensors) == 21 and len(turbofan.settings) == 3
    assert len(turbofan.feature_columns) == 7 * 21 + 3 + 1
    assert pump.sensor_columns == ["w", "Qout", "Tt", "Tr", "To"]
    assert pump.rul_unit == "hours" and pump.rul_per_cycle == pytest.approx(300 / 3600)
    assert set(pump.optional_sensors) == {"Tt", "Tr", "To"}
    assert pump.stale_after_s == 3 * 300


def test_a_folder_of_yaml_adds_a_type_and_settings_address_it(tmp_path):
    (tmp_path / "fan.yaml").write_text(yaml.safe_dump(MINIMAL))
    types = load_asset_types(tmp_path)
    assert {"turbofan", "pump", "fan"} <= set(types)
    settings = get_settings(asset_types_dir=tmp_path, asset_type="fan", state_dir=tmp_path / "s",
                            data_dir=tmp_path / "d")
    assert settings.type.name == "fan" and settings.model_name == "twinops-rul-fan"
    assert settings.raw_dir == tmp_path / "d" / "raw" / "fan"
    assert settings.rul_cap == 100 and settings.for_type("pump").rul_cap == 8


def test_inline_declarations_in_settings(tmp_path):
    inline = {"fan": {k: v for k, v in MINIMAL.items() if k != "name"}}
    settings = get_settings(asset_types=inline, asset_type="fan", state_dir=tmp_path)
    assert settings.type.sensor_columns == ["vibration", "bearing_temp", "current"]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"sensors": []}, "sensors", "at least 1"),
        ({"sensors": [{"name": "x", "unit": "bananas"}]}, "sensors.0.unit", "unknown unit"),
        ({"sensors": [{"name": "x", "unit": "K"}, {"name": "x", "unit": "K"}]}, "(type)",
         "duplicate channel name(s): x"),
        ({"sensors": [{"name": "cycle", "unit": "K"}]}, "sensors.0.name", "reserved"),
        ({"sensors": [{"name": "x", "unit": "K", "min": 5, "max": 1}]}, "sensors.0", "below max"),
        ({"sampling_period_s": None}, "(type)", "sampling_period_s is required"),
        ({"rul_unit": "days"}, "rul_unit", "'cycles' or 'hours'"),
        ({"name": "Fan Type"}, "name", "pattern"),
        ({"window": 0}, "window", "greater than or equal to 1"),
        ({"sensors": [{"name": "x", "unit": "K", "colour": "red"}]}, "sensors.0.colour",
         "Extra inputs"),
    ],
)
def test_every_bad_declaration_names_its_field(change, field, message):
    with pytest.raises(AssetTypeError) as err:
        parse_asset_type({**MINIMAL, **change}, "fan.yaml")
    text = str(err.value)
    assert text.startswith("fan.yaml: asset type")
    assert f"{field}:" in text and message in text


def test_a_bad_file_and_a_twice_declared_type_are_errors(tmp_path):
    (tmp_path / "broken.yaml").write_text("name: [unclosed")
    with pytest.raises(AssetTypeError, match="not valid YAML"):
        load_asset_types(tmp_path)
    (tmp_path / "broken.yaml").unlink()
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(MINIMAL))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(MINIMAL))
    with pytest.raises(AssetTypeError, match="already declared"):
        load_asset_types(tmp_path)


def test_an_undeclared_asset_type_in_settings_is_refused(tmp_path):
    with pytest.raises(ValueError, match="asset_type 'ship' is not declared; declared: pump, "):
        get_settings(asset_type="ship", state_dir=tmp_path)
