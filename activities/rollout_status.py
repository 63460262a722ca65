"""Declarative mode: the activity that mirrors the workflow's status into the Kruise Rollout object.

The one writer of a running rollout's ``Rollout.status`` (the controller only reads it and signals).
Read-modify-write with the resourceVersion as precondition, so a concurrent approval patch of the
status subresource is never lost: a 409 is retried by Temporal with a fresh read, and
``kruise_status`` keeps a pending ``StepReady`` until the workflow has moved on.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException
from temporalio import activity

from activities.common import KubeActivities
from kruise.bookkeeping import canary_counts, deployment_marks, marks_patch
from kruise.status import kruise_status
from kube.client import rollout_path
from kube.names import HASH_LABEL
from kube.objects import owned_replica_sets
from workflows.model import RolloutObjectStatusInput, RolloutStatus

__all__ = ["RolloutObjectActivities"]

Obj = dict[str, Any]


class RolloutObjectActivities(KubeActivities):
    """Activities on the Kruise Rollout object."""

    def _write(self, inp: RolloutObjectStatusInput) -> bool:
        try:
            obj: Obj = self.kube.request("GET", rollout_path(inp.namespace, inp.rollout))
        except ApiException as exc:
            if exc.status == 404:
                return False  # deleted: nothing to report to
            raise
        counts: tuple[int, int] | None = None
        try:
            dep = self.kube.get_deployment(inp.namespace, inp.deployment)
            workload_generation = int((dep.get("metadata") or {}).get("generation") or 0)
            counts = self._canary_counts(dep, inp.status.canary_revision)
            dep = self._deployment_marks(dep, inp.status, counts)
            workload_generation = int((dep.get("metadata") or {}).get("generation") or 0)
        except ApiException as exc:
            if exc.status != 404:
                raise
            workload_generation = 0
        md = obj.get("metadata") or {}
        current = obj.get("status") or {}
        new = kruise_status(
            inp.status,
            current=current,
            generation=int(md.get("generation") or 0),
            workload_generation=workload_generation,
            now=datetime.now(UTC),
            deleting=bool(md.get("deletionTimestamp")),
            disabled=bool((obj.get("spec") or {}).get("disabled")),
            counts=counts,
        )
        if _same(current, new):
            return False
        obj["status"] = new
        self.kube.request("PUT", rollout_path(inp.namespace, inp.rollout, "status"), obj)
        return True

    def _canary_counts(self, dep: Obj, revision: str) -> tuple[int, int] | None:
        """The canary ReplicaSet's pods as Kruise counts them (created, ready); None when it is not there."""
        if not revision:
            return None
        rss = self.kube.list_replica_sets(dep["metadata"]["namespace"], f"{HASH_LABEL}={revision}")
        canary = next(iter(owned_replica_sets(dep, rss)), None)
        return canary_counts(canary) if canary is not None else None

    def _deployment_marks(self, dep: Obj, st: RolloutStatus, counts: tuple[int, int] | None) -> Obj:
        """Kruise's bookkeeping on the held Deployment (the current step's partition and
        deployment-extra-status), written before the Rollout's status says the step is reached.
        Returns the Deployment as stored (an annotation write bumps its generation)."""
        if counts is None:
            return dep
        md = dep["metadata"]
        replicas = int((dep.get("spec") or {}).get("replicas") or 0)
        marks = deployment_marks(md.get("annotations") or {}, st, replicas, counts[1])
        if not marks:
            return dep
        try:
            return self.kube.request(
                "PATCH",
                self.kube.deployment_path(md["namespace"], md["name"]),
                marks_patch(marks, st.workflow_id),
                content_type="application/json-patch+json",
            )
        except ApiException as exc:
            if exc.status not in (404, 409, 422):  # gone, or no longer held by this run
                raise
            return dep

    @activity.defn
    async def write_rollout_status(self, inp: RolloutObjectStatusInput) -> bool:
        """Set the Rollout's status from the workflow's; False when nothing had to change."""
        return await self.client.run(self._write, inp)


def _same(a: Obj, b: Obj) -> bool:
    """Equal but for timestamps (a write that only moves lastUpdateTime is skipped)."""

    def strip(st: Obj) -> Any:
        canary = {k: v for k, v in (st.get("canaryStatus") or {}).items() if k != "lastUpdateTime"}
        conds = [{k: v for k, v in c.items() if k != "lastUpdateTime"} for c in st.get("conditions") or []]
        return {**st, "canaryStatus": canary, "conditions": conds}

    return bool(strip(a) == strip(b))
