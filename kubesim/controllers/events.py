"""core/v1 Events written like upstream's event recorder (reference 2.9).

A repeated event (same involved object, type, reason, message and source) is aggregated into the existing
Event by raising ``count`` and ``lastTimestamp``, like client-go's event correlator does for identical events.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from kubesim.errors import ApiError
from kubesim.resources import BY_KIND, EVENTS
from kubesim.store import Store, now_rfc3339

log = logging.getLogger("kubesim.controllers")

Obj = dict[str, Any]

# client-go keeps an LRU of 4096 recent events for aggregation.
_CACHE_SIZE = 4096


class EventRecorder:
    """Writes Events through the store; failures are logged and never break a reconcile."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._recent: dict[tuple[str, ...], tuple[str, str]] = {}

    def event(self, obj: Obj, type_: str, reason: str, message: str, component: str, kind: str = "") -> None:
        """Record an Event about ``obj`` (``kind`` is used when the object does not carry one)."""
        meta = obj.get("metadata") or {}
        kind = obj.get("kind") or kind
        api_version = obj.get("apiVersion") or ""
        if not kind or not api_version:
            # Objects read back from the store always carry kind/apiVersion; fall back to the registry.
            rt = BY_KIND.get(kind)
            api_version = api_version or (rt.group_version if rt else "v1")
        namespace = meta.get("namespace") or "default"
        key = (meta.get("uid", ""), type_, reason, message, component)
        try:
            known = self._recent.get(key)
            if known is not None:
                existing = self.store.peek(EVENTS, *known)
                if existing is not None:
                    updated = dict(existing)
                    updated["count"] = int(existing.get("count") or 1) + 1
                    updated["lastTimestamp"] = now_rfc3339()
                    updated["metadata"] = dict(existing["metadata"])
                    updated["metadata"].pop("resourceVersion", None)
                    self.store.update(EVENTS, updated)
                    return
            now = now_rfc3339()
            name = f"{meta.get('name', '')}.{time.time_ns():x}"
            event = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": {
                    "kind": kind,
                    "namespace": meta.get("namespace", ""),
                    "name": meta.get("name", ""),
                    "uid": meta.get("uid", ""),
                    "apiVersion": api_version,
                    "resourceVersion": meta.get("resourceVersion", ""),
                },
                "reason": reason,
                "message": message,
                "source": {"component": component},
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
                "type": type_,
                "eventTime": None,
                "reportingComponent": component,
                "reportingInstance": "",
            }
            created = self.store.create(EVENTS, event)
            if len(self._recent) >= _CACHE_SIZE:
                self._recent.pop(next(iter(self._recent)))
            self._recent[key] = (namespace, created["metadata"]["name"])
        except ApiError as exc:
            log.debug("event %s/%s not recorded: %s", reason, message, exc.message)
