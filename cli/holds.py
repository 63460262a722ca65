"""Orphaned holds: a Deployment still held (paused, ``Recreate``, our metadata) by a rollout that closed.

A rollout hands its Deployment back when it completes or rolls back. A run that closes any other way
(``temporal workflow terminate``, a timeout, a failure on a bug, a cancellation by an older build)
leaves it held, and nothing would ever move it again. ``rollout status`` and ``list`` say so in
plain words; ``rollout undo`` hands it back in a new run (``undo_orphan``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException
from temporalio.client import WorkflowExecutionStatus

from cli.context import RolloutContext, read_with_retry, running_description
from kube.names import ANN_WORKFLOW_ID, LABEL_STABLE_REVISION

__all__ = ["OrphanedHold", "orphaned_hold", "orphan_message"]

_CLOSED_AS = {
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.TIMED_OUT: "timed out",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.CANCELED: "canceled",
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "continued as new",
}


@dataclass(frozen=True)
class OrphanedHold:
    """A held Deployment whose rollout is closed (or unknown to Temporal)."""

    namespace: str
    name: str
    workflow_id: str
    closed_as: str  # "terminated", "timed out", ... or "unknown to Temporal"
    deployment: dict[str, Any]

    @property
    def closed_as_text(self) -> str:
        return closed_as_text(self.closed_as)

    @property
    def message(self) -> str:
        return orphan_message(self.namespace, self.name, self.workflow_id, self.closed_as)


def orphan_message(namespace: str, name: str, workflow_id: str, closed_as: str) -> str:
    """What status and list say about an orphaned hold, and the two ways out."""
    which = closed_as_text(closed_as)
    return (
        f"deployment {namespace}/{name} is still held by rollout {workflow_id}, which {which}: "
        "it stays paused (strategy Recreate) and no rollout will move it. "
        f"`rollout undo {name} -n {namespace}` hands it back on the stable template; "
        f"`rollout start {name} -n {namespace} ...` takes it over"
    )


def closed_as_text(closed_as: str) -> str:
    return "is unknown to Temporal" if closed_as == "unknown to Temporal" else f"was {closed_as}"


def held_by(dep: dict[str, Any]) -> str:
    """The workflow ID a Deployment is held by ("" when it is not held by a rollout)."""
    md = dep.get("metadata") or {}
    owner = str((md.get("annotations") or {}).get(ANN_WORKFLOW_ID) or "")
    held = owner and LABEL_STABLE_REVISION in (md.get("labels") or {})
    return owner if held else ""


async def orphaned_hold(ctx: RolloutContext, name: str) -> OrphanedHold | None:
    """The Deployment's hold when the rollout holding it is not running (one GET and one describe)."""
    try:
        dep = await read_with_retry(ctx.kube.get_deployment, ctx.namespace, name)
    except ApiException:
        return None
    owner = held_by(dep)
    if not owner:
        return None
    desc = await running_description(ctx.client.get_workflow_handle(owner))
    if desc is not None and desc.status == WorkflowExecutionStatus.RUNNING:
        return None
    closed_as = "unknown to Temporal" if desc is None or desc.status is None else _CLOSED_AS[desc.status]
    return OrphanedHold(ctx.namespace, name, owner, closed_as, dep)
