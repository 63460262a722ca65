"""Pod predicates and the ReplicaSet pod-deletion ranking (upstream ``controller_utils.go``, ``podutil``)."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from typing import Any

from kubesim.controllers.deployment_util import parse_time

Obj = dict[str, Any]

_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


def phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def is_active(pod: Obj) -> bool:
    """``IsPodActive``: not Succeeded/Failed and not being deleted."""
    return phase(pod) not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def condition(pod: Obj, type_: str) -> Obj | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return cond
    return None


def is_ready(pod: Obj) -> bool:
    cond = condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def ready_since(pod: Obj) -> float:
    """Epoch seconds of the Ready condition's lastTransitionTime (0 when unknown)."""
    cond = condition(pod, "Ready")
    return parse_time(cond.get("lastTransitionTime")) if cond else 0.0


def is_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    """``IsPodAvailable``: Ready, and Ready for longer than ``minReadySeconds``."""
    if not is_ready(pod):
        return False
    if min_ready_seconds == 0:
        return True
    since = ready_since(pod)
    return since > 0 and since + min_ready_seconds < now


def deletion_cost(pod: Obj) -> int:
    value = (pod["metadata"].get("annotations") or {}).get(DELETION_COST)
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


def max_restarts(pod: Obj) -> int:
    return max(
        (int(cs.get("restartCount") or 0) for cs in (pod.get("status") or {}).get("containerStatuses") or []),
        default=0,
    )


def _log_rank(t: float, now: float) -> int:
    # Go: int64(math.Log2(float64(now.Sub(t)))) on nanoseconds, -1 for non-positive durations.
    delta_ns = (now - t) * 1e9
    return int(math.log2(delta_ns)) if delta_ns > 0 else -1


def _compare_times(t1: float, t2: float, uid1: str, uid2: str, now: float) -> int:
    """Newer first on a log2 scale (``LogarithmicScaleDown``), UID as tie-break; zero times sort first."""
    if t1 == 0 or t2 == 0 or now == 0:
        if t1 == 0 and t2 == 0:
            return 0
        if t1 == 0:
            return -1
        if t2 == 0:
            return 1
        return -1 if t1 > t2 else 1
    diff = _log_rank(t1, now) - _log_rank(t2, now)
    if diff == 0:
        return -1 if uid1 < uid2 else (1 if uid1 > uid2 else 0)
    return -1 if diff < 0 else 1


def compare_for_deletion(a: tuple[Obj, int], b: tuple[Obj, int], now: float) -> int:
    """``ActivePodsWithRanks.Less`` as a comparator: negative when ``a`` should be deleted first."""
    pa, rank_a = a
    pb, rank_b = b
    node_a = (pa.get("spec") or {}).get("nodeName") or ""
    node_b = (pb.get("spec") or {}).get("nodeName") or ""
    if node_a != node_b and (not node_a or not node_b):
        return -1 if not node_a else 1
    oa, ob = _PHASE_ORDINAL.get(phase(pa), 0), _PHASE_ORDINAL.get(phase(pb), 0)
    if oa != ob:
        return -1 if oa < ob else 1
    ra, rb = is_ready(pa), is_ready(pb)
    if ra != rb:
        return -1 if not ra else 1
    ca, cb = deletion_cost(pa), deletion_cost(pb)
    if ca != cb:
        return -1 if ca < cb else 1
    if rank_a != rank_b:
        return -1 if rank_a > rank_b else 1
    uid_a, uid_b = pa["metadata"].get("uid", ""), pb["metadata"].get("uid", "")
    if ra and rb:
        ta, tb = ready_since(pa), ready_since(pb)
        if ta != tb:
            result = _compare_times(ta, tb, uid_a, uid_b, now)
            if result:
                return result
    xa, xb = max_restarts(pa), max_restarts(pb)
    if xa != xb:
        return -1 if xa > xb else 1
    ta, tb = (
        parse_time(pa["metadata"].get("creationTimestamp")),
        parse_time(pb["metadata"].get("creationTimestamp")),
    )
    if ta != tb:
        return _compare_times(ta, tb, uid_a, uid_b, now)
    return 0


def pods_to_delete(filtered: list[Obj], related: Iterable[Obj], diff: int, now: float) -> list[Obj]:
    """``getPodsToDelete``: rank by the upstream preference and take the first ``diff``."""
    if diff >= len(filtered):
        return list(filtered)
    on_node: dict[str, int] = {}
    for pod in related:
        if is_active(pod):
            node = (pod.get("spec") or {}).get("nodeName") or ""
            on_node[node] = on_node.get(node, 0) + 1
    ranked = [(pod, on_node.get((pod.get("spec") or {}).get("nodeName") or "", 0)) for pod in filtered]

    def cmp(a: tuple[Obj, int], b: tuple[Obj, int]) -> int:
        return compare_for_deletion(a, b, now)

    ranked.sort(key=functools.cmp_to_key(cmp))
    return [pod for pod, _ in ranked[:diff]]
