"""Committed histories replay against the current workflow code: a change that breaks running rollouts fails.

Histories come from ``tests/replay/capture.py`` (seed, undo, timed pause, replace, traffic) and from the
durability tests (``tests/durability/histories/``, e.g. a crash-matrix run). A nondeterministic change
needs ``workflow.patched``; see docs/durability.md.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.model import WORKFLOW_TYPE, RolloutSpec, RolloutStatus, workflow_id_for
from workflows.rollout import RolloutWorkflow

TESTS = Path(__file__).resolve().parents[1]
HISTORIES = sorted(
    [*(TESTS / "replay" / "histories").glob("*.json"), *(TESTS / "durability" / "histories").glob("*.json")]
)
EXPECTED = {
    *("seed", "undo", "timed_pause", "replace", "traffic", "step_move"),
    *("declarative_seed", "declarative_undo", "declarative_pause", "declarative_hold"),
    *("notify", "service_only", "verbs_abort", "verbs_full", "verbs_hold", "raw_approve"),
    *("analysis_rollback", "analysis_steps"),
    *("one_activity", "one_activity_undo"),  # converge_step per step, pauses on watcher signals
    *("reference", "reference_replace"),  # templates by reference, rollout/<ns>/<name> IDs
    *("one_engine_undo", "one_engine_abort", "one_engine_replace"),  # the way back in one converge_step
    "step_jump",  # Kruise's nextStepIndex jumps and plan edits
    *("compact_seed", "compact_zero_pause", "compact_undo", "compact_notify"),  # one marker for all patches
    "compact_step_jump",  # jumps and plan edits after compact-history
}


def test_the_committed_histories_are_there() -> None:
    assert EXPECTED <= {p.stem for p in HISTORIES}


def _workflow_id(path: Path) -> str:
    """The ID the run had: runs by reference check that their ID is their target's (the file has no ID)."""
    events = json.loads(path.read_text())["events"]
    payload = events[0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0]
    spec = json.loads(base64.b64decode(payload["data"]))
    if spec.get("templateHash"):
        return workflow_id_for(spec["namespace"], spec["name"])
    return f"replay-{path.stem}"


@pytest.mark.parametrize("path", HISTORIES, ids=[f"{p.parent.parent.name}/{p.stem}" for p in HISTORIES])
async def test_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(_workflow_id(path), path.read_text())
    replayer = Replayer(workflows=[RolloutWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


@workflow.defn(name=WORKFLOW_TYPE, sandboxed=False)
class ChangedRollout(RolloutWorkflow):
    """An incompatible edit of the workflow: a timer before the take-over activity."""

    @workflow.run
    async def run(self, spec: RolloutSpec) -> RolloutStatus:
        await workflow.sleep(timedelta(seconds=1))
        return await super().run(spec)


async def test_an_incompatible_change_fails_replay() -> None:
    """The guard works: the changed workflow no longer matches the committed seed history, so replay
    reports nondeterminism instead of passing silently."""
    path = TESTS / "replay" / "histories" / "seed.json"
    history = WorkflowHistory.from_json("replay-changed-seed", path.read_text())
    replayer = Replayer(workflows=[ChangedRollout], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()
