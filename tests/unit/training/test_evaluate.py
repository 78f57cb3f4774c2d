from features.settings import get_settings
from training.evaluate import passes_gate


def test_gate_against_constant_and_dict(tmp_path):
    s = get_settings(state_dir=tmp_path)
    ok, reasons = passes_gate({"rmse": 10.0, "coverage": 0.9}, 40.0, s)
    assert ok and len(reasons) == 2
    ok, reasons = passes_gate({"val_rmse": 39.0}, {"rmse": 40.0}, s)
    assert not ok and "rmse" in reasons[0]
    ok, reasons = passes_gate({"rmse": 10.0, "coverage": 0.5}, 40.0, s)
    assert ok and reasons[-1].startswith("warning") and "miscalibrated" in reasons[-1]
    ok, _ = passes_gate({"rmse": float("nan")}, 40.0, s)
    assert not ok
