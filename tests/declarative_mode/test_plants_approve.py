"""Approval through the Rollout's status subresource is for one step only (issue 24).

A ``StepReady`` left over for step 1 (a late ``kubectl-kruise rollout approve``, a tool replaying an
old status) must not approve step 2: the controller compares ``canaryStatus.currentStepIndex`` with
the step the workflow pauses at. The check is judged after two full controller passes that began
after the patch (each pass lists the Rollout and would signal at once) and on the run's history.
"""

from __future__ import annotations

import asyncio

from kubernetes import client as k8s

from tests.helpers.declarative import (
    SEED_ROLLOUT,
    Stack,
    approve,
    deployment,
    images_counts,
    kc,
    phase_is,
    seed_deployment,
    wait_images,
    wait_step,
)
from tests.helpers.kubectl import Kubectl
from tests.helpers.poll import assert_eventually, assert_holds
from workflows.model import workflow_id_for

STALE = '{"status":{"canaryStatus":{"currentStepIndex":1,"currentStepState":"StepReady"}}}'
STEP_2_READY = '{"status":{"canaryStatus":{"currentStepIndex":2,"currentStepState":"StepReady"}}}'
AT_STEP_2 = {"nginx:1.27": (5, 5), "nginx:1.26": (5, 5)}


async def _approve_signals(stack: Stack, namespace: str) -> list[int]:
    """The steps of every ``approve`` signal in the run's history (what the controller sent)."""
    from cli.runs import read_run

    handle = stack.client.get_workflow_handle(workflow_id_for(namespace, "nginx"))
    desc = await handle.describe()
    rec = await read_run(stack.client, handle.id, desc.run_id or "", desc.status)
    return [a.step or 0 for a in rec.approvals if a.via == "signal"]


async def _passes_after_now(stack: Stack, n: int) -> None:
    """Wait until ``n`` controller passes that began after this call have completed."""
    assert stack.controller is not None
    start = stack.controller.passes
    await assert_eventually(
        lambda: stack.controller is not None and stack.controller.passes >= start + n + 1,
        timeout=30,
        message=f"{n} controller passes",
    )


async def test_stale_step_ready_for_step_1_does_not_approve_step_2(
    stack: Stack, kubectl: Kubectl, dapi: k8s.ApiClient
) -> None:
    ns = kubectl.namespace
    await asyncio.to_thread(kubectl.apply, seed_deployment())
    await asyncio.to_thread(kubectl.wait_available)
    await kc(kubectl, "apply", "-f", "-", stdin=SEED_ROLLOUT)
    await assert_eventually(lambda: phase_is(kubectl, "Healthy"), timeout=30, message="Rollout Healthy")

    async def labelled() -> bool:
        labels = (await deployment(kubectl))["metadata"].get("labels") or {}
        return "rollouts.kruise.io/workload-type" in labels

    await assert_eventually(labelled, timeout=30, message="Deployment labelled for the webhook")
    await kc(kubectl, "set", "image", "deployment", "nginx", "nginx=nginx:1.27")
    await wait_step(kubectl, 1)
    await approve(kubectl)
    await wait_images(dapi, ns, AT_STEP_2)
    await wait_step(kubectl, 2)
    assert await _approve_signals(stack, ns) == [1]

    # The stale approval: StepReady, but for step 1.
    await kc(
        kubectl, "patch", "rollout", "rollouts-nginx", "--subresource=status", "--type=merge", "-p", STALE
    )
    await _passes_after_now(stack, 2)
    signals = await _approve_signals(stack, ns)
    assert signals == [1], (
        f"a StepReady written for step 1 while paused at step 2 made the controller approve: "
        f"approve signals for steps {signals}"
    )
    await assert_holds(
        lambda: images_counts(dapi, ns) == AT_STEP_2,
        seconds=1.0,
        message="the rollout stays paused at step 2 (5 canary / 5 stable)",
    )

    # The same patch for step 2 is an approval: the controller is alive and reads the index.
    await kc(
        kubectl,
        "patch",
        "rollout",
        "rollouts-nginx",
        "--subresource=status",
        "--type=merge",
        "-p",
        STEP_2_READY,
    )
    await wait_images(dapi, ns, {"nginx:1.27": (10, 10), "nginx:1.26": (0, 0)})
    assert await _approve_signals(stack, ns) == [1, 2]
