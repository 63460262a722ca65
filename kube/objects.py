"""Pure helpers on raw Kubernetes objects (dicts as the API server returns them).

Template hash and equality (``EqualIgnoreHash``), ownership, ``FindNewReplicaSet``, label selectors as
query strings. No client import: workflow code, the CLI and the activities all use these.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from kube.names import HASH_LABEL

__all__ = [
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

_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

Obj = dict[str, Any]


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
