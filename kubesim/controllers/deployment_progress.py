"""The Deployment's status (upstream ``calculateStatus`` in ``sync.go``, and ``progress.go``): pure functions
of the Deployment and its ReplicaSets; the controller writes what they return."""

from __future__ import annotations

import time
from typing import Any

from kubesim.controllers import deployment_util as du

Obj = dict[str, Any]


def calculate_status(all_rss: list[Obj | None], new_rs: Obj | None, d: Obj) -> Obj:
    available = du.sum_status(all_rss, "availableReplicas")
    total = du.sum_spec(all_rss)
    status: Obj = {
        "observedGeneration": int(d["metadata"].get("generation") or 0),
        "replicas": du.sum_status(all_rss, "replicas"),
        "updatedReplicas": du.sum_status([new_rs], "replicas"),
        "readyReplicas": du.sum_status(all_rss, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": max(0, total - available),
        "terminatingReplicas": du.sum_status(all_rss, "terminatingReplicas"),
    }
    if d["status"].get("collisionCount") is not None:
        status["collisionCount"] = d["status"]["collisionCount"]
    status = du.compact_status(status)
    if d["status"].get("conditions"):
        status["conditions"] = [dict(c) for c in d["status"]["conditions"]]
    if available >= du.replicas_of(d) - du.max_unavailable(d):
        du.set_condition(
            status,
            du.new_condition(
                "Available", "True", du.MIN_AVAILABLE_REASON, "Deployment has minimum availability."
            ),
        )
    else:
        du.set_condition(
            status,
            du.new_condition(
                "Available",
                "False",
                du.MIN_UNAVAILABLE_REASON,
                "Deployment does not have minimum availability.",
            ),
        )
    return status


def rollout_status(d: Obj, all_rss: list[Obj | None], new_rs: Obj | None) -> Obj:
    """The status ``syncRolloutStatus`` (progress.go) writes: Available, Progressing, ReplicaFailure."""
    status = calculate_status(all_rss, new_rs, d)
    deadline = du.progress_deadline(d)
    if deadline is None:
        du.remove_condition(status, "Progressing")
    current = du.get_condition(d["status"], "Progressing")
    is_complete = (
        du.status_int(status, "replicas") == du.status_int(status, "updatedReplicas")
        and current is not None
        and current.get("reason") == du.NEW_RS_AVAILABLE_REASON
    )
    rs_name = new_rs["metadata"]["name"] if new_rs is not None else None
    dname = d["metadata"]["name"]
    if deadline is not None and not is_complete:
        if du.deployment_complete(d, status):
            msg = (
                f'ReplicaSet "{rs_name}" has successfully progressed.'
                if rs_name
                else f'Deployment "{dname}" has successfully progressed.'
            )
            du.set_condition(status, du.new_condition("Progressing", "True", du.NEW_RS_AVAILABLE_REASON, msg))
        elif du.deployment_progressing(d, status):
            msg = (
                f'ReplicaSet "{rs_name}" is progressing.'
                if rs_name
                else f'Deployment "{dname}" is progressing.'
            )
            cond = du.new_condition("Progressing", "True", du.RS_UPDATED_REASON, msg)
            if current is not None:
                if current.get("status") == "True":
                    cond["lastTransitionTime"] = current.get("lastTransitionTime")
                du.remove_condition(status, "Progressing")
            du.set_condition(status, cond)
        elif du.deployment_timed_out(d, status, time.time()):
            msg = (
                f'ReplicaSet "{rs_name}" has timed out progressing.'
                if rs_name
                else f'Deployment "{dname}" has timed out progressing.'
            )
            du.set_condition(status, du.new_condition("Progressing", "False", du.TIMED_OUT_REASON, msg))
    failures = replica_failures(all_rss, new_rs)
    if failures:
        du.set_condition(status, failures[0])
    else:
        du.remove_condition(status, "ReplicaFailure")
    return status


def replica_failures(all_rss: list[Obj | None], new_rs: Obj | None) -> list[Obj]:
    """``getReplicaFailures``: the new RS's ReplicaFailure first, else any old one's."""
    ordered = [new_rs, *[rs for rs in all_rss if rs is not new_rs]]
    for rs in ordered:
        if rs is None:
            continue
        for cond in (rs.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "ReplicaFailure":
                out = du.new_condition(
                    "ReplicaFailure",
                    cond.get("status", "True"),
                    cond.get("reason", ""),
                    cond.get("message", ""),
                )
                out["lastTransitionTime"] = cond.get("lastTransitionTime") or out["lastTransitionTime"]
                return [out]
    return []


def paused_conditions(d: Obj) -> bool:
    """``checkPausedConditions``: the Paused/Resumed Progressing condition on ``d``; True if it changed."""
    if du.progress_deadline(d) is None:
        return False
    cond = du.get_condition(d["status"], "Progressing")
    if cond is not None and cond.get("reason") == du.TIMED_OUT_REASON:
        return False
    paused = bool((d.get("spec") or {}).get("paused"))
    paused_exists = cond is not None and cond.get("reason") == du.PAUSED_REASON
    if paused and not paused_exists:
        du.set_condition(
            d["status"],
            du.new_condition("Progressing", "Unknown", du.PAUSED_REASON, "Deployment is paused"),
        )
    elif not paused and paused_exists:
        du.set_condition(
            d["status"],
            du.new_condition("Progressing", "Unknown", du.RESUMED_REASON, "Deployment is resumed"),
        )
    else:
        return False
    return True
