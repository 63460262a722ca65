"""Crash matrix by history: SIGKILL the worker at each activity boundary, chosen from the workflow history.

Three scenarios on 4 replicas (steps 1, 50%, 100%): *forward* (approve every step), *undo* (undo while
paused at step 2) and *retarget* (``--replace`` with nginx:1.28 while paused at step 1). A kill point
is "event X was recorded": the Nth ``ActivityTaskCompleted`` of an activity type (the boundary after
it) or its ``ActivityTaskScheduled`` (the activity in flight), counted after a marker (the undo
signal, the replace update, the last approval). A poller kills the worker process the moment the
event is in the history and starts a new one.

Every case asserts where the kill landed, from the final history: for "after X" the activity that
followed X was completed by the new worker (and X by the old one); for "X in flight" X itself was
completed by the new worker. Then the crashed run's final objects must equal those of an uncrashed run
of the same scenario (run once per scenario in this module), the canary ReplicaSet(s) were created
exactly once, and the surge/availability bounds held at every ReplicaSet watch sample.

kubesim adds 150 ms to every API request so that the next activity's first request is still in flight
when the poller (20 ms) sees the event; the activity timeout is 3 s, so a write that died in flight is
retried within seconds.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType

from cli import commands
from cli.commands import StartOptions
from tests.helpers.durability import Dur, WorkerLauncher
from tests.helpers.poll import assert_eventually
from workflows.model import Phase, RolloutTimings, UndoSignal

LATENCY_MS = 150
REPLICAS = 4
SURGE_LIMIT, READY_FLOOR = REPLICAS + 1, REPLICAS - 1  # 25% of 4: maxSurge 1, maxUnavailable 1

# A write that died in flight is retried after its start-to-close timeout: 3 s keeps each case short.
TIMINGS = RolloutTimings(
    poll_interval_seconds=0.1, heartbeat_timeout_seconds=2.0, activity_timeout_seconds=3.0
)
COMPLETED = EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
SCHEDULED = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED


@dataclass(frozen=True)
class KillPoint:
    """Kill when the ``nth`` ``event`` ("after" = completed, "during" = scheduled) of ``activity`` is
    recorded, counting from the ``marker`` ("" = start, "undo" signal, "replace" update, "approve2")."""

    scenario: str
    activity: str
    event: str = "after"
    nth: int = 1
    marker: str = ""

    @property
    def label(self) -> str:
        where = "after" if self.event == "after" else "during"
        since = f" after {self.marker}" if self.marker else ""
        return f"{self.scenario}: {where} {self.activity} #{self.nth}{since}"


POINTS = [
    # forward path (one converge_step activity per step, since the cost issue): take-over, step 1's
    # converge in flight and after it, step 2's converge after the approval, the last step's converge in
    # flight, finalize
    KillPoint("forward", "take_over"),
    KillPoint("forward", "converge_step", event="during"),
    KillPoint("forward", "converge_step"),
    KillPoint("forward", "converge_step", marker="approve"),
    KillPoint("forward", "converge_step", event="during", marker="approve2"),
    KillPoint("forward", "finalize", event="during"),
    # undo at step 2 (one converge_step back, since the one-engine change): mid-way back, after it, hand-back
    KillPoint("undo", "converge_step", event="during", marker="undo"),
    KillPoint("undo", "converge_step", marker="undo"),
    KillPoint("undo", "finalize", event="during", marker="undo"),
    # retarget at step 1: the canary back down in one converge_step, the new template written, the new
    # canary's first converge
    KillPoint("retarget", "converge_step", event="during", marker="replace"),
    KillPoint("retarget", "retarget", marker="replace"),
    KillPoint("retarget", "converge_step", nth=2, marker="replace"),
]

BASELINES: dict[str, dict[str, Any]] = {}  # scenario -> final objects of the uncrashed run


@dataclass
class Ev:
    """One history event we care about."""

    id: int
    kind: str  # "scheduled" | "completed" | "signal:<name>" | "update:<name>"
    activity: str = ""
    identity: str = ""


async def _events(dur: Dur) -> list[Ev]:
    out: list[Ev] = []
    types: dict[int, str] = {}
    async for ev in dur.handle().fetch_history_events():
        if ev.event_type == SCHEDULED:
            types[ev.event_id] = ev.activity_task_scheduled_event_attributes.activity_type.name
            out.append(Ev(ev.event_id, "scheduled", types[ev.event_id]))
        elif ev.event_type == COMPLETED:
            attrs = ev.activity_task_completed_event_attributes
            out.append(Ev(ev.event_id, "completed", types.get(attrs.scheduled_event_id, "?"), attrs.identity))
        elif ev.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            name = ev.workflow_execution_signaled_event_attributes.signal_name
            out.append(Ev(ev.event_id, f"signal:{name}"))
        elif ev.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            name = ev.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
            out.append(Ev(ev.event_id, f"update:{name}"))
    return out


APPROVALS = ("signal:approve", "update:approve_step")  # `rollout approve` updates when a worker answers


def _after_marker(events: list[Ev], marker: str) -> list[Ev]:
    if not marker:
        return events
    wanted = {"undo": [("signal:undo",)], "replace": [("update:replace",)], "approve": [APPROVALS]}.get(
        marker, [APPROVALS, APPROVALS]
    )
    idx = -1
    for kinds in wanted:
        idx = next((i for i, e in enumerate(events) if i > idx and e.kind in kinds), len(events))
    return events[idx + 1 :]


def _find(events: list[Ev], kp: KillPoint) -> Ev | None:
    kind = "completed" if kp.event == "after" else "scheduled"
    hits = [e for e in _after_marker(events, kp.marker) if e.kind == kind and e.activity == kp.activity]
    return hits[kp.nth - 1] if len(hits) >= kp.nth else None


async def _drive(dur: Dur, scenario: str) -> Any:
    """The operator's part of the scenario (approvals, undo, replace), tolerant of a dead worker."""
    if scenario == "undo":
        await dur.wait_paused(1, timeout=90)
        await dur.approve(1)
        await dur.wait_paused(2, timeout=90)
        await dur.handle().signal("undo", UndoSignal(by="durability-tests", reason="crash matrix"))
        return await dur.handle().result()
    if scenario == "retarget":
        await dur.wait_paused(1, timeout=90)
        await commands.start(
            dur.ctx,
            StartOptions(
                name="nginx",
                images=["nginx=nginx:1.28"],
                steps="1,50%,100%",
                requested_by="durability-tests",
                timings=TIMINGS,
                replace=True,
            ),
        )
    return await dur.drive(timeout=120)


async def _worker(launcher: WorkerLauncher, dur: Dur) -> Any:
    """A worker process, waited for generously (a loaded 2-core machine starts Python slowly)."""
    wp = launcher.spawn(dur.task_queue)
    await wp.wait_ready(timeout=180)
    return wp


async def _run(dur: Dur, launcher: WorkerLauncher, scenario: str, kp: KillPoint | None) -> dict[str, Any]:
    """Run one scenario (killing at ``kp``); return what the test compares and asserts on."""
    await dur.create_seed(replicas=REPLICAS)
    first = await _worker(launcher, dur)
    seq0 = dur.audit_seq()
    killed: dict[str, Any] = {}

    async def killer() -> None:
        assert kp is not None

        async def recorded() -> Ev | None:
            return _find(await _events(dur), kp)

        hit = await assert_eventually(recorded, timeout=120, interval=0.02, message=f"kill point {kp.label}")
        first.kill()
        killed["event"] = hit
        killed["new"] = await _worker(launcher, dur)

    with dur.sampler() as sampler:
        dur.sim.set_faults(latencyMs=LATENCY_MS)
        try:
            await dur.start_rollout(steps="1,50%,100%", timings=TIMINGS)
            kill_task = asyncio.create_task(killer()) if kp is not None else None
            try:
                result = await _drive(dur, scenario)
                if kill_task is not None:
                    await kill_task
            finally:
                if kill_task is not None and not kill_task.done():
                    kill_task.cancel()
        finally:
            dur.sim.clear_faults()
    return {
        "result": result,
        "final": await dur.final_state(),
        "creates": dur.rs_creates(seq0),
        "sampler": sampler,
        "first_pid": first.pid,
        **killed,
    }


def _assert_landed(events: list[Ev], kp: KillPoint, hit: Ev, old_pid: int, new_pid: int) -> str:
    """Where the kill landed, from the final history; returns a description for the report."""
    old, new = f"{old_pid}@", f"{new_pid}@"
    if kp.event == "after":
        assert hit.identity.startswith(old), f"{kp.label}: X completed by {hit.identity}, not the old worker"
        later = [e for e in events if e.kind == "completed" and e.id > hit.id]
        assert later, f"{kp.label}: no activity after the kill point"
        nxt = later[0]
        assert nxt.identity.startswith(new), (
            f"{kp.label}: the next activity ({nxt.activity}) was completed by {nxt.identity}, "
            f"so the kill landed later than the boundary"
        )
        return f"between {kp.activity} and {nxt.activity} (completed by the new worker)"
    done = next(
        (e for e in events if e.kind == "completed" and e.activity == kp.activity and e.id > hit.id), None
    )
    assert done is not None and done.identity.startswith(new), (
        f"{kp.label}: {kp.activity} completed by {done.identity if done else 'nobody'}, not the new worker"
    )
    return f"{kp.activity} in flight (completed by the new worker)"


async def _baseline(dur: Dur, launcher: WorkerLauncher, scenario: str) -> dict[str, Any]:
    if scenario not in BASELINES:
        run = await _run(dur, launcher, scenario, None)
        _check_run(run, scenario)
        BASELINES[scenario] = run["final"]
    return BASELINES[scenario]


def _check_run(run: dict[str, Any], scenario: str) -> None:
    want = Phase.ROLLED_BACK if scenario == "undo" else Phase.COMPLETED
    assert run["result"].phase == want, run["result"].message
    creates = run["creates"]
    # One canary ReplicaSet (two with --replace), each created exactly once; 409 retries are fine.
    assert len(creates) == (2 if scenario == "retarget" else 1), creates
    sampler = run["sampler"]
    assert sampler.error is None, sampler.error
    assert len(sampler.samples) > 3, "the watch saw the rollout"
    bad = [s for s in sampler.samples if s[0] > SURGE_LIMIT or s[1] < READY_FLOOR]
    assert bad == [], bad[:5]


@pytest.mark.parametrize("scenario", ["forward", "undo", "retarget"])
async def test_uncrashed_baseline(scenario: str, dur: Dur, launcher: WorkerLauncher, no_faults: Any) -> None:
    final = await _baseline(dur, launcher, scenario)
    image = {"forward": "nginx:1.27", "undo": "nginx:1.26", "retarget": "nginx:1.28"}[scenario]
    assert final["image"] == image and not final["paused"] and final["ours"] == []


@pytest.mark.parametrize("kp", POINTS, ids=[p.label for p in POINTS])
async def test_kill_at_activity_boundary(
    kp: KillPoint, dur: Dur, launcher: WorkerLauncher, no_faults: Any, tmp_path_factory: Any
) -> None:
    if kp.scenario not in BASELINES:  # run alone (-k): make the uncrashed run in a namespace of its own
        other = Dur(dur.client, dur.api, dur.sim, f"{dur.namespace[:40]}-base")
        dur.kube.request("POST", "/api/v1/namespaces", {"metadata": {"name": other.namespace}})
        await _baseline(other, launcher, kp.scenario)
    run = await _run(dur, launcher, kp.scenario, kp)
    _check_run(run, kp.scenario)
    landed = _assert_landed(await _events(dur), kp, run["event"], run["first_pid"], run["new"].pid)
    print(f"\n{kp.label}: kill landed {landed}")
    assert run["final"] == BASELINES[kp.scenario]
