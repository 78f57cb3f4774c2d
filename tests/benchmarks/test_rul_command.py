"""`twinops benchmark rul` end to end on a tiny configuration (real data, real training).

Checks the wiring and the output contract (JSON keys, table), not the figures: those are
measured by the full benchmark (docs/benchmarks.md). The one C-MAPSS test of the suite, and
the pump benchmark (`--asset-type pump`: ProgPy simulator, RUL in hours) on a few pumps.
"""

import json
import math
import os
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cmapss"
NEEDED = ("train_FD001.txt", "test_FD001.txt", "RUL_FD001.txt")

needs_cmapss = pytest.mark.skipif(
    not all((DATA / f).exists() for f in NEEDED),
    reason=f"C-MAPSS FD001 files not found in {DATA} (NASA data set, not shipped with the repo)",
)
#: The tests' shared ProgPy cache (as tests/integration/conftest.py): a pump is simulated once
#: per machine, not once per run (seconds of CPU each).
SIMULATOR_CACHE = Path(os.environ.get("TMPDIR", "/tmp")) / "twinops-test-simulator-cache"


@needs_cmapss
def test_benchmark_rul_command_writes_json_and_table(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from pipelines.cli import app

    monkeypatch.setenv("TWINOPS_PROFILE", "tiny")
    out = tmp_path / "rul.json"
    args = ["--state-dir", str(tmp_path / "state"), "benchmark", "rul", "--data-dir", str(DATA),
            "--subset", "FD001", "--seeds", "1", "--train-fraction", "0.1", "--max-epochs", "3",
            "--out", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    result = json.loads(out.read_text())
    for model in ("pinn", "baseline"):
        d = result[model]
        for key in ("rmse_mean", "rmse_std", "score_mean", "coverage", "width_mean",
                    "train_seconds_mean", "mae_mean"):
            assert key in d, (model, key)
        # a trained model on real data: finite, positive error; a coverage that is a share
        assert 0 < d["rmse_mean"] < 200 and d["score_mean"] > 0
        assert 0.0 <= d["coverage"] <= 1.0 and d["width_mean"] > 0
    assert result["config"]["n_test_units"] == 100
    assert result["config"]["n_train_units"] == 10
    assert result["config"]["training"]["n_members"] == 2
    header, *_ = [ln for ln in res.output.splitlines() if ln.startswith("model ")]
    assert "rmse" in header and "coverage" in header
    assert any(ln.startswith("pinn ") for ln in res.output.splitlines())
    assert any(ln.startswith("baseline ") for ln in res.output.splitlines())


def test_benchmark_rul_pump_command_three_models_in_hours(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from pipelines.cli import app

    monkeypatch.setenv("TWINOPS_PROFILE", "tiny")
    out = tmp_path / "rul-pump.json"
    args = ["--state-dir", str(tmp_path / "state"), "benchmark", "rul", "--asset-type", "pump",
            "--seeds", "1", "--n-train", "4", "--n-test", "2", "--max-epochs", "2",
            "--cache-dir", str(SIMULATOR_CACHE), "--out", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    result = json.loads(out.read_text())  # strict JSON: no NaN
    cfg = result["config"]
    assert cfg["rul_unit"] == "hours" and cfg["asset_type"] == "pump"
    assert cfg["n_train_units"] == 4 and cfg["n_test_units"] == 2
    assert cfg["training"]["n_members"] == 2 and cfg["training"]["max_epochs"] == 2
    # pump lives are hours (6-30 h): a true RUL in cycles (5-min readings) would be 12x larger
    assert 0 < cfg["test_rul_hours"]["max"] < 40 and 4 < cfg["train_life_hours"]["mean"] < 30
    for model in ("pinn", "baseline", "naive"):
        d = result[model]
        assert math.isfinite(d["rmse_mean"]) and 0 < d["rmse_mean"] < 40, (model, d)
        assert math.isfinite(d["mae_mean"]) and d["mae_mean"] <= d["rmse_mean"] + 1e-9
        assert d["rmse_std"] == 0.0  # one seed
        assert "score_mean" not in d  # PHM08 is a C-MAPSS (cycles) score
    for model in ("pinn", "baseline"):
        assert 0.0 <= result[model]["coverage"] <= 1.0 and result[model]["width_mean"] > 0
    assert result["naive"]["coverage"] is None and result["naive"]["width_mean"] is None
    # the naive figure, recomputed from the same (cached) fleets: the protocol in hours
    import numpy as np

    from features.sources.pump import simulate_pump_fleet, simulate_pump_live

    _, events = simulate_pump_fleet(4, seed=7, cache_dir=SIMULATOR_CACHE)
    _, truth = simulate_pump_live(2, seed=7, cache_dir=SIMULATOR_CACHE)
    hours = 300 / 3600  # one reading every 5 minutes
    naive = np.clip(events["cycle"].mean() * hours - truth["cycle"] * hours, 0, None)
    expected = float(np.sqrt(np.mean((naive - truth["rul"]) ** 2)))
    assert result["naive"]["rmse_mean"] == pytest.approx(expected)
    assert result["machine"]["cpus"] >= 1 and result["date"]
    assert result["command"].startswith("twinops benchmark rul --asset-type pump --seeds 1")
    lines = res.output.splitlines()
    header, *_ = [ln for ln in lines if ln.startswith("model ")]
    assert "rmse h" in header and "coverage" in header and "score" not in header
    for model in ("pinn", "baseline", "shipped"):
        assert any(ln.startswith(f"{model} ") and "n/a" not in ln for ln in lines)
    naive, *_ = [ln for ln in lines if ln.startswith("naive ")]
    # no interval (coverage, width, missed units) and no validation (val rmse, gap)
    assert naive.count("n/a") == 5
    assert "val rmse (cuts)" in header and "test - val" in header
    shipped = result["shipped"]["chosen"][0]
    assert result["shipped"]["rmse_mean"] == result[shipped]["rmse_mean"]
    other = {"pinn": "baseline", "baseline": "pinn"}[shipped]
    assert result[shipped]["val_cut_rmse_mean"] <= result[other]["val_cut_rmse_mean"]


def test_benchmark_rul_on_a_simulated_two_mode_six_regime_fleet(tmp_path, monkeypatch):
    """`--fleet simulator:` runs the C-MAPSS protocol on a fleet the models never saw: two
    fault modes, six operating conditions normalised per regime with statistics of the
    training units, and prints the validation-test gap."""
    from typer.testing import CliRunner

    from pipelines.cli import app

    monkeypatch.setenv("TWINOPS_PROFILE", "tiny")
    out = tmp_path / "sim.json"
    args = ["--state-dir", str(tmp_path / "state"), "benchmark", "rul", "--fleet",
            "simulator:modes=2,regimes=6,train=8,test=6", "--seeds", "1", "--max-epochs", "2",
            "--out", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    result = json.loads(out.read_text())
    assert result["config"]["subset"] == "simulator:modes=2,regimes=6,train=8,test=6,seed=7"
    assert (result["config"]["n_train_units"], result["config"]["n_test_units"]) == (8, 6)
    for model in ("pinn", "baseline", "shipped"):
        d = result[model]
        assert 0 < d["rmse_mean"] < 400 and d["val_cut_rmse_mean"] > 0
        assert d["rmse_gap_mean"] == pytest.approx(d["rmse_mean"] - d["val_cut_rmse_mean"])
        assert set(d["coverage_by_band"]) == {"coverage_0-25", "coverage_25-50",
                                              "coverage_50-125", "coverage_125-inf"}
    assert "shipped per seed:" in res.output and "test - val" in res.output
    bad = CliRunner().invoke(app, ["benchmark", "rul", "--fleet", "simulator:modes=3"])
    assert bad.exit_code == 2 and "--fleet" in bad.output
