"""Store writes used by the controllers, with the one semantic the generic store API lacks.

The apiserver's status strategy for Deployments resets only ``spec`` and ``metadata.labels``, so a ``/status``
write may also change ``metadata.annotations`` without bumping ``generation``. The upstream deployment controller
relies on that: it records ``deployment.kubernetes.io/revision`` with ``UpdateStatus``. ``Store.update`` with
``subresource="status"`` keeps only ``status``, and a main-resource write would bump ``generation`` (annotations
count for Deployments), so ``update_status`` performs that combined write itself.
"""

from __future__ import annotations

import copy
from typing import Any

from kubesim import errors
from kubesim.resources import BY_KEY
from kubesim.store import Store

Obj = dict[str, Any]


def update_status(store: Store, resource: str, obj: Obj) -> Obj:
    """Write ``obj["status"]`` (and, when they differ, ``metadata.annotations``) with ``obj``'s rv precondition."""
    meta = obj["metadata"]
    ns, name = meta.get("namespace", ""), meta["name"]
    current = store.peek(resource, ns, name)
    if current is None:
        rt = BY_KEY[resource]
        raise errors.not_found(rt.plural, name, rt.group)
    if (meta.get("annotations") or {}) == (current["metadata"].get("annotations") or {}):
        return store.update(resource, obj, subresource="status")
    want_rv = meta.get("resourceVersion")
    if want_rv and str(want_rv) != current["metadata"]["resourceVersion"]:
        rt = BY_KEY[resource]
        raise errors.conflict(rt.plural, name, rt.group)
    new = copy.deepcopy(current)
    new["status"] = copy.deepcopy(obj.get("status") or {})
    if meta.get("annotations"):
        new["metadata"]["annotations"] = copy.deepcopy(meta["annotations"])
    else:
        new["metadata"].pop("annotations", None)
    # Same bookkeeping as Store.update (rv bump, history, subscribers) for this status-strategy write.
    store.rv += 1
    new["metadata"]["resourceVersion"] = str(store.rv)
    store._objects[resource][(ns, name)] = new  # noqa: SLF001 - see module docstring
    store._emit("MODIFIED", resource, new, current)  # noqa: SLF001
    return copy.deepcopy(new)


def with_rv(obj: Obj, written: Obj) -> None:
    """Carry the rv (and generation) of a write back into the controller's working copy."""
    obj["metadata"]["resourceVersion"] = written["metadata"]["resourceVersion"]
    if "generation" in written["metadata"]:
        obj["metadata"]["generation"] = written["metadata"]["generation"]
