"""Pure helpers of the deployment controller (upstream ``pkg/controller/deployment/util/deployment_util.go``).

Everything here works on plain dicts (the store's wire format) and has no side effects, so it can be table
tested. Spec fields are read with the apps/v1 defaults applied, so objects that were stored without defaulting
still behave like they would on a real cluster.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
POD_TEMPLATE_HASH = "pod-template-hash"
MAX_REV_HISTORY_CHARS = 2000
MAX_INT32 = 2**31 - 1

# Condition reasons (deployment_util.go).
NEW_RS_REASON = "NewReplicaSetCreated"
FOUND_NEW_RS_REASON = "FoundNewReplicaSet"
NEW_RS_AVAILABLE_REASON = "NewReplicaSetAvailable"
RS_UPDATED_REASON = "ReplicaSetUpdated"
TIMED_OUT_REASON = "ProgressDeadlineExceeded"
PAUSED_REASON = "DeploymentPaused"
RESUMED_REASON = "DeploymentResumed"
FAILED_RS_CREATE_REASON = "ReplicaSetCreateError"
MIN_AVAILABLE_REASON = "MinimumReplicasAvailable"
MIN_UNAVAILABLE_REASON = "MinimumReplicasUnavailable"

_ANNOTATIONS_TO_SKIP = frozenset(
    {LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO}
)


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> float:
    """RFC 3339 timestamp to epoch seconds (0 when absent or unparsable)."""
    if not value:
        return 0.0
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


# ---- spec accessors with apps/v1 defaults ------------------------------------------------------------------


def replicas_of(obj: Obj) -> int:
    """``spec.replicas`` of a Deployment or ReplicaSet (default 1)."""
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def strategy_type(d: Obj) -> str:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type") or "RollingUpdate"


def _rolling_params(d: Obj) -> tuple[int | str, int | str]:
    ru = ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    surge = ru.get("maxSurge")
    unavail = ru.get("maxUnavailable")
    return ("25%" if surge is None else surge), ("25%" if unavail is None else unavail)


def progress_deadline(d: Obj) -> int | None:
    """``progressDeadlineSeconds`` (default 600); None when unset-as-infinite (MaxInt32)."""
    value = (d.get("spec") or {}).get("progressDeadlineSeconds", 600)
    if value is None or int(value) == MAX_INT32:
        return None
    return int(value)


def revision_history_limit(d: Obj) -> int | None:
    value = (d.get("spec") or {}).get("revisionHistoryLimit", 10)
    if value is None or int(value) == MAX_INT32:
        return None
    return int(value)


def min_ready_seconds(obj: Obj) -> int:
    return int((obj.get("spec") or {}).get("minReadySeconds") or 0)


# ---- fenceposts --------------------------------------------------------------------------------------------


def scaled_value(value: int | str, total: int, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``: ints as is, ``"N%"`` scaled by ``total`` (ceil or floor)."""
    if isinstance(value, bool):
        raise ValueError(f"invalid value for IntOrString: {value!r}")
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%"):
        # Upstream rejects a bare numeric string; the API validation normally prevents it.
        return int(text)
    pct = int(text[:-1])
    exact = pct * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def resolve_fenceposts(max_surge: int | str, max_unavailable: int | str, desired: int) -> tuple[int, int]:
    """``ResolveFenceposts``: surge rounds up, unavailable rounds down, both 0 forces unavailable to 1."""
    surge = scaled_value(max_surge, desired, True)
    unavailable = scaled_value(max_unavailable, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(d: Obj) -> int:
    """``MaxSurge``: 0 unless RollingUpdate."""
    if strategy_type(d) != "RollingUpdate":
        return 0
    surge, unavail = _rolling_params(d)
    return resolve_fenceposts(surge, unavail, replicas_of(d))[0]


def max_unavailable(d: Obj) -> int:
    """``MaxUnavailable``: 0 unless RollingUpdate or when replicas is 0, capped at replicas."""
    replicas = replicas_of(d)
    if strategy_type(d) != "RollingUpdate" or replicas == 0:
        return 0
    surge, unavail = _rolling_params(d)
    value = resolve_fenceposts(surge, unavail, replicas)[1]
    return min(value, replicas)


def round_half_away_from_zero(x: float) -> int:
    """Go's ``math.Round`` (Python's ``round`` is banker's rounding and gives different results on .5)."""
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


# ---- replica set accessors ---------------------------------------------------------------------------------


def rs_spec_replicas(rs: Obj) -> int:
    return replicas_of(rs)


def rs_status(rs: Obj, field: str) -> int:
    return int((rs.get("status") or {}).get(field) or 0)


def annotation_int(obj: Obj, key: str) -> int | None:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(key)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def revision(rs: Obj) -> int:
    """``Revision``: the revision annotation, 0 when absent or invalid."""
    return annotation_int(rs, REVISION) or 0


def max_revision(rss: Iterable[Obj]) -> int:
    return max((revision(rs) for rs in rss), default=0)


def filter_active(rss: Iterable[Obj | None]) -> list[Obj]:
    """``FilterActiveReplicaSets``: non-nil with ``spec.replicas > 0``."""
    return [rs for rs in rss if rs is not None and rs_spec_replicas(rs) > 0]


def sum_spec(rss: Iterable[Obj | None]) -> int:
    return sum(rs_spec_replicas(rs) for rs in rss if rs is not None)


def sum_status(rss: Iterable[Obj | None], field: str) -> int:
    return sum(rs_status(rs, field) for rs in rss if rs is not None)


def _ts_name(rs: Obj) -> tuple[str, str]:
    # RFC 3339 UTC strings with the same precision sort like the times they encode.
    meta = rs["metadata"]
    return meta.get("creationTimestamp") or "", meta.get("name") or ""


def sort_by_creation(rss: Iterable[Obj]) -> list[Obj]:
    """``ReplicaSetsByCreationTimestamp``: oldest first, name as tie-break."""
    return sorted(rss, key=_ts_name)


def sort_by_size_newer(rss: Iterable[Obj]) -> list[Obj]:
    """``ReplicaSetsBySizeNewer``: larger first; on ties the newer one first."""
    items = sorted(rss, key=_ts_name, reverse=True)
    return sorted(items, key=rs_spec_replicas, reverse=True)


def sort_by_size_older(rss: Iterable[Obj]) -> list[Obj]:
    """``ReplicaSetsBySizeOlder``: larger first; on ties the older one first."""
    items = sorted(rss, key=_ts_name)
    return sorted(items, key=rs_spec_replicas, reverse=True)


def sort_by_revision(rss: Iterable[Obj]) -> list[Obj]:
    """``ReplicaSetsByRevision``: ascending revision, creation time as tie-break."""
    return sorted(rss, key=lambda rs: (revision(rs), _ts_name(rs)))


# ---- annotations -------------------------------------------------------------------------------------------


def replicas_annotations_need_update(rs: Obj, desired: int, max_replicas: int) -> bool:
    ann = (rs.get("metadata") or {}).get("annotations") or {}
    return ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(max_replicas)


def set_replicas_annotations(rs: Obj, desired: int, max_replicas: int) -> bool:
    """Mutates ``rs``; returns whether anything changed."""
    ann = rs.setdefault("metadata", {}).get("annotations")
    if ann is None:
        ann = rs["metadata"]["annotations"] = {}
    changed = False
    for key, value in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(max_replicas))):
        if ann.get(key) != value:
            ann[key] = value
            changed = True
    return changed


def copy_deployment_annotations(d: Obj, rs: Obj) -> bool:
    """``copyDeploymentAnnotationsToReplicaSet``: mutates ``rs``; returns whether anything changed."""
    ann = rs.setdefault("metadata", {}).get("annotations")
    if ann is None:
        ann = rs["metadata"]["annotations"] = {}
    changed = False
    for key, value in ((d.get("metadata") or {}).get("annotations") or {}).items():
        if key in _ANNOTATIONS_TO_SKIP or ann.get(key) == value:
            continue
        ann[key] = value
        changed = True
    return changed


def set_new_rs_annotations(
    d: Obj, rs: Obj, new_revision: str, exists: bool, limit_chars: int = MAX_REV_HISTORY_CHARS
) -> bool:
    """``SetNewReplicaSetAnnotations``: mutates ``rs``; returns whether any annotation changed."""
    changed = copy_deployment_annotations(d, rs)
    ann = rs["metadata"]["annotations"]
    had_revision = REVISION in ann
    old_revision = ann.get(REVISION, "")
    try:
        old_rev_int = int(old_revision)
    except ValueError:
        if old_revision != "":
            return False
        old_rev_int = 0
    try:
        new_rev_int = int(new_revision)
    except ValueError:
        return False
    if old_rev_int < new_rev_int:
        ann[REVISION] = new_revision
        changed = True
    # Re-using an old RS is a rollback: keep the numbers it had before in the history annotation.
    if had_revision and old_rev_int < new_rev_int:
        history = ann.get(REVISION_HISTORY, "")
        old_revisions = history.split(",")
        if not old_revisions[0]:
            ann[REVISION_HISTORY] = old_revision
        else:
            total = len(history) + len(old_revision) + 1
            start = 0
            while total > limit_chars and start < len(old_revisions):
                total -= len(old_revisions[start]) + 1
                start += 1
            if total <= limit_chars:
                ann[REVISION_HISTORY] = ",".join(old_revisions[start:] + [old_revision])
    if not exists and set_replicas_annotations(rs, replicas_of(d), replicas_of(d) + max_surge(d)):
        changed = True
    return changed


# ---- rollout math ------------------------------------------------------------------------------------------


def new_rs_new_replicas(d: Obj, all_rss: Iterable[Obj | None], new_rs: Obj) -> int:
    """``NewRSNewReplicas``: the size the new RS may grow to in this sync."""
    replicas = replicas_of(d)
    if strategy_type(d) == "Recreate":
        return replicas
    surge, _ = _rolling_params(d)
    max_total = replicas + scaled_value(surge, replicas, True)
    current = sum_spec(all_rss)
    new_spec = rs_spec_replicas(new_rs)
    if current >= max_total:
        return new_spec
    return new_spec + min(max_total - current, replicas - new_spec)


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    """``IsSaturated``: the new RS has all replicas, the matching desired annotation and all available."""
    if rs is None:
        return False
    desired = annotation_int(rs, DESIRED_REPLICAS)
    if desired is None:
        return False
    replicas = replicas_of(d)
    return (
        rs_spec_replicas(rs) == replicas
        and desired == replicas
        and rs_status(rs, "availableReplicas") == replicas
    )


def find_active_or_latest(new_rs: Obj | None, old_rss: list[Obj]) -> Obj | None:
    """``FindActiveOrLatest``: the single active RS, else the new RS, else the newest old one; None if
    several."""
    if new_rs is None and not old_rss:
        return None
    newest_first = sorted(old_rss, key=_ts_name, reverse=True)
    active = filter_active([*newest_first, new_rs])
    if not active:
        return new_rs if new_rs is not None else newest_first[0]
    if len(active) == 1:
        return active[0]
    return None


def replica_set_fraction(rs_replicas: int, d_replicas: int, d_max_surge: int, annotated_max: int) -> int:
    """``getReplicaSetFraction`` on plain numbers."""
    if d_replicas == 0:
        return -rs_replicas
    deployment_replicas = d_replicas + d_max_surge
    if annotated_max == 0:
        return 0
    return round_half_away_from_zero(rs_replicas * deployment_replicas / annotated_max) - rs_replicas


def get_proportion(rs_replicas: int, fraction: int, to_add: int, added: int) -> int:
    """``GetProportion``: the RS's share of ``to_add``, bounded by what is still left to add."""
    if rs_replicas == 0 or to_add == 0 or to_add == added:
        return 0
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def proportional_sizes(d: Obj, active: list[Obj]) -> tuple[list[Obj], dict[str, int], str]:
    """The proportional part of ``scale()``: returns the RSs in processing order, their new sizes by name and
    the scaling operation word ("up", "down" or "")."""
    replicas = replicas_of(d)
    surge = max_surge(d)
    allowed = replicas + surge if replicas > 0 else 0
    to_add = allowed - sum_spec(active)
    operation = ""
    ordered = list(active)
    if to_add > 0:
        ordered = sort_by_size_newer(active)
        operation = "up"
    elif to_add < 0:
        ordered = sort_by_size_older(active)
        operation = "down"
    status_replicas = int((d.get("status") or {}).get("replicas") or 0)
    added = 0
    sizes: dict[str, int] = {}
    for rs in ordered:
        spec = rs_spec_replicas(rs)
        if to_add != 0:
            annotated = annotation_int(rs, MAX_REPLICAS)
            fraction = replica_set_fraction(
                spec, replicas, surge, status_replicas if annotated is None else annotated
            )
            proportion = get_proportion(spec, fraction, to_add, added)
            sizes[rs["metadata"]["name"]] = spec + proportion
            added += proportion
        else:
            sizes[rs["metadata"]["name"]] = spec
    if ordered and to_add != 0:
        first = ordered[0]["metadata"]["name"]
        sizes[first] = max(0, sizes[first] + to_add - added)
    return ordered, sizes, operation


# ---- conditions and status ---------------------------------------------------------------------------------


def get_condition(status: Obj, type_: str) -> Obj | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == type_:
            return cond
    return None


def new_condition(type_: str, status: str, reason: str, message: str) -> Obj:
    now = now_rfc3339()
    return {
        "type": type_,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def set_condition(status: Obj, condition: Obj) -> None:
    """``SetDeploymentCondition``: same status and reason is a no-op; same status keeps lastTransitionTime."""
    current = get_condition(status, condition["type"])
    if (
        current is not None
        and current.get("status") == condition["status"]
        and current.get("reason") == condition["reason"]
    ):
        return
    if current is not None and current.get("status") == condition["status"]:
        condition = dict(condition, lastTransitionTime=current.get("lastTransitionTime"))
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != condition["type"]]
    status["conditions"].append(condition)


def remove_condition(status: Obj, type_: str) -> None:
    if "conditions" in status:
        status["conditions"] = [c for c in status["conditions"] if c.get("type") != type_]
        if not status["conditions"]:
            del status["conditions"]


def status_int(status: Obj, field: str) -> int:
    return int(status.get(field) or 0)


def deployment_complete(d: Obj, status: Obj) -> bool:
    replicas = replicas_of(d)
    return (
        status_int(status, "updatedReplicas") == replicas
        and status_int(status, "replicas") == replicas
        and status_int(status, "availableReplicas") == replicas
        and status_int(status, "observedGeneration") >= int(d["metadata"].get("generation") or 0)
    )


def deployment_progressing(d: Obj, new_status: Obj) -> bool:
    old = d.get("status") or {}
    old_old = status_int(old, "replicas") - status_int(old, "updatedReplicas")
    new_old = status_int(new_status, "replicas") - status_int(new_status, "updatedReplicas")
    return (
        status_int(new_status, "updatedReplicas") > status_int(old, "updatedReplicas")
        or new_old < old_old
        or status_int(new_status, "readyReplicas") > status_int(old, "readyReplicas")
        or status_int(new_status, "availableReplicas") > status_int(old, "availableReplicas")
    )


def deployment_timed_out(d: Obj, new_status: Obj, now: float) -> bool:
    deadline = progress_deadline(d)
    if deadline is None:
        return False
    cond = get_condition(new_status, "Progressing")
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE_REASON:
        return False
    if cond.get("reason") == TIMED_OUT_REASON:
        return True
    return parse_time(cond.get("lastUpdateTime")) + deadline < now


def compact_status(status: Obj) -> Obj:
    """Drop zero counters like the apiserver's JSON encoding (``omitempty``)."""
    return {k: v for k, v in status.items() if v not in (0, None, [])}
