"""Settings every test process needs before Prefect is first imported."""

from __future__ import annotations

import os


def pytest_configure(config) -> None:
    """Give Prefect's ephemeral API server time to start on a busy machine.

    Prefect reads its settings once, at import, so this cannot wait for
    `pipelines.runtime.prepare` when an earlier test has imported Prefect already. Its own
    default (20 s) was overrun in a clean-clone CI run that shared 2 cores with a benchmark:
    every test of test_review.py errored with "Timed out while attempting to connect to
    ephemeral Prefect API server".
    """
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
