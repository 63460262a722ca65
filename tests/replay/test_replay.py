"""Committed histories replay against the current workflow code: a change that breaks running rollouts fails.

Histories come from ``tests/replay/capture.py`` (seed, undo, timed pause, replace, traffic) and from the
durability tests (``tests/durability/histories/``, e.g. a crash-matrix run). A nondeterministic change
needs ``workflow.patched``; see docs/durability.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.rollout import RolloutWorkflow

TESTS = Path(__file__).resolve().parents[1]
HISTORIES = sorted(
    [*(TESTS / "replay" / "histories").glob("*.json"), *(TESTS / "durability" / "histories").glob("*.json")]
)
EXPECTED = {"seed", "undo", "timed_pause", "replace", "traffic", "step_move"}


def test_the_committed_histories_are_there() -> None:
    assert EXPECTED <= {p.stem for p in HISTORIES}


@pytest.mark.parametrize("path", HISTORIES, ids=[f"{p.parent.parent.name}/{p.stem}" for p in HISTORIES])
async def test_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    replayer = Replayer(workflows=[RolloutWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
