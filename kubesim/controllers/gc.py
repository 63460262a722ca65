"""Garbage collection by ownerReferences (reference 2.8; upstream ``pkg/controller/garbagecollector``).

- Background: an object whose owners are all gone (no live object with the referenced uid) is deleted.
- Foreground: an owner with a deletionTimestamp and the ``foregroundDeletion`` finalizer has its dependents
  deleted first; once no dependent with ``blockOwnerDeletion`` remains, the finalizer is removed and the store
  drops the owner.
- Orphan: an owner with the ``orphan`` finalizer has its ownerReferences removed from every dependent, then
  the finalizer is removed.

``delete_with_propagation`` is the matching entry point for API deletes (sets the finalizer, then deletes).
"""

from __future__ import annotations

import copy
from collections.abc import Hashable, Iterable
from typing import Any

from kubesim.controllers.base import Controller
from kubesim.errors import ApiError
from kubesim.resources import BY_KEY
from kubesim.store import Store, WatchEvent

Obj = dict[str, Any]

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
_POLICY_FINALIZER = {"Foreground": FOREGROUND, "Orphan": ORPHAN}


def delete_with_propagation(
    store: Store,
    resource: str,
    namespace: str,
    name: str,
    policy: str = "Background",
    *,
    uid: str | None = None,
    resource_version: str | None = None,
    dry_run: bool = False,
) -> Obj:
    """Delete like the apiserver does for ``propagationPolicy``: Foreground and Orphan first add their
    finalizer (so the object stays, with a deletionTimestamp, until the garbage collector finishes);
    Background deletes now and lets the collector remove the dependents afterwards. Preconditions are checked
    before anything is written."""
    finalizer = _POLICY_FINALIZER.get(policy)
    if finalizer is None or dry_run:
        return store.delete(
            resource, namespace, name, uid=uid, resource_version=resource_version, dry_run=dry_run
        )
    store.delete(resource, namespace, name, uid=uid, resource_version=resource_version, dry_run=True)
    current = store.get(resource, namespace, name)
    finalizers = list(current["metadata"].get("finalizers") or [])
    if finalizer not in finalizers:
        current["metadata"]["finalizers"] = [*finalizers, finalizer]
        store.update(resource, current)
    return store.delete(resource, namespace, name)


def _finalizers(obj: Obj) -> list[str]:
    return list(obj["metadata"].get("finalizers") or [])


class GarbageCollector(Controller):
    """Keys are ``("item", resource, ns, name)`` for a possible garbage object and ``("owner", resource, ns,
    name)`` for an owner being deleted with a foreground/orphan finalizer."""

    name = "garbage-collector"
    resync_factor = 3.0

    def keys(self) -> Iterable[Hashable]:
        out: list[Hashable] = []
        for owner_uid, deps in list(self.cache.dependents.items()):
            if not self.cache.exists_uid(owner_uid):
                out.extend(("item", *dep) for dep in deps)
        for key in self.cache.objects:
            for obj in self.cache.all(key):
                meta = obj["metadata"]
                if meta.get("deletionTimestamp") and {FOREGROUND, ORPHAN} & set(_finalizers(obj)):
                    out.append(("owner", key, meta.get("namespace", ""), meta["name"]))
        return out

    def on_event(self, event: WatchEvent, old: Obj | None) -> None:
        if event.resource not in self.cache.objects:
            return
        meta = event.obj["metadata"]
        ref = (event.resource, meta.get("namespace", ""), meta["name"])
        if event.type == "DELETED":
            for dep in list(self.cache.dependents.get(meta.get("uid", ""), ())):
                self.enqueue(("item", *dep))
        elif meta.get("deletionTimestamp") and {FOREGROUND, ORPHAN} & set(_finalizers(event.obj)):
            self.enqueue(("owner", *ref))
        owners = meta.get("ownerReferences") or []
        for owner in owners:
            owner_ref = self.cache.by_uid.get(owner.get("uid", ""))
            if owner_ref is None:
                if event.type != "DELETED":
                    self.enqueue(("item", *ref))
                continue
            # A dependent changed or went away: the deleting owner may now be unblocked.
            owner_obj = self.cache.get(*owner_ref)
            if owner_obj is not None and owner_obj["metadata"].get("deletionTimestamp"):
                self.enqueue(("owner", *owner_ref))

    def reconcile(self, key: Any) -> None:
        kind, resource, ns, name = key
        obj = self.cache.get(resource, ns, name)
        if obj is None:
            return
        if kind == "owner":
            self._process_deleting_owner(resource, obj)
        else:
            self._attempt_to_delete(resource, obj)

    # ---- dependents ----------------------------------------------------------------------------------------

    def _attempt_to_delete(self, resource: str, obj: Obj) -> None:
        """``attemptToDeleteItem``: classify owners as solid, dangling or waiting for dependents' deletion."""
        meta = obj["metadata"]
        if meta.get("deletionTimestamp") and FOREGROUND not in _finalizers(obj):
            return
        refs = meta.get("ownerReferences") or []
        if not refs:
            return
        solid, dangling, waiting = [], [], []
        for ref in refs:
            owner_key = self.cache.by_uid.get(ref.get("uid", ""))
            owner = self.cache.get(*owner_key) if owner_key is not None else None
            if owner is None:
                dangling.append(ref)
            elif owner["metadata"].get("deletionTimestamp") and FOREGROUND in _finalizers(owner):
                waiting.append(ref)
            else:
                solid.append(ref)
        if solid:
            if not dangling and not waiting:
                return
            # Keep the object; drop references to gone owners and stop blocking the deleting ones.
            updated = copy.deepcopy(obj)
            dangling_uids = {r.get("uid") for r in dangling}
            waiting_uids = {r.get("uid") for r in waiting}
            new_refs = []
            for ref in updated["metadata"]["ownerReferences"]:
                if ref.get("uid") in dangling_uids:
                    continue
                if ref.get("uid") in waiting_uids:
                    ref["blockOwnerDeletion"] = False
                new_refs.append(ref)
            updated["metadata"]["ownerReferences"] = new_refs
            self.store.update(resource, updated)
            return
        if meta.get("deletionTimestamp"):
            return
        has_dependents = bool(self.cache.dependents.get(meta.get("uid", "")))
        if waiting and has_dependents:
            policy = "Foreground"
        elif ORPHAN in _finalizers(obj):
            policy = "Orphan"
        elif FOREGROUND in _finalizers(obj):
            policy = "Foreground"
        else:
            policy = "Background"
        try:
            delete_with_propagation(
                self.store, resource, meta.get("namespace", ""), meta["name"], policy, uid=meta.get("uid")
            )
        except ApiError as exc:
            if exc.code not in (404, 409):
                raise

    # ---- owners being deleted ------------------------------------------------------------------------------

    def _process_deleting_owner(self, resource: str, owner: Obj) -> None:
        meta = owner["metadata"]
        if not meta.get("deletionTimestamp"):
            return
        uid = meta.get("uid", "")
        finalizers = _finalizers(owner)
        dependents = [
            d
            for d in (self.cache.get(*ref) for ref in list(self.cache.dependents.get(uid, ())))
            if d is not None
        ]
        if ORPHAN in finalizers:
            for dep in dependents:
                updated = copy.deepcopy(dep)
                updated["metadata"]["ownerReferences"] = [
                    r for r in updated["metadata"].get("ownerReferences") or [] if r.get("uid") != uid
                ]
                if not updated["metadata"]["ownerReferences"]:
                    del updated["metadata"]["ownerReferences"]
                self.store.update(self.cache.by_uid[dep["metadata"]["uid"]][0], updated)
            self._remove_finalizer(resource, owner, ORPHAN)
            return
        if FOREGROUND not in finalizers:
            return
        blocking = [
            d
            for d in dependents
            if any(
                r.get("uid") == uid and r.get("blockOwnerDeletion")
                for r in d["metadata"].get("ownerReferences") or []
            )
        ]
        if not blocking:
            self._remove_finalizer(resource, owner, FOREGROUND)
            return
        for dep in blocking:
            dep_ref = self.cache.by_uid.get(dep["metadata"].get("uid", ""))
            if dep_ref is not None and not dep["metadata"].get("deletionTimestamp"):
                self.enqueue(("item", *dep_ref))

    def _remove_finalizer(self, resource: str, obj: Obj, finalizer: str) -> None:
        updated = copy.deepcopy(obj)
        updated["metadata"]["finalizers"] = [f for f in _finalizers(obj) if f != finalizer]
        if not updated["metadata"]["finalizers"]:
            del updated["metadata"]["finalizers"]
        if resource in BY_KEY:
            self.store.update(resource, updated)
