"""Thin JSON access to the Kubernetes API: the one client seam the activities and the CLI use.

We talk to the API with plain dicts (the objects exactly as the server returns them) through the
official client's ``ApiClient`` transport: auth, TLS and kubeconfig handling stay the client's,
but template comparisons work on the server's JSON, not on re-serialised models.
Used by the activities (in the worker) and by the CLI's read-only validation.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from kube.names import ROLLOUT_GROUP, ROLLOUT_PLURAL, ROLLOUT_VERSION
from kube.objects import label_selector

__all__ = ["Kube", "KubeClient", "NamespaceScope", "Obj", "OutOfScope", "rollout_path"]

T = TypeVar("T")

Obj = dict[str, Any]


_NAMESPACED = re.compile(r"^/(?:api/v1|apis/[^/]+/[^/]+)/namespaces/([^/?]+)")

PROTECTED_NAMESPACES = frozenset({"kube-system"})


def object_path(group_version: str, plural: str, namespace: str, name: str | None = None) -> str:
    """API path of a namespaced object, or of the namespace's collection without a name."""
    base = f"{group_version}/namespaces/{namespace}/{plural}"
    return f"{base}/{name}" if name else base


class OutOfScope(PermissionError):
    """A request for a namespace the client is not configured for: refused before it is sent."""


@dataclass(frozen=True)
class NamespaceScope:
    """The namespaces a client may act in: ``allowed`` (``None``: every namespace but the protected
    ones, kube-system; a protected namespace is allowed only when ``allowed`` names it)."""

    allowed: frozenset[str] | None = None

    @classmethod
    def of(cls, names: list[str] | None) -> NamespaceScope:
        return cls(frozenset(names) if names else None)

    def allows(self, namespace: str) -> bool:
        if self.allowed is not None:
            return namespace in self.allowed
        return namespace not in PROTECTED_NAMESPACES

    def describe(self) -> str:
        if self.allowed is not None:
            return "namespaces " + ", ".join(sorted(self.allowed))
        return "every namespace except " + ", ".join(sorted(PROTECTED_NAMESPACES))

    def check(self, method: str, path: str) -> None:
        """Refuse a request outside the scope. Cluster-wide collections (``/apis/apps/v1/deployments``)
        are readable only when every namespace is in scope (the watcher then filters by namespace)."""
        m = _NAMESPACED.match(path)
        if m is not None:
            if not self.allows(m.group(1)):
                raise OutOfScope(
                    f"namespace {m.group(1)!r} is outside this worker's scope ({self.describe()}); "
                    "set ROLLOUT_WATCH_NAMESPACES to act there"
                )
            return
        if path.startswith(("/api/v1/", "/apis/")) and (self.allowed is not None or method != "GET"):
            raise OutOfScope(f"{method} {path} is cluster-wide; this worker acts in {self.describe()}")


class Kube:
    """Raw JSON requests over an ``ApiClient`` (sync; call from a thread in async code).

    With a ``scope``, every request (and every watch of ``kube.watch``) outside it raises ``OutOfScope``
    before anything is sent.
    """

    def __init__(self, api_client: ApiClient, scope: NamespaceScope | None = None) -> None:
        self.api_client = api_client
        self.scope = scope

    def check_scope(self, method: str, path: str) -> None:
        if self.scope is not None:
            self.scope.check(method, path)

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
        self.check_scope(method, path)
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

    # API path of an object, or without a name of the namespace's collection: ``deployment_path(ns, name)``
    deployment_path = staticmethod(functools.partial(object_path, "/apis/apps/v1", "deployments"))
    replica_set_path = staticmethod(functools.partial(object_path, "/apis/apps/v1", "replicasets"))
    service_path = staticmethod(functools.partial(object_path, "/api/v1", "services"))
    ingress_path = staticmethod(functools.partial(object_path, "/apis/networking.k8s.io/v1", "ingresses"))
    httproute_path = staticmethod(
        functools.partial(object_path, "/apis/gateway.networking.k8s.io/v1", "httproutes")
    )

    def get_deployment(self, namespace: str, name: str) -> Obj:
        """GET a Deployment."""
        return self.request("GET", self.deployment_path(namespace, name))

    def put_deployment(self, deployment: Obj) -> Obj:
        """PUT a Deployment; its ``metadata.resourceVersion`` is the precondition."""
        md = deployment["metadata"]
        return self.request("PUT", self.deployment_path(md["namespace"], md["name"]), deployment)

    def list_replica_sets(self, namespace: str, selector: str | None = None) -> list[Obj]:
        """LIST ReplicaSets in a namespace, optionally by label selector."""
        return self.list_replica_sets_at(namespace, selector)[0]

    def list_replica_sets_at(self, namespace: str, selector: str | None = None) -> tuple[list[Obj], str]:
        """LIST ReplicaSets, and the list's resourceVersion (where a watch after this read starts)."""
        query = {"labelSelector": selector} if selector else None
        listed = self.request("GET", self.replica_set_path(namespace), query=query)
        items: list[Obj] = listed.get("items") or []
        return items, str((listed.get("metadata") or {}).get("resourceVersion") or "")

    def list_deployment_replica_sets(self, deployment: Obj) -> list[Obj]:
        """LIST the ReplicaSets the Deployment's selector matches (not the whole namespace).

        Callers still filter by owner (``owned_replica_sets``): the selector narrows the answer, the
        controller ownerReference decides.
        """
        return self.list_deployment_replica_sets_at(deployment)[0]

    def list_deployment_replica_sets_at(self, deployment: Obj) -> tuple[list[Obj], str]:
        """``list_deployment_replica_sets`` and the list's resourceVersion."""
        selector = label_selector((deployment.get("spec") or {}).get("selector"))
        return self.list_replica_sets_at(deployment["metadata"]["namespace"], selector)

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


class KubeClient:
    """The one async seam every activity class calls Kubernetes through.

    A ``Kube`` (raw JSON over the official client's transport) plus the thread pool its blocking calls,
    and the watch streams of ``kube.watch``, run in. The worker builds one and hands it to every activity
    class; ``threads`` is sized with the worker's activity slots and the connection pool (see worker.py).
    """

    def __init__(self, api_client: ApiClient, *, threads: int, scope: NamespaceScope | None = None) -> None:
        self.kube = Kube(api_client, scope)
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="rollout-activity")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run one blocking call (a ``Kube`` method) in the pool."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, functools.partial(fn, *args))


def rollout_path(namespace: str, name: str = "", subresource: str = "") -> str:
    """API path of a Kruise Rollout (declarative mode), of a namespace's collection, or a subresource."""
    base = f"/apis/{ROLLOUT_GROUP}/{ROLLOUT_VERSION}/namespaces/{namespace}/{ROLLOUT_PLURAL}"
    path = f"{base}/{name}" if name else base
    return f"{path}/{subresource}" if subresource else path
