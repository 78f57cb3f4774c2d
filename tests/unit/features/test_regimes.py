"""Per-regime normalisation (features.regimes): a multi-condition fleet's sensors become
z-scores within their operating regime before the windows, with the statistics fitted into
the asset type, so offline and online stay exact and a type without regimes is unchanged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from features.asset_types import AssetTypeError, load_asset_types, parse_asset_type
from features.regimes import (
    MIN_REGIME_READINGS,
    fit_regimes,
    normalise,
    regime_keys,
    regimes_yaml,
)
from features.sources.simulator import REGIME_SETTINGS
from features.transforms import (
    START_READINGS,
    feature_history,
    latest_window_features,
    tail_length,
    window_features,
)

#: The six operating conditions of C-MAPSS FD002/FD004 (altitude, Mach, throttle angle).
CONDITIONS = REGIME_SETTINGS
SETTINGS = ["op_setting_1", "op_setting_2", "op_setting_3"]
SENSORS = ["t2", "t24", "p30", "nf", "bleed"]
STEPS = {"op_setting_1": 1, "op_setting_2": 0.01, "op_setting_3": 1}

DECLARATION = {
    "name": "jet",
    "time_index": "cycle",
    "window": 6,
    "missing": {"policy": "drop"},
    "settings": [{"name": s, "unit": "dimensionless"} for s in SETTINGS],
    "sensors": [{"name": s, "unit": "dimensionless"} for s in SENSORS],
    "regimes": {"settings": STEPS},
}
JET = parse_asset_type(DECLARATION, "test")
PLAIN = parse_asset_type({k: v for k, v in DECLARATION.items() if k != "regimes"}, "test")
FEATURES = JET.feature_columns


def _fleet(n_assets: int = 8, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Run-to-failure lives flown in a random condition each cycle: every sensor sits at its
    condition's level (far apart) plus that condition's scale x (wear + noise). `t2` is
    constant within a condition, as C-MAPSS' fan-inlet temperature is. Returns the readings
    and each reading's condition index."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(100, 2000, size=(len(CONDITIONS), len(SENSORS)))
    scale = rng.uniform(0.5, 5.0, size=(len(CONDITIONS), len(SENSORS)))
    sign = np.array([0.0, 1.0, -1.0, 1.0, -1.0])
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    frames, conditions = [], []
    for a in range(n_assets):
        life = int(rng.integers(100, 150))
        cycle = np.arange(1, life + 1)
        cond = rng.integers(0, len(CONDITIONS), size=life)
        wear = np.exp(3.0 * cycle / life) - 1.0
        noise = rng.normal(0.0, 0.3, size=(life, len(SENSORS)))
        noise[:, 0] = 0.0
        y = level[cond] + scale[cond] * (sign * wear[:, None] + noise)
        s = CONDITIONS[cond] + rng.uniform(-1, 1, size=(life, 3)) * [0.004, 0.0008, 0.0]
        frame = pd.DataFrame(y, columns=SENSORS)
        frame[SETTINGS] = s
        frame.insert(0, "asset_id", f"e{a}")
        frame.insert(1, "timestamp", t0 + pd.to_timedelta(cycle, unit="h"))
        frame.insert(2, "cycle", cycle)
        frames.append(frame[["asset_id", "timestamp", "cycle", *SETTINGS, *SENSORS]])
        conditions.append(cond)
    return pd.concat(frames, ignore_index=True), np.concatenate(conditions)


def test_regime_keys_snap_the_settings_to_their_steps():
    df = pd.DataFrame(
        {
            "op_setting_1": [10.004, 41.996, -0.003, np.nan],
            "op_setting_2": [0.2497, 0.8404, -0.0004, 0.0],
            "op_setting_3": [100.0, 100, 100, 60],
        }
    )
    keys = regime_keys(df, JET.regimes)
    np.testing.assert_array_equal(keys[:3], [[10, 0.25, 100], [42, 0.84, 100], [0, 0, 100]])
    assert not np.signbit(keys[2]).any()  # 0, not -0: a declaration reads `key: [0.0, ...]`
    assert np.isnan(keys[3, 0])


def test_fit_finds_every_condition_and_the_features_ignore_each_regimes_scale():
    readings, cond = _fleet()
    fitted = fit_regimes(readings, JET)
    assert sorted(map(tuple, (lv.key for lv in fitted.regimes.levels))) == sorted(
        map(tuple, CONDITIONS.tolist())
    )
    assert all(lv.std["t2"] == 0.0 for lv in fitted.regimes.levels)  # constant: exactly 0
    # Each regime's sensors shifted by its own constant and scaled by its own factor.
    rng = np.random.default_rng(1)
    shift = rng.uniform(-500, 500, size=(len(CONDITIONS), len(SENSORS)))
    factor = rng.uniform(0.1, 10.0, size=(len(CONDITIONS), len(SENSORS)))
    moved = readings.copy()
    moved[SENSORS] = readings[SENSORS].to_numpy() * factor[cond] + shift[cond]
    ours = window_features(readings, fitted)
    theirs = window_features(moved, fit_regimes(moved, JET))
    np.testing.assert_allclose(
        theirs[FEATURES].to_numpy(float), ours[FEATURES].to_numpy(float), rtol=1e-9, atol=1e-9
    )
    assert list(ours.columns) == list(window_features(readings, PLAIN).columns)
    # ... and it is what makes the windows read wear: the trend against age shows through
    # the normalised means, and drowns in the regime jumps of the raw ones.
    raw = window_features(readings, PLAIN)

    def trend(feats):
        return np.mean(
            [np.corrcoef(g["age"], g["t24_mean"])[0, 1] for _, g in feats.groupby("asset_id")]
        )

    assert trend(ours) > 0.9 > 0.5 > abs(trend(raw))


def test_online_equals_offline_on_a_multi_regime_fleet():
    readings, _ = _fleet(6, seed=3)
    fitted = fit_regimes(readings, JET)
    full = window_features(readings, fitted)
    last = full.groupby("asset_id", sort=False).tail(1).reset_index(drop=True)
    pd.testing.assert_frame_equal(latest_window_features(readings, fitted), last, check_exact=True)
    kept = feature_history(readings, fitted)
    assert len(kept) < len(readings)
    assert kept.groupby("asset_id").size().max() <= START_READINGS + tail_length(fitted)
    again = window_features(kept, fitted).groupby("asset_id", sort=False).tail(1)
    np.testing.assert_array_equal(again[FEATURES].to_numpy(float), last[FEATURES].to_numpy(float))


def test_a_reading_of_an_undeclared_regime_has_missing_sensors():
    readings, _ = _fleet(2, seed=5)
    fitted = fit_regimes(readings, JET)
    odd = readings.copy()
    odd.loc[[40], SETTINGS] = [30.0, 0.5, 80.0]  # a condition the fleet never flew
    z = normalise(odd, fitted)
    assert z.loc[40, SENSORS].isna().all() and z.drop(index=40)[SENSORS].notna().all().all()
    pd.testing.assert_frame_equal(z[SETTINGS], odd[SETTINGS])
    assert list(z.index) == list(odd.index)
    # drop policy: that reading's sensor features are NaN, its settings and age are not, and
    # every other reading's windows use the values present.
    feats = window_features(odd, fitted)
    row = feats.index[
        (feats["asset_id"] == odd.loc[40, "asset_id"]) & (feats["cycle"] == odd.loc[40, "cycle"])
    ][0]
    sensor_features = [c for c in FEATURES if c.split("_")[0] in SENSORS]
    assert feats.loc[row, sensor_features].isna().all()
    assert feats.loc[row, [*SETTINGS, "age"]].notna().all()
    assert feats.drop(index=row)[sensor_features].notna().all().all()
    # carry_forward: the last readable z-scores stand in for up to `limit` readings.
    carried = fitted.model_copy(
        update={
            "missing": fitted.missing.model_copy(update={"policy": "carry_forward", "limit": 2})
        }
    )
    odd.loc[[60, 61, 62], SETTINGS] = [30.0, 0.5, 80.0]
    feats = window_features(odd, carried).set_index(["asset_id", "cycle"])
    asset = odd.loc[60, "asset_id"]
    cycles = odd.loc[[40, 60, 61, 62], "cycle"].tolist()
    assert feats.loc[[(asset, c) for c in cycles[:3]], "t24_mean"].notna().all()
    assert np.isnan(feats.loc[(asset, cycles[3]), "t24_mean"])  # beyond the limit


def test_without_regimes_or_with_identity_levels_the_features_are_unchanged():
    """A type without `regimes` runs the transform as before (the window-transform tests pin
    its values); levels of mean 0 and std 1 give the very same bits."""
    readings, _ = _fleet(3, seed=7)
    identity = [
        {"key": k, "mean": dict.fromkeys(SENSORS, 0.0), "std": dict.fromkeys(SENSORS, 1.0)}
        for k in CONDITIONS.tolist()
    ]
    same = parse_asset_type(
        {**DECLARATION, "regimes": {"settings": STEPS, "levels": identity}}, "test"
    )
    pd.testing.assert_frame_equal(
        window_features(readings, same), window_features(readings, PLAIN), check_exact=True
    )
    assert PLAIN.regimes is None and normalise(readings, PLAIN) is readings


def test_the_fitted_block_round_trips_through_a_declaration_file(tmp_path):
    readings, _ = _fleet(4, seed=2)
    fitted = fit_regimes(readings, JET)
    block = yaml.safe_load(regimes_yaml(fitted))
    assert list(block) == ["regimes"] and list(block["regimes"]["settings"]) == SETTINGS
    (tmp_path / "jet.yaml").write_text(yaml.safe_dump({**DECLARATION, **block}, sort_keys=False))
    loaded = load_asset_types(tmp_path)["jet"]
    assert loaded == fitted and hash(loaded) == hash(fitted)
    pd.testing.assert_frame_equal(
        window_features(readings, loaded), window_features(readings, fitted), check_exact=True
    )


def test_regimes_without_levels_and_thin_regimes_are_errors():
    readings, _ = _fleet(2, seed=4)
    with pytest.raises(AssetTypeError, match="no fitted levels: run features.regimes.fit_regimes"):
        window_features(readings, JET)
    with pytest.raises(AssetTypeError, match="declares no regimes"):
        fit_regimes(readings, PLAIN)
    few = readings.copy()
    few.loc[few.index[: MIN_REGIME_READINGS - 1], SETTINGS] = [30.0, 0.5, 80.0]
    thin = rf"regime \[30, 0.5, 80\] .* {MIN_REGIME_READINGS - 1} reading\(s\), fewer than"
    with pytest.raises(AssetTypeError, match=thin):
        fit_regimes(few, JET)


def _level(key, drop: str | None = None, std: float = 1.0) -> dict:
    return {
        "key": key,
        "mean": {s: 0.0 for s in SENSORS if s != drop},
        "std": dict.fromkeys(SENSORS, std),
    }


@pytest.mark.parametrize(
    ("regimes", "field", "message"),
    [
        ({"settings": {"altitude": 1}}, "regimes", "altitude is not a declared setting"),
        ({"settings": {"op_setting_1": 0}}, "regimes.settings", "must be a number > 0"),
        ({"settings": {"op_setting_1": -0.5}}, "regimes.settings", "must be a number > 0"),
        ({"settings": {}}, "regimes.settings", "at least 1"),
        (
            {"settings": STEPS, "levels": [_level([0, 0, 100]), _level([0.0, 0.001, 100])]},
            "regimes",
            "levels.1.key [0.0, 0.001, 100.0] is not on the step grid of op_setting_2",
        ),
        (
            {"settings": STEPS, "levels": [_level([0, 0, 100]), _level([0.0, 0.0, 100.0])]},
            "regimes",
            "levels.1.key [0.0, 0.0, 100.0] repeats levels.0.key",
        ),
        ({"settings": STEPS, "levels": [_level([0, 0])]}, "regimes", "has 2 values for 3"),
        (
            {"settings": STEPS, "levels": [_level([0, 0, 100], drop="p30")]},
            "regimes",
            "levels.0 (key [0.0, 0.0, 100.0]): mean lacks p30",
        ),
        (
            {"settings": STEPS, "levels": [_level([0, 0, 100], std=-1.0)]},
            "regimes.levels.0",
            "std of",
        ),
        ({"settings": STEPS, "colour": "red"}, "regimes.colour", "Extra inputs"),
    ],
)
def test_every_bad_regimes_block_names_its_field(regimes, field, message):
    with pytest.raises(AssetTypeError) as err:
        parse_asset_type({**DECLARATION, "regimes": regimes}, "jet.yaml")
    text = str(err.value)
    assert text.startswith("jet.yaml: asset type 'jet'")
    assert f"{field}:" in text and message in text, text


def test_the_cli_prints_the_fitted_block_for_the_declaration(tmp_path, monkeypatch):
    import os

    from typer.testing import CliRunner

    from pipelines.cli import app

    readings, _ = _fleet()
    path = tmp_path / "fleet.parquet"
    sentinel = readings.iloc[[0]].assign(p30=1e6)  # a re-sent row, corrupted: quarantined
    pd.concat([readings, sentinel], ignore_index=True).to_parquet(path)
    cfg = tmp_path / "twinops.yaml"
    cfg.write_text(yaml.safe_dump({"asset_types": {"jet": DECLARATION}}))
    monkeypatch.setenv("TWINOPS_CONFIG", str(cfg))
    saved = dict(os.environ)  # the CLI's runtime.prepare points library homes into state
    try:
        base = ["--state-dir", str(tmp_path / "state"), "asset-types"]
        out = CliRunner().invoke(app, [*base, "fit-regimes", "-t", "jet", "--readings", str(path)])
        listing = CliRunner().invoke(app, base)
        empty = CliRunner().invoke(app, [*base, "fit-regimes", "-t", "jet"])
        absent = CliRunner().invoke(app, [*base, "fit-regimes", "-t", "jet", "--readings",
                                          str(tmp_path / "nope.csv")])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert out.exit_code == 0, out.output
    assert out.output == regimes_yaml(fit_regimes(readings, JET))
    pasted = parse_asset_type({**DECLARATION, **yaml.safe_load(out.output)}, "test")
    assert len(pasted.regimes.levels) == len(CONDITIONS)
    assert listing.exit_code == 0 and "jet" in listing.output  # the group still lists
    assert empty.exit_code == 2 and "ingest the training fleet first" in empty.output
    assert absent.exit_code == 2 and "nope.csv" in absent.output


def test_a_reading_in_a_regime_without_levels_is_kept_and_counted_at_ingest():
    from features.validation import validate_readings

    readings, cond = _fleet(n_assets=2)
    fitted = fit_regimes(readings[cond != 5], JET)  # condition 5 never seen in training
    res = validate_readings(readings, fitted)
    assert len(res.valid) == len(readings) and res.counts["quarantined"] == 0
    assert res.unknown_regime == int((cond == 5).sum()) > 0
    assert validate_readings(readings, fit_regimes(readings, JET)).unknown_regime == 0
    assert validate_readings(readings, PLAIN).unknown_regime == 0  # no regimes declared
