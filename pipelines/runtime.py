"""Process-wide runtime setup shared by the CLI and the flows.

    Settings ──► state_dir/ ──► PREFECT_HOME (ephemeral API db), BENTOML_HOME,
                                MLflow sqlite, Feast registry, reports, logs

Prefect reads PREFECT_HOME when it is first imported, so this must run before any
`import prefect`; that is why the CLI calls `prepare(settings)` first and imports
flows lazily. When PREFECT_API_URL is set, flows talk to that server instead of
the ephemeral in-process API.
"""

from __future__ import annotations

import os

from features.quiet import quiet_library_noise
from features.settings import Settings


def prepare(settings: Settings) -> Settings:
    """Create the state directory and point library homes into it.

    Environment variables already set by the user win (setdefault), so a shared
    Prefect server or BentoML home can still be used on purpose.
    """
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    os.environ["TWINOPS_STATE_DIR"] = str(settings.state_dir)
    os.environ["TWINOPS_DATA_DIR"] = str(settings.data_dir)
    os.environ.setdefault("PREFECT_HOME", str(settings.state_dir / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The ephemeral API is a subprocess with its own imports and migrations; Prefect's
    # default 20 s for its start leaves no room for a busy machine (the flow then fails with
    # "Timed out while attempting to connect to ephemeral Prefect API server"), so allow 120.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # Each flow's start, summary line and end state are the CLI's progress lines; the task
    # runs inside a flow would triple them.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL", "WARNING")
    os.environ.setdefault("BENTOML_HOME", str(settings.state_dir / "bentoml"))
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    # GitPython (used by MLflow for the git commit tag) must not warn when git is absent.
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")  # reaches subprocesses
    quiet_library_noise()
    return settings
