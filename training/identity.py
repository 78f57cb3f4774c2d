"""Who is acting: the authenticated MLflow user, or the local user (unauthenticated).

    MLflow tracking server with basic-auth ─► MLFLOW_TRACKING_USERNAME (verified by the server
                                              on every call: a wrong password is a 401 there)
    embedded sqlite MLflow (no auth)       ─► getpass.getuser(), marked unauthenticated

The identity decides four-eyes (a reviewer is not the trainer) and is written
on every record. With basic-auth the server also enforces the permission: a
user without EDIT on the registered model gets 403 when moving an alias.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass

from features.settings import Settings


@dataclass(frozen=True)
class Identity:
    name: str
    authenticated: bool

    def label(self) -> str:
        return self.name if self.authenticated else f"{self.name} (unauthenticated)"


def local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "unknown"


def current_identity(settings: Settings) -> Identity:
    """The acting user for `settings`' tracking URI."""
    username = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if settings.tracking_uri.startswith(("http://", "https://")) and username:
        return Identity(username, authenticated=True)
    return Identity(local_user(), authenticated=False)
