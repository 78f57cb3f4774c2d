"""Request validation: bad input is a ValidationError naming the field (BentoML -> 400)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from serving.schemas import HARD_MAX_BATCH, PredictRequest, parse_request


def fields_of(exc: ValidationError) -> set[str]:
    return {str(e["loc"][0]) for e in exc.errors()}


def test_valid_request():
    req = parse_request({"asset_ids": ["a", "b"], "horizon": 10}, max_batch=5)
    assert req.asset_ids == ["a", "b"] and req.horizon == 10
    assert parse_request({"asset_ids": ["a"]}, max_batch=5).horizon is None


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"asset_ids": []}, "asset_ids"),  # empty list
        ({}, "asset_ids"),  # missing
        ({"asset_ids": "a1"}, "asset_ids"),  # not a list
        ({"asset_ids": [1, 2]}, "asset_ids"),  # wrong item type (no silent str())
        ({"asset_ids": [""]}, "asset_ids"),  # empty id
        ({"asset_ids": ["a"], "horizon": -5}, "horizon"),
        ({"asset_ids": ["a"], "horizon": 0}, "horizon"),
        ({"asset_ids": ["a"], "horizon": "ten"}, "horizon"),
        ({"asset_ids": ["a"], "horizon": float("inf")}, "horizon"),
        ({"asset_ids": ["a"], "asset": "typo"}, "asset"),  # unknown field
    ],
)
def test_invalid_requests_name_the_field(payload, field):
    with pytest.raises(ValidationError) as info:
        parse_request(payload, max_batch=5)
    assert field in fields_of(info.value)


def test_configured_batch_limit():
    with pytest.raises(ValidationError) as info:
        parse_request({"asset_ids": [f"a{i}" for i in range(6)]}, max_batch=5)
    assert fields_of(info.value) == {"asset_ids"}
    assert "at most 5" in str(info.value)
    assert len(parse_request({"asset_ids": ["a"] * 5}, max_batch=5).asset_ids) == 5


def test_static_model_has_a_hard_ceiling():
    # BentoML validates with the static model (no context) before our code runs.
    with pytest.raises(ValidationError):
        PredictRequest.model_validate({"asset_ids": ["a"] * (HARD_MAX_BATCH + 1)})
    assert PredictRequest.model_validate({"asset_ids": ["a"] * 300}).horizon is None


def test_parse_request_accepts_a_model():
    req = PredictRequest(asset_ids=["a", "b", "c"])
    with pytest.raises(ValidationError):
        parse_request(req, max_batch=2)
