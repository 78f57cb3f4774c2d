"""`twinops benchmark rul` end to end on a tiny configuration (real data, real training).

Checks the wiring and the output contract (JSON keys, table), not the figures: those are
measured by the full benchmark (docs/benchmarks.md). The one C-MAPSS test of the suite.
"""

import json
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cmapss"
NEEDED = ("train_FD001.txt", "test_FD001.txt", "RUL_FD001.txt")

pytestmark = pytest.mark.skipif(
    not all((DATA / f).exists() for f in NEEDED),
    reason=f"C-MAPSS FD001 files not found in {DATA} (NASA data set, not shipped with the repo)",
)


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
