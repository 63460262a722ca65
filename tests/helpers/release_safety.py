"""Release safety tests: starting a release with short timings on its own queues, and reading what
Temporal recorded (child starts, timers, activity summaries) from the histories."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory

from cli.release_file import load_release_file
from cli.release_start import start_release
from tests.helpers.durability import FAST
from tests.helpers.release import Fleet
from workflows.model import ReleaseInput, RolloutTimings


async def start_fast(
    fleet: Fleet,
    doc: dict[str, Any],
    rid: str,
    path: Path,
    task_queue: str,
    timings: RolloutTimings = FAST,
) -> ReleaseInput:
    """``rollout release start`` through its command function, on ``task_queue`` and with ``timings``
    (the children's heartbeat timeout and polls), so that a killed worker's work is retried in seconds."""
    rel = load_release_file(fleet.write(path, doc))
    return await start_release(
        fleet.client, rel, fleet.apis.__getitem__, release_id=rid, by="release-tests", task_queue=task_queue,
        timings=timings,
    )  # fmt: skip


async def history(client: Client, workflow_id: str) -> WorkflowHistory:
    return await client.get_workflow_handle(workflow_id).fetch_history()


def summary(event: HistoryEvent) -> str:
    """The event's summary (user metadata), as the UI shows it."""
    if not event.HasField("user_metadata") or not event.user_metadata.HasField("summary"):
        return ""
    return str(json.loads(event.user_metadata.summary.data or b'""'))


def of_type(hist: WorkflowHistory, kind: EventType.ValueType) -> list[HistoryEvent]:
    return [e for e in hist.events if e.event_type == kind]


def child_starts(hist: WorkflowHistory) -> list[str]:
    """The workflow IDs of every child the parent started (one entry per start command)."""
    events = of_type(hist, EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED)
    return [e.start_child_workflow_execution_initiated_event_attributes.workflow_id for e in events]


def converge_summaries(hist: WorkflowHistory) -> list[str]:
    """The summaries of every ``converge_step`` activity the workflow scheduled, in order."""
    return [
        summary(e)
        for e in of_type(hist, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
        if e.activity_task_scheduled_event_attributes.activity_type.name == "converge_step"
    ]


def timers(hist: WorkflowHistory, name: str) -> tuple[list[HistoryEvent], list[HistoryEvent]]:
    """The timers whose summary is ``name``: (started, fired) events."""
    started = [e for e in of_type(hist, EventType.EVENT_TYPE_TIMER_STARTED) if summary(e) == name]
    ids = {e.event_id for e in started}
    fired = [
        e
        for e in of_type(hist, EventType.EVENT_TYPE_TIMER_FIRED)
        if e.timer_fired_event_attributes.started_event_id in ids
    ]
    return started, fired


async def runs(client: Client, workflow_id: str) -> int:
    """How many runs of ``workflow_id`` Temporal's visibility lists."""
    return len([wf async for wf in client.list_workflows(f'WorkflowId="{workflow_id}"')])
