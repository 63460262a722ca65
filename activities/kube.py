"""Thin JSON access to the Kubernetes API plus pure helpers on raw objects.

We talk to the API with plain dicts (the objects exactly as the server returns them) through the
official client's ``ApiClient`` transport: auth, TLS and kubeconfig handling stay the client's,
but template comparisons work on the server's JSON, not on re-serialised models.
Used by the activities (in the worker) and by the CLI's read-only validation.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

__all__ = [
    "HASH_LABEL",
    "Kube",
    "containers_images",
    "describe_template_change",
    "find_replica_set_for_template",
    "is_owned_by",
    "label_selector",
    "normalize",
    "owned_replica_sets",
    "template_hash",
    "templates_equal",
]

HASH_LABEL = "pod-template-hash"
_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

Obj = dict[str, Any]


class Kube:
    """Raw JSON requests over an ``ApiClient`` (sync; call from a thread in async code)."""

    def __init__(self, api_client: ApiClient) -> None:
        self.api_client = api_client

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str | None = None,
        query: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> Obj:
        """Send one request and return the decoded JSON body.

        Raises:
            ApiException: (or its 404/409/422/5xx subclasses) for a non-2xx answer.
        """
        headers: dict[str, str] = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        params = self.api_client.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        resp = self.api_client.call_api(*params, _request_timeout=timeout)
        data = resp.read()
        if not 200 <= resp.status <= 299:
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
            raise ApiException.from_response(http_resp=resp, body=text, data=None)
        if not data:
            return {}
        result: Obj = json.loads(data)
        return result

    # -- typed conveniences ----------------------------------------------------------------------

    @staticmethod
    def deployment_path(namespace: str, name: str | None = None) -> str:
        """API path of a Deployment (or the collection)."""
        base = f"/apis/apps/v1/namespaces/{namespace}/deployments"
        return f"{base}/{name}" if name else base

    @staticmethod
    def replica_set_path(namespace: str, name: str | None = None) -> str:
        """API path of a ReplicaSet (or the collection)."""
        base = f"/apis/apps/v1/namespaces/{namespace}/replicasets"
        return f"{base}/{name}" if name else base

    def get_deployment(self, namespace: str, name: str) -> Obj:
        """GET a Deployment."""
        return self.request("GET", self.deployment_path(namespace, name))

    def put_deployment(self, deployment: Obj) -> Obj:
        """PUT a Deployment; its ``metadata.resourceVersion`` is the precondition."""
        md = deployment["metadata"]
        return self.request("PUT", self.deployment_path(md["namespace"], md["name"]), deployment)

    def list_replica_sets(self, namespace: str, selector: str | None = None) -> list[Obj]:
        """LIST ReplicaSets in a namespace, optionally by label selector."""
        query = {"labelSelector": selector} if selector else None
        items: list[Obj] = (
            self.request("GET", self.replica_set_path(namespace), query=query).get("items") or []
        )
        return items

    def list_deployment_replica_sets(self, deployment: Obj) -> list[Obj]:
        """LIST the ReplicaSets the Deployment's selector matches (not the whole namespace).

        Callers still filter by owner (``owned_replica_sets``): the selector narrows the answer, the
        controller ownerReference decides.
        """
        selector = label_selector((deployment.get("spec") or {}).get("selector"))
        return self.list_replica_sets(deployment["metadata"]["namespace"], selector)

    def get_replica_set(self, namespace: str, name: str) -> Obj:
        """GET a ReplicaSet."""
        return self.request("GET", self.replica_set_path(namespace, name))

    def put_replica_set(self, rs: Obj) -> Obj:
        """PUT a ReplicaSet; its ``metadata.resourceVersion`` is the precondition."""
        md = rs["metadata"]
        return self.request("PUT", self.replica_set_path(md["namespace"], md["name"]), rs)

    def create_replica_set(self, namespace: str, rs: Obj) -> Obj:
        """POST a ReplicaSet."""
        return self.request("POST", self.replica_set_path(namespace), rs)

    def list_pods(self, namespace: str, selector: str | None = None) -> list[Obj]:
        """LIST Pods in a namespace, optionally by label selector."""
        query = {"labelSelector": selector} if selector else None
        path = f"/api/v1/namespaces/{namespace}/pods"
        items: list[Obj] = self.request("GET", path, query=query).get("items") or []
        return items


# --- pure helpers on raw objects ------------------------------------------------------------------


def label_selector(selector: Obj | None) -> str | None:
    """A ``LabelSelector`` (matchLabels and matchExpressions) as a ``labelSelector`` query string.

    ``None`` for an empty selector, so callers list everything rather than send an empty query.
    """
    if not selector:
        return None
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], sorted(expr.get("values") or [])
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
        else:  # an operator the API server would have rejected; never narrow on a guess
            return None
    return ",".join(parts) or None


def normalize(value: Any) -> Any:
    """Drop ``None``, empty maps and empty lists recursively (Go semantic-equality view)."""
    if isinstance(value, dict):
        out = {k: normalize(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    return value


def _without_hash(template: Obj) -> Obj:
    t = copy.deepcopy(template)
    labels = (t.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
    return normalize(t)


def templates_equal(a: Obj, b: Obj) -> bool:
    """``EqualIgnoreHash``: pod templates equal once ``pod-template-hash`` is ignored."""
    return bool(_without_hash(a) == _without_hash(b))


def template_hash(template: Obj, collision_count: int = 0) -> str:
    """A deterministic pod-template-hash in Kubernetes' alphabet (FNV-32a of canonical JSON).

    Kubernetes' own hash (FNV over a Go spew dump) cannot be reproduced; the native controller finds
    "the new ReplicaSet" by template equality, not by name, so any stable hash works.
    """
    data = json.dumps(_without_hash(template), sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        data += str(collision_count).encode()
    h = 0x811C9DC5
    for byte in data:
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return "".join(_HASH_ALPHABET[ord(d) % 27] for d in str(h))


def is_owned_by(obj: Obj, owner_uid: str) -> bool:
    """Whether ``obj`` has a controller ownerReference to ``owner_uid``."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("uid") == owner_uid:
            return True
    return False


def owned_replica_sets(deployment: Obj, replica_sets: list[Obj]) -> list[Obj]:
    """The Deployment's ReplicaSets, oldest first (creationTimestamp, then name)."""
    uid = deployment["metadata"].get("uid", "")
    owned = [rs for rs in replica_sets if is_owned_by(rs, uid)]
    owned.sort(key=lambda rs: (rs["metadata"].get("creationTimestamp") or "", rs["metadata"]["name"]))
    return owned


def find_replica_set_for_template(deployment: Obj, replica_sets: list[Obj], template: Obj) -> Obj | None:
    """``FindNewReplicaSet``: the oldest owned ReplicaSet whose template equals ``template``."""
    for rs in owned_replica_sets(deployment, replica_sets):
        if templates_equal((rs.get("spec") or {}).get("template") or {}, template):
            return rs
    return None


def containers_images(template: Obj) -> dict[str, str]:
    """``{container name: image}`` of a pod template (init containers excluded)."""
    spec = template.get("spec") or {}
    return {c["name"]: c.get("image", "") for c in spec.get("containers") or []}


def describe_template_change(old: Obj, new: Obj) -> str:
    """One line saying how pod template ``new`` differs from ``old`` (images first, else which parts)."""
    before, after = containers_images(old), containers_images(new)
    parts = [
        f"container {c} image {before.get(c, '-')} -> {after.get(c, '-')}"
        for c in sorted(set(before) | set(after))
        if before.get(c) != after.get(c)
    ]
    if parts:
        return ", ".join(parts)
    a, b = _without_hash(old), _without_hash(new)
    changed = []
    for section in ("metadata", "spec"):
        sa, sb = a.get(section) or {}, b.get(section) or {}
        changed += [f"{section}.{k}" for k in sorted(set(sa) | set(sb)) if sa.get(k) != sb.get(k)]
    return "pod template " + (", ".join(changed) or "changed") + " changed"
