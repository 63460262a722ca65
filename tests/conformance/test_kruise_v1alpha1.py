"""``rollouts.kruise.io/v1alpha1`` beside v1beta1, on kubesim and on the real control plane.

A v1alpha1 Rollout in the form of Kruise's documentation (``spec.objectRef.workloadRef``, the rolling
style in the annotation ``rollouts.kruise.io/rolling-style: partition``) is applied with kubectl; the
API server converts it through the controller's ``/convert`` webhook and stores v1beta1. The seed
scenario (set image, approve through the status, complete) is then read through both versions: get,
list (kubectl's table), and a watch on v1alpha1. Upstream reference: openkruise/rollouts at commit
9dd6279dff3549d10a26c33e9f5a537320d29d2d (``api/v1alpha1/conversion.go``, the v1alpha1 manifests of
``test/e2e/rollout_test.go``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from typing import Any

import pytest
import urllib3
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch

from kruise.v1alpha1 import ROLLOUT_ID
from tests.helpers.declarative import APPROVE, Stack, deployment, kc, seed_deployment, wait_images
from tests.helpers.kubectl import Kubectl
from tests.helpers.poll import assert_eventually

pytestmark = pytest.mark.clusters

REPLICAS = 4
ALPHA = "rollouts.v1alpha1.rollouts.kruise.io"
BETA = "rollouts.v1beta1.rollouts.kruise.io"
V1ALPHA1_ROLLOUT = """apiVersion: rollouts.kruise.io/v1alpha1
kind: Rollout
metadata:
  name: rollouts-nginx
  annotations:
    rollouts.kruise.io/rolling-style: partition
spec:
  rolloutID: release-1
  objectRef:
    workloadRef:
      apiVersion: apps/v1
      kind: Deployment
      name: nginx
  strategy:
    canary:
      steps:
      - replicas: 1
        pause: {}
      - replicas: 50%
        pause: {}
      - replicas: 100%
"""


async def get(kubectl: Kubectl, resource: str) -> dict[str, Any]:
    return json.loads(await kc(kubectl, "get", resource, "rollouts-nginx", "-o", "json"))  # type: ignore[no-any-return]


def canary(obj: dict[str, Any]) -> tuple[Any, Any]:
    cs = (obj.get("status") or {}).get("canaryStatus") or {}
    return cs.get("currentStepIndex"), cs.get("currentStepState")


async def both_at(kubectl: Kubectl, step: int, state: str, phase: str) -> bool:
    alpha, beta = await get(kubectl, ALPHA), await get(kubectl, BETA)
    return all(
        canary(o) == (step, state) and (o.get("status") or {}).get("phase") == phase for o in (alpha, beta)
    )


class V1alpha1Watch:
    """A watch on the v1alpha1 Rollouts of a namespace (in a thread): every object it delivers."""

    def __init__(self, api: k8s.ApiClient, namespace: str) -> None:
        self.objects: list[dict[str, Any]] = []
        self._watch = k8s_watch.Watch()
        custom = k8s.CustomObjectsApi(api)
        self._stream = lambda: self._watch.stream(
            custom.list_namespaced_custom_object,
            "rollouts.kruise.io",
            "v1alpha1",
            namespace,
            "rollouts",
            timeout_seconds=120,
        )
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with contextlib.suppress(urllib3.exceptions.HTTPError):  # the stream ends with the cluster
            for event in self._stream():
                self.objects.append(event["raw_object"])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._watch.stop()

    def steps_seen(self) -> list[tuple[Any, Any]]:
        return [canary(o) for o in self.objects]


async def test_v1alpha1_rollout_runs_the_seed_scenario_seen_through_both_versions(
    stack: Stack, kubectl: Kubectl, api_client: k8s.ApiClient
) -> None:
    ns = kubectl.namespace
    await asyncio.to_thread(kubectl.apply, seed_deployment(replicas=REPLICAS))
    await asyncio.to_thread(kubectl.wait_available)
    watch = V1alpha1Watch(api_client, ns)
    watch.start()
    try:
        await kc(kubectl, "apply", "-f", "-", stdin=V1ALPHA1_ROLLOUT)
        await assert_eventually(
            lambda: both_at(kubectl, 3, "Completed", "Healthy"),
            timeout=30,
            message="Healthy in both versions",
        )
        alpha, beta = await get(kubectl, ALPHA), await get(kubectl, BETA)
        assert alpha["apiVersion"] == "rollouts.kruise.io/v1alpha1"
        assert alpha["spec"]["objectRef"]["workloadRef"]["name"] == "nginx"
        assert alpha["spec"]["rolloutID"] == "release-1"  # no v1beta1 home, kept through the round trip
        assert alpha["metadata"]["annotations"]["rollouts.kruise.io/rolling-style"] == "partition"
        assert beta["apiVersion"] == "rollouts.kruise.io/v1beta1"
        assert beta["spec"]["workloadRef"]["name"] == "nginx"
        assert "enableExtraWorkloadForCanary" not in beta["spec"]["strategy"]["canary"]  # partition style
        assert beta["spec"]["strategy"]["canary"]["steps"] == [
            {"replicas": 1, "pause": {}},
            {"replicas": "50%", "pause": {}},
            {"replicas": "100%"},
        ]
        assert beta["metadata"]["annotations"][ROLLOUT_ID] == "release-1"
        assert alpha["metadata"]["uid"] == beta["metadata"]["uid"]

        await kc(kubectl, "set", "image", "deployment", "nginx", "nginx=nginx:1.27")
        await wait_images(api_client, ns, {"nginx:1.27": (1, 1), "nginx:1.26": (3, 3)})
        await assert_eventually(
            lambda: both_at(kubectl, 1, "StepPaused", "Progressing"), timeout=60, message="step 1 paused"
        )
        table = await kc(kubectl, "get", ALPHA)  # v1alpha1's columns read status.canaryStatus
        row = table.splitlines()[1].split()
        assert row[:4] == ["rollouts-nginx", "Progressing", "1", "StepPaused"], table

        # approve through v1alpha1's status subresource (kubectl-kruise of Kruise's v1alpha1 days)
        await kc(
            kubectl, "patch", ALPHA, "rollouts-nginx", "--subresource=status", "--type=merge", "-p", APPROVE
        )
        await wait_images(api_client, ns, {"nginx:1.27": (2, 2), "nginx:1.26": (2, 2)})
        await assert_eventually(
            lambda: both_at(kubectl, 2, "StepPaused", "Progressing"), timeout=60, message="step 2 paused"
        )
        await kc(
            kubectl, "patch", BETA, "rollouts-nginx", "--subresource=status", "--type=merge", "-p", APPROVE
        )
        await wait_images(api_client, ns, {"nginx:1.27": (REPLICAS, REPLICAS), "nginx:1.26": (0, 0)})
        await assert_eventually(
            lambda: both_at(kubectl, 3, "Completed", "Healthy"), timeout=60, message="completed in both"
        )
        dep = await deployment(kubectl)
        assert not dep["spec"].get("paused") and dep["spec"]["strategy"]["type"] == "RollingUpdate"

        async def watched_the_release() -> bool:
            seen = watch.steps_seen()
            return (1, "StepPaused") in seen and (2, "StepPaused") in seen and seen[-1] == (3, "Completed")

        await assert_eventually(watched_the_release, timeout=30, message="the v1alpha1 watch saw each step")
        assert {o["apiVersion"] for o in watch.objects} == {"rollouts.kruise.io/v1alpha1"}
        assert all("objectRef" in o["spec"] for o in watch.objects)
    finally:
        watch.stop()


async def test_v1alpha1_rollout_without_the_partition_annotation_is_canary_style(
    stack: Stack, kubectl: Kubectl
) -> None:
    """As in Kruise, a v1alpha1 Rollout without ``rolling-style: partition`` is the canary style (an extra
    workload), which declarative mode does not run: it says so and leaves the Deployment alone."""
    await asyncio.to_thread(kubectl.apply, seed_deployment(replicas=2))
    manifest = V1ALPHA1_ROLLOUT.replace(
        "  annotations:\n    rollouts.kruise.io/rolling-style: partition\n", ""
    )
    await kc(kubectl, "apply", "-f", "-", stdin=manifest)
    beta = await get(kubectl, BETA)
    assert beta["spec"]["strategy"]["canary"]["enableExtraWorkloadForCanary"] is True

    async def refused() -> bool:
        st = (await get(kubectl, ALPHA)).get("status") or {}
        return st.get("phase") == "Initial" and "enableExtraWorkloadForCanary" in str(st.get("message"))

    await assert_eventually(refused, timeout=30, message="canary style reported as unsupported")
    alpha = await get(kubectl, ALPHA)
    assert alpha["metadata"]["annotations"]["rollouts.kruise.io/rolling-style"] == "canary"
    labels = (await deployment(kubectl))["metadata"].get("labels") or {}
    assert "rollouts.kruise.io/workload-type" not in labels
