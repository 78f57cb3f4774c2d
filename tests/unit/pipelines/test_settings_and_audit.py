"""Settings precedence (profiles included) and the audit log."""

from __future__ import annotations

import pytest

from features.settings import get_settings
from pipelines import audit


def test_yaml_then_env_precedence(tmp_path, monkeypatch):
    cfg = tmp_path / "twinops.yaml"
    cfg.write_text("asset_type: pump\ntraining:\n  max_epochs: 3\nstate_dir: %s\n"
                   % (tmp_path / "s"))
    monkeypatch.setenv("TWINOPS_CONFIG", str(cfg))
    monkeypatch.delenv("TWINOPS_STATE_DIR", raising=False)
    settings = get_settings()
    assert settings.asset_type == "pump" and settings.training.max_epochs == 3
    assert settings.model_name == "twinops-rul-pump"
    assert settings.tracking_uri == f"sqlite:///{tmp_path / 's' / 'mlflow.db'}"
    monkeypatch.setenv("TWINOPS_TRAINING__MAX_EPOCHS", "9")
    assert get_settings().training.max_epochs == 9


def test_state_dirs_do_not_mix(tmp_path):
    a = get_settings(state_dir=tmp_path / "a")
    b = get_settings(state_dir=tmp_path / "b")
    assert a.tracking_uri != b.tracking_uri
    assert a.prediction_log_path.parent != b.prediction_log_path.parent


def test_audit_is_append_only(tmp_path):
    settings = get_settings(state_dir=tmp_path)
    audit.record(settings, action="gate", version="1", outcome="passed", reasons=["ok"])
    audit.record(settings, action="promote", version="1", outcome="champion", actor="alice")
    rows = audit.history(settings)
    assert [r["action"] for r in rows] == ["gate", "promote"]
    assert rows[1]["actor"] == "alice" and rows[0]["reasons"] == ["ok"]


def test_a_profile_sits_above_the_defaults_and_below_everything_set(monkeypatch, tmp_path):
    from pydantic import ValidationError

    from features.settings import PROFILES, get_settings

    monkeypatch.setenv("TWINOPS_CONFIG", str(tmp_path / "twinops.yaml"))
    monkeypatch.delenv("TWINOPS_PROFILE", raising=False)
    full = get_settings()
    assert full.profile is None and full.training.n_members == 10
    tiny = get_settings(profile="tiny")
    assert tiny.training.n_members == PROFILES["tiny"]["training"]["n_members"] == 2
    assert tiny.training.learning_rate == full.training.learning_rate  # untouched: default
    monkeypatch.setenv("TWINOPS_PROFILE", "demo")
    monkeypatch.setenv("TWINOPS_TRAINING__MAX_EPOCHS", "3")  # env beats the profile
    (tmp_path / "twinops.yaml").write_text("training:\n  n_members: 5\n")  # so does YAML
    demo = get_settings()
    assert demo.profile == "demo" and demo.training.max_epochs == 3
    assert demo.training.n_members == 5 and demo.training.select_features is False
    monkeypatch.setenv("TWINOPS_PROFILE", "nope")
    with pytest.raises(ValidationError, match="profile"):
        get_settings()


def test_training_overrides_apply_to_their_asset_type_only(tmp_path):
    from pydantic import ValidationError

    settings = get_settings(state_dir=tmp_path, training={
        "max_epochs": 6, "by_type": {"pump": {"max_epochs": 30, "rul_cap": 10}}})
    pump = settings.for_type("pump")
    assert pump.training_settings().max_epochs == 30 and pump.rul_cap == 10.0
    assert pump.training_settings().n_folds == settings.training.n_folds  # the rest inherited
    turbofan = settings.for_type("turbofan")
    assert turbofan.training_settings().max_epochs == 6 and turbofan.rul_cap == 125.0
    with pytest.raises(ValidationError, match="by_type.pump: not a training setting: epochs"):
        get_settings(state_dir=tmp_path, training={"by_type": {"pump": {"epochs": 3}}})
    with pytest.raises(ValidationError, match="n_members"):
        get_settings(state_dir=tmp_path, training={"by_type": {"pump": {"n_members": 1}}})
