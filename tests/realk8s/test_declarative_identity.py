"""Declarative mode on the real control plane: who approved (security review F3).

A ServiceAccount with only ``update`` on ``rollouts/status`` approves through its own token
(TokenRequest) and claims to be someone else (field manager and a forged ``approvedBy``). The approval
webhook stamps the user the apiserver authenticated, and the rollout records that name.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from temporalio.client import Client

from kube.client import Kube, rollout_path
from kubesim.testing import api_client_for
from realk8s.testing import RealK8sProcess
from tests.helpers.cluster import create_deployment, seed_deployment
from tests.helpers.declarative import SEED_ROLLOUT, running_stack
from tests.helpers.poll import assert_eventually
from tests.helpers.rbac import limited_user
from workflows.model import RolloutStatus, workflow_id_for

pytestmark = pytest.mark.asyncio(loop_scope="session")

CRD = Path(__file__).resolve().parents[2] / "deploy" / "declarative" / "crd-rollouts.yaml"
MWC = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/temporal-rollouts"
VWC = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/temporal-rollouts"
STATUS_WRITER = [
    {"apiGroups": ["rollouts.kruise.io"], "resources": ["rollouts"], "verbs": ["get"]},
    {
        "apiGroups": ["rollouts.kruise.io"],
        "resources": ["rollouts/status"],
        "verbs": ["get", "patch", "update"],
    },
]


def _crd_established(kube: Kube) -> bool:
    name = yaml.safe_load(CRD.read_text())["metadata"]["name"]
    crd = kube.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
    return any(
        c.get("type") == "Established" and c.get("status") == "True"
        for c in (crd.get("status") or {}).get("conditions") or []
    )


@pytest.fixture
async def admin(realk8s: RealK8sProcess) -> AsyncIterator[k8s.ApiClient]:
    api = api_client_for(realk8s.kubeconfig)
    kube = Kube(api)
    try:
        kube.request(
            "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", yaml.safe_load(CRD.read_text())
        )
    except k8s.ApiException as exc:
        if exc.status != 409:
            raise
    await assert_eventually(lambda: _crd_established(kube), timeout=30, message="Rollout CRD established")
    try:
        yield api
    finally:
        for path in (MWC, VWC):  # nobody serves them after this test
            try:
                kube.request("DELETE", path)
            except k8s.ApiException:
                pass
        api.close()


def _status(kube: Kube, ns: str) -> dict[str, Any]:
    return kube.request("GET", rollout_path(ns, "rollouts-nginx")).get("status") or {}


async def test_the_approver_is_the_authenticated_user(
    admin: k8s.ApiClient, realk8s: RealK8sProcess, temporal_client: Client
) -> None:
    from worker import build_worker

    kube = Kube(admin)
    ns = f"ident-{uuid.uuid4().hex[:6]}"
    queue = f"rollouts-ident-{ns}"
    kube.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
    approver = limited_user(admin, realk8s.kubeconfig, sa_namespace=ns, name="approver", rules=STATUS_WRITER)
    async with build_worker(temporal_client, admin, queue), running_stack(temporal_client, admin, queue):
        await create_deployment(admin, seed_deployment(ns))
        rollout = yaml.safe_load(SEED_ROLLOUT)
        await asyncio.to_thread(kube.request, "POST", rollout_path(ns), rollout)
        await assert_eventually(
            lambda: _status(kube, ns).get("phase") == "Healthy", timeout=60, message="Rollout Healthy"
        )
        dep = kube.get_deployment(ns, "nginx")
        dep["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.27"
        await asyncio.to_thread(kube.put_deployment, dep)

        def paused_at_1() -> bool:
            canary = _status(kube, ns).get("canaryStatus") or {}
            return canary.get("currentStepIndex") == 1 and canary.get("currentStepState") == "StepPaused"

        await assert_eventually(paused_at_1, timeout=60, message="paused at step 1")
        # The approval, under the ServiceAccount's own token, claiming other names.
        forged = {"status": {"canaryStatus": {"currentStepState": "StepReady", "approvedBy": "cto@corp"}}}
        await asyncio.to_thread(
            Kube(approver).request,
            "PATCH",
            rollout_path(ns, "rollouts-nginx", "status"),
            forged,
            content_type="application/merge-patch+json",
            query={"fieldManager": "approver:cto@corp"},
        )
        handle = temporal_client.get_workflow_handle(workflow_id_for(ns, "nginx"))

        async def approvals() -> list[tuple[int | None, str]] | None:
            st: RolloutStatus = await handle.query("status", result_type=RolloutStatus)
            return [(a.step, a.by) for a in st.approvals] or None

        got = await assert_eventually(approvals, timeout=60, message="the approval recorded")
        assert got == [(1, f"system:serviceaccount:{ns}:approver")]
        await handle.cancel()  # undo: the Deployment goes back before the stack stops
        await assert_eventually(
            lambda: (
                "rollouts.temporal.io/workflow-id"
                not in (kube.get_deployment(ns, "nginx")["metadata"].get("annotations") or {})
            ),
            timeout=60,
        )
    approver.close()
