"""Declarative mode when things go wrong or change: webhook down, controller restarted, Rollout
deleted or disabled mid-rollout, continuous release by a second `kubectl set image`."""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any

import pytest
from kubernetes import client as k8s
from temporalio.service import RPCError

from kubesim.testing import KubeSimProcess
from tests.helpers.declarative import (
    SEED_ROLLOUT,
    Stack,
    approve,
    deployment,
    field_is,
    images_counts,
    kc,
    keep_history,
    phase_is,
    rollout_status,
    seed_deployment,
    wait_images,
    wait_step,
)
from tests.helpers.kubectl import Kubectl
from tests.helpers.poll import assert_eventually, assert_holds

SEED = {"nginx:1.26": (10, 10)}


async def seed(kubectl: Kubectl) -> None:
    """The seed's Deployment and Rollout, adopted by the controller (Healthy, labelled)."""
    await asyncio.to_thread(kubectl.apply, seed_deployment())
    await asyncio.to_thread(kubectl.wait_available)
    await kc(kubectl, "apply", "-f", "-", stdin=SEED_ROLLOUT)
    await assert_eventually(lambda: phase_is(kubectl, "Healthy"), timeout=30, message="Rollout Healthy")

    async def labelled() -> bool:
        labels = (await deployment(kubectl))["metadata"].get("labels") or {}
        return "rollouts.kruise.io/workload-type" in labels

    await assert_eventually(labelled, timeout=30, message="Deployment labelled for the webhook")


@pytest.mark.clusters
async def test_webhook_down_refuses_the_update(stack: Stack, kubectl: Kubectl, dapi: k8s.ApiClient) -> None:
    """failurePolicy Fail: with the webhook down `kubectl set image` is refused, the Deployment is
    untouched (never half-rolled and unmanaged); once it is back the same command starts the canary."""
    await seed(kubectl)
    before = await deployment(kubectl)
    await stack.stop_webhook()
    try:
        proc: subprocess.CompletedProcess[str] = await asyncio.to_thread(
            kubectl.run, "set", "image", "deployment", "nginx", "nginx=nginx:1.27", check=False
        )
        assert proc.returncode != 0
        assert 'failed calling webhook "deployments.rollouts.temporal.io"' in proc.stderr
        after = await deployment(kubectl)
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        assert images_counts(dapi, kubectl.namespace) == SEED
    finally:
        await stack.start_webhook()
    await kc(kubectl, "set", "image", "deployment", "nginx", "nginx=nginx:1.27")
    await wait_images(dapi, kubectl.namespace, {"nginx:1.27": (1, 1), "nginx:1.26": (9, 9)})
    await wait_step(kubectl, 1)


async def test_controller_restarted(stack: Stack, kubectl: Kubectl, dapi: k8s.ApiClient) -> None:
    """A change and an approval made while the controller is down are acted on when it returns."""
    ns = kubectl.namespace
    await seed(kubectl)
    await stack.stop_controller()
    try:
        # The webhook (served apart from the controller loop) still holds the Deployment.
        await kc(kubectl, "set", "image", "deployment", "nginx", "nginx=nginx:1.27")
        dep = await deployment(kubectl)
        assert dep["spec"]["paused"] is True and dep["spec"]["strategy"] == {"type": "Recreate"}
        assert "rollouts.temporal.io/in-progressing" in dep["metadata"]["annotations"]
        # A native roll, were one possible, would show within a second: none may happen.
        await assert_holds(lambda: images_counts(dapi, ns) == SEED, seconds=1.0, message="no native roll")
    finally:
        stack.start_controller()
    await wait_images(dapi, ns, {"nginx:1.27": (1, 1), "nginx:1.26": (9, 9)})
    await wait_step(kubectl, 1)

    await stack.stop_controller()
    try:
        await approve(kubectl)
        # Nobody signals the workflow while the controller is away.
        await assert_holds(
            lambda: images_counts(dapi, ns) == {"nginx:1.27": (1, 1), "nginx:1.26": (9, 9)},
            seconds=1.0,
            message="step 1 held while the controller is away",
        )
    finally:
        stack.start_controller()
    await wait_images(dapi, ns, {"nginx:1.27": (5, 5), "nginx:1.26": (5, 5)})
    await wait_step(kubectl, 2)


async def test_rollout_deleted_mid_rollout(stack: Stack, kubectl: Kubectl, dapi: k8s.ApiClient) -> None:
    """Deleting the Rollout at step 1 (Kruise's default): the release finishes on the new template, the
    Deployment is handed back (unpaused, RollingUpdate, unlabelled), then the finalizer goes."""
    ns = kubectl.namespace
    await seed(kubectl)
    obj = await kc(kubectl, "get", "rollout", "rollouts-nginx", "-o", "jsonpath={.metadata.finalizers}")
    assert "rollouts.kruise.io/rollout" in obj
    await kc(kubectl, "set", "image", "deployment", "nginx", "nginx=nginx:1.27")
    await wait_step(kubectl, 1)
    await kc(kubectl, "delete", "rollout", "rollouts-nginx", "--wait=false")
    await wait_images(dapi, ns, {"nginx:1.27": (10, 10), "nginx:1.26": (0, 0)})

    async def gone() -> bool:
        out = await kc(kubectl, "get", "rollout", "--ignore-not-found", "-o", "name")
        return not out.strip()

    await assert_eventually(gone, timeout=30, message="Rollout deleted once the Deployment is handed back")
    dep = await deployment(kubectl)
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert not dep["spec"].get("paused")
    assert dep["spec"]["strategy"]["type"] == "RollingUpdate"
    assert "rollouts.kruise.io/workload-type" not in (dep["metadata"].get("labels") or {})
    # Not under a Rollout any more: a new image rolls natively.
    await kc(kubectl, "set", "image", "deployment", "nginx", "nginx=nginx:1.28")
    await asyncio.to_thread(kubectl.wait_available)
    assert images_counts(dapi, ns) == {"nginx:1.28": (10, 10), "nginx:1.27": (0, 0), "nginx:1.26": (0, 0)}


async def test_continuous_release(stack: Stack, kubectl: Kubectl, dapi: k8s.ApiClient) -> None:
    """A second `kubectl set image` mid-rollout supersedes the canary: the new one restarts at step 1,
    the stable pods stay."""
    ns = kubectl.namespace
    await seed(kubectl)
    await kc(kubectl, "set", "image", "deployment", "nginx", "nginx=nginx:1.27")
    await wait_step(kubectl, 1)
    await approve(kubectl)
    await wait_images(dapi, ns, {"nginx:1.27": (5, 5), "nginx:1.26": (5, 5)})
    await wait_step(kubectl, 2)
    await kc(kubectl, "set", "image", "deployment", "nginx", "nginx=nginx:1.28")
    await wait_images(dapi, ns, {"nginx:1.28": (1, 1), "nginx:1.27": (0, 0), "nginx:1.26": (9, 9)})
    st = await wait_step(kubectl, 1)
    assert st["phase"] == "Progressing"
    await approve(kubectl)
    await wait_step(kubectl, 2)
    await approve(kubectl)
    await wait_images(dapi, ns, {"nginx:1.28": (10, 10), "nginx:1.27": (0, 0), "nginx:1.26": (0, 0)})
    await assert_eventually(lambda: phase_is(kubectl, "Healthy"), timeout=30, message="Healthy")
    assert (await rollout_status(kubectl))["canaryStatus"]["currentStepState"] == "Completed"


BAD_STEPS = SEED_ROLLOUT.replace("      - replicas: 1\n", "      - replicas: 60%\n")


async def test_bad_input(stack: Stack, kubectl: Kubectl, dapi: k8s.ApiClient, dsim: KubeSimProcess) -> None:
    """No Deployment: the status says why. Invalid steps and a second Rollout for one Deployment are
    refused at admission (Kruise's words, kubectl exits 1); got in anyway (no validating webhook
    installed), the status says why. The Deployment is not touched, nothing loops."""
    ns = kubectl.namespace
    await kc(kubectl, "apply", "-f", "-", stdin=SEED_ROLLOUT.replace("name: nginx", "name: nothere"))
    await assert_eventually(
        lambda: status_is(kubectl, "rollouts-nginx", "Initial", "Workload Not Found"),
        timeout=30,
        message="Workload Not Found",
    )

    await asyncio.to_thread(kubectl.apply, seed_deployment())
    await asyncio.to_thread(kubectl.wait_available)
    bad = BAD_STEPS.replace("rollouts-nginx", "bad-steps")
    first = SEED_ROLLOUT.replace("rollouts-nginx", "first")
    second = SEED_ROLLOUT.replace("rollouts-nginx", "second")
    await kc(kubectl, "apply", "-f", "-", stdin=first)
    completed = "workload deployment is completed"
    await assert_eventually(
        lambda: status_is(kubectl, "first", "Healthy", completed), timeout=30, message="first Rollout Healthy"
    )
    denied = 'admission webhook "vrollout.kb.io" denied the request: '
    conflict = f"This rollout conflict with Rollout({ns}/first), one workload only have less than one Rollout"
    decreasing = "Steps.CanaryReplicas must be a non decreasing sequence"
    for manifest, text in ((bad, decreasing), (second, conflict)):
        proc = await asyncio.to_thread(kubectl.run, "apply", "-f", "-", stdin=manifest, check=False)
        assert proc.returncode == 1 and denied in proc.stderr and text in proc.stderr, proc.stderr
    assert sorted((await kc(kubectl, "get", "rollout", "-o", "name")).split()) == [
        "rollout.rollouts.kruise.io/first",
        "rollout.rollouts.kruise.io/rollouts-nginx",
    ]

    await stack.drop_validation()
    try:
        await kc(kubectl, "apply", "-f", "-", stdin=bad.replace("name: nginx", "name: other"))
        await kc(kubectl, "apply", "-f", "-", stdin=second)
    finally:
        await stack.stop_webhook()
        await stack.start_webhook()
    await assert_eventually(
        lambda: message_has(kubectl, "bad-steps", "steps"),
        timeout=30,
        message=f"invalid steps reported: {await named_status(kubectl, 'bad-steps')}",
    )
    await assert_eventually(
        lambda: status_is(kubectl, "second", "Initial", conflict), timeout=30, message="conflict reported"
    )
    dep = await deployment(kubectl)
    assert dep["metadata"]["generation"] == 1
    # No hot loop: over a few seconds nothing writes any more.
    start = len(dsim.audit())

    def no_writes() -> bool:
        return not [
            e
            for e in dsim.audit()[start:]
            if e["namespace"] == kubectl.namespace and e["verb"] in ("create", "update", "patch", "delete")
        ]

    await assert_holds(no_writes, seconds=3.0, message="no writes")
    assert images_counts(dapi, kubectl.namespace) == SEED


async def status_is(kubectl: Kubectl, name: str, phase: str, message: str) -> bool:
    st = await named_status(kubectl, name)
    return st.get("phase") == phase and st.get("message") == message


async def message_has(kubectl: Kubectl, name: str, text: str) -> bool:
    st = await named_status(kubectl, name)
    return st.get("phase") == "Initial" and text in str(st.get("message"))


async def named_status(kubectl: Kubectl, name: str) -> dict[str, object]:
    import json

    out = await kc(kubectl, "get", "rollout", name, "-o", "json")
    return dict(json.loads(out).get("status") or {})


async def test_cli_on_rollout_objects(stack: Stack, kubectl: Kubectl, dapi: k8s.ApiClient) -> None:
    """`rollout approve|status` accept the Rollout's name (and kubectl-kruise's rollout/NAME form)."""
    import io
    import json

    import starter

    ns = kubectl.namespace

    async def cli(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        rc = await starter.run(
            [*argv, "-n", ns, "--task-queue", stack.queue],
            client=stack.client,
            api_client=dapi,
            out=out,
            err=err,
        )
        return rc, out.getvalue(), err.getvalue()

    await seed(kubectl)
    await kc(kubectl, "set", "image", "deployment", "nginx", "nginx=nginx:1.27")
    await wait_step(kubectl, 1)
    rc, out, err = await cli("status", "rollouts-nginx", "-o", "json")
    assert rc == 0, err
    st = json.loads(out)
    assert (st["name"], st["currentStepIndex"], st["stepState"]) == ("nginx", 1, "StepPaused")
    rc, out, err = await cli("approve", "rollout/rollouts-nginx")
    assert rc == 0, err
    assert "approved step 1/3" in out
    await wait_images(dapi, ns, {"nginx:1.27": (5, 5), "nginx:1.26": (5, 5)})
    await wait_step(kubectl, 2)
    rc, out, err = await cli("approve", "rollout/nothere")
    assert rc == 1 and err.strip() == f'rollout: error: rollout "nothere" not found in namespace "{ns}"'
    rc, out, err = await cli("list", "-o", "json")
    assert rc == 0, err
    assert [r["workflowId"] for r in json.loads(out)] == [f"rollout/{ns}/nginx"]


async def test_paused_and_resumed(stack: Stack, kubectl: Kubectl, dapi: k8s.ApiClient) -> None:
    """spec.strategy.paused (kubectl-kruise rollout pause/resume) is the hold of `rollout pause`: an
    approval is recorded but the step does not move on until the spec is unpaused; the Rollout shows
    Kruise's Paused condition and message meanwhile. A `rollout pause` hold is not the spec's to release."""
    from workflows.model import RolloutStatus

    ns = kubectl.namespace
    handle = stack.client.get_workflow_handle(f"rollout/{ns}/nginx", result_type=RolloutStatus)
    await seed(kubectl)
    await kc(kubectl, "set", "image", "deployment", "nginx", "nginx=nginx:1.27")
    await wait_step(kubectl, 1)
    await kc(
        kubectl,
        "patch",
        "rollout",
        "rollouts-nginx",
        "--type=merge",
        "-p",
        '{"spec":{"strategy":{"paused":true}}}',
    )

    async def paused_condition() -> bool:
        conds = (await rollout_status(kubectl)).get("conditions") or []
        return any(c["type"] == "Progressing" and c["reason"] == "Paused" for c in conds)

    async def held_by() -> str:
        st: RolloutStatus = await handle.query("status", result_type=RolloutStatus)
        return st.held_by

    await assert_eventually(paused_condition, timeout=30, message="Progressing condition Paused")
    await assert_eventually(
        lambda: field_is(kubectl, "message", "Rollout has been paused, you can resume it by kube-cli"),
        timeout=30,
        message="paused message",
    )
    assert (await held_by()).endswith("(spec.strategy.paused)")
    # The spec wins (Kruise): a `rollout resume` of the spec's hold is followed by the controller's pause.
    from workflows.model import ControlAction, ControlSignal

    await stack.stop_controller()  # so the release can be seen; the restarted one re-holds (no memory)
    await handle.signal("control", ControlSignal(action=ControlAction.RESUME, by="bob"))

    async def released() -> bool:
        return await held_by() == ""

    await assert_eventually(released, timeout=30, message="bob's resume released the hold")
    stack.start_controller()

    async def held_by_spec_again() -> bool:
        return (await held_by()).endswith("(spec.strategy.paused)")

    await assert_eventually(held_by_spec_again, timeout=30, message="held again by the spec")
    await approve(kubectl)

    async def approved() -> bool:
        st: RolloutStatus = await handle.query("status", result_type=RolloutStatus)
        return [a.step for a in st.approvals] == [1]

    await assert_eventually(approved, timeout=30, message="approval of step 1 recorded while held")
    assert images_counts(dapi, ns) == {"nginx:1.27": (1, 1), "nginx:1.26": (9, 9)}
    assert await paused_condition()
    await kc(
        kubectl,
        "patch",
        "rollout",
        "rollouts-nginx",
        "--type=merge",
        "-p",
        '{"spec":{"strategy":{"paused":false}}}',
    )
    await wait_images(dapi, ns, {"nginx:1.27": (5, 5), "nginx:1.26": (5, 5)})
    await wait_step(kubectl, 2)
    assert not await paused_condition() and await held_by() == ""
    # An operator's `rollout pause` (control signal) stays held while the spec says not paused.
    await handle.signal("control", ControlSignal(action=ControlAction.PAUSE, by="alice"))
    await assert_eventually(paused_condition, timeout=30, message="Paused condition for rollout pause")
    controller = stack.controller
    assert controller is not None
    seen = controller.passes

    async def two_more_passes() -> bool:
        return controller.passes >= seen + 2

    await assert_eventually(two_more_passes, timeout=30, message="the controller ran two more passes")
    assert await held_by() == "alice"
    await handle.signal("control", ControlSignal(action=ControlAction.RESUME, by="alice"))
    await assert_eventually(lambda: _not(paused_condition), timeout=30, message="condition back to InRolling")
    await keep_history(stack.client, f"rollout/{ns}/nginx", "declarative_hold")


async def _not(check: Any) -> bool:
    return not await check()


async def test_gitops_apply(stack: Stack, kubectl: Kubectl, dapi: k8s.ApiClient) -> None:
    """A GitOps tool applying a new manifest starts the canary; a tool that overwrites the whole
    Deployment mid-rollout (unpaused, RollingUpdate) cannot start a native roll."""
    ns = kubectl.namespace
    await seed(kubectl)
    await asyncio.to_thread(kubectl.apply, seed_deployment(image="nginx:1.27"))
    await wait_images(dapi, ns, {"nginx:1.27": (1, 1), "nginx:1.26": (9, 9)})
    await wait_step(kubectl, 1)
    path = await asyncio.to_thread(kubectl.write, "overwrite.yaml", seed_deployment(image="nginx:1.27"))
    await kc(kubectl, "replace", "-f", str(path))
    dep = await deployment(kubectl)
    assert dep["spec"]["paused"] is True and dep["spec"]["strategy"] == {"type": "Recreate"}
    # A native roll, were one possible, would show within a second: none may happen.
    await assert_holds(
        lambda: images_counts(dapi, ns) == {"nginx:1.27": (1, 1), "nginx:1.26": (9, 9)},
        seconds=1.0,
        message="no native roll",
    )
    await approve(kubectl)
    await wait_step(kubectl, 2)
    await approve(kubectl)
    await wait_images(dapi, ns, {"nginx:1.27": (10, 10), "nginx:1.26": (0, 0)})
    await assert_eventually(lambda: phase_is(kubectl, "Healthy"), timeout=30, message="Healthy")
    dep = await deployment(kubectl)
    assert dep["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
    }
    assert not dep["spec"].get("paused")


async def test_disabled_mid_rollout(stack: Stack, kubectl: Kubectl, dapi: k8s.ApiClient) -> None:
    """Opted in (``rollouts.temporal.io/hand-back: stable``), spec.disabled mid-rollout hands the
    Deployment back on the stable template; phase Disabled. Enabled again: Healthy."""
    ns = kubectl.namespace
    await seed(kubectl)
    await kc(kubectl, "annotate", "rollout", "rollouts-nginx", "rollouts.temporal.io/hand-back=stable")
    await kc(kubectl, "set", "image", "deployment", "nginx", "nginx=nginx:1.27")
    await wait_step(kubectl, 1)
    await kc(
        kubectl, "patch", "rollout", "rollouts-nginx", "--type=merge", "-p", '{"spec":{"disabled":true}}'
    )
    await wait_images(dapi, ns, {"nginx:1.27": (0, 0), "nginx:1.26": (10, 10)})
    await assert_eventually(lambda: field_is(kubectl, "phase", "Disabled"), timeout=30, message="Disabled")
    assert (await rollout_status(kubectl))["message"] == "Rollout is disabled"
    dep = await deployment(kubectl)
    assert not dep["spec"].get("paused")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    assert "rollouts.kruise.io/workload-type" not in (dep["metadata"].get("labels") or {})
    await kc(
        kubectl, "patch", "rollout", "rollouts-nginx", "--type=merge", "-p", '{"spec":{"disabled":false}}'
    )
    await assert_eventually(
        lambda: field_is(kubectl, "message", "rollout is healthy"),
        timeout=30,
        message="Healthy again once enabled",
    )
    assert (await rollout_status(kubectl))["phase"] == "Healthy"


async def test_template_set_back_before_the_take_over(
    stack: Stack, kubectl: Kubectl, dapi: k8s.ApiClient
) -> None:
    """Held by the webhook, then set back to the stable image before any rollout started: released
    (unpaused, strategy back), no workflow run."""
    ns = kubectl.namespace
    await seed(kubectl)
    await stack.stop_controller()
    try:
        await kc(kubectl, "set", "image", "deployment", "nginx", "nginx=nginx:1.27")
        await kc(kubectl, "set", "image", "deployment", "nginx", "nginx=nginx:1.26")
        assert (await deployment(kubectl))["spec"]["paused"] is True
    finally:
        stack.start_controller()

    async def released() -> bool:
        dep = await deployment(kubectl)
        ann = dep["metadata"].get("annotations") or {}
        return not dep["spec"].get("paused") and not [k for k in ann if k.startswith("rollouts.temporal.io/")]

    await assert_eventually(released, timeout=30, message="Deployment released")
    dep = await deployment(kubectl)
    assert dep["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
    }
    assert images_counts(dapi, ns) == SEED
    with pytest.raises(RPCError):  # no rollout was ever started for it
        await stack.client.get_workflow_handle(f"rollout/{ns}/nginx").describe()
