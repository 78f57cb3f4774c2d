"""`twinops benchmark rul --fleet simulator:<opts>`: the C-MAPSS protocol on a simulated fleet.

    --fleet simulator:modes=2,regimes=6,train=100,test=100,seed=7
        │ features.sources.simulator: `train` run-to-failure units, `test` other units in
        │ service (seed + 1000), each cut at a random 30-95% of its life
        │ modes=2: HPC and fan degradation (like FD003); regimes=6: six operating
        │ conditions (like FD002/FD004), normalised per regime in the features with
        │ statistics fitted on the training units only (features.regimes)
        ▼
    (training frame, its raw readings, test rows at the last reading + true RUL, settings)

Why a simulated fleet: the project holds FD001 only (one fault mode, one condition); the
same code must train on multi-mode and multi-regime fleets, and a fleet the models have
never seen is the honest check that the validation they are chosen on predicts the test.
"""

from __future__ import annotations

#: Options of `--fleet simulator:` and their defaults.
DEFAULTS = {"modes": 1, "regimes": 1, "train": 100, "test": 100, "seed": 7}
#: Snap steps of the settings that key a regime (features.regimes): the six C-MAPSS
#: conditions lie far apart next to the settings' noise.
REGIME_STEPS = {"op_setting_1": 1.0, "op_setting_2": 0.01, "op_setting_3": 1.0}


def parse(spec: str) -> dict[str, int]:
    """"simulator:modes=2,regimes=6" -> the options, defaults filled in; a clear error for
    anything else."""
    kind, _, opts = spec.partition(":")
    if kind != "simulator":
        raise ValueError(f"--fleet {spec!r}: only 'simulator:<opts>' is known")
    out = dict(DEFAULTS)
    for item in filter(None, opts.split(",")):
        key, eq, value = item.partition("=")
        if key not in DEFAULTS or not eq:
            raise ValueError(f"--fleet option {item!r}: expected one of "
                             f"{', '.join(f'{k}=N' for k in DEFAULTS)}")
        try:
            out[key] = int(value)
        except ValueError:
            raise ValueError(f"--fleet option {key}: {value!r} is not an integer") from None
    if out["modes"] not in (1, 2) or out["regimes"] not in (1, 6):
        raise ValueError("--fleet: modes is 1 or 2, regimes 1 or 6")
    if out["train"] < 4 or out["test"] < 1:
        raise ValueError("--fleet: train >= 4 and test >= 1 units")
    return out


def name(opts: dict[str, int]) -> str:
    return "simulator:" + ",".join(f"{k}={v}" for k, v in opts.items())


def fleet_settings(settings, readings, regimes: int):
    """`settings` addressing the turbofan, or (regimes > 1) a turbofan type whose per-regime
    statistics are fitted on the training `readings` (never on the test units)."""
    settings = settings.for_type("turbofan")
    if regimes == 1:
        return settings
    from features.asset_types import parse_asset_type
    from features.regimes import fit_regimes

    decl = {**settings.type.model_dump(mode="json"), "name": "turbofan_regimes",
            "regimes": {"settings": REGIME_STEPS}}
    fitted = fit_regimes(readings, parse_asset_type(decl, "benchmark --fleet"))
    decl = fitted.model_dump(mode="json")
    return settings.model_copy(update={"asset_type": "turbofan_regimes",
                                       "asset_types": {**settings.asset_types,
                                                       "turbofan_regimes": decl}})


def fleets(settings, opts: dict[str, int]):
    """(training frame, its readings, test rows with `rul`, settings of the fleet's type)."""
    from features.labels import rul_labels
    from features.sources.simulator import simulate_fleet, simulate_live
    from features.transforms import latest_window_features, window_features

    kw = {"fault_modes": opts["modes"], "regimes": opts["regimes"]}
    readings, events = simulate_fleet(opts["train"], opts["seed"], **kw)
    settings = fleet_settings(settings, readings, opts["regimes"])
    asset_type = settings.type
    feats = window_features(readings, asset_type, events)
    labels = rul_labels(readings, events)[["asset_id", "cycle", "rul"]]
    frame = feats.merge(labels, on=["asset_id", "cycle"], how="inner", validate="one_to_one")
    live, truth = simulate_live(opts["test"], opts["seed"] + 1000, **kw)
    last = latest_window_features(live, asset_type)
    test = last.merge(truth[["asset_id", "cycle", "rul"]], on=["asset_id", "cycle"],
                      how="inner", validate="one_to_one")
    return frame, readings, test, settings
