"""Indexes over the store shared by all controllers (the informer caches of upstream controllers).

The store delivers events synchronously inside each write, so these indexes are always current: a controller
sees its own writes immediately and never needs upstream's "expectations". Indexed objects are the store's
read-only dicts; controllers copy before modifying.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from kubesim.resources import BY_KEY, EVENTS
from kubesim.store import Store, WatchEvent

Obj = dict[str, Any]
Ref = tuple[str, str, str]  # (resource, namespace, name)


def controller_ref(obj: Obj) -> Obj | None:
    """``metav1.GetControllerOf``: the ownerReference with ``controller: true``."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref  # type: ignore[no-any-return]
    return None


class Cache:
    """Objects by resource/namespace/name, by uid, dependents by owner uid, and orphans per namespace."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.objects: dict[str, dict[str, dict[str, Obj]]] = {key: {} for key in BY_KEY if key != EVENTS}
        self.by_uid: dict[str, Ref] = {}
        self.dependents: dict[str, set[Ref]] = defaultdict(set)
        # Objects without a controller ownerReference, for adoption (resource -> namespace -> names).
        self.orphans: dict[str, dict[str, set[str]]] = {key: defaultdict(set) for key in self.objects}
        for key in self.objects:
            for obj in store.list(key):
                self._put(key, obj)

    # ---- maintenance ---------------------------------------------------------------------------------------

    def apply(self, event: WatchEvent) -> Obj | None:
        """Update the indexes with ``event``; returns the previous state of the object (None if new)."""
        key = event.resource
        if key not in self.objects:
            return None
        meta = event.obj["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        old = self.objects[key].get(ns, {}).get(name)
        if old is not None:
            self._drop(key, old)
        if event.type != "DELETED":
            self._put(key, event.obj)
        return old

    def _put(self, key: str, obj: Obj) -> None:
        meta = obj["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        self.objects[key].setdefault(ns, {})[name] = obj
        ref = (key, ns, name)
        if meta.get("uid"):
            self.by_uid[meta["uid"]] = ref
        has_controller = False
        for owner in meta.get("ownerReferences") or []:
            if owner.get("uid"):
                self.dependents[owner["uid"]].add(ref)
            has_controller = has_controller or bool(owner.get("controller"))
        if not has_controller:
            self.orphans[key][ns].add(name)

    def _drop(self, key: str, obj: Obj) -> None:
        meta = obj["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        bucket = self.objects[key].get(ns)
        if bucket is not None:
            bucket.pop(name, None)
            if not bucket:
                del self.objects[key][ns]
        ref = (key, ns, name)
        if meta.get("uid") and self.by_uid.get(meta["uid"]) == ref:
            del self.by_uid[meta["uid"]]
        for owner in meta.get("ownerReferences") or []:
            deps = self.dependents.get(owner.get("uid", ""))
            if deps is not None:
                deps.discard(ref)
                if not deps:
                    del self.dependents[owner["uid"]]
        orphans = self.orphans[key].get(ns)
        if orphans is not None:
            orphans.discard(name)
            if not orphans:
                del self.orphans[key][ns]

    # ---- queries -------------------------------------------------------------------------------------------

    def get(self, key: str, ns: str, name: str) -> Obj | None:
        return self.objects[key].get(ns, {}).get(name)

    def in_namespace(self, key: str, ns: str) -> Iterator[Obj]:
        yield from list(self.objects[key].get(ns, {}).values())

    def all(self, key: str) -> Iterator[Obj]:
        for bucket in list(self.objects[key].values()):
            yield from list(bucket.values())

    def owned(self, key: str, owner_uid: str) -> list[Obj]:
        """Objects of ``key`` with an ownerReference (controller or not) to ``owner_uid``."""
        out = []
        for res, ns, name in list(self.dependents.get(owner_uid, ())):
            if res == key:
                obj = self.get(res, ns, name)
                if obj is not None:
                    out.append(obj)
        return out

    def orphans_in(self, key: str, ns: str) -> list[Obj]:
        out = []
        for name in list(self.orphans[key].get(ns, ())):
            obj = self.get(key, ns, name)
            if obj is not None:
                out.append(obj)
        return out

    def exists_uid(self, uid: str) -> bool:
        return uid in self.by_uid
