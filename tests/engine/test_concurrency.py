"""Approve idempotency, one rollout per Deployment, and kubectl scale mid-rollout."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus

from workflows.model import ApproveSignal, Phase, Reason, StepState, workflow_id_for


async def test_approving_step_1_twice_moves_one_step(kit: Any, rollout_worker: None) -> None:
    ns = kit.namespace
    await kit.create(kit.seed(replicas=4))
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,50%,100%")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)
    handle = kit.ctx.client.get_workflow_handle(workflow_id_for(ns, "nginx"))
    # Two raw signals for step 1 (as from `temporal workflow signal` or the UI), back to back.
    await handle.signal("approve", ApproveSignal(step=1, by="alice"))
    await handle.signal("approve", ApproveSignal(step=1, by="bob"))
    st = await kit.wait_phase("nginx", Phase.PAUSED, 2)
    assert [(a.step, a.by) for a in st.approvals] == [(1, "alice")]
    assert kit.images() == {"nginx:1.27": (2, 2), "nginx:1.26": (2, 2)}
    # The CLI says so and changes nothing.
    rc, out, err = await kit.cli("approve", "nginx", "--step", "1")
    assert rc != 0
    want = f"step 1 of rollout rollout/{ns}/nginx is not paused (step 2/3 is StepPaused); nothing to approve"
    assert err == f"rollout: error: {want}\n"
    st = await kit.status("nginx")
    assert st.current_step_index == 2 and st.step_state == StepState.STEP_PAUSED and len(st.approvals) == 1


async def test_second_start_is_rejected(kit: Any, rollout_worker: None) -> None:
    ns = kit.namespace
    await kit.create(kit.seed(replicas=4))
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,100%")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)
    seq = kit.audit_seq()
    rc, out, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.28", "--steps", "100%")
    assert rc != 0 and out == ""
    assert f"rollout/{ns}/nginx" in err and err.count("\n") == 1
    writes = kit.writes_since(seq)
    assert [e for e in writes if e["namespace"] == ns] == []
    desc = await kit.ctx.client.get_workflow_handle(workflow_id_for(ns, "nginx")).describe()
    assert desc.status == WorkflowExecutionStatus.RUNNING


@pytest.mark.clusters
async def test_kubectl_scale_while_paused_at_step_2(kit: Any, rollout_worker: None) -> None:
    ns = kit.namespace
    await kit.create(kit.seed())
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,50%,100%")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)
    rc, _, err = await kit.cli("approve", "nginx")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 2)
    assert kit.images() == {"nginx:1.27": (5, 5), "nginx:1.26": (5, 5)}

    code, _, kerr = kit.kubectl("scale", "deployment", "nginx", "-n", ns, "--replicas=20")
    assert code == 0, kerr

    async def rescaled() -> bool:
        st = await kit.status("nginx")
        return (
            st.current_step_index == 2
            and st.phase == Phase.PAUSED
            and kit.images() == {"nginx:1.27": (10, 10), "nginx:1.26": (10, 10)}
        )

    await kit.eventually(rescaled, timeout=60, interval=0.2, message="step 2 at 10/10")
    st = await kit.status("nginx")
    assert st.replicas == 20 and Reason.RESCALED.format(old=10, new=20, i=2) in st.message
    rc, _, err = await kit.cli("approve", "nginx")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.COMPLETED)
    assert kit.images() == {"nginx:1.27": (20, 20), "nginx:1.26": (0, 0)}
