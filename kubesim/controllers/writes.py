"""Status writes of the controllers: the store's bookkeeping, without whole-object deep copies.

Writes go through ``Store.commit``. Two reasons for not using ``Store.update(..., subresource="status")``:

- The apiserver's status strategy for Deployments resets only ``spec`` and ``metadata.labels``, so a
  ``/status`` write may also change ``metadata.annotations`` without bumping ``generation``. The upstream
  deployment controller relies on that (it records ``deployment.kubernetes.io/revision`` with
  ``UpdateStatus``); ``Store.update`` keeps only ``status``, and a main-resource write would bump
  ``generation`` because annotations count for Deployments.
- Speed: kubelet and controller status writes are most of kubesim's writes. The store deep-copies the whole
  object two or three times per update; here only the new status is copied and the new stored object shares
  its unchanged subtrees with the previous one (stored objects are read-only by contract).

Semantics are the store's: resourceVersion precondition (409), 404, no-op suppression, one rv bump, the event
in the watch history and to subscribers. Returned objects are the stored ones: read-only.
"""

from __future__ import annotations

import copy
from typing import Any

from kubesim import errors
from kubesim.resources import BY_KEY
from kubesim.store import Store

Obj = dict[str, Any]


def _current(store: Store, resource: str, obj: Obj) -> Obj:
    meta = obj["metadata"]
    current = store.peek(resource, meta.get("namespace", ""), meta["name"])
    rt = BY_KEY[resource]
    if current is None:
        raise errors.not_found(rt.plural, meta["name"], rt.group)
    want_rv = meta.get("resourceVersion")
    if want_rv and str(want_rv) != current["metadata"]["resourceVersion"]:
        raise errors.conflict(rt.plural, meta["name"], rt.group)
    return current


def _commit(store: Store, resource: str, current: Obj, new: Obj) -> Obj:
    return store.commit(resource, current, new)


def update_status(store: Store, resource: str, obj: Obj, *, owned: bool = False) -> Obj:
    """Write ``obj["status"]`` (and ``metadata.annotations`` when they differ, see the module docstring) with
    ``obj``'s resourceVersion as precondition; a write that changes nothing returns the stored object.

    ``owned=True`` hands the status dict over to the store (the caller built it fresh and never touches it
    again), saving the copy."""
    current = _current(store, resource, obj)
    status = obj.get("status") or {}
    annotations = obj["metadata"].get("annotations") or {}
    same_annotations = annotations == (current["metadata"].get("annotations") or {})
    if status == (current.get("status") or {}) and same_annotations:
        return current
    new = dict(current)
    new["metadata"] = dict(current["metadata"])
    new["status"] = status if owned else copy.deepcopy(status)
    if not same_annotations:
        if annotations:
            new["metadata"]["annotations"] = copy.deepcopy(annotations)
        else:
            new["metadata"].pop("annotations", None)
    return _commit(store, resource, current, new)


def bind_pod(store: Store, pod: Obj, node: str, status: Obj) -> Obj:
    """The scheduler's binding: ``spec.nodeName`` plus the PodScheduled status in one write (like the
    ``pods/binding`` subresource, which sets both). ``status`` is handed over to the store."""
    current = _current(store, "pods", pod)
    new = dict(current)
    new["metadata"] = dict(current["metadata"])
    new["spec"] = dict(current.get("spec") or {}, nodeName=node)
    new["status"] = status
    return _commit(store, "pods", current, new)


def with_rv(obj: Obj, written: Obj) -> None:
    """Carry the rv (and generation) of a write back into the controller's working copy."""
    obj["metadata"]["resourceVersion"] = written["metadata"]["resourceVersion"]
    if "generation" in written["metadata"]:
        obj["metadata"]["generation"] = written["metadata"]["generation"]
