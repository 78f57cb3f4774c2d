"""The BentoML service: the champion model behind HTTP.

    TWINOPS_* env ─► Settings ─┬─► training.registry.load_by_alias("champion") ─► model
                               ├─► features.store.get_store ─► online features (Feast)
                               └─► PredictionLog(settings.prediction_log_path)
    POST /predict {"asset_ids": [...], "horizon": n?} ─► serving.predict.predict_assets
    GET  /healthz ─► {"status": "ok", "model_version": ...}   (serving.health middleware)

Run (from the repository root, or anywhere with --working-dir; the import
string `serving.service:TwinService` is resolved against the working dir):

    export TWINOPS_STATE_DIR=/abs/state          # explicit: the default is <cwd>/.twinops
    export BENTOML_HOME=$TWINOPS_STATE_DIR/bentoml  # else BentoML writes to ~/bentoml
    bentoml serve serving.service:TwinService --working-dir /path/to/repo --port 3000
    # more worker processes (they share the prediction log safely):
    BENTOML_CONFIG_OPTIONS='services.twinops.workers=2' bentoml serve ...

Readiness: BentoML's GET /readyz turns 200 once the worker has built the
service (model loaded); GET /livez stays BentoML's plain liveness probe.

Everything heavy (settings, MLflow, Feast, torch through the predictor)
happens in `__init__`, once per worker process, never at import: importing
this module only imports bentoml and the pydantic schemas. The class is
deliberately thin; behaviour lives in serving.predict (tested with fakes).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import bentoml

from serving.health import HealthzMiddleware
from serving.schemas import PredictRequest, PredictResponse

# A child of "bentoml" so the message goes through BentoML's configured handlers.
logger = logging.getLogger("bentoml.twinops.serving")


@bentoml.service(
    # A plain name: BENTOML_CONFIG_OPTIONS keys (services.twinops.workers=2) cannot hold "-".
    name="twinops",
    # The per-request access log is noise at fleet scale; errors are still logged.
    logging={"access": {"enabled": False}},
    traffic={"timeout": 60},
)
class TwinService:
    def __init__(self) -> None:
        from features.settings import get_settings
        from features.store import get_store, online_features
        from features.transforms import FEATURE_COLUMNS
        from serving.predict import ServedModel, check_feature_compatibility
        from serving.prediction_log import PredictionLog
        from training.registry import load_by_alias

        self.settings = get_settings()
        self.model = ServedModel.from_loaded(load_by_alias(self.settings, "champion"))
        check_feature_compatibility(self.model, FEATURE_COLUMNS)
        store = get_store(self.settings)
        self._fetch_features = functools.partial(online_features, store)
        self.prediction_log = PredictionLog(self.settings.prediction_log_path)
        logger.info(
            "serving %s version %s (state dir %s)",
            self.model.name,
            self.model.version,
            self.settings.state_dir,
        )

    @bentoml.api(route="/predict", input_spec=PredictRequest)
    def predict(self, **params: Any) -> PredictResponse:
        from serving.predict import predict_assets
        from serving.schemas import parse_request

        # Re-validate with the configured batch limit; a ValidationError here
        # is answered 400 by BentoML, like the static validation before it.
        request = parse_request(params, max_batch=self.settings.serving.max_batch)
        return predict_assets(
            request,
            model=self.model,
            fetch_features=self._fetch_features,
            default_horizon=self.settings.serving.horizon,
            log=self.prediction_log,
        )

    def health(self) -> dict[str, Any]:
        """Body of GET /healthz (see serving.health)."""
        return {
            "status": "ok",
            "model_name": self.model.name,
            "model_version": self.model.version,
        }


TwinService.add_asgi_middleware(HealthzMiddleware)
