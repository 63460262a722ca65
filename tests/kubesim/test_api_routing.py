"""Traffic-routing objects stored as plain objects: networking.k8s.io Ingress and gateway.networking.k8s.io
HTTPRoute (no controller; canary traffic routing writes them)."""

from __future__ import annotations

# The kubernetes client types every model field Optional; these tests read fields the server always sets.
# mypy: disable-error-code="union-attr,arg-type,index,operator"
import pytest
from kubernetes import client
from kubernetes.client.exceptions import NotFoundException

GROUP, VERSION, PLURAL = "gateway.networking.k8s.io", "v1", "httproutes"


def httproute(name: str, stable: int, canary: int) -> dict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {
            "parentRefs": [{"name": "gw"}],
            "rules": [
                {
                    "backendRefs": [
                        {"name": "web", "port": 80, "weight": stable},
                        {"name": "web-canary", "port": 80, "weight": canary},
                    ]
                }
            ],
        },
    }


def test_httproute_crud_with_custom_objects_api(kube_api: client.ApiClient, namespace: str) -> None:
    api = client.CustomObjectsApi(kube_api)
    created = api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, httproute("web", 100, 0))
    assert created["metadata"]["generation"] == 1 and created["kind"] == "HTTPRoute"
    rules = httproute("web", 80, 20)["spec"]["rules"]
    patched = api.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "web", {"spec": {"rules": rules}}
    )
    weights = [b["weight"] for b in patched["spec"]["rules"][0]["backendRefs"]]
    assert weights == [80, 20] and patched["metadata"]["generation"] == 2
    listed = api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    assert [i["metadata"]["name"] for i in listed["items"]] == ["web"]
    api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "web")
    with pytest.raises(NotFoundException):
        api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "web")


def test_ingress_crud(kube_api: client.ApiClient, namespace: str) -> None:
    net = client.NetworkingV1Api(kube_api)
    backend = client.V1IngressBackend(
        service=client.V1IngressServiceBackend(name="web-canary", port=client.V1ServiceBackendPort(number=80))
    )
    rule = client.V1IngressRule(
        host="web.example.com",
        http=client.V1HTTPIngressRuleValue(
            paths=[client.V1HTTPIngressPath(path="/", path_type="Prefix", backend=backend)]
        ),
    )
    ingress = client.V1Ingress(
        metadata=client.V1ObjectMeta(
            name="web-canary",
            annotations={
                "nginx.ingress.kubernetes.io/canary": "true",
                "nginx.ingress.kubernetes.io/canary-weight": "0",
            },
        ),
        spec=client.V1IngressSpec(rules=[rule]),
    )
    net.create_namespaced_ingress(namespace, ingress)
    out = net.patch_namespaced_ingress(
        "web-canary",
        namespace,
        {"metadata": {"annotations": {"nginx.ingress.kubernetes.io/canary-weight": "20"}}},
    )
    assert out.metadata.annotations["nginx.ingress.kubernetes.io/canary-weight"] == "20"
    assert out.spec.rules[0].http.paths[0].backend.service.name == "web-canary"
