"""The Rollout CRD's conversion webhook wiring: the CA bundle (and, out of cluster, the URL) of
``spec.conversion.webhook.clientConfig``, kept current the way the admission webhooks' are.

The apiserver calls the conversion webhook when a client reads or writes ``rollouts.kruise.io/v1alpha1``
(v1beta1 is stored); it has to trust this process's CA, so the controller writes its ``caBundle``
into the CRD at start-up and on every certificate rotation, as Kruise's webhook controller does.
"""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from declarative.webhook import CONVERT_PATH
from kube.client import Kube

__all__ = ["CRD_PATH", "ensure_conversion"]

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/rollouts.rollouts.kruise.io"


def ensure_conversion(kube: Kube, bundle: str, url: str | None) -> bool:
    """Point the CRD's conversion webhook at this process (``url``, out of cluster) or keep the
    shipped Service reference (in cluster), with ``bundle`` as its CA. A CRD that serves one version
    (or none yet) is left alone. Returns whether the CRD was written."""
    try:
        crd = kube.request("GET", CRD_PATH)
    except ApiException as exc:
        if exc.status in (403, 404):  # not installed yet, or the controller may not read it
            return False
        raise
    spec = crd.get("spec") or {}
    if len([v for v in spec.get("versions") or [] if v.get("served")]) < 2:
        return False
    conversion: dict[str, Any] = spec.get("conversion") or {}
    webhook: dict[str, Any] = conversion.get("webhook") or {}
    client_config: dict[str, Any] = dict(webhook.get("clientConfig") or {})
    if url:
        client_config = {"url": url, "caBundle": bundle}
    else:
        client_config["caBundle"] = bundle
    want = {
        "strategy": "Webhook",
        "webhook": {
            **webhook,
            "clientConfig": client_config,
            "conversionReviewVersions": webhook.get("conversionReviewVersions") or ["v1"],
        },
    }
    if conversion == want:
        return False
    spec["conversion"] = want
    kube.request("PUT", CRD_PATH, crd)
    return True


def conversion_url(webhook_url: str, path: str) -> str:
    """The conversion endpoint beside an admission webhook URL (same host and port)."""
    return webhook_url.replace(path, CONVERT_PATH)
