"""Replay the committed crash-matrix history against the current workflow code.

``histories/crash_paused_approve.json`` is the seed rollout whose worker was SIGKILLed while paused at
step 1, approved while no worker ran, and finished by a new worker (captured by
``test_crash_matrix[paused_approve]``; re-capture with ``ROLLOUT_CAPTURE_HISTORIES=1``). A workflow
change that is not replay-compatible (use ``workflow.patched``) fails here with a NondeterminismError.
"""

from __future__ import annotations

import json
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.rollout import RolloutWorkflow

HISTORY = Path(__file__).parent / "histories" / "crash_paused_approve.json"


def _load(path: Path) -> WorkflowHistory:
    text = path.read_text()
    events = json.loads(text)["events"]
    start = events[0]["workflowExecutionStartedEventAttributes"]
    workflow_id = start.get("workflowId") or f"replay-{path.stem}"
    return WorkflowHistory.from_json(workflow_id, text)


async def test_replay_crash_paused_approve() -> None:
    history = _load(HISTORY)
    # The history really is a crash: the dead worker's sticky task timed out, and it still completed.
    text = HISTORY.read_text()
    assert "EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT" in text or "WorkflowTaskTimedOut" in text
    assert "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED" in text or "WorkflowExecutionCompleted" in text
    replayer = Replayer(workflows=[RolloutWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None
