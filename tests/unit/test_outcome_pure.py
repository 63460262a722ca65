"""Pure parts of "cancellation is undo": the reason `rollout undo` sends, and which runs take it."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory

from connect import first_task_patches, takes_cancel_as_undo
from workflows.model import (
    PATCH_COMPACT_HISTORY,
    PATCH_OUTCOMES,
    UndoSignal,
    undo_cancel_reason,
    undo_from_cancel,
)

HISTORIES = Path(__file__).resolve().parents[1] / "replay" / "histories"


@pytest.mark.parametrize(
    ("by", "reason", "text"),
    [
        ("alice", "5xx up", "rollout undo by alice: 5xx up"),
        ("alice", "", "rollout undo by alice"),
        ("", "", "rollout undo by unknown"),
        ("bob", "a: b", "rollout undo by bob: a: b"),
    ],
)
def test_undo_reason_round_trip(by: str, reason: str, text: str) -> None:
    assert undo_cancel_reason(by, reason) == text
    assert undo_from_cancel(text) == UndoSignal(by=by or "unknown", reason=reason)


@pytest.mark.parametrize("raw", ["", "5xx up", "rollout undo"])
def test_a_raw_cancellation_names_no_sender(raw: str) -> None:
    """The workflow then reads the sender's identity from history."""
    assert undo_from_cancel(raw) == UndoSignal(by="", reason=raw)


def _patches(name: str) -> set[str] | None:
    text = (HISTORIES / f"{name}.json").read_text()
    return first_task_patches(WorkflowHistory.from_json(name, text).events)


def test_runs_begun_before_the_patch_keep_the_undo_signal() -> None:
    assert _patches("seed") == set()  # the oldest runs record no patch at all
    old = _patches("one_activity")
    assert old is not None and "converge-in-one-activity-pause-on-signals" in old
    assert PATCH_OUTCOMES not in old


def test_runs_with_the_patch_take_a_cancellation_as_undo() -> None:
    new = _patches("cancel_undo")
    assert new is not None and PATCH_OUTCOMES in new


def test_compact_runs_take_a_cancellation_as_undo_by_their_one_marker() -> None:
    """The compact marker stands for PATCH_OUTCOMES (and every earlier patch), which it no longer records."""
    compact = _patches("compact_undo")
    assert compact == {PATCH_COMPACT_HISTORY}
    assert takes_cancel_as_undo(compact)
    assert not takes_cancel_as_undo(_patches("one_activity"))
    assert takes_cancel_as_undo(_patches("cancel_undo"))


def test_a_run_whose_first_task_has_not_run_counts_as_new() -> None:
    events = WorkflowHistory.from_json("x", (HISTORIES / "seed.json").read_text()).events[:3]
    assert first_task_patches(events) is None
