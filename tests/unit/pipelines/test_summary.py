"""`twinops run`'s closing summary says who serves after the run."""

from pipelines.summary import _champion_line


def _summary(promoted=None, champion=None):
    return {"train": {"version": "3"}, "promoted": promoted, "champion": champion}


def test_a_promoted_candidate_is_the_champion():
    line = _champion_line(_summary({"version": "3", "approved_by": "demo"}, "3"))
    assert line.startswith("v3") and "promoted" in line and "demo" in line


def test_a_refused_candidate_leaves_the_old_champion_named():
    line = _champion_line(_summary(None, "2"))
    assert line.startswith("v2") and "kept" in line and "v3 was not promoted" in line


def test_no_champion_at_all_says_none():
    assert _champion_line(_summary(None, None)).startswith("none")
