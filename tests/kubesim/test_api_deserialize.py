"""Reference 5.2 check 23: every list and read deserializes in the pydantic-strict kubernetes client at every
stage of a rollout (pods mid-start included)."""

from __future__ import annotations

# The kubernetes client types every model field Optional; these tests read fields the server always sets.
# mypy: disable-error-code="union-attr,arg-type,index,operator"
import contextlib

from kubernetes import client
from kubernetes.client.exceptions import NotFoundException

from tests.helpers.kubesim_api import deployment_body, settle


def read_everything(api: client.ApiClient, namespace: str) -> client.V1Deployment:
    """List and read every kind in scope through the typed client; any ValidationError fails the test."""
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    for rs in apps.list_namespaced_replica_set(namespace).items:
        assert rs.status is not None and rs.status.replicas is not None
        with contextlib.suppress(NotFoundException):  # scaled away since the list: fine
            apps.read_namespaced_replica_set(rs.metadata.name, namespace)
            apps.read_namespaced_replica_set_scale(rs.metadata.name, namespace)
    for pod in core.list_namespaced_pod(namespace).items:
        for status in pod.status.container_statuses or []:
            assert status.image_id is not None and status.restart_count is not None
        with contextlib.suppress(NotFoundException):
            core.read_namespaced_pod_status(pod.metadata.name, namespace)
    core.list_namespaced_endpoints(namespace)
    core.list_namespaced_event(namespace)
    core.list_namespaced_service(namespace)
    client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(namespace)
    apps.read_namespaced_deployment_scale("web", namespace)
    return apps.read_namespaced_deployment("web", namespace)


def test_reads_deserialize_throughout_a_rollout(kube_api: client.ApiClient, namespace: str) -> None:
    apps, core = client.AppsV1Api(kube_api), client.CoreV1Api(kube_api)
    core.create_namespaced_service(
        namespace,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1ServiceSpec(selector={"app": "web"}, ports=[client.V1ServicePort(port=80)]),
        ),
    )
    apps.create_namespaced_deployment(namespace, deployment_body("web", replicas=3))
    read_everything(kube_api, namespace)
    settle(apps, namespace, "web")
    apps.patch_namespaced_deployment(
        "web",
        namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}}},
    )
    # Poll through the rolling update until it completes, deserializing everything on every pass.
    reads = 0
    while True:
        dep = read_everything(kube_api, namespace)
        reads += 1
        status = dep.status
        if (
            status.observed_generation == dep.metadata.generation == 2
            and status.updated_replicas == 3
            and status.available_replicas == 3
            and status.replicas == 3
        ):
            break
        assert reads < 2000, "rollout did not complete"
    assert reads >= 1
