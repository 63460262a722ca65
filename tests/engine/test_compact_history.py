"""Compact histories (``PATCH_COMPACT_HISTORY``): one patch marker, one search-attribute upsert per
workflow task, and the worker's default notification targets answered by ``take_over``.

The history is the evidence: which events a run recorded, not how long it took.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowFailureError

from cli import commands
from cli.commands import StartOptions
from tests.helpers.receiver import Receiver, name_targets, receiving
from tests.helpers.worker import in_process_worker
from workflows.model import (
    PATCH_COMPACT_HISTORY,
    SA_PHASE_KEY,
    SA_STEP_KEY,
    Phase,
    RolloutStatus,
    RolloutTimings,
)

TIMINGS = RolloutTimings(poll_interval_seconds=0.1, notify_total_seconds=4)


def _markers(events: list[HistoryEvent]) -> list[str]:
    found = []
    for e in events:
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            data = e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data
            found.append(json.loads(data)["id"])
    return found


def _activities(events: list[HistoryEvent]) -> Counter[str]:
    return Counter(
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    )


_TASK_OR_SIGNAL = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
}


def _count(events: list[HistoryEvent], kind: int) -> int:
    return sum(1 for e in events if e.event_type == kind)


async def test_a_zero_pause_rollout_records_one_marker_and_one_upsert_per_task(
    kit: Any, rollout_worker: None
) -> None:
    await kit.create(kit.seed(replicas=4))
    spec, _ = await commands.start(
        kit.ctx,
        StartOptions(
            name="nginx", images=["nginx=nginx:1.27"], steps="1,50%,100%", pause_duration=0, timings=TIMINGS
        ),
    )
    handle = kit.ctx.client.get_workflow_handle(spec.workflow_id, result_type=RolloutStatus)
    assert (await handle.result()).phase == Phase.COMPLETED
    events = list((await handle.fetch_history()).events)
    assert _markers(events) == [PATCH_COMPACT_HISTORY]
    assert _activities(events) == Counter(take_over=1, converge_step=3, finalize=1)
    tasks = _count(events, EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    upserts = _count(events, EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES)
    # One for the patch marker (the SDK's TemporalChangeVersion), then at most one per task: the
    # zero-length pauses and the next steps' starts share their tasks' upsert.
    assert upserts <= tasks + 1, (upserts, tasks)
    # Besides workflow tasks (one per activity result, more under load) and the watcher's signals: the
    # start, the marker and its upsert, 5 activities x 3, 4 upserts of a changed step or phase, the end.
    kept = [e for e in events if e.event_type not in _TASK_OR_SIGNAL]
    assert len(kept) == 1 + 2 + 15 + 4 + 1, [EventType.Name(e.event_type) for e in kept]
    kit.assert_handed_back(kit.deployment(), "nginx:1.27")
    if spec.use_search_attributes:  # the last transition reached the server
        desc = await handle.describe()
        assert desc.typed_search_attributes.get(SA_PHASE_KEY) == Phase.COMPLETED.value
        assert desc.typed_search_attributes.get(SA_STEP_KEY) == 3


@pytest.fixture
async def receiver() -> Any:
    async with receiving() as rec:
        yield rec


async def test_the_workers_default_targets_come_with_take_over(
    kit: Any, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    name_targets(hook=receiver.url)
    monkeypatch.setenv("ROLLOUT_NOTIFY_DEFAULT", "hook")
    ctx = dataclasses.replace(kit.ctx, task_queue=f"{kit.ctx.task_queue}-defaults")
    await kit.create(kit.seed(replicas=2))
    async with in_process_worker(ctx.client, ctx.api_client, ctx.task_queue):
        spec, _ = await commands.start(
            ctx, StartOptions(name="nginx", images=["nginx=nginx:1.27"], steps="100%", timings=TIMINGS)
        )
        handle = ctx.client.get_workflow_handle(spec.workflow_id, result_type=RolloutStatus)
        assert (await handle.result()).phase == Phase.COMPLETED
        await kit.eventually(
            lambda: receiver.events()[-1:] == [("Completed", 1)], timeout=30, message="Completed told"
        )
        events = list((await handle.fetch_history()).events)
    assert "notify_default_targets" not in _activities(events)
    assert _activities(events)["take_over"] == 1


async def test_a_failure_before_take_over_answered_still_tells_the_default_targets(
    kit: Any, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """take_over fails (the Deployment is gone): the defaults are read on the way to Failed."""
    name_targets(hook=receiver.url)
    monkeypatch.setenv("ROLLOUT_NOTIFY_DEFAULT", "hook")
    ctx = dataclasses.replace(kit.ctx, task_queue=f"{kit.ctx.task_queue}-early-failure")
    await kit.create(kit.seed(replicas=2))
    # Started with no worker on its queue yet: the Deployment is deleted before take_over runs.
    spec, _ = await commands.start(
        ctx, StartOptions(name="nginx", images=["nginx=nginx:1.27"], steps="100%", timings=TIMINGS)
    )
    code, _, err = kit.kubectl("delete", "deployment", "nginx", "-n", kit.namespace)
    assert code == 0, err
    handle = ctx.client.get_workflow_handle(spec.workflow_id, result_type=RolloutStatus)
    async with in_process_worker(ctx.client, ctx.api_client, ctx.task_queue):
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        await kit.eventually(
            lambda: receiver.events()[-1:] == [("Failed", 0)], timeout=30, message="Failed told"
        )
        events = list((await handle.fetch_history()).events)
    assert 'deployment "nginx" not found' in receiver.bodies[-1]["message"]
    assert _activities(events)["notify_default_targets"] == 1
