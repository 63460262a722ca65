"""Limited Kubernetes users for RBAC tests on the real control plane (realk8s runs with RBAC on).

``limited_user`` makes a ServiceAccount, a Role with the given rules in ``role_namespace``, a
RoleBinding, and a token from the TokenRequest API, and returns an ``ApiClient`` that authenticates
as that ServiceAccount (``system:serviceaccount:<ns>:<name>``) against the same API server.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from kube.client import Kube

__all__ = ["READ_WORKLOADS", "UPDATE_DEPLOYMENTS", "limited_user"]

READ_WORKLOADS: list[dict[str, Any]] = [
    {"apiGroups": ["apps"], "resources": ["deployments", "replicasets"], "verbs": ["get", "list", "watch"]},
]
UPDATE_DEPLOYMENTS: list[dict[str, Any]] = [
    *READ_WORKLOADS,
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["update", "patch"]},
]


def limited_user(
    admin: k8s.ApiClient,
    kubeconfig: str,
    *,
    sa_namespace: str,
    name: str,
    rules: list[dict[str, Any]],
    role_namespace: str | None = None,
) -> k8s.ApiClient:
    """An ``ApiClient`` for a new ServiceAccount whose only rights are ``rules`` in ``role_namespace``."""
    kube = Kube(admin)
    role_ns = role_namespace or sa_namespace
    kube.request("POST", f"/api/v1/namespaces/{sa_namespace}/serviceaccounts", {"metadata": {"name": name}})
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{role_ns}"
    kube.request("POST", f"{rbac}/roles", {"metadata": {"name": name}, "rules": rules})
    kube.request(
        "POST",
        f"{rbac}/rolebindings",
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": sa_namespace}],
        },
    )
    token = kube.request(
        "POST",
        f"/api/v1/namespaces/{sa_namespace}/serviceaccounts/{name}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )["status"]["token"]
    admin_cfg = k8s.Configuration()
    k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=admin_cfg)
    # Only the server and its CA from the admin kubeconfig: no client certificate, no refresh hook.
    cfg = k8s.Configuration(host=admin_cfg.host, api_key={"authorization": f"Bearer {token}"})
    cfg.ssl_ca_cert = admin_cfg.ssl_ca_cert
    cfg.verify_ssl = admin_cfg.verify_ssl
    return k8s.ApiClient(cfg)
