"""Declarative mode against OpenKruise Rollouts' behaviour, on kubesim and on the real control plane.

The unsafe cases of issue 22 first: a second Rollout for one Deployment is refused at admission with
Kruise's words and, if it got in anyway, never touches the first one's release; a Deployment created
after its Rollout is held from its first template update. Upstream reference: openkruise/rollouts at
commit 9dd6279dff3549d10a26c33e9f5a537320d29d2d (``pkg/webhook/rollout/validating``, ``test/e2e``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from kubernetes import client as k8s
from temporalio.client import Client

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
from workflows.model import Phase, RolloutStatus, StepState, workflow_id_for

pytestmark = pytest.mark.clusters

REPLICAS = 4
STEP1 = {"nginx:1.27": (1, 1), "nginx:1.26": (3, 3)}
DENIED = 'admission webhook "vrollout.kb.io" denied the request: '


def conflict(ns: str, rollout: str, first: str) -> str:
    return (
        f'Conflict Checker: Invalid value: "{rollout}": This rollout conflict with '
        f"Rollout({ns}/{first}), one workload only have less than one Rollout"
    )


def named(name: str, **spec: Any) -> str:
    text = SEED_ROLLOUT.replace("rollouts-nginx", name)
    for key, value in spec.items():
        text = text.replace("spec:\n", f"spec:\n  {key}: {json.dumps(value)}\n", 1)
    return text


async def status_of(kubectl: Kubectl, name: str) -> dict[str, Any]:
    out = await kc(kubectl, "get", "rollout", name, "-o", "json", "--ignore-not-found")
    return dict(json.loads(out).get("status") or {}) if out.strip() else {}


async def seed(kubectl: Kubectl) -> None:
    await asyncio.to_thread(kubectl.apply, seed_deployment(replicas=REPLICAS))
    await asyncio.to_thread(kubectl.wait_available)
    await kc(kubectl, "apply", "-f", "-", stdin=SEED_ROLLOUT)
    await assert_eventually(lambda: phase_is(kubectl, "Healthy"), timeout=30, message="Rollout Healthy")

    async def labelled() -> bool:
        labels = (await deployment(kubectl))["metadata"].get("labels") or {}
        return "rollouts.kruise.io/workload-type" in labels

    await assert_eventually(labelled, timeout=30, message="Deployment labelled for the webhook")


async def test_duplicate_rollout_refused_at_admission(stack: Stack, kubectl: Kubectl) -> None:
    """Kruise's validating webhook: a second Rollout naming the same Deployment is refused with Kruise's
    text (kubectl exits 1, nothing is stored); so are steps Kruise refuses."""
    ns = kubectl.namespace
    await seed(kubectl)
    proc = await asyncio.to_thread(kubectl.run, "apply", "-f", "-", stdin=named("second"), check=False)
    assert proc.returncode == 1
    assert DENIED + conflict(ns, "second", "rollouts-nginx") in proc.stderr
    assert not (await kc(kubectl, "get", "rollout", "second", "--ignore-not-found")).strip()
    bad = (
        SEED_ROLLOUT.replace("name: nginx", "name: other")
        .replace("rollouts-nginx", "bad")
        .replace("- replicas: 1\n", "- replicas: 60%\n")
    )
    proc = await asyncio.to_thread(kubectl.run, "apply", "-f", "-", stdin=bad, check=False)
    assert proc.returncode == 1
    assert (
        DENIED + "Spec.Strategy.Canary.Steps.CanaryReplicas: Invalid value: "
        '[{"replicas":"60%"},{"replicas":"50%"},{"replicas":"100%"}]: '
        "Steps.CanaryReplicas must be a non decreasing sequence"
    ) in proc.stderr
    assert not (await kc(kubectl, "get", "rollout", "bad", "--ignore-not-found")).strip()


async def test_duplicate_rollout_never_touches_the_first_release(
    stack: Stack, kubectl: Kubectl, api_client: k8s.ApiClient, temporal_client: Client
) -> None:
    """A duplicate that got in while the validating webhook was not installed is ignored: it says so in
    its status, and disabling or deleting it leaves the first Rollout's release exactly where it is."""
    ns = kubectl.namespace
    await seed(kubectl)
    await kc(kubectl, "set", "image", "deployment", "nginx", "nginx=nginx:1.27")
    await wait_images(api_client, ns, STEP1)
    await wait_step(kubectl, 1)
    await stack.drop_validation()
    try:

        async def created(name: str) -> bool:  # the apiserver drops the webhook a moment later
            proc = await asyncio.to_thread(kubectl.run, "apply", "-f", "-", stdin=named(name), check=False)
            return proc.returncode == 0

        await assert_eventually(lambda: created("second"), timeout=30, message="duplicate created")
        await assert_eventually(lambda: created("third"), timeout=30, message="duplicate created")

        async def ignored(name: str) -> bool:
            st = await status_of(kubectl, name)
            return (
                st.get("phase") == "Initial"
                and st.get("message")
                == conflict(ns, name, "rollouts-nginx")[len(f'Conflict Checker: Invalid value: "{name}": ') :]
            )

        await assert_eventually(lambda: ignored("second"), timeout=30, message="second reports the conflict")
        await kc(kubectl, "patch", "rollout", "second", "--type=merge", "-p", '{"spec":{"disabled":true}}')
        await kc(kubectl, "delete", "rollout", "third", "--wait=false")
    finally:
        await stack.stop_webhook()
        await stack.start_webhook()

    async def third_gone() -> bool:
        return not (await kc(kubectl, "get", "rollout", "third", "--ignore-not-found")).strip()

    await assert_eventually(third_gone, timeout=30, message="the deleted duplicate goes")
    handle = temporal_client.get_workflow_handle(workflow_id_for(ns, "nginx"), result_type=RolloutStatus)

    async def first_untouched() -> bool:
        st: RolloutStatus = await handle.query("status", result_type=RolloutStatus)
        dep = await deployment(kubectl)
        seen = (
            images_counts(api_client, ns),
            st.current_step_index,
            st.step_state,
            st.phase,
            dep["spec"]["template"]["spec"]["containers"][0]["image"],
            dep["spec"]["paused"],
        )
        assert seen == (STEP1, 1, StepState.STEP_PAUSED, Phase.PAUSED, "nginx:1.27", True), seen
        return True

    await assert_holds(first_untouched, seconds=3.0, message="the first Rollout's release untouched")
    await approve(kubectl)
    await wait_images(api_client, ns, {"nginx:1.27": (2, 2), "nginx:1.26": (2, 2)})
    await wait_step(kubectl, 2)


async def test_deployment_created_after_its_rollout_is_held(
    stack: Stack, kubectl: Kubectl, api_client: k8s.ApiClient
) -> None:
    """The Rollout first, then the Deployment: its first template update is held in the same write (the
    controller loop is stopped, so no pass can label it first), nothing rolls natively, and once the
    controller runs the canary starts at step 1."""
    ns = kubectl.namespace
    await kc(kubectl, "apply", "-f", "-", stdin=SEED_ROLLOUT)
    await assert_eventually(
        lambda: _message_is(kubectl, "Workload Not Found"), timeout=30, message="Workload Not Found"
    )
    await stack.stop_controller()
    try:
        await asyncio.to_thread(kubectl.apply, seed_deployment(replicas=REPLICAS))
        await asyncio.to_thread(kubectl.wait_available)
        await kc(kubectl, "set", "image", "deployment", "nginx", "nginx=nginx:1.27")
        dep = await deployment(kubectl)
        assert dep["spec"]["paused"] is True and dep["spec"]["strategy"] == {"type": "Recreate"}
        assert dep["metadata"]["labels"]["rollouts.kruise.io/workload-type"] == "deployment"
        await assert_holds(
            lambda: images_counts(api_client, ns) == {"nginx:1.26": (4, 4)},
            seconds=1.5,
            message="no native roll",
        )
    finally:
        stack.start_controller()
    await wait_images(api_client, ns, STEP1)
    await wait_step(kubectl, 1)


async def _message_is(kubectl: Kubectl, message: str) -> bool:
    return (await status_of(kubectl, "rollouts-nginx")).get("message") == message
