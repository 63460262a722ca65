"""kubesim REST semantics through the real kubernetes client (reference 2.1, 4 and 5.2 checks 19-23, 27)."""

# The kubernetes client types every model field Optional; these tests read fields the server always sets.
# mypy: disable-error-code="union-attr,arg-type,index,operator"

from __future__ import annotations

import copy
import json

import pytest
from kubernetes import client
from kubernetes.client.exceptions import (
    ApiException,
    ConflictException,
    NotFoundException,
    UnprocessableEntityException,
)

from kubesim.testing import KubeSimProcess
from tests.helpers.kubesim_api import deployment_body, http, pod_body, settle, wait_for


@pytest.fixture
def apps(kube_api: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(kube_api)


@pytest.fixture
def core(kube_api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(kube_api)


def test_create_read_defaults_and_status_shape(apps: client.AppsV1Api, namespace: str) -> None:
    created = apps.create_namespaced_deployment(namespace, deployment_body("web"))
    assert created.metadata.generation == 1
    assert created.metadata.uid and created.metadata.resource_version
    assert created.metadata.creation_timestamp is not None
    spec = created.spec
    assert spec.strategy.type == "RollingUpdate"
    assert spec.strategy.rolling_update.max_surge == "25%"
    assert spec.revision_history_limit == 10 and spec.progress_deadline_seconds == 600
    pod_spec = spec.template.spec
    assert (pod_spec.restart_policy, pod_spec.dns_policy, pod_spec.scheduler_name) == (
        "Always",
        "ClusterFirst",
        "default-scheduler",
    )
    assert pod_spec.termination_grace_period_seconds == 30
    container = pod_spec.containers[0]
    assert container.image_pull_policy == "IfNotPresent"
    assert container.termination_message_path == "/dev/termination-log"
    assert container.ports[0].protocol == "TCP"
    read = apps.read_namespaced_deployment("web", namespace)
    assert read.metadata.uid == created.metadata.uid
    assert read.kind == "Deployment" and read.api_version == "apps/v1"


def test_stale_replace_conflicts_and_leaves_object_unchanged(apps: client.AppsV1Api, namespace: str) -> None:
    apps.create_namespaced_deployment(namespace, deployment_body("web", replicas=0))
    current = settle(apps, namespace, "web")
    stale = copy.deepcopy(current)
    current.spec.replicas = 4
    updated = apps.replace_namespaced_deployment("web", namespace, current)
    assert updated.metadata.generation == 2
    stale.spec.replicas = 7
    with pytest.raises(ConflictException) as exc:
        apps.replace_namespaced_deployment("web", namespace, stale)
    assert exc.value.status == 409
    body = json.loads(exc.value.body)
    assert body["reason"] == "Conflict"
    assert body["message"] == (
        'Operation cannot be fulfilled on deployments.apps "web": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    assert body["details"] == {"name": "web", "group": "apps", "kind": "deployments"}
    now = apps.read_namespaced_deployment("web", namespace)
    assert now.spec.replicas == 4 and now.metadata.generation == 2
    # An empty resourceVersion is an unconditional update.
    stale.metadata.resource_version = None
    assert apps.replace_namespaced_deployment("web", namespace, stale).spec.replicas == 7


def test_already_exists_and_not_found(apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str) -> None:
    apps.create_namespaced_deployment(namespace, deployment_body("web"))
    with pytest.raises(ConflictException) as exc:
        apps.create_namespaced_deployment(namespace, deployment_body("web"))
    body = json.loads(exc.value.body)
    assert body["reason"] == "AlreadyExists"
    assert body["message"] == 'deployments.apps "web" already exists'
    with pytest.raises(NotFoundException) as nf:
        apps.read_namespaced_deployment("missing", namespace)
    assert nf.value.status == 404 and nf.value.reason == "Not Found"
    assert json.loads(nf.value.body) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'deployments.apps "missing" not found',
        "reason": "NotFound",
        "details": {"name": "missing", "group": "apps", "kind": "deployments"},
        "code": 404,
    }
    with pytest.raises(NotFoundException) as nf:
        core.read_namespaced_pod("missing", namespace)
    assert json.loads(nf.value.body)["details"] == {"name": "missing", "kind": "pods"}


def test_invalid_patch_is_422_with_causes_and_changes_nothing(apps: client.AppsV1Api, namespace: str) -> None:
    apps.create_namespaced_deployment(namespace, deployment_body("web", replicas=0))
    created = settle(apps, namespace, "web")
    with pytest.raises(UnprocessableEntityException) as exc:
        apps.patch_namespaced_deployment("web", namespace, {"spec": {"replicas": -1}})
    body = json.loads(exc.value.body)
    assert body["reason"] == "Invalid" and body["code"] == 422
    assert body["message"] == (
        'Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be '
        "greater than or equal to 0"
    )
    assert body["details"]["kind"] == "Deployment"
    assert body["details"]["causes"][0] == {
        "reason": "FieldValueInvalid",
        "field": "spec.replicas",
        "message": "Invalid value: -1: must be greater than or equal to 0",
    }
    assert (
        apps.read_namespaced_deployment("web", namespace).metadata.resource_version
        == created.metadata.resource_version
    )


def test_selector_is_immutable(apps: client.AppsV1Api, namespace: str) -> None:
    apps.create_namespaced_deployment(namespace, deployment_body("web", replicas=0))
    created = settle(apps, namespace, "web")
    patch = {
        "spec": {
            "selector": {"matchLabels": {"app": "other"}},
            "template": {"metadata": {"labels": {"app": "other"}}},
        }
    }
    with pytest.raises(UnprocessableEntityException) as exc:
        apps.patch_namespaced_deployment("web", namespace, patch)
    body = json.loads(exc.value.body)
    assert body["details"]["causes"][0]["field"] == "spec.selector"
    assert "field is immutable" in body["message"]
    now = apps.read_namespaced_deployment("web", namespace)
    assert now.spec.selector.match_labels == {"app": "web"}
    assert now.metadata.resource_version == created.metadata.resource_version


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d["spec"].pop("selector"), "spec.selector"),
        (
            lambda d: d["spec"]["template"]["metadata"].update(labels={"app": "nope"}),
            "spec.template.metadata.labels",
        ),
        (
            lambda d: d["spec"].update(
                strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}
            ),
            "spec.strategy.rollingUpdate.maxUnavailable",
        ),
        (
            lambda d: d["spec"]["template"]["spec"]["containers"].append({"name": "nginx", "image": "x"}),
            "spec.template.spec.containers[1].name",
        ),
        (lambda d: d["metadata"].update(name="Bad_Name"), "metadata.name"),
        (lambda d: d["metadata"].update(labels={"bad key!": "v"}), "metadata.labels"),
        (
            lambda d: d["spec"].update(
                strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "5"}}
            ),
            "spec.strategy.rollingUpdate.maxSurge",
        ),
    ],
)
def test_invalid_creates(
    kubesim: KubeSimProcess, apps: client.AppsV1Api, namespace: str, mutate: object, field: str
) -> None:
    body = deployment_body("web")
    mutate(body)  # type: ignore[operator]
    # Raw HTTP: the client's own pydantic models would reject some of these bodies before sending.
    status, _, out = http(kubesim.url, "POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", body)
    assert (status, out["reason"]) == (422, "Invalid"), out
    assert field in [c["field"] for c in out["details"]["causes"]]
    assert apps.list_namespaced_deployment(namespace).items == []


def test_patch_types(apps: client.AppsV1Api, namespace: str) -> None:
    apps.create_namespaced_deployment(namespace, deployment_body("web"))
    out = apps.patch_namespaced_deployment(
        "web", namespace, [{"op": "replace", "path": "/spec/replicas", "value": 2}]
    )
    assert out.spec.replicas == 2
    out = apps.patch_namespaced_deployment(
        "web", namespace, {"spec": {"replicas": 3}}, _content_type="application/merge-patch+json"
    )
    assert out.spec.replicas == 3
    out = apps.patch_namespaced_deployment(
        "web", namespace, {"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "x"}]}}}}
    )
    container = out.spec.template.spec.containers[0]
    assert container.image == "x" and container.ports[0].container_port == 80
    # A JSON Patch test op that fails is 422 and writes nothing.
    with pytest.raises(UnprocessableEntityException):
        apps.patch_namespaced_deployment(
            "web",
            namespace,
            [
                {"op": "test", "path": "/spec/replicas", "value": 99},
                {"op": "replace", "path": "/spec/replicas", "value": 9},
            ],
        )
    assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 3


def test_kubectl_set_image_body_and_generation(
    kubesim: KubeSimProcess, apps: client.AppsV1Api, namespace: str
) -> None:
    apps.create_namespaced_deployment(namespace, deployment_body("nginx"))
    body = (
        b'{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"nginx"}],'
        b'"containers":[{"image":"nginx:1.27","name":"nginx"}]}}}}'
    )
    status, _, out = http(
        kubesim.url,
        "PATCH",
        f"/apis/apps/v1/namespaces/{namespace}/deployments/nginx?fieldManager=kubectl-set",
        raw=body,
        content_type="application/strategic-merge-patch+json",
    )
    assert status == 200, out
    assert out["metadata"]["generation"] == 2
    assert out["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    ports = out["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert ports == [{"containerPort": 80, "protocol": "TCP"}]
    assert any(m["manager"] == "kubectl-set" for m in out["metadata"]["managedFields"])


def test_resource_version_semantics(apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str) -> None:
    # A Service (no controller writes it): a read returns the rv of the preceding write; no-ops keep it.
    svc = core.create_namespaced_service(
        namespace,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)]),
        ),
    )
    patched = core.patch_namespaced_service("web", namespace, {"metadata": {"labels": {"x": "1"}}})
    assert int(patched.metadata.resource_version) > int(svc.metadata.resource_version)
    assert (
        core.read_namespaced_service("web", namespace).metadata.resource_version
        == patched.metadata.resource_version
    )
    again = core.patch_namespaced_service("web", namespace, {"metadata": {"labels": {"x": "1"}}})
    assert again.metadata.resource_version == patched.metadata.resource_version
    # A Deployment at rest: a no-op patch does not bump the rv either.
    apps.create_namespaced_deployment(namespace, deployment_body("web", replicas=0))
    before = settle(apps, namespace, "web")
    noop = apps.patch_namespaced_deployment("web", namespace, {"spec": {"replicas": 0}})
    assert noop.metadata.resource_version == before.metadata.resource_version
    # Status writes and scale reads leave generation alone.
    gen = noop.metadata.generation
    apps.patch_namespaced_deployment_status("web", namespace, {"status": {"observedGeneration": gen}})
    apps.read_namespaced_deployment_scale("web", namespace)
    assert apps.read_namespaced_deployment("web", namespace).metadata.generation == gen
    # A resourceVersion inside a patch body is a precondition.
    with pytest.raises(ConflictException):
        apps.patch_namespaced_deployment(
            "web", namespace, {"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 5}}
        )
    assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 0


def test_status_subresource_ignores_spec_and_main_ignores_status(
    core: client.CoreV1Api, namespace: str
) -> None:
    # A Service: no controller writes its status, so what we read back is what the API did.
    core.create_namespaced_service(
        namespace,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1ServiceSpec(selector={"app": "web"}, ports=[client.V1ServicePort(port=80)]),
        ),
    )
    lb = {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}
    out = core.patch_namespaced_service_status(
        "web", namespace, {"spec": {"selector": {"app": "x"}}, "status": lb}
    )
    assert out.spec.selector == {"app": "web"} and out.status.load_balancer.ingress[0].ip == "192.0.2.1"
    out = core.patch_namespaced_service("web", namespace, {"status": {"loadBalancer": {}}})
    assert out.status.load_balancer.ingress[0].ip == "192.0.2.1"


def test_scale_subresource(kubesim: KubeSimProcess, apps: client.AppsV1Api, namespace: str) -> None:
    apps.create_namespaced_deployment(namespace, deployment_body("web"))
    scale = apps.read_namespaced_deployment_scale("web", namespace)
    assert scale.spec.replicas == 2 and scale.status.selector == "app=web"
    out = apps.patch_namespaced_deployment_scale(
        "web", namespace, {"spec": {"replicas": 5}}, _content_type="application/merge-patch+json"
    )
    assert out.spec.replicas == 5
    dep = apps.read_namespaced_deployment("web", namespace)
    assert dep.spec.replicas == 5 and dep.metadata.generation == 2
    # PUT with a stale rv (kubectl scale --current-replicas) is a conflict.
    scale = apps.read_namespaced_deployment_scale("web", namespace)
    apps.patch_namespaced_deployment("web", namespace, {"metadata": {"labels": {"bump": "1"}}})
    scale.spec.replicas = 1
    with pytest.raises(ConflictException):
        apps.replace_namespaced_deployment_scale("web", namespace, scale)

    def put_scale() -> bool:
        # Controllers write the Deployment's status meanwhile: retry on conflict, as real clients do.
        scale = apps.read_namespaced_deployment_scale("web", namespace)
        scale.spec.replicas = 1
        try:
            return apps.replace_namespaced_deployment_scale("web", namespace, scale).spec.replicas == 1
        except ConflictException:
            return False

    wait_for(put_scale, what="an unconflicted scale update")
    scale_path = f"/apis/apps/v1/namespaces/{namespace}/deployments/web/scale"
    status, _, body = http(
        kubesim.url,
        "PATCH",
        scale_path,
        {"spec": {"replicas": -2}},
        content_type="application/merge-patch+json",
    )
    assert status == 422 and body["details"]["kind"] == "Scale"


def test_generate_name_and_namespace_checks(
    kubesim: KubeSimProcess, core: client.CoreV1Api, namespace: str
) -> None:
    pod = pod_body("")
    pod.metadata.name = None
    pod.metadata.generate_name = "web-"
    created = core.create_namespaced_pod(namespace, pod)
    assert created.metadata.name.startswith("web-") and len(created.metadata.name) == 9
    assert set(created.metadata.name[4:]) <= set("bcdfghjklmnpqrstvwxz2456789")
    other = pod_body("p")
    other.metadata.namespace = "default"
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_pod(namespace, other)
    assert exc.value.status == 400
    assert json.loads(exc.value.body)["message"] == (
        "the namespace of the provided object does not match the namespace sent on the request"
    )
    with pytest.raises(NotFoundException):
        core.create_namespaced_pod("no-such-namespace", pod_body("p"))
    unnamed = pod_body("")
    unnamed.metadata.name = None
    with pytest.raises(UnprocessableEntityException):
        core.create_namespaced_pod(namespace, unnamed)


def test_dry_run_leaves_no_trace(kubesim: KubeSimProcess, apps: client.AppsV1Api, namespace: str) -> None:
    kubesim.clear_audit()
    out = apps.create_namespaced_deployment(namespace, deployment_body("web"), dry_run="All")
    assert out.metadata.name == "web" and out.spec.replicas == 2
    with pytest.raises(NotFoundException):
        apps.read_namespaced_deployment("web", namespace)
    apps.create_namespaced_deployment(namespace, deployment_body("web"))
    created = settle(apps, namespace, "web")
    out = apps.patch_namespaced_deployment("web", namespace, {"spec": {"replicas": 5}}, dry_run="All")
    assert out.spec.replicas == 5
    apps.delete_namespaced_deployment("web", namespace, dry_run="All")
    now = apps.read_namespaced_deployment("web", namespace)
    assert now.spec.replicas == 2 and now.metadata.resource_version == created.metadata.resource_version
    dry = [e for e in kubesim.audit() if e["dryRun"]]
    assert [e["verb"] for e in dry] == ["create", "patch", "delete"]


def test_strict_field_validation(kubesim: KubeSimProcess, apps: client.AppsV1Api, namespace: str) -> None:
    body = deployment_body("web")
    body["spec"]["replicaz"] = 3
    status, _, out = http(
        kubesim.url, "POST", f"/apis/apps/v1/namespaces/{namespace}/deployments?fieldValidation=Strict", body
    )
    assert status == 400 and out["reason"] == "BadRequest"
    assert out["message"] == 'strict decoding error: unknown field "spec.replicaz"'
    assert apps.list_namespaced_deployment(namespace).items == []
    # Warn (the default) prunes the field and says so in a Warning header.
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    status, headers, out = http(kubesim.url, "POST", path, body)
    assert status == 201 and "replicaz" not in out["spec"]
    assert 'unknown field \\"spec.replicaz\\"' in headers.get("Warning", "")
    status, _, out = http(
        kubesim.url,
        "PATCH",
        f"/apis/apps/v1/namespaces/{namespace}/deployments/web?fieldValidation=Strict",
        {"spec": {"template": {"spec": {"containers": [{"name": "nginx", "imagez": "x"}]}}}},
        content_type="application/strategic-merge-patch+json",
    )
    assert status == 400
    assert out["message"] == 'strict decoding error: unknown field "spec.template.spec.containers[0].imagez"'
    status, _, out = http(
        kubesim.url,
        "PATCH",
        f"/apis/apps/v1/namespaces/{namespace}/deployments/web?fieldValidation=Strict",
        raw=b'{"spec": {"replicas": 1, "replicas": 2}}',
        content_type="application/merge-patch+json",
    )
    assert (status, out["message"]) == (400, 'strict decoding error: duplicate field "replicas"')
    assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 2


def test_yaml_body_is_accepted(kubesim: KubeSimProcess, namespace: str) -> None:
    manifest = (
        f"apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: {namespace}\n"
        "spec:\n  ports:\n  - port: 80\n"
    )
    status, _, out = http(
        kubesim.url,
        "POST",
        f"/api/v1/namespaces/{namespace}/services",
        raw=manifest.encode(),
        content_type="application/yaml",
    )
    assert status == 201 and out["spec"]["ports"][0]["targetPort"] == 80


def test_bad_input_never_corrupts_the_store(
    kubesim: KubeSimProcess, apps: client.AppsV1Api, namespace: str
) -> None:
    apps.create_namespaced_deployment(namespace, deployment_body("web"))
    created = settle(apps, namespace, "web")
    base = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    cases = [
        ("POST", base, b'{"metadata": {"name": "x"', None, 400, "BadRequest"),
        ("PUT", base + "/web", b"not json", None, 400, "BadRequest"),
        ("PATCH", base + "/web", b'{"spec": ', "application/merge-patch+json", 400, "BadRequest"),
        ("PATCH", base + "/web", b'{"spec": {}}', "text/plain", 415, "UnsupportedMediaType"),
        (
            "PATCH",
            base + "/web",
            b'[{"op": "replace", "path": "/spec/replicas", "value": "two"}]',
            "application/json-patch+json",
            400,
            "BadRequest",
        ),
        (
            "PATCH",
            base + "/web",
            b'[{"op": "remove", "path": "/spec/nothing"}]',
            "application/json-patch+json",
            422,
            "Invalid",
        ),
        ("POST", base, json.dumps(deployment_body("Invalid_Name")).encode(), None, 422, "Invalid"),
        ("PUT", base + "/web", json.dumps(deployment_body("other")).encode(), None, 400, "BadRequest"),
        (
            "PATCH",
            base + "/web",
            b'{"spec": {"replicas": "3"}}',
            "application/merge-patch+json",
            400,
            "BadRequest",
        ),
        ("POST", base, json.dumps(deployment_body("typed", replicas="3")).encode(), None, 400, "BadRequest"),
        (
            "PATCH",
            base + "/web",
            b'{"metadata": {"labels": {"n": 1}}}',
            "application/strategic-merge-patch+json",
            400,
            "BadRequest",
        ),
        (
            "POST",
            "/api/v1/namespaces/" + namespace + "/pods",
            json.dumps(deployment_body("k")).encode(),
            None,
            400,
            "BadRequest",
        ),
    ]
    for method, path, raw, ctype, code, reason in cases:
        status, _, out = http(kubesim.url, method, path, raw=raw, content_type=ctype)
        assert (status, out["reason"], out["kind"]) == (code, reason, "Status"), (method, path, raw, out)
    now = apps.read_namespaced_deployment("web", namespace)
    assert now.metadata.resource_version == created.metadata.resource_version
    assert [d.metadata.name for d in apps.list_namespaced_deployment(namespace).items] == ["web"]


def test_unknown_paths_are_404_status(kubesim: KubeSimProcess) -> None:
    for path in (
        "/apis/apps/v1/namespaces/default/widgets",
        "/api/v1/namespaces/default/pods/p/exec/x",
        "/apis/apps/v1/namespaces/default/deployments/x/bogus",
    ):
        status, _, body = http(kubesim.url, "GET", path)
        assert status == 404
        assert body == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "the server could not find the requested resource",
            "reason": "NotFound",
            "details": {},
            "code": 404,
        }


def test_health_and_version(kubesim: KubeSimProcess) -> None:
    for path in ("/healthz", "/readyz", "/livez"):
        assert http(kubesim.url, "GET", path)[2] == "ok"
    status, _, version = http(kubesim.url, "GET", "/version")
    assert status == 200 and version["major"] == "1" and version["gitVersion"].startswith("v1.37")


def test_delete_returns_status_or_object(
    apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    created = apps.create_namespaced_deployment(namespace, deployment_body("web"))
    out = apps.delete_namespaced_deployment("web", namespace)
    assert out["status"] == "Success"
    assert out["details"] == {
        "name": "web",
        "group": "apps",
        "kind": "deployments",
        "uid": created.metadata.uid,
    }
    core.create_namespaced_pod(namespace, pod_body("p"))
    pod = core.delete_namespaced_pod("p", namespace)
    assert pod.metadata.name == "p"
    with pytest.raises(NotFoundException):
        core.read_namespaced_pod("p", namespace)


def test_delete_preconditions(apps: client.AppsV1Api, namespace: str) -> None:
    apps.create_namespaced_deployment(namespace, deployment_body("web"))
    with pytest.raises(ConflictException):
        apps.delete_namespaced_deployment(
            "web",
            namespace,
            body=client.V1DeleteOptions(preconditions=client.V1Preconditions(resource_version="1")),
        )
    with pytest.raises(ConflictException):
        apps.delete_namespaced_deployment(
            "web", namespace, body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="nope"))
        )
    apps.read_namespaced_deployment("web", namespace)


def test_orphan_strips_owner_references(
    apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    rs_body = deployment_body("web")
    rs_body["kind"] = "ReplicaSet"
    rs_body["spec"].pop("strategy", None)
    rs_body["spec"]["replicas"] = 0  # no pods from a replicaset controller, if one runs
    rs = apps.create_namespaced_replica_set(namespace, rs_body)
    pod = pod_body("dependent", {"other": "x"})
    pod.metadata.owner_references = [
        client.V1OwnerReference(api_version="apps/v1", kind="ReplicaSet", name="web", uid=rs.metadata.uid)
    ]
    core.create_namespaced_pod(namespace, pod)
    apps.delete_namespaced_replica_set("web", namespace, propagation_policy="Orphan")
    with pytest.raises(NotFoundException):
        apps.read_namespaced_replica_set("web", namespace)
    assert core.read_namespaced_pod("dependent", namespace).metadata.owner_references is None


def test_foreground_marks_owner(apps: client.AppsV1Api, namespace: str) -> None:
    body = deployment_body("web")
    body["metadata"]["finalizers"] = ["example.com/hold"]  # keeps it around whatever the GC does
    apps.create_namespaced_deployment(namespace, body)
    apps.delete_namespaced_deployment("web", namespace, propagation_policy="Foreground")
    dep = apps.read_namespaced_deployment("web", namespace)
    assert dep.metadata.deletion_timestamp is not None
    assert "example.com/hold" in dep.metadata.finalizers
    # The GC controller (if running) removes foregroundDeletion once there are no dependents left.
    apps.patch_namespaced_deployment(
        "web", namespace, {"metadata": {"finalizers": None}}, _content_type="application/merge-patch+json"
    )
    with pytest.raises(NotFoundException):
        apps.read_namespaced_deployment("web", namespace)


def test_deletecollection_by_label(apps: client.AppsV1Api, namespace: str) -> None:
    for name, track in (("a", "canary"), ("b", "canary"), ("c", "stable")):
        body = deployment_body(name, labels={"app": name, "track": track})
        body["spec"]["replicas"] = 0
        apps.create_namespaced_deployment(namespace, body)
    apps.delete_collection_namespaced_deployment(namespace, label_selector="track=canary")
    assert [d.metadata.name for d in apps.list_namespaced_deployment(namespace).items] == ["c"]


def test_service_defaults_and_cluster_ip_kept(core: client.CoreV1Api, namespace: str) -> None:
    svc = client.V1Service(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1ServiceSpec(selector={"app": "web"}, ports=[client.V1ServicePort(port=80)]),
    )
    created = core.create_namespaced_service(namespace, svc)
    assert created.spec.type == "ClusterIP" and created.spec.cluster_ip.startswith("10.")
    assert created.spec.ports[0].target_port == 80 and created.spec.ports[0].protocol == "TCP"
    assert created.spec.ip_families == ["IPv4"] and created.spec.session_affinity == "None"
    ip = created.spec.cluster_ip
    created.spec.cluster_ip = None
    created.spec.cluster_ips = None
    created.spec.selector = {"app": "web", "track": "canary"}
    replaced = core.replace_namespaced_service("web", namespace, created)
    assert replaced.spec.cluster_ip == ip and replaced.spec.cluster_ips == [ip]
    patched = core.patch_namespaced_service("web", namespace, {"spec": {"selector": {"track": "stable"}}})
    assert patched.spec.selector == {"app": "web", "track": "stable"}


@pytest.mark.parametrize("policy", ["Foreground", "Background"])
def test_propagated_delete_removes_dependents(
    apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str, policy: str
) -> None:
    apps.create_namespaced_deployment(namespace, deployment_body("web", replicas=2))
    wait_for(lambda: len(core.list_namespaced_pod(namespace).items) == 2, what="2 pods")
    apps.delete_namespaced_deployment("web", namespace, propagation_policy=policy)
    if policy == "Background":
        with pytest.raises(NotFoundException):
            apps.read_namespaced_deployment("web", namespace)

    def all_gone() -> bool:
        return not (
            apps.list_namespaced_deployment(namespace).items
            or apps.list_namespaced_replica_set(namespace).items
            or core.list_namespaced_pod(namespace).items
        )

    wait_for(all_gone, what="deployment, replicasets and pods to be deleted")


def test_namespace_lifecycle(core: client.CoreV1Api) -> None:
    ns = core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="lifecycle")))
    assert ns.status.phase == "Active"
    assert ns.metadata.labels == {"kubernetes.io/metadata.name": "lifecycle"}
    core.create_namespaced_pod("lifecycle", pod_body("p"))
    core.delete_namespace("lifecycle")
    with pytest.raises(NotFoundException):
        core.read_namespace("lifecycle")
    assert core.list_namespaced_pod("lifecycle").items == []
    with pytest.raises(ApiException) as exc:
        core.delete_namespace("default")
    assert exc.value.status == 403 and json.loads(exc.value.body)["reason"] == "Forbidden"
