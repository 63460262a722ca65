"""The pod template of a Deployment and its ReplicaSets: the pod-template-hash (upstream
``controller.ComputeHash``), the apps/v1 defaults, and equality ignoring the hash (``EqualIgnoreHash``)."""

from __future__ import annotations

import copy
import json
from typing import Any

from kubesim.controllers.deployment_util import POD_TEMPLATE_HASH

Obj = dict[str, Any]

HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """``rand.SafeEncodeString``: each byte mapped onto the vowel-free alphabet."""
    return "".join(HASH_ALPHABET[ord(ch) % len(HASH_ALPHABET)] for ch in text)


def compute_hash(template: Obj, collision_count: int | None = None) -> str:
    """``controller.ComputeHash``: deterministic FNV-32a of the template (canonical JSON stands in for Go's
    spew dump), plus the collision count as 8 little-endian bytes, rendered with the upstream alphabet."""
    data = json.dumps(normalize_template(template), sort_keys=True, separators=(",", ":")).encode()
    if collision_count is not None:
        data += int(collision_count).to_bytes(4, "little") + b"\x00\x00\x00\x00"
    return safe_encode(str(fnv32a(data)))


def _prune(value: Any) -> Any:
    """Drop Go zero values (None, "", 0, False, {}, []) so absent and empty compare equal like DeepEqual on
    non-pointer fields."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            pruned = _prune(item)
            if (
                pruned is None
                or pruned == ""
                or pruned == {}
                or pruned == []
                or pruned is False
                or (type(pruned) is int and pruned == 0)
            ):
                continue
            out[key] = pruned
        return out
    if isinstance(value, list):
        return [_prune(item) for item in value]
    return value


def _default_container(container: Obj) -> None:
    image = str(container.get("image") or "")
    tail = image.rsplit("/", 1)[-1]
    if "@" in tail:
        pull = "IfNotPresent"
    elif ":" not in tail or tail.endswith(":latest"):
        pull = "Always"
    else:
        pull = "IfNotPresent"
    container.setdefault("imagePullPolicy", pull)
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")


def default_pod_template(template: Obj) -> Obj:
    """A copy of ``template`` with the core/v1 pod defaults applied (reference 2.1 defaults table)."""
    out = copy.deepcopy(template or {})
    spec = out.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                _default_container(container)
    return out


def normalize_template(template: Obj | None) -> Obj:
    """Defaults applied and zero values pruned: the form compared by ``equal_ignore_hash``."""
    pruned: Obj = _prune(default_pod_template(template or {}))
    return pruned


def comparable_template(template: Obj | None) -> Obj:
    """The normalized template without the pod-template-hash label (one side of ``EqualIgnoreHash``)."""
    t = copy.deepcopy(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(POD_TEMPLATE_HASH, None)
    return normalize_template(t)


_COMPARABLE_CACHE: dict[tuple[str, int], Obj] = {}


def cached_comparable_template(obj: Obj) -> Obj:
    """``comparable_template`` of a Deployment's or ReplicaSet's ``spec.template``, memoized by (uid,
    generation): both kinds bump generation on every spec change, so the key identifies the template."""
    meta = obj.get("metadata") or {}
    uid, generation = meta.get("uid"), meta.get("generation")
    if not uid or generation is None:
        return comparable_template((obj.get("spec") or {}).get("template"))
    key = (str(uid), int(generation))
    found = _COMPARABLE_CACHE.get(key)
    if found is None:
        if len(_COMPARABLE_CACHE) > 50_000:
            _COMPARABLE_CACHE.clear()
        found = _COMPARABLE_CACHE[key] = comparable_template((obj.get("spec") or {}).get("template"))
    return found


def equal_ignore_hash(a: Obj | None, b: Obj | None) -> bool:
    """``EqualIgnoreHash``: templates equal once the pod-template-hash label is removed from both."""
    return comparable_template(a) == comparable_template(b)
