"""training — physics-informed RUL models, their artifacts and their registry entries.

    training frame (features + rul + asset_id + cycle)
        │
        ▼
    datamodule ──► module (LightningModule: network + physics losses) ──► train.fit
        (folds by asset,   (RULNet: features -> RUL >= 0, health in [0, 1])    │
         scaler, pairs)                                                      ▼
                                              artifact dir (weights.safetensors + model.json,
                                              conformal calibration) ──► registry (MLflow pyfunc,
                                              aliases challenger/champion) ──► serving

Nothing heavy is imported here: `import training` must stay free (the CLI imports it
at startup); torch / lightning / mlflow are imported inside the functions that need them.
"""
