"""What the audit chain lets serve and approve (pipelines.approvals), on hand-built entries."""

from __future__ import annotations

import pytest

from pipelines.approvals import (
    NotApproved,
    champion_record,
    pending_proposal,
    rollback_target,
    status,
)


def propose(candidate, outcome="awaiting_approval"):
    return {"action": "propose", "candidate_version": candidate, "outcome": outcome,
            "reasons": ["rmse vs champion"] if outcome == "rejected" else [],
            "actor": "service", "at": "t"}


def approve(candidate, serving, previous=None, sha="abc", outcome="champion"):
    return {"action": "approve", "candidate_version": candidate, "serving_version": serving,
            "previous": previous, "outcome": outcome, "artifact_sha256": sha,
            "actor": "reviewer", "at": "t"}


def test_only_a_passing_undecided_proposal_can_be_approved():
    with pytest.raises(NotApproved, match="no proposal"):
        pending_proposal([], "3")
    with pytest.raises(NotApproved, match="gates refused"):
        pending_proposal([propose("3", "rejected")], "3")
    assert pending_proposal([propose("3")], "3")["outcome"] == "awaiting_approval"
    # a refused approval attempt (four-eyes) decides nothing
    assert pending_proposal([propose("3"), approve("3", None, outcome="refused")], "3")
    with pytest.raises(NotApproved, match="already decided"):
        pending_proposal([propose("3"), approve("3", "1")], "3")
    rejected = {"action": "reject", "candidate_version": "3", "outcome": "rejected",
                "actor": "reviewer", "at": "t"}
    with pytest.raises(NotApproved, match="already decided"):
        pending_proposal([propose("3"), rejected], "3")
    # proposed again after a rejection at the gates: the new verdict counts
    assert pending_proposal([propose("3", "rejected"), propose("3")], "3")


def test_a_served_version_needs_a_standing_approval_of_its_artifact():
    entries = [propose("1"), approve("1", "1", sha="s1"), propose("2"),
               approve("2", "2", previous="1", sha="s2")]
    assert champion_record(entries, "2", "s2")["candidate_version"] == "2"
    assert champion_record(entries, "1", "s1")  # replaced, not rolled back: still approved
    with pytest.raises(NotApproved, match="no approval"):
        champion_record(entries, "3")
    with pytest.raises(NotApproved, match="artifact sha256"):
        champion_record(entries, "2", "tampered")
    rolled = [*entries, {"action": "rollback", "serving_version": "1", "rollback_from": "2",
                         "outcome": "champion", "artifact_sha256": "s1", "at": "t2"}]
    with pytest.raises(NotApproved, match="rolled back"):
        champion_record(rolled, "2")
    assert champion_record(rolled, "1", "s1")["action"] == "rollback"


def test_rollback_follows_the_approvals_never_a_tag():
    entries = [approve("1", "1"), approve("2", "2", previous="1"),
               approve("5", "3", previous="2")]
    assert rollback_target(entries, "3") == "2"
    assert rollback_target(entries, "2") == "1"  # a second rollback goes one further back
    with pytest.raises(NotApproved, match="nothing to roll back"):
        rollback_target(entries, "1")
    with pytest.raises(NotApproved, match="never approved"):
        rollback_target([approve("2", "2", previous="9")], "2")


def test_status_follows_the_last_decision_and_a_rollback():
    entries = [propose("1"), approve("1", "1"), propose("2", "rejected"), propose("3"),
               approve("3", None, outcome="refused")]
    assert [status(entries, c) for c in "1234"] == [
        "approved", "rejected", "awaiting_approval", "not proposed"]
    entries += [approve("3", "2", previous="1"),
                {"action": "rollback", "candidate_version": "1", "serving_version": "1",
                 "rollback_from": "2", "outcome": "champion", "at": "t2"}]
    assert status(entries, "3") == "rolled_back" and status(entries, "1") == "approved"
