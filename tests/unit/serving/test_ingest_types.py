"""POST /ingest's typing of rows: a row of an undeclared asset type is a 400 naming the
field and the row, before anything is stored."""

from __future__ import annotations

import pytest

from features.settings import get_settings
from serving.errors import ApiError
from serving.ingest import ingest_readings


def test_an_undeclared_asset_type_is_a_400_naming_the_row(tmp_path):
    settings = get_settings(state_dir=tmp_path / "s", data_dir=tmp_path / "d")
    rows = [{"asset_id": "a", "asset_type": "turbofan"}, {"asset_id": "b", "asset_type": "ship"}]
    with pytest.raises(ApiError) as err:
        ingest_readings(settings, rows, push=lambda *_: None)
    assert err.value.status == 400 and "'ship'" in err.value.message
    assert err.value.detail == [{"loc": ["readings", 1, "asset_type"],
                                 "msg": "unknown asset type"}]
    assert not (tmp_path / "d" / "raw" / "turbofan").exists()  # nothing stored
