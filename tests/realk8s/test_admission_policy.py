"""The shipped ValidatingAdmissionPolicy on the real control plane (security review F9, bypass B).

A Deployment editor may not remove or change the rollout marks of a Deployment under a Rollout (the
workload-type label that puts it under the webhook, our annotations); the controller's ServiceAccount
may. Other edits by the editor pass. The policy is deploy/declarative/admission-policy.yaml, with its
ServiceAccount namespace set to the test's and its binding limited to that namespace.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from kube.client import Kube
from kubesim.testing import api_client_for
from realk8s.testing import RealK8sProcess
from tests.helpers.cluster import seed_deployment
from tests.helpers.poll import wait_for
from tests.helpers.rbac import UPDATE_DEPLOYMENTS, limited_user

POLICY = Path(__file__).resolve().parents[2] / "deploy" / "declarative" / "admission-policy.yaml"
VAP = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies"
BINDINGS = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings"
MERGE = "application/merge-patch+json"


def _install(kube: Kube, ns: str) -> str:
    text = POLICY.read_text().replace("system:serviceaccount:rollout-system:", f"system:serviceaccount:{ns}:")
    policy, binding = list(yaml.safe_load_all(text))
    name = f"temporal-rollouts-marks-{ns}"
    policy["metadata"]["name"] = binding["metadata"]["name"] = binding["spec"]["policyName"] = name
    only_ns = {"matchLabels": {"kubernetes.io/metadata.name": ns}}
    binding["spec"]["matchResources"] = {"namespaceSelector": only_ns}
    kube.request("POST", VAP, policy)
    kube.request("POST", BINDINGS, binding)
    return name


def _refused(kube: Kube, ns: str, patch: dict[str, Any], *, dry_run: bool = False) -> str:
    """The refusal's message, or "" when the write went through."""
    try:
        kube.request(
            "PATCH",
            Kube.deployment_path(ns, "nginx"),
            patch,
            content_type=MERGE,
            query={"dryRun": "All"} if dry_run else None,
        )
    except k8s.ApiException as exc:
        assert exc.status in (403, 422), exc.body
        return str(exc.body)
    return ""


@pytest.fixture
def cluster(realk8s: RealK8sProcess) -> Iterator[tuple[Kube, str]]:
    api = api_client_for(realk8s.kubeconfig)
    kube = Kube(api)
    ns = f"vap-{uuid.uuid4().hex[:6]}"
    kube.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
    name = _install(kube, ns)
    try:
        yield kube, ns
    finally:
        for path in (f"{BINDINGS}/{name}", f"{VAP}/{name}"):
            kube.request("DELETE", path)
        api.close()


def test_editors_cannot_drop_the_marks_the_controller_can(
    cluster: tuple[Kube, str], realk8s: RealK8sProcess
) -> None:
    admin, ns = cluster
    version = admin.request("GET", "/version")
    assert (int(version["major"]), int(version["minor"].rstrip("+"))) >= (1, 30)  # VAP v1 is GA
    dep = seed_deployment(ns, replicas=1)
    dep["metadata"]["labels"]["rollouts.kruise.io/workload-type"] = "deployment"
    dep["metadata"]["annotations"] = {
        "rollouts.temporal.io/workflow-id": f"rollout/{ns}/nginx",
        "rollouts.temporal.io/original-strategy": '{"type": "RollingUpdate"}',
    }
    admin.request("POST", Kube.deployment_path(ns), dep)
    editor = Kube(
        limited_user(
            admin.api_client, realk8s.kubeconfig, sa_namespace=ns, name="editor", rules=UPDATE_DEPLOYMENTS
        )
    )
    controller = Kube(
        limited_user(
            admin.api_client,
            realk8s.kubeconfig,
            sa_namespace=ns,
            name="rollout-controller",
            rules=UPDATE_DEPLOYMENTS,
        )
    )
    drop_label = {"metadata": {"labels": {"rollouts.kruise.io/workload-type": None}}}
    # The policy takes a moment to load: poll with server-side dry runs (nothing is stored).
    wait_for(lambda: _refused(editor, ns, drop_label, dry_run=True), timeout=30, what="the policy in force")

    # F9 bypass B: `kubectl label deployment nginx rollouts.kruise.io/workload-type-` by an editor.
    said = _refused(editor, ns, drop_label)
    assert "only they may remove or change them" in said and "ValidatingAdmissionPolicy" in said
    assert _refused(editor, ns, {"metadata": {"annotations": {"rollouts.temporal.io/workflow-id": None}}})
    assert _refused(
        editor, ns, {"metadata": {"annotations": {"rollouts.temporal.io/workflow-id": "rollout/other/web"}}}
    )
    kept = admin.get_deployment(ns, "nginx")["metadata"]
    assert kept["labels"]["rollouts.kruise.io/workload-type"] == "deployment"
    assert kept["annotations"]["rollouts.temporal.io/workflow-id"] == f"rollout/{ns}/nginx"
    # Other edits pass: replicas, the editor's own labels, a re-parked strategy, a new mark.
    assert not _refused(editor, ns, {"spec": {"replicas": 2}, "metadata": {"labels": {"team": "a"}}})
    parked = '{"rollingUpdate": {"maxSurge": 1}, "type": "RollingUpdate"}'
    assert not _refused(
        editor, ns, {"metadata": {"annotations": {"rollouts.temporal.io/original-strategy": parked}}}
    )
    # The controller's ServiceAccount hands the Deployment back: it may.
    assert not _refused(
        controller,
        ns,
        {
            "metadata": {
                "labels": {"rollouts.kruise.io/workload-type": None},
                "annotations": {"rollouts.temporal.io/workflow-id": None},
            }
        },
    )
    after = admin.get_deployment(ns, "nginx")["metadata"]
    assert "rollouts.kruise.io/workload-type" not in after["labels"]
    assert "rollouts.temporal.io/workflow-id" not in after["annotations"]
