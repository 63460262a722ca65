"""The object store: one global resourceVersion, generic write semantics, an event history for watches.

All methods run on kubesim's single asyncio loop thread, so no locking is needed. Objects handed out by
``list`` and ``peek`` are the stored dicts themselves and must be treated as read-only; ``get`` and
every write returns a deep copy that callers may mutate.
"""

from __future__ import annotations

import bisect
import copy
import itertools
import random
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubesim import crd as crd_module
from kubesim import errors
from kubesim.resources import BY_KEY, CRDS, ResourceType

Obj = dict[str, Any]

GENERATE_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
HISTORY_WINDOW = 50_000


def now_rfc3339() -> str:
    """Kubernetes timestamps: RFC 3339, second precision, ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class WatchEvent:
    """One change; ``obj`` is the stored (read-only) object after the change, or the last state for
    DELETED."""

    type: str  # ADDED | MODIFIED | DELETED
    resource: str  # store key, see ResourceType.key
    obj: Obj
    rv: int
    # The previous stored state for MODIFIED (None otherwise); watches use it for selector transitions.
    old: Obj | None = None


Subscriber = Callable[[WatchEvent], None]
Subscribers = list[Subscriber]  # (named here: inside Store, ``list`` is Store.list)


@dataclass(frozen=True)
class Interest:
    """What a subscriber wants to hear about, so an event reaches only the watchers it can concern.

    Without it every watch would be woken by every change (thousands of ReplicaSet watches x every
    ReplicaSet event). ``label`` is one equality requirement of the watch's label selector; an event
    is delivered when the object's new *or* previous labels carry it (a selector transition is still
    seen, and the watch filters exactly).
    """

    resource: str | None = None
    namespace: str | None = None
    label: tuple[str, str] | None = None


def _comparable(obj: Obj) -> Obj:
    """The object without the fields a no-op write may legitimately differ in."""
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    meta.pop("resourceVersion", None)
    meta.pop("managedFields", None)
    out["metadata"] = meta
    return out


class Store:
    """In-memory object store with Kubernetes write semantics shared by the HTTP API and the controllers."""

    def __init__(self) -> None:
        self.rv = 0
        self._objects: dict[str, dict[tuple[str, str], Obj]] = {key: {} for key in BY_KEY}
        self._history: deque[WatchEvent] = deque(maxlen=HISTORY_WINDOW)
        # Subscribers by (resource, namespace, label): a None part means "any".
        self._subscribers: dict[tuple[str | None, str | None, tuple[str, str] | None], Subscribers] = {}

    def ensure_resource(self, resource: str) -> None:
        """Make room for a resource type registered at run time (a CRD's custom resources)."""
        self._objects.setdefault(resource, {})

    def drop_resource(self, resource: str) -> None:
        """Forget every object of a resource type that is no longer served (its CRD was deleted)."""
        self._objects.pop(resource, None)

    # ---- reads ---------------------------------------------------------------------------------------------

    def peek(self, resource: str, namespace: str, name: str) -> Obj | None:
        """The stored object (read-only) or None."""
        return self._objects.get(resource, {}).get((namespace, name))

    def get(self, resource: str, namespace: str, name: str) -> Obj:
        """A mutable copy of the stored object; raises 404."""
        obj = self.peek(resource, namespace, name)
        if obj is None:
            rt = BY_KEY[resource]
            raise errors.not_found(rt.plural, name, rt.group)
        return copy.deepcopy(obj)

    def list(self, resource: str, namespace: str | None = None) -> list[Obj]:
        """Stored objects (read-only), sorted by namespace then name like etcd key order."""
        items = self._objects.get(resource, {})
        keys = sorted(k for k in items if namespace is None or k[0] == namespace)
        return [items[k] for k in keys]

    def oldest_rv(self) -> int:
        """The rv just before the oldest event still in the watch history window."""
        return self._history[0].rv - 1 if self._history else self.rv

    def events_since(self, rv: int) -> Iterator[WatchEvent]:
        """Events with rv > ``rv``; raises 410 Expired if the window no longer reaches back that far."""
        if rv < self.oldest_rv():
            raise errors.expired(rv, self.oldest_rv())
        # The history is in rv order: start right after rv instead of scanning the whole window.
        start = bisect.bisect_right(self._history, rv, key=lambda e: e.rv)
        yield from itertools.islice(self._history, start, None)

    # ---- subscriptions -------------------------------------------------------------------------------------

    def subscribe(self, fn: Subscriber, interest: Interest | None = None) -> None:
        i = interest or Interest()
        self._subscribers.setdefault((i.resource, i.namespace, i.label), []).append(fn)

    def unsubscribe(self, fn: Subscriber, interest: Interest | None = None) -> None:
        i = interest or Interest()
        key = (i.resource, i.namespace, i.label)
        fns = self._subscribers.get(key)
        if fns is not None and fn in fns:
            fns.remove(fn)
            if not fns:
                del self._subscribers[key]

    def _interested(self, event: WatchEvent) -> Subscribers:
        meta = event.obj.get("metadata") or {}
        ns = meta.get("namespace", "")
        pairs = set((meta.get("labels") or {}).items())
        if event.old is not None:
            pairs |= set(((event.old.get("metadata") or {}).get("labels") or {}).items())
        out: Subscribers = []
        for resource in (None, event.resource):
            for namespace in (None, ns):
                out.extend(self._subscribers.get((resource, namespace, None), ()))
                if resource is not None:
                    for pair in pairs:
                        out.extend(self._subscribers.get((resource, namespace, pair), ()))
        return out

    def _emit(self, type_: str, resource: str, obj: Obj, old: Obj | None = None) -> None:
        event = WatchEvent(type_, resource, obj, self.rv, old)
        self._history.append(event)
        for fn in self._interested(event):
            fn(event)

    # ---- writes --------------------------------------------------------------------------------------------

    def create(self, resource: str, obj: Obj, *, dry_run: bool = False) -> Obj:
        """Create ``obj`` (namespace already resolved by the caller); fills name from generateName."""
        rt = BY_KEY[resource]
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        namespace = meta.get("namespace", "") if rt.namespaced else ""
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise errors.invalid(
                    rt.kind,
                    "",
                    [
                        (
                            "metadata.name",
                            "Required value: name or generateName is required",
                            "FieldValueRequired",
                        )
                    ],
                    rt.group,
                )
            for _ in range(100):
                candidate = prefix[:58] + "".join(random.choices(GENERATE_NAME_ALPHABET, k=5))
                if (namespace, candidate) not in self._objects[resource]:
                    meta["name"] = candidate
                    break
        name = meta["name"]
        if (namespace, name) in self._objects[resource]:
            raise errors.already_exists(rt.plural, name, rt.group)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        meta.pop("deletionTimestamp", None)
        if rt.generation_on_spec:
            meta["generation"] = 1
        if dry_run:
            meta["resourceVersion"] = str(self.rv)
            return obj
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        self._objects[resource][(namespace, name)] = obj
        self._emit("ADDED", resource, obj)
        return copy.deepcopy(obj)

    def update(
        self,
        resource: str,
        obj: Obj,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        check_rv: bool = True,
    ) -> Obj:
        """Replace the stored object, honouring a non-empty ``metadata.resourceVersion`` as a precondition.

        ``subresource="status"`` takes only ``status`` from ``obj``; a main-resource write keeps the stored
        status when the kind has a status subresource. A write that changes nothing does not bump the rv.
        """
        rt = BY_KEY[resource]
        meta_in = obj.get("metadata") or {}
        namespace = meta_in.get("namespace", "") if rt.namespaced else ""
        name = meta_in.get("name", "")
        current = self.peek(resource, namespace, name)
        if current is None:
            raise errors.not_found(rt.plural, name, rt.group)
        want_rv = meta_in.get("resourceVersion")
        if check_rv and want_rv and str(want_rv) != current["metadata"]["resourceVersion"]:
            raise errors.conflict(rt.plural, name, rt.group)
        if subresource == "status":
            new = copy.deepcopy(current)
            new["status"] = copy.deepcopy(obj.get("status"))
            if new["status"] is None:
                new.pop("status")
            if meta_in.get("managedFields") is not None:  # the status writer is recorded too
                new["metadata"]["managedFields"] = copy.deepcopy(meta_in["managedFields"])
        else:
            new = copy.deepcopy(obj)
            if "status" in rt.subresources:
                if "status" in current:
                    new["status"] = copy.deepcopy(current["status"])
                else:
                    new.pop("status", None)
        meta = new.setdefault("metadata", {})
        for immutable in ("uid", "creationTimestamp", "deletionTimestamp", "generation"):
            if immutable in current["metadata"]:
                meta[immutable] = current["metadata"][immutable]
            else:
                meta.pop(immutable, None)
        if rt.namespaced:
            meta["namespace"] = namespace
        if subresource != "status" and rt.generation_on_spec:
            spec_changed = new.get("spec") != current.get("spec")
            ann_changed = rt.generation_on_annotations and (
                (meta.get("annotations") or {}) != (current["metadata"].get("annotations") or {})
            )
            if spec_changed or ann_changed:
                meta["generation"] = int(current["metadata"].get("generation", 0)) + 1
        if _comparable(new) == _comparable(current):
            return copy.deepcopy(current)
        # An object being deleted disappears once its last finalizer is removed.
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            if dry_run:
                return new
            return self._remove(resource, namespace, name)
        if dry_run:
            meta["resourceVersion"] = current["metadata"]["resourceVersion"]
            return new
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        self._objects[resource][(namespace, name)] = new
        self._emit("MODIFIED", resource, new, current)
        return copy.deepcopy(new)

    def delete(
        self,
        resource: str,
        namespace: str,
        name: str,
        *,
        uid: str | None = None,
        resource_version: str | None = None,
        dry_run: bool = False,
        add_finalizers: tuple[str, ...] = (),
    ) -> Obj:
        """Delete now, or set deletionTimestamp when finalizers remain. Returns the last state.

        ``add_finalizers`` (e.g. ``foregroundDeletion``) are added in the same write that sets the
        deletionTimestamp, like the apiserver does for propagationPolicy=Foreground.
        """
        rt = BY_KEY[resource]
        namespace = namespace if rt.namespaced else ""
        current = self.peek(resource, namespace, name)
        if current is None:
            raise errors.not_found(rt.plural, name, rt.group)
        meta = current["metadata"]
        if uid and uid != meta.get("uid"):
            raise errors.ApiError(
                409,
                f"Precondition failed: UID in precondition: {uid}, UID in object meta: {meta.get('uid')}",
                "Conflict",
            )
        if resource_version and resource_version != meta.get("resourceVersion"):
            raise errors.ApiError(
                409,
                f"Precondition failed: ResourceVersion in precondition: "
                f"{resource_version}, ResourceVersion in object meta: "
                f"{meta.get('resourceVersion')}",
                "Conflict",
            )
        if dry_run:
            return copy.deepcopy(current)
        missing = [f for f in add_finalizers if f not in (meta.get("finalizers") or [])]
        if meta.get("finalizers") or missing:
            if meta.get("deletionTimestamp") and not missing:
                return copy.deepcopy(current)
            new = copy.deepcopy(current)
            if missing:
                new["metadata"]["finalizers"] = list(meta.get("finalizers") or []) + missing
            new["metadata"].setdefault("deletionTimestamp", now_rfc3339())
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            self.rv += 1
            new["metadata"]["resourceVersion"] = str(self.rv)
            self._objects[resource][(namespace, name)] = new
            self._emit("MODIFIED", resource, new, current)
            return copy.deepcopy(new)
        return self._remove(resource, namespace, name)

    def commit(self, resource: str, current: Obj, new: Obj) -> Obj:
        """Install ``new`` as the next version of ``current`` without copying.

        For controllers' hot status writes: ``new`` is built by the caller and may share read-only subtrees
        with ``current``; preconditions and no-op checks are the caller's. Returns the stored object.
        """
        meta = new["metadata"]
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        self._objects[resource][(meta.get("namespace", ""), meta["name"])] = new
        self._emit("MODIFIED", resource, new, current)
        return new

    def _remove(self, resource: str, namespace: str, name: str) -> Obj:
        obj = self._objects[resource].pop((namespace, name))
        self.rv += 1
        gone = copy.deepcopy(obj)
        gone["metadata"]["resourceVersion"] = str(self.rv)
        self._emit("DELETED", resource, gone)
        return copy.deepcopy(gone)

    # ---- persistence ---------------------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        """Everything needed to restore the store (used by ``--state``)."""
        return {
            "resourceVersion": self.rv,
            "objects": {key: list(objs.values()) for key, objs in self._objects.items() if objs},
        }

    def load(self, data: dict[str, Any]) -> None:
        """Replace the contents with a ``dump()``; emits no events (call before controllers start)."""
        self.rv = int(data.get("resourceVersion", 0))
        self._history.clear()
        for key in self._objects:
            self._objects[key] = {}
        objects = data.get("objects") or {}
        for crd in objects.get(CRDS) or []:  # custom resources load once their CRD serves them
            crd_module.register(crd, self)
        for key, objs in objects.items():
            if key not in self._objects:
                continue
            rt: ResourceType = BY_KEY[key]
            for obj in objs:
                ns = obj["metadata"].get("namespace", "") if rt.namespaced else ""
                self._objects[key][(ns, obj["metadata"]["name"])] = obj
