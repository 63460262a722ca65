"""The declarative controller's reads of Kubernetes objects (dicts as the API returns them): cache keys,
resource versions, ReplicaSets by pod-template-hash, and who wrote an object last (managedFields).

Pure: no I/O.
"""

from __future__ import annotations

import copy
from typing import Any

from declarative.webhook import APPROVED_BY
from kube.names import HASH_LABEL

__all__ = [
    "CONTROLLER",
    "Key",
    "Obj",
    "by_hash",
    "key_of",
    "resource_version",
    "status_writer",
    "target_of",
    "without_hash",
    "writer",
]

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, Rollout name)
CONTROLLER = "rollout-controller"


def key_of(obj: Obj) -> Key:
    md = obj.get("metadata") or {}
    return (str(md.get("namespace") or ""), str(md.get("name") or ""))


def target_of(rollout: Obj) -> str:
    return str(((rollout.get("spec") or {}).get("workloadRef") or {}).get("name") or "")


def resource_version(obj: Obj | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("resourceVersion") or "")


def by_hash(rss: list[Obj], pod_template_hash: str) -> Obj | None:
    hashes = [(rs["metadata"].get("labels") or {}).get(HASH_LABEL) for rs in rss]
    return next((rs for rs, h in zip(rss, hashes, strict=True) if h == pod_template_hash), None)


def without_hash(template: Obj) -> Obj:
    out = copy.deepcopy(template)
    ((out.get("metadata") or {}).get("labels") or {}).pop(HASH_LABEL, None)
    return out


def latest_manager(obj: Obj, subresource: str) -> str:
    entries = [
        e
        for e in (obj.get("metadata") or {}).get("managedFields") or []
        if e.get("subresource", "") == subresource and e.get("manager")
    ]
    entries.sort(key=lambda e: e.get("time") or "")
    return str(entries[-1]["manager"]) if entries else ""


def writer(dep: Obj) -> str:
    """Who changed the Deployment last (managedFields), for the rollout's audit trail."""
    return latest_manager(dep, "") or "kubectl"


def status_writer(obj: Obj) -> str:
    """The approver: the user the apiserver authenticated for the approving status write, stamped by the
    approval webhook; without the stamp (the webhook was down), the field manager, marked unverified."""
    canary = (obj.get("status") or {}).get("canaryStatus") or {}
    if canary.get(APPROVED_BY):
        return str(canary[APPROVED_BY])
    return f"{latest_manager(obj, 'status') or 'unknown'} (unverified)"
