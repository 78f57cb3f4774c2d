"""The governor refuses a malformed request with the field's name, and a caller without
credentials with a 401, before any review rule runs (pipelines.governor)."""

from __future__ import annotations

import base64

import pytest

from pipelines.governor import GovernorError, _arguments, _caller


@pytest.mark.parametrize(("action", "payload", "field"), [
    ("approve", [], "body"),
    ("approve", {}, "version"),
    ("approve", {"version": 3}, "version"),
    ("approve", {"version": "3", "comment": 1}, "comment"),
    ("approve", {"version": "3", "approver": "me"}, "approver"),
    ("propose", {"version": "3", "decide": "yes"}, "decide"),
])
def test_a_malformed_body_is_a_422_naming_the_field(action, payload, field):
    with pytest.raises(GovernorError) as caught:
        _arguments(action, payload)
    assert caught.value.status == 422 and str(caught.value).startswith(f"{field}:")


def test_a_well_formed_body_keeps_its_fields():
    assert _arguments("approve", {"version": "3", "comment": "ok", "asset_type": "pump"}) == {
        "version": "3", "comment": "ok"}
    assert _arguments("rollback", {}) == {}


@pytest.mark.parametrize("header", [None, "Bearer abc", "Basic !!!not-base64"])
def test_no_or_unreadable_credentials_are_a_401(header):
    with pytest.raises(GovernorError) as caught:
        _caller(header, "http://127.0.0.1:1")
    assert caught.value.status == 401


def test_credentials_the_tracking_server_cannot_check_are_a_503_not_a_401():
    header = "Basic " + base64.b64encode(b"reviewer:pw").decode()
    with pytest.raises(GovernorError) as caught:  # nothing listens on port 1
        _caller(header, "http://127.0.0.1:1")
    assert caught.value.status == 503 and "did not answer" in str(caught.value)
