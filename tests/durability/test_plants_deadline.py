"""The progress deadline survives a worker SIGKILL in the middle of a stuck step (issue 24).

The step's canary pods never become Ready. The worker is SIGKILLed while ``converge_step`` waits for
them, and a new worker takes the activity over after its heartbeat timeout. The deadline counts from
the last progress (the last ReplicaSet write), not from the retry: a worker that keeps restarting
must not keep a stuck step alive forever.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml
from temporalio.api.enums.v1 import EventType

from cli import commands
from cli.commands import StartOptions
from tests.helpers.durability import FAST, WORKER_UA_PREFIX, Dur, WorkerLauncher, seed_deployment
from workflows.model import Phase

NEVER_READY = {"kubesim.io/never-ready": "true"}
DEADLINE = 12  # seconds; the kill lands half-way, so a restarted clock would add at least D/2 + heartbeat
SLACK = DEADLINE / 4  # the activity checks its deadline every second; the rest is scheduling under load


async def _converge_attempts(dur: Dur) -> list[tuple[int, float | None]]:
    """``(attempt, completed at)`` of every ``converge_step`` activity, from the run's history."""
    scheduled: dict[int, str] = {}
    started: dict[int, int] = {}
    completed: dict[int, float] = {}
    async for event in dur.handle().fetch_history_events():
        et = event.event_type
        if et == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        elif et == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = event.activity_task_started_event_attributes
            started[attrs.scheduled_event_id] = attrs.attempt
        elif et == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            attrs_c = event.activity_task_completed_event_attributes
            completed[attrs_c.scheduled_event_id] = event.event_time.ToDatetime().timestamp()
    return [
        (started.get(sid, 0), completed.get(sid))
        for sid, name in scheduled.items()
        if name == "converge_step"
    ]


async def test_deadline_counts_from_the_last_progress_across_a_worker_sigkill(
    dur: Dur, launcher: WorkerLauncher, tmp_path: Path
) -> None:
    await dur.create_seed(replicas=4)
    workers = [await launcher.start(dur.task_queue), await launcher.start(dur.task_queue)]
    manifest = tmp_path / "deployment.yaml"
    new = seed_deployment(dur.namespace, replicas=4, image="nginx:1.27", pod_annotations=NEVER_READY)
    manifest.write_text(yaml.safe_dump(new))
    seq = dur.audit_seq()
    await commands.start(
        dur.ctx,
        StartOptions(
            name="nginx",
            deployment_file=str(manifest),
            steps="1,100%",
            progress_deadline=DEADLINE,
            timings=FAST,
        ),
    )

    def worker_writes() -> list[dict[str, Any]]:
        return [
            e
            for e in dur.entries(seq)
            if e["resource"] == "replicasets"
            and e["verb"] in ("update", "patch")
            and e["userAgent"].startswith(WORKER_UA_PREFIX)
        ]

    async def stuck_at_step_1() -> bool:
        state = await dur.final_state()
        return bool(state["replicaSets"] == [("nginx:1.26", 3, 3), ("nginx:1.27", 1, 0)])

    await dur.eventually(stuck_at_step_1, timeout=60, message="step 1 scaled, its canary pod never Ready")
    last_progress = max(e["ts"] for e in worker_writes())

    # Half-way through the deadline, the worker running the waiting converge_step is killed; the
    # other one, polling all along, takes the activity over after its heartbeat timeout.
    await dur.eventually(
        lambda: time.time() >= last_progress + DEADLINE / 2, timeout=DEADLINE, message="half the deadline"
    )
    st = await dur.query()
    assert st is not None and st.phase == Phase.PROGRESSING, st
    desc = await dur.handle().describe()
    pending = desc.raw_description.pending_activities
    (running,) = [a for a in pending if a.activity_type.name == "converge_step"]
    (victim,) = [w for w in workers if running.last_worker_identity.startswith(f"{w.pid}@")]
    killed = victim.kill()

    async def failed() -> bool:
        st = await dur.query()
        return st is not None and st.phase == Phase.FAILED

    await dur.eventually(failed, timeout=3 * DEADLINE, message="rollout Failed on its progress deadline")
    attempts = await _converge_attempts(dur)
    assert len(attempts) == 1 and attempts[0][0] >= 2, (
        f"the kill did not land in the stuck step's converge_step (attempts {attempts})"
    )
    failed_at = attempts[0][1]
    assert failed_at is not None
    assert [e["ts"] for e in worker_writes() if e["ts"] > last_progress] == [], "a write after the stuck step"

    # The retried attempt started no earlier than the old worker's heartbeat timed out. With the
    # deadline kept it ends one deadline after the last progress (or at once, if it started later
    # than that); a restarted clock would end it a full deadline after the retry.
    retry_earliest = killed + FAST.heartbeat_timeout_seconds
    bound = max(last_progress + DEADLINE, retry_earliest) + SLACK
    took = failed_at - last_progress
    assert took >= DEADLINE, f"failed {took:.1f} s after the last progress, before the {DEADLINE} s deadline"
    assert failed_at <= bound, (
        f"the stuck step failed {took:.1f} s after its last progress, want at most "
        f"{bound - last_progress:.1f} s (deadline {DEADLINE} s; worker SIGKILLed at "
        f"+{killed - last_progress:.1f} s, another polling all along): "
        "the retried converge_step restarted the progress deadline instead of carrying it over"
    )
