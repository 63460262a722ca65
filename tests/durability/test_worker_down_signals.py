"""The operator's verbs while no worker runs (the worker is a separate process, SIGKILLed).

- ``rollout approve`` / ``rollout undo`` through the CLI with the worker dead: the command succeeds,
  and the next worker acts on it (the crash matrix sends signals directly, never through the CLI);
- two approvals of the same step buffered while no worker runs reach the workflow in one workflow
  task: the rollout advances exactly one step and records one approval.
"""

from __future__ import annotations

from typing import Any

from temporalio.api.enums.v1 import EventType

from cli.runs import final_status
from tests.helpers.durability import Dur, WorkerLauncher
from workflows.model import ApproveSignal, Phase


async def _worker(launcher: WorkerLauncher, dur: Dur) -> Any:
    """A worker process, waited for generously (a loaded 2-core machine starts Python slowly)."""
    wp = launcher.spawn(dur.task_queue)
    await wp.wait_ready(timeout=180)
    return wp


async def _signals_and_tasks(dur: Dur) -> list[tuple[str, int]]:
    """The history's signals (by name) and completed workflow tasks ("task"), in order."""
    out = []
    async for ev in dur.handle().fetch_history_events():
        if ev.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            out.append((ev.workflow_execution_signaled_event_attributes.signal_name, ev.event_id))
        elif ev.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            out.append(("task", ev.event_id))
    return out


async def test_cli_approve_and_undo_with_the_worker_sigkilled(
    dur: Dur, launcher: WorkerLauncher, no_faults: Any
) -> None:
    await dur.create_seed(replicas=4)
    worker = await _worker(launcher, dur)
    await dur.start_rollout(steps="1,50%,100%")
    await dur.wait_paused(1)

    worker.kill()
    rc, out, err = await dur.cli("approve", "nginx", "--step", "1")
    assert rc == 0, err
    assert out.strip() and err == ""
    assert await dur.query() is None  # really no worker: the approval was not confirmed by one
    worker = await _worker(launcher, dur)
    st = await dur.wait_paused(2)
    assert [a.step for a in st.approvals] == [1]
    assert {img: spec for img, spec, _ in (await dur.final_state())["replicaSets"]} == {
        "nginx:1.26": 2,
        "nginx:1.27": 2,
    }

    worker.kill()
    rc, out, err = await dur.cli("undo", "nginx", "--reason", "worker down")
    assert rc == 0, err
    assert out.startswith("undo ") and err == ""  # "undo accepted ...; no worker is running now"
    await _worker(launcher, dur)
    result = await final_status(dur.handle())
    assert result.phase == Phase.ROLLED_BACK, result.message
    state = await dur.final_state()
    assert state["image"] == "nginx:1.26" and not state["paused"] and state["ours"] == []
    assert state["replicaSets"] == [("nginx:1.26", 4, 4), ("nginx:1.27", 0, 0)]


async def test_two_approvals_buffered_in_one_task_advance_one_step(
    dur: Dur, launcher: WorkerLauncher, no_faults: Any
) -> None:
    await dur.create_seed(replicas=4)
    worker = await _worker(launcher, dur)
    handle = await dur.start_rollout(steps="1,50%,100%")
    await dur.wait_paused(1)
    worker.kill()
    # Two approvals of the paused step (say two operators, or a retried click) while no worker runs.
    await handle.signal("approve", ApproveSignal(step=1, by="alice"))
    await handle.signal("approve", ApproveSignal(step=None, by="bob"))
    await _worker(launcher, dur)
    st = await dur.wait_paused(2)

    # Both signals reached the workflow in one workflow task (nothing completed between them).
    events = await _signals_and_tasks(dur)
    approvals = [i for i, (name, _) in enumerate(events) if name == "approve"]
    assert len(approvals) == 2
    assert [n for n, _ in events[approvals[0] : approvals[1] + 1]] == ["approve", "approve"], events
    # ... and advanced exactly one step, with one approval recorded (the first).
    assert [(a.step, a.by) for a in st.approvals] == [(1, "alice")]
    assert st.current_step_index == 2
    assert {img: spec for img, spec, _ in (await dur.final_state())["replicaSets"]} == {
        "nginx:1.26": 2,
        "nginx:1.27": 2,
    }
    result = await dur.drive()
    assert result.phase == Phase.COMPLETED
    assert [a.step for a in result.approvals] == [1, 2]
