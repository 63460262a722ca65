"""Who approved, as `rollout history` and `rollout status` tell it with no worker running (issue 24).

An approval sent while no worker runs is a signal; the server records it with the sending client's
identity (``pid@host``) beside the signal's own ``by``. Both commands read the run's history and must
name the person (``--by alice``), not the process that carried the signal.
"""

from __future__ import annotations

import json

from tests.helpers.durability import Dur, WorkerLauncher


async def test_signalled_approval_is_attributed_to_by_not_the_client(
    dur: Dur, launcher: WorkerLauncher
) -> None:
    await dur.create_seed(replicas=4)
    worker = await launcher.start(dur.task_queue)
    await dur.start_rollout(steps="1,50%,100%")
    await dur.wait_paused(1)
    worker.kill()

    rc, out, err = await dur.cli("approve", "nginx", "--by", "alice", "--comment", "canary looks fine")
    assert rc == 0, err
    assert "no worker is running now" in out, f"the approval did not go the signal way: {out!r}"
    identity = dur.client.identity  # what the server records as the signal's sender

    rc, out, err = await dur.cli("history", "nginx", "-o", "json")
    assert rc == 0, err
    (run,) = json.loads(out)
    senders = [(a["step"], a["by"], a["via"]) for a in run["approvals"]]
    assert senders == [(1, "alice", "signal")], (
        f"`rollout history` names {senders}, want step 1 by alice (the client identity is {identity!r})"
    )
    rc, out, err = await dur.cli("history", "nginx")
    assert rc == 0, err
    assert "alice (step 1)" in out and identity not in out, out

    rc, out, err = await dur.cli("status", "nginx", "-o", "json")
    assert rc == 0, err
    data = json.loads(out)
    assert data["workerAnswered"] is False, "a worker answered: this is not the no-worker path"
    approvals = [(a["step"], a["by"]) for a in data["approvals"]]
    assert approvals == [(1, "alice")], (
        f"`rollout status` with no worker names {approvals}, want step 1 by alice (client {identity!r})"
    )
    rc, out, err = await dur.cli("status", "nginx")
    assert rc == 0, err
    assert "Approved:  step 1 by alice" in out, out
