"""MLflow "models from code" entry point: the pyfunc face of an RUL artifact.

    mlflow.pyfunc.log_model(python_model=<this file>, artifacts={"model_dir": dir},
                            code_paths=[training/])
        │
        ▼  mlflow.pyfunc.load_model / `mlflow models serve --env-manager local`
    RULPyfuncModel.load_context ──► training.artifact.load_predictor(artifacts["model_dir"])
    RULPyfuncModel.predict(DataFrame of feature columns)
        ──► DataFrame rul, rul_lower, rul_upper, p_fail, health

Why models-from-code: MLflow executes this file instead of unpickling a cloudpickled
object, so loading the registered model runs reviewed source, never pickled bytes.
The `training` package travels with the model as a code path, which is how
`import training.artifact` works in a fresh interpreter.

p_fail uses a fixed horizon (the model_config key "horizon": the asset type's, in its RUL
unit) because a pyfunc signature has one input frame; twinops serving calls the predictor
directly and can pass any horizon.
"""

from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

DEFAULT_HORIZON = 30
PYFUNC_OUTPUT_COLUMNS = ["rul", "rul_lower", "rul_upper", "p_fail", "health"]


class RULPyfuncModel(PythonModel):
    def load_context(self, context) -> None:
        from training.artifact import load_predictor

        self.predictor = load_predictor(context.artifacts["model_dir"])
        config = getattr(context, "model_config", None) or {}
        self.horizon = float(config.get("horizon", DEFAULT_HORIZON))

    # Type hints, not strings (no `from __future__ import annotations` here): MLflow reads
    # them at log time, and a DataFrame in and out is what the signature already says.
    def predict(self, context, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input, columns=self.predictor.feature_columns)
        horizon = float((params or {}).get("horizon", self.horizon))
        out = self.predictor.predict(model_input, horizon=horizon)
        return out[PYFUNC_OUTPUT_COLUMNS]


mlflow.models.set_model(RULPyfuncModel())
