"""The seed's own commands on kubesim: apply the Deployment and the Rollout, `kubectl set image`,
approve through the Rollout's status subresource (what `kubectl-kruise rollout approve` sends), then a
second release undone by setting the old image back."""

from __future__ import annotations

import asyncio

import pytest
from kubernetes import client as k8s
from temporalio.client import WorkflowExecutionStatus

from tests.helpers.declarative import (
    MANUAL,
    SEED_ROLLOUT,
    ReplicaSetSampler,
    Stack,
    approve,
    deployment,
    kc,
    keep_history,
    phase_is,
    rollout_status,
    seed_deployment,
    wait_images,
    wait_step,
)
from tests.helpers.kubectl import Kubectl
from tests.helpers.poll import assert_eventually
from workflows.model import Reason, RolloutStatus


@pytest.mark.clusters
async def test_seed_commands(stack: Stack, kubectl: Kubectl, dapi: k8s.ApiClient, cluster: str) -> None:
    ns = kubectl.namespace
    await asyncio.to_thread(kubectl.apply, seed_deployment())
    await asyncio.to_thread(kubectl.wait_available)
    await kc(kubectl, "apply", "-f", "-", stdin=SEED_ROLLOUT)
    # The controller adopts the Rollout: Healthy, the Deployment labelled for the webhook.
    await assert_eventually(lambda: phase_is(kubectl, "Healthy"), timeout=30, message="Rollout Healthy")
    assert "rollouts.kruise.io/workload-type" in (await deployment(kubectl))["metadata"]["labels"]

    with ReplicaSetSampler(dapi, ns) as sampler:
        await kc(kubectl, "set", "image", "deployment", "nginx", "nginx=nginx:1.27")
        await wait_images(dapi, ns, {"nginx:1.27": (1, 1), "nginx:1.26": (9, 9)})
        st = await wait_step(kubectl, 1)
        assert st["phase"] == "Progressing"
        assert st["message"] == MANUAL.format(i=1)
        assert st["currentStepState"] == "StepPaused" and st["currentStepIndex"] == 1
        canary = st["canaryStatus"]
        assert (canary["canaryReplicas"], canary["canaryReadyReplicas"]) == (1, 1)
        assert canary["stableRevision"] and canary["canaryRevision"] != canary["stableRevision"]
        assert canary["observedWorkloadGeneration"] == (await deployment(kubectl))["metadata"]["generation"]
        assert any(c["type"] == "Progressing" and c["reason"] == "InRolling" for c in st["conditions"])
        table = (await kc(kubectl, "get", "rollout")).strip().splitlines()
        assert table[0].split()[:5] == ["NAME", "STATUS", "CANARY_STEP", "CANARY_STATE", "MESSAGE"]
        assert table[1].split()[:4] == ["rollouts-nginx", "Progressing", "1", "StepPaused"]
        assert MANUAL.format(i=1) in table[1]
        before_approve = len(sampler.samples)

        await approve(kubectl)
        await wait_images(dapi, ns, {"nginx:1.27": (5, 5), "nginx:1.26": (5, 5)})
        st = await wait_step(kubectl, 2)
        assert st["message"] == MANUAL.format(i=2)

        await approve(kubectl)
        await wait_images(dapi, ns, {"nginx:1.27": (10, 10), "nginx:1.26": (0, 0)})
        await assert_eventually(
            lambda: phase_is(kubectl, "Healthy"), timeout=30, message="Healthy after the last step"
        )
    assert sampler.error is None
    # Never a native roll step: until the first approval the new ReplicaSet never grew past the first
    # batch and no stable pod went away; at every sample the seed's bounds hold; never a third RS.
    first = sampler.samples[:before_approve]
    assert first, "the ReplicaSet watch saw nothing"
    for _total, _ready, per_rs in first:
        sizes = sorted(per_rs.values(), key=lambda v: v[0])
        assert len(per_rs) <= 2
        if len(per_rs) == 2:
            assert sizes[0][0] <= 1 and sizes[1][0] >= 9, per_rs
    assert all(total <= 13 for total, _, _ in sampler.samples)
    assert all(ready >= 8 for _, ready, _ in sampler.samples)
    assert max(len(s[2]) for s in sampler.samples) == 2
    # Handed back: unpaused, RollingUpdate 25%/25%, none of our marks.
    dep = await deployment(kubectl)
    assert not dep["spec"].get("paused")
    assert dep["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
    }
    assert not [k for k in dep["metadata"].get("annotations") or {} if k.startswith("rollouts.temporal.io/")]
    st = await rollout_status(kubectl)
    assert st["canaryStatus"]["currentStepState"] == "Completed"
    assert any(c["type"] == "Succeeded" and c["status"] == "True" for c in st["conditions"])

    # The approver is the user the API server authenticated for the approving write, stamped by the
    # approval webhook: realk8s' admin token user, or (kubesim names its clients by their field manager)
    # kubectl-patch.
    approver = "realk8s-admin" if cluster == "real" else "kubectl-patch"
    result = await stack.client.get_workflow_handle(f"rollout/{ns}/nginx", result_type=RolloutStatus).result()
    assert [(a.step, a.by) for a in result.approvals] == [(1, approver), (2, approver)]
    await keep_history(stack.client, f"rollout/{ns}/nginx", "declarative_seed")

    # A second release, undone the Kruise way: the old image set back.
    await kc(kubectl, "set", "image", "deployment", "nginx", "nginx=nginx:1.28")
    await wait_images(dapi, ns, {"nginx:1.28": (1, 1), "nginx:1.27": (9, 9), "nginx:1.26": (0, 0)})
    await wait_step(kubectl, 1)
    await kc(kubectl, "set", "image", "deployment", "nginx", "nginx=nginx:1.27")
    await wait_images(dapi, ns, {"nginx:1.28": (0, 0), "nginx:1.27": (10, 10), "nginx:1.26": (0, 0)})
    canceled = Reason.ROLLED_BACK

    # Setting the old template back is an undo: the run takes it as a cancellation request and ends
    # Canceled; the message says who asked and why after Kruise's sentence.
    async def rolled_back() -> bool:
        return str((await rollout_status(kubectl)).get("message", "")).startswith(canceled)

    await assert_eventually(rolled_back, timeout=30, message="rollback reported")

    # The run closes after its hand-back (a write that met another writer's 409 is retried first).
    async def canceled_run() -> bool:
        desc = await stack.client.get_workflow_handle(f"rollout/{ns}/nginx").describe()
        return desc.status == WorkflowExecutionStatus.CANCELED

    await assert_eventually(canceled_run, timeout=30, message="the run ends Canceled")
    dep = await deployment(kubectl)
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert not dep["spec"].get("paused")
    assert (await rollout_status(kubectl))["phase"] == "Healthy"
    await keep_history(stack.client, f"rollout/{ns}/nginx", "declarative_undo")
