"""Operator verbs (the ``clusters`` ones also on the real control plane): approve --full, pause/resume,
abort, retry, undo after abort, undo --to-revision and history; each with -o json, idempotent, and
refusing in one line when it cannot act."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cli.runs import final_status
from tests.helpers.poll import assert_holds
from workflows.model import Phase, Reason, RolloutStatus, workflow_id_for


async def _result(kit: Any, name: str = "nginx") -> RolloutStatus:
    handle = kit.ctx.client.get_workflow_handle(
        workflow_id_for(kit.namespace, name), result_type=RolloutStatus
    )
    result: RolloutStatus = await final_status(handle)
    return result


def _one_line_error(rc: int, err: str, *needles: str) -> None:
    assert rc == 1, err
    assert err.count("\n") == 1 and err.startswith("rollout: error: "), err
    for needle in needles:
        assert needle in err, err


async def test_approve_full_from_step_1(kit: Any, rollout_worker: None) -> None:
    await kit.create(kit.seed())
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,50%,100%")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)
    rc, _, err = await kit.cli("approve", "nginx", "--full", "--step", "1")
    _one_line_error(rc, err, "drop --step")
    rc, out, err = await kit.cli("approve", "nginx", "--full", "-o", "json")
    assert rc == 0, err
    data = json.loads(out)
    assert data["verb"] == "approve --full" and "full promotion requested at step 1/3" in data["message"]
    result = await _result(kit)
    assert result.phase == Phase.COMPLETED and result.promote_full
    assert kit.images() == {"nginx:1.26": (0, 0), "nginx:1.27": (10, 10)}
    kit.assert_handed_back(kit.deployment(), "nginx:1.27")
    rc, _, err = await kit.cli("approve", "nginx", "--full")
    _one_line_error(rc, err, "already finished (Completed)")


@pytest.mark.clusters
async def test_abort_retry_then_undo(kit: Any, rollout_worker: None) -> None:
    await kit.create(kit.seed())
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,50%,100%")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)
    rc, _, err = await kit.cli("retry", "nginx")
    _one_line_error(rc, err, "not Aborted")
    rc, _, err = await kit.cli("approve", "nginx")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 2)
    # The real ReplicaSet controller reports the stable's scale-down in a later status write.
    await kit.eventually(
        lambda: kit.images() == {"nginx:1.26": (5, 5), "nginx:1.27": (5, 5)}, timeout=30, message="5/5"
    )

    # abort at step 2: 0 canary / 10 stable, phase Aborted, the Deployment still held on the new template.
    rc, out, err = await kit.cli("abort", "nginx", "--reason", "error rate", "-o", "json")
    assert rc == 0, err
    assert json.loads(out)["verb"] == "abort"
    st = await kit.wait_phase("nginx", Phase.ABORTED, 2)
    assert st.message == Reason.ABORTED.format(canary=st.canary_revision, stable=st.stable_revision)
    await kit.eventually(
        lambda: kit.images() == {"nginx:1.26": (10, 10), "nginx:1.27": (0, 0)}, timeout=30, message="0/10"
    )
    dep = kit.deployment()
    assert dep["spec"]["paused"] is True
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    rc, out, err = await kit.cli("abort", "nginx")
    assert rc == 0 and "already aborted" in out, err
    for argv in (["approve", "nginx"], ["approve", "nginx", "--full"], ["pause", "nginx"]):
        rc, _, err = await kit.cli(*argv)
        _one_line_error(rc, err, "aborted", "rollout retry")
    rc, out, err = await kit.cli("status", "-o", "json", "nginx")
    assert rc == 0 and json.loads(out)["phase"] == "Aborted", err

    # retry: from step 1 again, 1 canary / 9 stable.
    rc, out, err = await kit.cli("retry", "nginx")
    assert rc == 0 and "restarts at step 1" in out, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)
    assert kit.images() == {"nginx:1.26": (9, 9), "nginx:1.27": (1, 1)}

    # abort again, then undo: handed back on the stable template.
    rc, _, err = await kit.cli("abort", "nginx")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.ABORTED)
    rc, _, err = await kit.cli("undo", "nginx")
    assert rc == 0, err
    assert (await _result(kit)).phase == Phase.ROLLED_BACK
    kit.assert_handed_back(kit.deployment(), "nginx:1.26")
    assert kit.images() == {"nginx:1.26": (10, 10), "nginx:1.27": (0, 0)}


async def test_pause_holds_past_a_timed_pause(kit: Any, rollout_worker: None) -> None:
    await kit.create(kit.seed(replicas=4))
    rc, _, err = await kit.cli(
        "start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,100%", "--pause-duration", "3"
    )
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)
    rc, out, err = await kit.cli("pause", "nginx", "--by", "alice")
    assert rc == 0 and "paused at step 1/2" in out, err
    rc, out, err = await kit.cli("pause", "nginx")
    assert rc == 0 and "already paused by alice" in out, err
    st = await kit.status()
    assert st.held_by == "alice" and st.message == Reason.HELD.format(by="alice", i=1, n=2)

    # Well past the 3 s timer the rollout is still held at step 1.
    async def held_at_step_1() -> bool:
        st = await kit.status()
        assert (st.phase, st.current_step_index) == (Phase.PAUSED, 1), st
        return kit.images() == {"nginx:1.26": (3, 3), "nginx:1.27": (1, 1)}

    await assert_holds(held_at_step_1, seconds=6, message="held at step 1 past the timer")
    rc, out, err = await kit.cli("resume", "nginx", "-o", "json")
    assert rc == 0 and "resumed at step 1/2" in json.loads(out)["message"], err
    assert (await _result(kit)).phase == Phase.COMPLETED
    assert kit.images() == {"nginx:1.26": (0, 0), "nginx:1.27": (4, 4)}
    rc, _, err = await kit.cli("resume", "nginx")
    _one_line_error(rc, err, "already finished")


async def test_pause_holds_a_running_scale(kit: Any, rollout_worker: None) -> None:
    """Pods take 1.5 s to be Ready, so the 100% step makes several surge-bounded moves; a pause
    stops them between two moves, and resume finishes the step."""
    await kit.create(kit.seed(pod_annotations={"kubesim.io/ready-delay": "1.5"}))
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "100%")
    assert rc == 0, err

    def canary() -> int:
        return kit.images().get("nginx:1.27", (0, 0))[0]

    await kit.eventually(lambda: canary() >= 1, timeout=30, message="the first canary pods")
    rc, out, err = await kit.cli("pause", "nginx")
    assert rc == 0 and "paused at step 1/1" in out, err
    st = await kit.wait_phase("nginx", Phase.PAUSED, 1)
    assert st.waiting_for is not None and st.waiting_for.value == "hold"
    held_at = canary()
    assert 1 <= held_at < 10

    async def frozen() -> bool:
        return canary() == held_at and (await kit.status()).phase == Phase.PAUSED

    await assert_holds(frozen, seconds=5, message="canary frozen while held")
    rc, _, err = await kit.cli("resume", "nginx")
    assert rc == 0, err
    assert (await _result(kit)).phase == Phase.COMPLETED
    assert kit.images() == {"nginx:1.26": (0, 0), "nginx:1.27": (10, 10)}


@pytest.mark.clusters
async def test_approve_while_held_waits_for_resume(kit: Any, rollout_worker: None) -> None:
    await kit.create(kit.seed())
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,50%,100%")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)
    rc, _, err = await kit.cli("pause", "nginx")
    assert rc == 0, err
    rc, _, err = await kit.cli("approve", "nginx")
    assert rc == 0, err
    st = await kit.status()
    assert [a.step for a in st.approvals] == [1] and st.held_by

    async def approval_waits() -> bool:
        st = await kit.status()
        assert (st.phase, st.current_step_index) == (Phase.PAUSED, 1), st
        return kit.images() == {"nginx:1.26": (9, 9), "nginx:1.27": (1, 1)}

    await assert_holds(approval_waits, seconds=3, message="the approval waits for resume")
    rc, _, err = await kit.cli("resume", "nginx")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 2)
    assert kit.images() == {"nginx:1.26": (5, 5), "nginx:1.27": (5, 5)}
    rc, _, err = await kit.cli("undo", "nginx")
    assert rc == 0, err
    assert (await _result(kit)).phase == Phase.ROLLED_BACK


async def test_history_and_undo_to_revision(kit: Any, rollout_worker: None) -> None:
    await kit.create(kit.seed(replicas=2))
    for image in ("nginx:1.27", "nginx:1.28", "nginx:1.29"):
        rc, _, err = await kit.cli("start", "nginx", "--image", f"nginx={image}", "--steps", "1,100%")
        assert rc == 0, err
        await kit.wait_phase("nginx", Phase.PAUSED, 1)
        rc, _, err = await kit.cli("approve", "nginx", "--by", f"approver-{image[-2:]}")
        assert rc == 0, err
        assert (await _result(kit)).phase == Phase.COMPLETED

    rc, out, err = await kit.cli("history", "nginx", "-o", "json")
    assert rc == 0, err
    runs = json.loads(out)
    assert [r["canaryImages"]["nginx"] for r in runs] == ["nginx:1.29", "nginx:1.28", "nginx:1.27"]
    assert [r["outcome"] for r in runs] == ["Completed"] * 3
    assert [[a["by"] for a in r["approvals"]] for r in runs] == [
        ["approver-29"],
        ["approver-28"],
        ["approver-27"],
    ]
    assert all(r["start"] and r["end"] for r in runs)
    rc, out, err = await kit.cli("history", "nginx")
    assert rc == 0 and out.count("Completed") == 3 and "nginx=nginx:1.28->nginx:1.29" in out, err

    rc, _, err = await kit.cli("undo", "nginx", "--to-revision", "99")
    _one_line_error(rc, err, "has no revision 99", "revisions kept:")
    revisions = {
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: rs["spec"]["template"]["spec"][
            "containers"
        ][0]["image"]
        for rs in kit.kube.list_replica_sets(kit.namespace)
    }
    first = next(r for r, img in revisions.items() if img == "nginx:1.26")
    current = next(r for r, img in revisions.items() if img == "nginx:1.29")
    rc, _, err = await kit.cli("undo", "nginx", "--to-revision", current)
    _one_line_error(rc, err, f"already runs the template of revision {current}")
    rc, out, err = await kit.cli("undo", "nginx", "--to-revision", first, "--steps", "1,100%", "-o", "json")
    assert rc == 0, err
    assert json.loads(out)["revision"] == int(first)
    await kit.wait_phase("nginx", Phase.PAUSED, 1)
    rc, _, err = await kit.cli("undo", "nginx", "--to-revision", first)
    _one_line_error(rc, err, "is in flight")
    rc, _, err = await kit.cli("approve", "nginx")
    assert rc == 0, err
    assert (await _result(kit)).phase == Phase.COMPLETED
    kit.assert_handed_back(kit.deployment(), "nginx:1.26")
