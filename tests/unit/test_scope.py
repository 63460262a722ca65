"""Security review F11: the worker's Kubernetes client refuses every request outside its namespaces."""

from __future__ import annotations

from typing import Any

import pytest

from kube.client import Kube, NamespaceScope, OutOfScope


class _NoNetwork:
    """An ApiClient that fails the test if a request gets as far as the transport."""

    def param_serialize(self, **kw: Any) -> Any:
        raise AssertionError(f"request sent: {kw.get('method')} {kw.get('resource_path')}")


@pytest.mark.parametrize(
    ("names", "namespace", "allowed"),
    [
        (None, "shop", True),
        (None, "kube-system", False),  # never by default
        (["shop"], "shop", True),
        (["shop"], "shop-prod", False),
        (["shop", "kube-system"], "kube-system", True),  # only when named
    ],
)
def test_scope_allows(names: list[str] | None, namespace: str, allowed: bool) -> None:
    assert NamespaceScope.of(names).allows(namespace) is allowed


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/apis/apps/v1/namespaces/kube-system/deployments/coredns"),
        ("POST", "/apis/apps/v1/namespaces/kube-system/replicasets"),
        ("PUT", "/api/v1/namespaces/kube-system/services/kube-dns"),
        ("GET", "/apis/apps/v1/namespaces/other/deployments/web"),
        ("PUT", "/apis/rollouts.kruise.io/v1beta1/namespaces/other/rollouts/r/status"),
        ("GET", "/apis/apps/v1/deployments"),  # cluster-wide read, scope is two namespaces
    ],
)
def test_requests_outside_the_scope_are_never_sent(method: str, path: str) -> None:
    kube = Kube(_NoNetwork(), NamespaceScope.of(["shop"]))  # type: ignore[arg-type]
    with pytest.raises(OutOfScope):
        kube.request(method, path, {} if method != "GET" else None)


def test_default_scope_refuses_kube_system_and_cluster_wide_writes() -> None:
    kube = Kube(_NoNetwork(), NamespaceScope.of(None))  # type: ignore[arg-type]
    with pytest.raises(OutOfScope):
        kube.get_deployment("kube-system", "coredns")
    with pytest.raises(OutOfScope):
        kube.request("DELETE", "/apis/apps/v1/deployments")
    with pytest.raises(AssertionError, match="request sent"):  # in scope: it does reach the transport
        kube.get_deployment("shop", "web")
