"""ModelHolder: swaps when the alias moves, keeps the old model when a load fails."""

from __future__ import annotations

from dataclasses import dataclass

from serving.hot_swap import ModelHolder


@dataclass
class M:
    version: str


def holder(target, loads):
    state = {"target": target}

    def load():
        outcome = loads[state["target"]]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    h = ModelHolder(M("1"), where_is=lambda: state["target"], load=load, poll_s=0)
    return h, state


def test_swaps_when_the_alias_moves():
    swapped = []
    h, state = holder("1", {"2": M("2")})
    h._on_swap = swapped.append
    assert h.check_once() is False and h.current.version == "1"
    state["target"] = "2"
    assert h.check_once() is True and h.current.version == "2"
    assert swapped == [M("2")] and h.report()["swaps"] == 1


def test_a_version_that_fails_to_load_leaves_the_old_one_serving_and_is_reported():
    h, state = holder("3", {"3": RuntimeError("artifact sha256 mismatch"), "4": M("4")})
    assert h.check_once() is False
    assert h.current.version == "1"
    report = h.report()
    assert report["failed_version"] == "3" and "sha256" in report["last_error"]
    assert report["failures"] == 1
    assert h.check_once() is False and h.report()["failures"] == 1  # not retried
    state["target"] = "4"  # the alias moves on: a new attempt
    assert h.check_once() is True and h.current.version == "4"
    assert h.report()["last_error"] is None


def test_registry_outage_keeps_serving():
    def boom():
        raise ConnectionError("registry down")

    h = ModelHolder(M("1"), where_is=boom, load=lambda: M("2"), poll_s=0)
    assert h.check_once() is False and h.current.version == "1"
    assert "registry down" in h.report()["last_error"]


def test_an_empty_holder_reports_why_and_loads_when_the_alias_moves_to_a_good_version():
    """A champion refused at start: nothing served (no exception), the reason names the
    version and the error, the refused version is not retried, the next one is loaded."""
    loads = {"3": RuntimeError("artifact sha256 mismatch"), "4": M("4")}
    state = {"target": "3"}

    def load():
        outcome = loads[state["target"]]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    swapped, refused = [], []
    h = ModelHolder(None, where_is=lambda: state["target"], load=load, poll_s=0,
                    on_swap=swapped.append, on_refused=lambda v, e: refused.append(v))
    assert h.current is None and h.reason == "no version loaded yet"
    assert h.check_once() is False and h.current is None
    assert h.reason == "version 3 refused: RuntimeError: artifact sha256 mismatch"
    assert refused == ["3"]
    assert h.check_once() is False and refused == ["3"]  # not retried: one refusal, one log
    state["target"] = "4"
    assert h.check_once() is True and h.current == M("4") and h.reason is None
    assert swapped == [M("4")] and h.report()["swaps"] == 0  # a first load, not a swap


def test_a_retryable_refusal_is_tried_again_every_poll_and_counted_once():
    from pipelines.approvals import NotApproved

    outcomes = {"2": NotApproved("serving v2 has no approval in the audit")}
    h, state = holder("2", outcomes)
    assert h.check_once() is False and h.current.version == "1"
    assert h.check_once() is False  # retried (the approval may land just after the alias)
    assert h.report()["failures"] == 1 and h.report()["failed_version"] is None
    outcomes["2"] = M("2")  # its audit line arrived
    assert h.check_once() is True and h.current.version == "2"
