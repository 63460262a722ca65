"""kubesim admin endpoints (audit, faults), --state persistence, apply, Tables and Warning headers."""

# The kubernetes client types every model field Optional; these tests read fields the server always sets.
# mypy: disable-error-code="union-attr,arg-type,index,operator"

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException, ConflictException

from kubesim.testing import KubeSimProcess, api_client_for, start_kubesim
from tests.helpers.kubesim_api import deployment_body, http, pod_body, wait_for

TABLE_ACCEPT = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;"
    "g=meta.k8s.io,application/json"
)


@pytest.fixture
def own_kubesim(tmp_path: Path) -> Iterator[KubeSimProcess]:
    """A private kubesim, for tests that change global settings (faults) or restart it."""
    sim = start_kubesim(tmp_path / "sim", ready_delay=0.05)
    yield sim
    sim.stop()


def test_audit_records_every_api_request(
    kubesim: KubeSimProcess, kube_api: client.ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(kube_api)
    start = kubesim.audit()[-1]["seq"]
    apps.create_namespaced_deployment(namespace, deployment_body("web"))
    apps.read_namespaced_deployment_scale("web", namespace)
    apps.patch_namespaced_deployment("web", namespace, {"spec": {"replicas": 3}}, field_manager="t")
    with pytest.raises(ApiException):
        apps.read_namespaced_deployment("missing", namespace)
    entries = [e for e in kubesim.audit(since=start) if e["namespace"] == namespace]
    seen = [(e["verb"], e["resource"], e["group"], e["subresource"], e["name"], e["code"]) for e in entries]
    assert seen == [
        ("create", "deployments", "apps", "", "", 201),
        ("get", "deployments", "apps", "scale", "web", 200),
        ("patch", "deployments", "apps", "", "web", 200),
        ("get", "deployments", "apps", "", "missing", 404),
    ]
    assert entries[0]["userAgent"].startswith("OpenAPI-Generator/")
    assert entries[0]["method"] == "POST" and entries[0]["dryRun"] is False
    assert all(e["seq"] > start and e["ts"] > 0 for e in entries)


def test_rejected_requests_write_nothing(
    kubesim: KubeSimProcess, kube_api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_pod(namespace, pod_body("p"))
    before = core.list_namespaced_pod(namespace)
    status, _, _ = http(kubesim.url, "POST", f"/api/v1/namespaces/{namespace}/pods", raw=b"{oops")
    assert status == 400
    assert [e["code"] for e in kubesim.audit()[-1:]] == [400]
    assert [p.metadata.name for p in core.list_namespaced_pod(namespace).items] == [
        p.metadata.name for p in before.items
    ]


def test_fault_injection(own_kubesim: KubeSimProcess) -> None:
    sim = own_kubesim
    api = api_client_for(sim.kubeconfig)
    apps = client.AppsV1Api(api)
    try:
        apps.create_namespaced_deployment("default", deployment_body("web"))
        assert sim.set_faults(conflictRate=1.0) == {"conflictRate": 1.0}
        assert sim.faults() == {"conflictRate": 1.0}
        with pytest.raises(ConflictException) as exc:
            apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 5}})
        assert json.loads(exc.value.body)["reason"] == "Conflict"
        apps.read_namespaced_deployment("web", "default")  # reads are not conflicted
        assert apps.read_namespaced_deployment("web", "default").spec.replicas == 2
        sim.set_faults(errorRate=1.0, errorCodes=[429])
        status, headers, body = http(sim.url, "GET", "/apis/apps/v1/namespaces/default/deployments/web")
        assert (status, headers.get("Retry-After"), body["reason"], body["kind"]) == (
            429,
            "0",
            "TooManyRequests",
            "Status",
        )
        sim.set_faults(errorRate=1.0, errorCodes=[500])
        with pytest.raises(ApiException) as failed:
            apps.read_namespaced_deployment("web", "default")
        assert failed.value.status == 500 and json.loads(failed.value.body)["reason"] == "InternalError"
        # Watches are never faulted; discovery and /version are not API resource requests.
        status, _, _ = http(sim.url, "GET", "/version")
        assert status == 200
        status, _, text = http(
            sim.url, "GET", "/apis/apps/v1/namespaces/default/deployments?watch=true&timeoutSeconds=1"
        )
        assert status == 200 and "ADDED" in str(text)
        sim.set_faults(latencyMs=1)
        assert apps.read_namespaced_deployment("web", "default").metadata.name == "web"
        sim.clear_faults()
        assert sim.faults() == {}
        status, _, body = http(sim.url, "PUT", "/kubesim/faults", {"errorRatio": 1})
        assert status == 400
        entries = [e for e in sim.audit() if e["resource"] == "deployments"]
        assert [e["code"] for e in entries][-4:] == [429, 500, 200, 200]
        sim.clear_audit()
        assert sim.audit() == []
    finally:
        api.close()


def test_state_survives_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    sim = start_kubesim(tmp_path / "one", state=state)
    try:
        api = api_client_for(sim.kubeconfig)
        core = client.CoreV1Api(api)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="keep")))
        svc = core.create_namespaced_service(
            "keep",
            client.V1Service(
                metadata=client.V1ObjectMeta(name="web"),
                spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)]),
            ),
        )
        # Persisted within about a second while running, not only at shutdown.
        wait_for(lambda: state.exists() and "keep" in state.read_text(), what="state file")
        api.close()
    finally:
        assert sim.stop() == 0
    assert not list(state.parent.glob(".kubesim-state-*"))  # atomic writes leave no temp files
    sim = start_kubesim(tmp_path / "two", state=state)
    try:
        api = api_client_for(sim.kubeconfig)
        core = client.CoreV1Api(api)
        again = core.read_namespaced_service("web", "keep")
        assert again.metadata.uid == svc.metadata.uid and again.spec.cluster_ip == svc.spec.cluster_ip
        assert int(core.list_namespace().metadata.resource_version) >= int(svc.metadata.resource_version)
        assert {n.metadata.name for n in core.list_namespace().items} >= {
            "default",
            "kube-system",
            "kube-public",
            "kube-node-lease",
            "keep",
        }
        api.close()
    finally:
        sim.stop()


def test_server_side_apply_creates_then_merges(kubesim: KubeSimProcess, namespace: str) -> None:
    path = (
        f"/apis/apps/v1/namespaces/{namespace}/deployments/web?fieldManager=kubectl"
        "&fieldValidation=Strict&force=false"
    )
    body = deployment_body("web")
    status, _, out = http(kubesim.url, "PATCH", path, body, content_type="application/apply-patch+yaml")
    assert status == 201 and out["metadata"]["managedFields"][0]["operation"] == "Apply"
    body["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.27"
    status, _, out = http(kubesim.url, "PATCH", path, body, content_type="application/apply-patch+yaml")
    assert status == 200 and out["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    status, _, out = http(
        kubesim.url,
        "PATCH",
        path.replace("fieldManager=kubectl&", ""),
        body,
        content_type="application/apply-patch+yaml",
    )
    assert status == 400
    status, _, out = http(
        kubesim.url, "PATCH", path, {"spec": {"replicas": 1}}, content_type="application/merge-patch+json"
    )
    assert status == 422  # force is only for apply


def test_table_output_for_get_list_and_watch(
    kubesim: KubeSimProcess, kube_api: client.ApiClient, namespace: str
) -> None:
    client.AppsV1Api(kube_api).create_namespaced_deployment(namespace, deployment_body("web"))
    base = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    status, headers, table = http(kubesim.url, "GET", base + "?limit=500", headers={"Accept": TABLE_ACCEPT})
    assert status == 200 and headers["Content-Type"].startswith("application/json;as=Table")
    assert table["kind"] == "Table" and table["metadata"]["resourceVersion"]
    assert [c["name"] for c in table["columnDefinitions"]][:5] == [
        "Name",
        "Ready",
        "Up-to-date",
        "Available",
        "Age",
    ]
    assert table["rows"][0]["object"]["metadata"]["name"] == "web"
    status, _, one = http(kubesim.url, "GET", base + "/web", headers={"Accept": TABLE_ACCEPT})
    assert one["kind"] == "Table" and len(one["rows"]) == 1
    status, _, text = http(
        kubesim.url, "GET", base + "?watch=true&timeoutSeconds=1", headers={"Accept": TABLE_ACCEPT}
    )
    first = json.loads(str(text).splitlines()[0])
    assert first["type"] == "ADDED" and first["object"]["kind"] == "Table"


def test_endpoints_warning_header(kubesim: KubeSimProcess, namespace: str) -> None:
    status, headers, _ = http(kubesim.url, "GET", f"/api/v1/namespaces/{namespace}/endpoints")
    assert status == 200
    assert headers["Warning"] == (
        '299 - "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"'
    )
