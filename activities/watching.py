"""What the watching activities share: heartbeat cadence, watch length, event order, the selector query."""

from __future__ import annotations

from typing import Any

from temporalio import activity

from kube.objects import label_selector

__all__ = ["HEARTBEAT_EVERY", "older", "selector_query", "watch_seconds"]

Obj = dict[str, Any]

# Heartbeat at least this often while a watch is quiet: heartbeats carry cancellation (undo, approve).
HEARTBEAT_EVERY = 1.0


def watch_seconds() -> int:
    """A watch's timeoutSeconds: half the heartbeat timeout, 1-5 s, so the loop re-reads regularly."""
    hb = activity.info().heartbeat_timeout
    seconds = hb.total_seconds() / 2 if hb else 5.0
    return max(1, min(5, int(seconds)))


def older(new: Obj, current: Obj | None) -> bool:
    """Whether watch object ``new`` is not newer than ``current`` (the watch starts at the older read)."""
    if current is None:
        return False
    try:
        return int(new["metadata"]["resourceVersion"]) <= int(current["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):  # opaque resourceVersions: take the event
        return False


def selector_query(dep: Obj) -> dict[str, str] | None:
    selector = label_selector((dep.get("spec") or {}).get("selector"))
    return {"labelSelector": selector} if selector else None
