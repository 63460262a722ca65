"""Crash matrix: SIGKILL the worker process at each activity boundary of the seed scenario.

Each case runs the seed (10 x nginx:1.26 -> 1.27, steps 1, 50%, 100%) with ``python -m worker`` as
a separate process, kills it at one point (found in the kubesim audit log or the workflow's pending
activities), starts a new worker and drives the rollout to its end. Every case must end exactly like
the uncrashed run, create the canary ReplicaSet once (a 409 retry is fine) and keep the surge and
availability bounds at every ReplicaSet watch sample. Recovery times go to ``figures``.

Points that lie between two requests of one activity are made wide with kubesim latency (300 ms per
API request), so the kill lands there and not a few milliseconds later.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType, PendingActivityState, TimeoutType

from tests.durability.histories import capture_history
from tests.helpers.durability import (
    WRITE_VERBS,
    Dur,
    Figure,
    WorkerLauncher,
    assert_bounds,
    expected_state,
)
from workflows.model import ApproveSignal, Phase, UndoSignal

Entry = dict[str, Any]


@dataclass(frozen=True)
class Case:
    """One crash point."""

    crash_point: str
    mechanism: str
    latency: bool = False
    slow_pods: bool = False
    paused: str | None = None  # "approve" or "undo": signal sent while no worker runs


_WFT = (
    "dead worker held the next workflow task (workflow task timeout, 10 s default) "
    "or the write was still in flight (start-to-close, tests 5 s)"
)
CASES: dict[str, Case] = {
    "no_crash": Case("none (baseline)", "-"),
    "no_crash_undo": Case("none (undo baseline)", "-", paused="undo"),
    "after_takeover_write": Case(
        "start: after the caller's held Deployment PUT (`rollout start`), before take_over creates the "
        "canary ReplicaSet",
        "take_over (a read and a create) or its workflow task in flight on the dead worker: retried after "
        "its start-to-close timeout (tests 5 s) or the workflow task timeout",
        latency=True,
    ),
    "after_canary_create": Case(
        "take_over: right after the canary ReplicaSet POST (201)", _WFT, latency=True
    ),
    "after_scale_write": Case("converge_step: right after the canary PUT to 1", _WFT, latency=True),
    "mid_wait": Case(
        "converge_step: mid readiness wait (pods 1.5 s to Ready)",
        "heartbeat timeout (tests 2 s, default 10 s) + 0.5 s retry backoff",
        slow_pods=True,
    ),
    "paused_approve": Case(
        "paused at step 1; approve signalled while no worker runs",
        "durable signal; new worker gets the task once the sticky queue timeout (3 s) passed",
        paused="approve",
    ),
    "paused_undo": Case(
        "paused at step 1; undo signalled while no worker runs",
        "durable signal; new worker gets the task once the sticky queue timeout (3 s) passed",
        paused="undo",
    ),
}

HISTORY = Path(__file__).parent / "histories" / "crash_paused_approve.json"

# The uncrashed runs' final objects, by outcome: each crashed case must end exactly like them.
UNCRASHED: dict[Phase, dict[str, Any]] = {}


def _is(verb: str, resource: str, code: int, name: str | None = None) -> Callable[[Entry], bool]:
    return lambda e: (
        e["verb"] == verb
        and e["resource"] == resource
        and e["code"] == code
        and (name is None or e["name"] == name)
    )


async def _kill_point(dur: Dur, case: str, seq0: int) -> None:
    """Return at the moment the worker must die."""
    if case == "after_takeover_write":
        await dur.wait_entry(_is("update", "deployments", 200, "nginx"), since=seq0)
    elif case == "after_canary_create":
        await dur.wait_entry(_is("create", "replicasets", 201), since=seq0)
    elif case == "after_scale_write":
        # A POST's audit entry has no name (it is in the body): the canary is the 1.27 ReplicaSet.
        created = await dur.wait_entry(_is("create", "replicasets", 201), since=seq0)
        rss = await dur.read(dur.kube.list_replica_sets, dur.namespace)
        canary = next(
            rs["metadata"]["name"]
            for rs in rss
            if rs["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
        )
        await dur.wait_entry(_is("update", "replicasets", 200, canary), since=created["seq"])
    elif case == "mid_wait":
        handle = dur.handle()

        async def waiting() -> bool:
            desc = await handle.describe()
            return any(
                p.activity_type.name in ("converge_step", "wait_for_batch")
                and p.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
                and p.HasField("last_heartbeat_time")
                for p in desc.raw_description.pending_activities
            )

        await dur.eventually(waiting, timeout=60, interval=0.05, message="readiness wait heartbeating")
    elif case.startswith("paused_"):
        await dur.wait_paused(1)


async def _next_progress(dur: Dur, killed_at: float, seq_kill: int, new_pid: int) -> float:
    """When the new worker first moved the rollout: a write of ours, or an activity it completed.

    (A crash mid-wait needs no write afterwards: the retried wait completing is the progress.)
    """
    handle = dur.handle()

    async def first() -> float | None:
        writes = [e["ts"] for e in dur.entries(seq_kill) if e["verb"] in WRITE_VERBS and e["ts"] > killed_at]
        done = [
            ev.event_time.ToDatetime(tzinfo=UTC).timestamp()
            async for ev in handle.fetch_history_events()
            if ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
            and ev.activity_task_completed_event_attributes.identity.startswith(f"{new_pid}@")
        ]
        return min(writes + done, default=None)

    return await dur.eventually(first, timeout=60, interval=0.05, message="progress by the new worker")


async def _observed(dur: Dur) -> str:
    """What the history shows the crash cost: retried activities (and why), timed-out workflow tasks."""
    retried: list[str] = []
    wft_timeouts: list[str] = []
    scheduled: dict[int, str] = {}
    async for ev in dur.handle().fetch_history_events():
        if ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[ev.event_id] = ev.activity_task_scheduled_event_attributes.activity_type.name
        elif ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = ev.activity_task_started_event_attributes
            if attrs.attempt > 1:
                why = (attrs.last_failure.message or "?").splitlines()[0][:60].replace("|", "/")
                retried.append(
                    f"{scheduled.get(attrs.scheduled_event_id, '?')} attempt {attrs.attempt} ({why})"
                )
        elif ev.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
            kind = TimeoutType.Name(ev.workflow_task_timed_out_event_attributes.timeout_type)
            wft_timeouts.append(kind.removeprefix("TIMEOUT_TYPE_").replace("_", "-").lower())
    parts = retried + [f"workflow task timed out ({k})" for k in wft_timeouts]
    return "; ".join(parts) or "nothing retried"


@pytest.mark.parametrize("case", list(CASES))
async def test_crash_matrix(
    case: str, dur: Dur, launcher: WorkerLauncher, figures: list[Figure], no_faults: Any
) -> None:
    await _crash_case(case, dur, launcher, figures)


# Cases that need no kubesim fault injection (latency), on the real kube-apiserver + controllers.
@pytest.mark.parametrize("dur_cluster", ["real"], indirect=True)
@pytest.mark.parametrize("case", ["mid_wait", "paused_approve", "paused_undo"])
async def test_crash_matrix_on_the_real_cluster(
    case: str, dur: Dur, launcher: WorkerLauncher, figures: list[Figure]
) -> None:
    await _crash_case(case, dur, launcher, [])


async def _crash_case(case: str, dur: Dur, launcher: WorkerLauncher, figures: list[Figure]) -> None:
    spec = CASES[case]
    pods = {"kubesim.io/ready-delay": "1.5"} if spec.slow_pods else None
    await dur.create_seed(pod_annotations=pods)
    first = await launcher.start(dur.task_queue)
    seq0 = dur.audit_seq()
    handle = dur.handle()
    figure: Figure | None = None
    with dur.sampler() as sampler:
        if spec.latency:
            dur.sim.set_faults(latencyMs=300)
        await dur.start_rollout()
        if case == "no_crash_undo":
            await dur.wait_paused(1)
            await handle.signal("undo", UndoSignal(by="durability-tests", reason="crash matrix baseline"))
        elif case != "no_crash":
            await _kill_point(dur, case, seq0)
            killed_at = first.kill()
            seq_kill = dur.audit_seq()
            if spec.latency:
                dur.sim.clear_faults()
            if spec.paused == "approve":
                await handle.signal("approve", ApproveSignal(step=1, by="durability-tests"))
            elif spec.paused == "undo":
                await handle.signal("undo", UndoSignal(by="durability-tests", reason="crash matrix"))
            second = await launcher.start(dur.task_queue)
            ready_at = second.ready_at or time.time()
            progress_at = await _next_progress(dur, killed_at, seq_kill, second.pid)
            figure = Figure(
                case=case,
                crash_point=spec.crash_point,
                kill_to_ready=ready_at - killed_at,
                ready_to_write=progress_at - ready_at,
                kill_to_write=progress_at - killed_at,
                mechanism=spec.mechanism,
            )
        result = await dur.drive(timeout=120)

    want = Phase.ROLLED_BACK if spec.paused == "undo" else Phase.COMPLETED
    assert result.phase == want, result.message
    final = await dur.final_state()
    if case.startswith("no_crash"):
        assert final == expected_state(want)  # the baseline itself is what the seed document describes
        UNCRASHED[want] = final
    else:
        assert want in UNCRASHED, "the uncrashed cases run first (-k must select them too)"
        assert final == UNCRASHED[want]
    # The canary ReplicaSet was created exactly once; 409 answers to retried creates are fine.
    creates = dur.rs_creates(seq0)
    assert len(creates) == 1, creates
    assert len(await dur.read(dur.kube.list_replica_sets, dur.namespace)) == 2
    assert_bounds(sampler)
    if figure is not None:  # only for a case that passed every check above
        figure.mechanism += f". Observed: {await _observed(dur)}"
        figures.append(figure)
    if case == "paused_approve":
        assert [a.step for a in result.approvals] == [1, 2]
        await capture_history(handle, HISTORY)
