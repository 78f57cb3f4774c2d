"""MLflow registry round trip on a real sqlite tracking store in tmp_path.

register -> alias -> load_by_alias equals the in-memory predictor; a tampered artifact is
refused; the pyfunc model (models from code) predicts the same values.
"""

import mlflow
import numpy as np
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    from features.settings import get_settings
    from training import registry
    from training.synthetic import synthetic_frame
    from training.train import fit

    tmp = tmp_path_factory.mktemp("registry")
    s = get_settings(state_dir=tmp / "state")
    s.training.max_epochs = 4
    s.training.time_scale_copies = 0  # synthetic features have no raw readings to warp
    frame = synthetic_frame(n_assets=10, n_sensors=3, seed=5, t_min=90, t_max=130)
    result = fit(frame, s)
    run_id, version = registry.log_and_register(
        s, result, dvc_hash="deadbeef", feature_service="rul_model", extra_tags={"purpose": "test"}
    )
    return s, frame, result, run_id, version


def test_register_alias_and_load(registered):
    from training import registry
    from training.artifact import sha256_of_dir

    s, frame, result, run_id, version = registered
    cand = s.candidates_model_name  # training registers candidates; approvals copy them
    assert registry.get_alias_version(s, "champion") is None
    assert registry.list_versions(s) == []  # nothing in the serving model
    registry.set_alias(s, "challenger", version, model=cand)
    assert registry.get_alias_version(s, "challenger", model=cand) == version
    loaded = registry.load_by_alias(s, "challenger", model=cand)
    assert (loaded.name, loaded.version, loaded.run_id) == (cand, version, run_id)
    tags = loaded.tags
    assert tags["dvc_data_hash"] == "deadbeef" and tags["feature_service"] == "rul_model"
    assert tags["artifact_sha256"] == sha256_of_dir(result.artifact_dir)
    assert tags["purpose"] == "test" and tags["git_commit"] and tags["trained_by"]
    x = frame[result.feature_columns].iloc[:40]
    np.testing.assert_allclose(
        loaded.predictor.predict(x, horizon=30).to_numpy(),
        result.predictor.predict(x, horizon=30).to_numpy(),
    )
    run = mlflow.MlflowClient(s.tracking_uri).get_run(run_id)
    assert "val_rmse" in run.data.metrics and "physics_alpha" in run.data.metrics
    assert run.info.artifact_uri.startswith(s.artifact_root.as_uri())
    with pytest.raises(LookupError):
        registry.load_by_alias(s, "nonexistent")


def test_reads_and_runs_go_through_the_registry(registered):
    from training import registry

    s, _, result, run_id, version = registered
    cand = s.candidates_model_name
    registry.tag_version(s, version, {"trigger.monitor_run": "r1"}, model=cand)
    assert [v.version for v in registry.versions_tagged(s, "trigger.monitor_run", model=cand)
            ] == [version]
    assert registry.versions_tagged(s, "no.such.tag", model=cand) == []
    (listed,) = registry.list_versions(s, model=cand)
    assert (listed.version, listed.run_id) == (version, run_id)
    assert listed.created.tzinfo is not None and listed.tags["purpose"] == "test"
    assert registry.latest_version(s, model=cand) == version
    assert registry.version_tags(s, version, model=cand)["trigger.monitor_run"] == "r1"
    assert registry.version_run_user(s, version, model=cand)  # the run's recorded user
    assert registry.run_metrics(s, run_id)["val_rmse"] == pytest.approx(result.metrics["val_rmse"])
    assert sorted(registry.load_run_dict(s, run_id, "split.json")["val_assets"]) == sorted(
        result.val_assets)

    report = s.state_dir / "check.json"
    report.write_text("{}")
    check = registry.log_run(s, f"{s.experiment_name}-monitoring", "drift-test",
                             metrics={"drift": 1.0}, tags={"stage": "cycle"},
                             artifacts={"drift": [report]})
    run = mlflow.MlflowClient(s.tracking_uri).get_run(check)
    assert run.data.metrics["drift"] == 1.0 and run.data.tags["stage"] == "cycle"
    assert run.info.status == "FINISHED" and run.info.artifact_uri.startswith(
        s.artifact_root.as_uri())
    assert registry.load_run_dict(s, check, "drift/check.json") == {}


def test_tampered_artifact_is_refused(registered):
    from training import registry

    s, _, _, _, version = registered
    served = registry.copy_version(s, version, source=s.candidates_model_name)
    registry.set_alias(s, "champion", served)
    assert registry.version_tags(s, served)["artifact_sha256"]  # the copy keeps the tags
    weights = list(s.artifact_root.rglob("weights.safetensors"))
    assert len(weights) == 1
    original = weights[0].read_bytes()
    data = bytearray(original)
    data[-1] ^= 0xFF
    weights[0].write_bytes(bytes(data))
    try:
        with pytest.raises(registry.TamperedArtifactError):
            registry.load_by_alias(s, "champion")
    finally:
        weights[0].write_bytes(original)
    assert registry.load_by_alias(s, "champion").version == served


def test_pyfunc_model_predicts_the_same(registered):
    s, frame, result, _, version = registered
    mlflow.set_tracking_uri(s.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{s.model_name}/{version}")
    x = frame[result.feature_columns].iloc[:25]
    got = model.predict(x)
    want = result.predictor.predict(x, horizon=30)
    assert list(got.columns) == ["rul", "rul_lower", "rul_upper", "p_fail", "health"]
    np.testing.assert_allclose(got.to_numpy(), want[list(got.columns)].to_numpy(), rtol=1e-6)
    got60 = model.predict(x, params={"horizon": 60})
    assert (got60["p_fail"].to_numpy() >= got["p_fail"].to_numpy()).all()
