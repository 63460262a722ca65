"""Builders for the user's objects in traffic tests (Service, Ingress, HTTPRoute, ReplicaSets) and readers."""

from __future__ import annotations

import json
from typing import Any, cast

from kubernetes import client

Obj = dict[str, Any]


def canonical(obj: Any) -> str:
    """Byte-level form of an object for equality: a real API server serializes fields in schema order,
    so two objects with equal canonical JSON come back byte-equal; kubesim may reorder keys on update."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def raw(fn: Any, *args: Any) -> Obj | None:
    """Read an object as its JSON body (None on 404), exactly as the API server stores it."""
    try:
        return json.loads(fn(*args, _preload_content=False).data)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def make_service(api: client.ApiClient, ns: str, name: str, selector: dict[str, str], **extra: Any) -> Obj:
    body: Any = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {"app": "web"},
            "annotations": {"owner": "team-web"},
        },
        "spec": {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": 80}], **extra},
    }
    client.CoreV1Api(api).create_namespaced_service(ns, body)
    out = raw(client.CoreV1Api(api).read_namespaced_service, name, ns)
    assert out is not None
    return out


def make_ingress(api: client.ApiClient, ns: str, name: str, service: str) -> Obj:
    body: Any = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": name,
            "namespace": ns,
            "annotations": {"nginx.ingress.kubernetes.io/rewrite-target": "/"},
        },
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": "web.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": service, "port": {"number": 80}}},
                            },
                            {
                                "path": "/static",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "static", "port": {"number": 80}}},
                            },
                        ]
                    },
                }
            ],
        },
    }
    client.NetworkingV1Api(api).create_namespaced_ingress(ns, body)
    out = raw(client.NetworkingV1Api(api).read_namespaced_ingress, name, ns)
    assert out is not None
    return out


def make_route(api: client.ApiClient, ns: str, name: str, service: str) -> Obj:
    body: Any = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "parentRefs": [{"name": "gw"}],
            "hostnames": ["web.example.com"],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [
                        {"group": "", "kind": "Service", "name": service, "port": 80, "weight": 1}
                    ],
                },
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/static"}}],
                    "backendRefs": [{"name": "static", "port": 80}],
                },
            ],
        },
    }
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object("gateway.networking.k8s.io", "v1", ns, "httproutes", body)
    return get_route(api, ns, name)


def get_route(api: client.ApiClient, ns: str, name: str) -> Obj:
    return cast(
        Obj,
        client.CustomObjectsApi(api).get_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", ns, "httproutes", name
        ),
    )


def make_replicaset(
    api: client.ApiClient,
    ns: str,
    name: str,
    labels: dict[str, str],
    replicas: int,
    image: str = "nginx:1.26",
) -> None:
    """A ReplicaSet whose pods carry ``labels`` (simulates a Deployment's stable or canary ReplicaSet)."""
    body: Any = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}]},
            },
        },
    }
    client.AppsV1Api(api).create_namespaced_replica_set(ns, body)


def scale_replicaset(api: client.ApiClient, ns: str, name: str, replicas: int) -> None:
    client.AppsV1Api(api).patch_namespaced_replica_set_scale(name, ns, {"spec": {"replicas": replicas}})


def ready_pod_ips(api: client.ApiClient, ns: str, selector: str) -> set[str]:
    """IPs of Ready pods matching a label selector string."""
    pods = raw(client.CoreV1Api(api).list_namespaced_pod, ns) or {}
    out: set[str] = set()
    wanted = dict(kv.split("=", 1) for kv in selector.split(","))
    for pod in pods.get("items") or []:
        labels = pod["metadata"].get("labels") or {}
        if any(labels.get(k) != v for k, v in wanted.items()):
            continue
        status = pod.get("status") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
        )
        if ready and status.get("podIP") and not pod["metadata"].get("deletionTimestamp"):
            out.add(status["podIP"])
    return out


def endpoint_ips(api: client.ApiClient, ns: str, service: str) -> set[str] | None:
    """Ready addresses of the Service's Endpoints (None if the Endpoints object does not exist)."""
    ep = raw(client.CoreV1Api(api).read_namespaced_endpoints, service, ns)
    if ep is None:
        return None
    return {a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []}
