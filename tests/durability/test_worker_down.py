"""The CLI with every worker SIGKILLed: status, list, approve and undo still work (issue 12).

The worker is a real process killed with SIGKILL; the CLI then answers from the server alone
(search attributes, the run's history). Approve is step-scoped, so a double approve while no worker
runs cannot skip a step; both approve and undo take effect once a worker starts again.
"""

from __future__ import annotations

import json

from cli.runs import final_status
from tests.helpers.durability import Dur, WorkerLauncher, expected_state
from workflows.model import Phase


async def test_status_list_approve_with_worker_killed(dur: Dur, launcher: WorkerLauncher) -> None:
    await dur.create_seed()
    worker = await launcher.start(dur.task_queue)
    await dur.start_rollout(steps="1,50%,100%")
    await dur.wait_paused(1)
    worker.kill()

    # status: exit 0, the last known phase/step, and that no worker answers.
    rc, out, err = await dur.cli("status", "nginx", "-o", "json")
    assert rc == 0, err
    data = json.loads(out)
    assert (data["phase"], data["currentStepIndex"], data["totalSteps"]) == ("Paused", 1, 3)
    assert data["workerAnswered"] is False
    assert (data["canaryReplicas"], data["stableReplicas"], data["replicas"]) == (1, 9, 10)
    assert (
        data["canaryRevision"] and data["stableRevision"] and data["canaryRevision"] != data["stableRevision"]
    )
    assert "no worker is polling" in data["note"]
    rc, out, err = await dur.cli("status", "nginx")
    assert rc == 0, err
    assert "Phase:     Paused" in out and "Step:      1/3" in out and "no worker is polling" in out

    # list: the row comes from the search attributes.
    rc, out, err = await dur.cli("list", "-o", "json")
    assert rc == 0, err
    (row,) = json.loads(out)
    assert (row["phase"], row["currentStepIndex"], row["workerAnswered"]) == ("Paused", 1, False)

    # approve twice with no worker: both accepted, both for step 1 (from the search attributes).
    rc, out, err = await dur.cli("approve", "nginx")
    assert rc == 0, err
    assert "approval of step 1 accepted" in out and "no worker is running now" in out
    rc, out, _ = await dur.cli("approve", "nginx")
    assert rc == 0 and "step 1" in out
    # A step that is not the paused one is refused in the user's words.
    rc, _, err = await dur.cli("approve", "nginx", "--step", "2")
    assert rc == 1 and "step 2" in err and "not paused" in err and "\n" not in err.strip()

    # A worker comes back: step 1 was approved once, so the rollout stops at step 2, not 3.
    await launcher.start(dur.task_queue)
    st = await dur.wait_paused(2, timeout=90)
    assert [a.step for a in st.approvals] == [1]
    rss = {img: reps for img, reps, _ in (await dur.final_state())["replicaSets"]}
    assert rss == {"nginx:1.26": 5, "nginx:1.27": 5}

    # The history attributes both approvals to the sender.
    rc, out, err = await dur.cli("history", "nginx", "-o", "json")
    assert rc == 0, err
    (run,) = json.loads(out)
    assert run["outcome"] == "Running"
    assert [a["step"] for a in run["approvals"]] == [1, 1]


async def test_undo_with_worker_killed(dur: Dur, launcher: WorkerLauncher) -> None:
    await dur.create_seed()
    worker = await launcher.start(dur.task_queue)
    await dur.start_rollout(steps="1,50%,100%")
    await dur.wait_paused(1)
    worker.kill()

    rc, out, err = await dur.cli("undo", "nginx", "--reason", "bad canary")
    assert rc == 0, err
    assert "undo accepted" in out and "no worker is running now" in out

    await launcher.start(dur.task_queue)
    result = await final_status(dur.handle())
    assert result.phase == Phase.ROLLED_BACK
    assert await dur.final_state() == expected_state(Phase.ROLLED_BACK)


async def test_abort_with_worker_killed(dur: Dur, launcher: WorkerLauncher) -> None:
    await dur.create_seed()
    worker = await launcher.start(dur.task_queue)
    await dur.start_rollout(steps="1,50%,100%")
    await dur.wait_paused(1)
    worker.kill()
    rc, _, err = await dur.cli("retry", "nginx")
    assert rc == 1 and "not aborted" in err, err
    rc, out, err = await dur.cli("abort", "nginx", "-o", "json")
    assert rc == 0, err
    assert "abort accepted" in json.loads(out)["message"]

    await launcher.start(dur.task_queue)

    async def aborted() -> bool:
        st = await dur.query()
        return st is not None and st.phase == Phase.ABORTED

    await dur.eventually(aborted, timeout=90, message="Aborted")
    state = await dur.final_state()
    assert sorted(state["replicaSets"]) == [("nginx:1.26", 10, 10), ("nginx:1.27", 0, 0)]
    assert state["paused"] and state["image"] == "nginx:1.27"
    rc, out, err = await dur.cli("undo", "nginx")
    assert rc == 0, err
    assert (await final_status(dur.handle())).phase == Phase.ROLLED_BACK
    assert await dur.final_state() == expected_state(Phase.ROLLED_BACK)
