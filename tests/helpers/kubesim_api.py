"""Helpers for the kubesim API tests: object builders, raw HTTP, polling."""

# The kubernetes client types every model field Optional; these tests read fields the server always sets.
# mypy: disable-error-code="union-attr,arg-type,index,operator"

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, TypeVar

from kubernetes import client

from tests.helpers.poll import wait_for

T = TypeVar("T")


def deployment_body(
    name: str, *, replicas: int = 2, image: str = "nginx:1.26", labels: dict | None = None, **spec: Any
) -> dict[str, Any]:
    labels = labels or {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {"containers": [{"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}]},
            },
            **spec,
        },
    }


def pod_body(name: str, labels: dict[str, str] | None = None) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels or {}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox:1.36")]),
    )


def http(
    base: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    content_type: str | None = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> tuple[int, dict[str, str], Any]:
    """A raw HTTP request; returns (status, headers, decoded JSON body or text)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    hdrs = dict(headers or {})
    if content_type:
        hdrs["Content-Type"] = content_type
    req = urllib.request.Request(base + path, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, rheaders, payload = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        status, rheaders, payload = err.code, dict(err.headers), err.read()
    try:
        return status, rheaders, json.loads(payload)
    except ValueError:
        return status, rheaders, payload.decode()


def deployment_settled(apps: client.AppsV1Api, namespace: str, name: str) -> client.V1Deployment | None:
    """The Deployment once the controllers are done with it (complete rollout, all replicas available)."""
    dep = apps.read_namespaced_deployment(name, namespace)
    status = dep.status
    if status is None or status.observed_generation != dep.metadata.generation:
        return None
    want = dep.spec.replicas
    counts = (status.replicas or 0, status.updated_replicas or 0, status.available_replicas or 0)
    if counts != (want, want, want):
        return None
    reasons = {c.type: c.reason for c in status.conditions or []}
    return dep if reasons.get("Progressing") == "NewReplicaSetAvailable" else None


def settle(apps: client.AppsV1Api, namespace: str, name: str) -> client.V1Deployment:
    """Wait until the deployment controller has nothing left to write for ``name``."""
    dep = wait_for(lambda: deployment_settled(apps, namespace, name), what=f"deployment {name} to settle")
    assert dep is not None
    return dep
