"""Third-party warnings that say nothing to a twinops user, silenced in one place.

Each entry names the library and why the warning is not ours to act on. Our own warnings
still show. Applied by `pipelines.runtime.prepare` and again right after Feast is first
imported (features.store.repo_config): Feast's modules call
`warnings.simplefilter("once", DeprecationWarning | RuntimeWarning)` when imported, which
puts those categories back in front of every filter set before.
"""

from __future__ import annotations

import logging
import warnings

#: (category, message regex, why it is silenced)
QUIET_WARNINGS: list[tuple[type[Warning], str, str]] = [
    (DeprecationWarning, "",
     "Python ignores deprecations outside __main__ by default; Feast, Lightning and BentoML "
     "switch them back on for every library (DVC's pygtrie, Evidently's numpy.core, "
     "Litestar inside BentoML): fixes for their maintainers, not for a twinops user"),
    (SyntaxWarning, r"invalid escape sequence",
     "regex literals in Evidently's own modules, reported when Python compiles them"),
    (UserWarning, r"(?s).*(Integer columns|Hint: Inferred schema).*",
     "MLflow's schema inference hints on the input example; the pyfunc signature is given"),
]

#: Loggers whose INFO/WARNING lines are library chatter: (logger, level, why).
QUIET_LOGGERS: list[tuple[str, int, str]] = [
    ("mlflow", logging.WARNING, "per-call INFO lines (run links, registry notices)"),
    ("mlflow.utils.environment", logging.ERROR,
     "'Failed to resolve installed pip version': uv environments have no pip; the model's "
     "conda.yaml is not how twinops installs it (the Bento and CI install from uv.lock)"),
    ("alembic", logging.WARNING, "database migration INFO lines of MLflow's and Prefect's stores"),
    ("dvc", logging.WARNING, "DVC's progress INFO lines"),
]


def quiet_library_noise() -> None:
    """Install the filters above at the front of the warning filters (idempotent)."""
    for category, message, _why in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    for name, level, _why in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(level)
