"""The controller's cost (security review F14): informer caches and a per-key work queue.

40 Rollouts sit idle in one namespace. Once they are Healthy, resync rounds make no Kubernetes request
(kubesim's audit log, by the controller's user agent) and no Temporal describe (a client interceptor
counts them). One tenant annotating its own Rollout in a burst costs reconciles of that Rollout only,
never a LIST.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes import client as k8s
from temporalio.client import Client, DescribeWorkflowInput, Interceptor, OutboundInterceptor

from declarative.controller import Controller
from kube.client import Kube, rollout_path
from kubesim.testing import KubeSimProcess, api_client_for
from tests.helpers.poll import assert_eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")

AGENT = "rollout-controller-cost-test"
ROLLOUTS = 40


class _Counting(Interceptor):
    def __init__(self) -> None:
        self.describes = 0

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        counter = self

        class Out(OutboundInterceptor):
            async def describe_workflow(self, input: DescribeWorkflowInput) -> Any:
                counter.describes += 1
                return await super().describe_workflow(input)

        return Out(next)


def _deployment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1.26"}]},
            },
        },
    }


def _rollout(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": f"ro-{name}"},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "strategy": {"canary": {"steps": [{"replicas": 1}, {"replicas": "100%"}]}},
        },
    }


@contextlib.asynccontextmanager
async def _controller(client: Client, api: k8s.ApiClient, ns: str) -> AsyncIterator[Controller]:
    stop = asyncio.Event()
    controller = Controller(client, api, namespace=ns, task_queue=f"cost-{ns}", resync_seconds=0.3)
    task = asyncio.create_task(controller.run(stop))
    try:
        yield controller
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def _mine(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if e["userAgent"].startswith(AGENT)]


async def test_idle_rollouts_cost_nothing_and_a_burst_costs_one_key(
    temporal_client: Client, dsim: KubeSimProcess, crd: None
) -> None:
    admin = api_client_for(dsim.kubeconfig)
    kube = Kube(admin)
    ns = f"cost-{uuid.uuid4().hex[:6]}"
    kube.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
    for i in range(ROLLOUTS):
        kube.request("POST", Kube.deployment_path(ns), _deployment(f"web-{i}"))
        kube.request("POST", rollout_path(ns), _rollout(f"web-{i}"))
    counting = _Counting()
    config = temporal_client.config()
    config["interceptors"] = [counting]
    client = Client(**config)
    api = api_client_for(dsim.kubeconfig, user_agent=AGENT)

    def phases() -> list[str]:
        items = kube.request("GET", rollout_path(ns)).get("items") or []
        return [str((o.get("status") or {}).get("phase")) for o in items]

    async with _controller(client, api, ns) as controller:
        await assert_eventually(
            lambda: phases() == ["Healthy"] * ROLLOUTS, timeout=60, message="every Rollout Healthy"
        )
        # The last status writes come back as events: let those settle into one more round.
        await assert_eventually(lambda: controller.passes >= 2 and len(controller.queue) == 0, timeout=30)
        passes, reconciles = controller.passes, controller.reconciles
        await assert_eventually(lambda: controller.passes >= passes + 1, timeout=30)
        dsim.clear_audit()
        passes, reconciles, describes = controller.passes, controller.reconciles, counting.describes
        await assert_eventually(lambda: controller.passes >= passes + 5, timeout=30, message="5 resyncs")
        assert _mine(dsim.audit()) == []
        assert counting.describes == describes
        assert controller.reconciles == reconciles

        # A burst of 30 annotation patches on one Rollout: reconciles of that key, no LIST.
        dsim.clear_audit()
        describes = counting.describes
        for i in range(30):
            kube.request(
                "PATCH",
                rollout_path(ns, "ro-web-0"),
                {"metadata": {"annotations": {"n": str(i)}}},
                content_type="application/merge-patch+json",
            )
        passes = controller.passes
        await assert_eventually(lambda: controller.passes >= passes + 2, timeout=30)
        entries = _mine(dsim.audit())
        # Only the one Deployment's ReplicaSets are listed (by its selector); never Rollouts or Deployments.
        lists = [(e["resource"], e["query"]) for e in entries if e["verb"] == "list"]
        assert all(r == "replicasets" and "app%3Dweb-0" in q for r, q in lists), lists
        assert {e["name"] for e in entries if e["verb"] != "list"} <= {"ro-web-0", "web-0"}, entries
        # Each reconcile of the one key asks Temporal once at most (30 events coalesce into fewer).
        assert 1 <= counting.describes - describes <= 30
        print(
            f"burst of 30 patches: {len(entries)} API requests ({len(lists)} ReplicaSet LISTs), "
            f"{counting.describes - describes} Temporal describes"
        )
    api.close()
    admin.close()
