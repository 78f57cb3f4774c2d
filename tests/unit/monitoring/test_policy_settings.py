"""The retrain policy lives in settings: every trigger settable in twinops.yaml and TWINOPS_*."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from features.settings import MonitoringSettings, get_settings
from monitoring.policy import RetrainPolicy, decide_retrain

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    """No twinops.yaml and no TWINOPS_* variable from the machine running the tests."""
    import os

    for key in [k for k in os.environ if k.startswith("TWINOPS_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_one_default_per_trigger(clean_env):
    assert get_settings().monitoring.retrain == RetrainPolicy()
    # no knob of the policy is also a knob of MonitoringSettings with its own default
    assert not set(MonitoringSettings.model_fields) & set(RetrainPolicy.model_fields)


def test_every_trigger_is_settable_from_the_environment(clean_env, monkeypatch):
    env = {
        "MAX_DRIFT_SHARE": "0.3", "MIN_ROWS": "12", "MIN_HOURS_BETWEEN_RETRAINS": "6",
        "MIN_NEW_ROWS": "100", "CRITICAL_COLUMNS": '["sensor_9_mean"]',
        "MAX_UNMATCHED_SHARE": "0.2", "MAX_HOURS_WITHOUT_RETRAIN": "720",
        "TRIGGER_ON_VERDICT": "false", "MAX_REALIZED_RMSE": "30",
        "MAX_RMSE_RATIO": "2", "MIN_FEEDBACK_PREDICTIONS": "50",
    }
    assert set(env) == {f.upper() for f in RetrainPolicy.model_fields}  # all of them
    for field, value in env.items():
        monkeypatch.setenv(f"TWINOPS_MONITORING__RETRAIN__{field}", value)
    policy = get_settings().monitoring.retrain
    assert policy == RetrainPolicy(
        max_drift_share=0.3, min_rows=12, min_hours_between_retrains=6, min_new_rows=100,
        critical_columns=("sensor_9_mean",), max_unmatched_share=0.2,
        max_hours_without_retrain=720, trigger_on_verdict=False, max_realized_rmse=30,
        max_rmse_ratio=2, min_feedback_predictions=50)


def test_a_trigger_set_in_the_environment_decides(clean_env, monkeypatch):
    verdict = {"drift": True, "share": 0.1, "n_current_assets": 40,
               "drifted_columns": ["sensor_9_mean"], "columns": {}}
    monkeypatch.setenv("TWINOPS_MONITORING__RETRAIN__TRIGGER_ON_VERDICT", "false")
    assert not decide_retrain(verdict, get_settings().monitoring.retrain, now=NOW).retrain
    monkeypatch.setenv("TWINOPS_MONITORING__RETRAIN__CRITICAL_COLUMNS", '["sensor_9_mean"]')
    d = decide_retrain(verdict, get_settings().monitoring.retrain, now=NOW)
    assert d.retrain and "critical column(s) drifted: sensor_9_mean" in d.reasons


def test_the_policy_is_read_from_twinops_yaml(clean_env):
    (clean_env / "twinops.yaml").write_text(
        "monitoring:\n"
        "  retrain:\n"
        "    max_unmatched_share: 0.25\n"
        "    max_hours_without_retrain: 168\n"
        "    max_rmse_ratio: null\n"
        "    critical_columns: [sensor_3_mean, sensor_4_mean]\n")
    policy = get_settings().monitoring.retrain
    assert policy.max_unmatched_share == 0.25 and policy.max_hours_without_retrain == 168
    assert policy.max_rmse_ratio is None
    assert policy.critical_columns == ("sensor_3_mean", "sensor_4_mean")


def test_a_misspelt_trigger_is_an_error(clean_env):
    (clean_env / "twinops.yaml").write_text("monitoring:\n  retrain:\n    min_row: 5\n")
    with pytest.raises(ValidationError, match="min_row"):
        get_settings()


def test_a_trigger_outside_monitoring_retrain_is_an_error(clean_env, monkeypatch):
    monkeypatch.setenv("TWINOPS_MONITORING__MIN_ROWS", "10")
    with pytest.raises(ValidationError, match="min_rows"):
        get_settings()
