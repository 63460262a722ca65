"""Kruise's bookkeeping of a running release, where Kruise keeps it (pure; no I/O).

On the held Deployment Kruise's BatchRelease controller sets ``deployment-strategy``'s ``partition`` to
the current batch's ``replicas`` as the step says it (``1``, ``"50%"``) when the batch begins, and its
advanced Deployment controller writes ``deployment-extra-status`` on every sync:
``{"updatedReadyReplicas": <ready pods of the new ReplicaSet>, "expectedUpdatedReplicas":
NewRSReplicasLimit(partition, spec.replicas)}`` (Go's JSON: zero fields omitted). In the Rollout's
``canaryStatus``, ``canaryReplicas`` counts the canary pods that exist (the new ReplicaSet's
``status.replicas``) and ``canaryReadyReplicas`` the ready ones.
"""

from __future__ import annotations

import json
from typing import Any

from kube.names import ANN_WORKFLOW_ID, KRUISE_ANN_DEPLOYMENT_STRATEGY, KRUISE_ANN_EXTRA_STATUS
from workflows.model import RolloutStatus
from workflows.plan import calculate_batch_replicas

__all__ = ["canary_counts", "counts_patch", "deployment_marks", "extra_status", "marks_patch", "partition_of"]


def partition_of(st: RolloutStatus) -> int | str:
    """The current step's ``replicas`` as written (0 before the first step)."""
    if 1 <= st.current_step_index <= len(st.steps):
        return st.steps[st.current_step_index - 1].replicas
    return 0


def extra_status(updated_ready: int, expected_updated: int) -> str:
    """``deployment-extra-status`` as Kruise's Go code marshals it (omitempty: zeros left out)."""
    out: dict[str, int] = {}
    if updated_ready:
        out["updatedReadyReplicas"] = updated_ready
    if expected_updated:
        out["expectedUpdatedReplicas"] = expected_updated
    return json.dumps(out, separators=(",", ":"))


def deployment_marks(
    annotations: dict[str, str], st: RolloutStatus, replicas: int, canary_ready: int
) -> dict[str, str]:
    """The Kruise annotations of a held Deployment that must change (none: ``{}``).

    Only a Deployment held as Kruise holds it (with ``deployment-strategy``) is kept current.
    """
    text = annotations.get(KRUISE_ANN_DEPLOYMENT_STRATEGY)
    if not text:
        return {}
    try:
        strategy = json.loads(text)
    except ValueError:
        strategy = {}
    if not isinstance(strategy, dict):
        strategy = {}
    partition = partition_of(st)
    out: dict[str, str] = {}
    if strategy.get("partition") != partition:
        out[KRUISE_ANN_DEPLOYMENT_STRATEGY] = json.dumps(
            {**strategy, "partition": partition}, separators=(",", ":")
        )
    expected = calculate_batch_replicas(partition, replicas)
    extra = extra_status(canary_ready, expected)
    if annotations.get(KRUISE_ANN_EXTRA_STATUS) != extra:
        out[KRUISE_ANN_EXTRA_STATUS] = extra
    return out


def canary_counts(rs: dict[str, Any] | None) -> tuple[int, int]:
    """``(canaryReplicas, canaryReadyReplicas)`` of the canary ReplicaSet: pods created, pods ready."""
    status = (rs or {}).get("status") or {}
    return int(status.get("replicas") or 0), int(status.get("readyReplicas") or 0)


def counts_patch(
    canary_status: dict[str, Any], counts: tuple[int, int], workload_generation: int
) -> dict[str, Any] | None:
    """The merge patch of the Rollout's status that brings its canary counts to ``counts`` and its
    ``observedWorkloadGeneration`` to the Deployment's (Kruise follows it on every reconcile; a write of
    Kruise's annotations bumps a Deployment's generation). None when nothing differs."""
    created, ready = counts
    want = {
        "canaryReplicas": created,
        "canaryReadyReplicas": ready,
        "observedWorkloadGeneration": workload_generation,
    }
    if all(canary_status.get(k) == v for k, v in want.items()):
        return None
    return {"status": {"canaryStatus": want}}


def marks_patch(marks: dict[str, str], workflow_id: str) -> list[dict[str, Any]]:
    """The JSON patch writing ``marks``, only while the run ``workflow_id`` still holds the Deployment
    (its ``test`` fails once the Deployment is handed back, so no mark outlives the hold)."""
    ops: list[dict[str, Any]] = [{"op": "test", "path": _annotation(ANN_WORKFLOW_ID), "value": workflow_id}]
    return ops + [{"op": "add", "path": _annotation(k), "value": v} for k, v in marks.items()]


def _annotation(key: str) -> str:
    """A JSON pointer to one annotation (``~`` and ``/`` escaped)."""
    return "/metadata/annotations/" + key.replace("~", "~0").replace("/", "~1")
