"""Scaling activities: read the Deployment and both ReplicaSets, and set a ReplicaSet to exactly N.

``step_move`` is the read and the first move of a step in one activity (the first write after approve
needs no round trip through the workflow).
"""

from __future__ import annotations

from typing import Any

from temporalio import activity

from activities.common import (
    DeploymentActivities,
    counts_of,
    fail,
    snapshot_of,
)
from kube.names import ANN_DESIRED, ANN_MAX
from workflows import errors, plan
from workflows.model import (
    ReplicaSetCounts,
    ScaleInput,
    Snapshot,
    SnapshotInput,
    StepMoveInput,
    StepMoveResult,
)

__all__ = ["ScalingActivities"]

Obj = dict[str, Any]


class ScalingActivities(DeploymentActivities):
    """get_snapshot, scale_replica_set, step_move."""

    @activity.defn
    async def get_snapshot(self, inp: SnapshotInput) -> Snapshot:
        """Read spec.replicas and both ReplicaSets' spec/ready counts."""
        return await self._snapshot(inp)

    # -- writes ------------------------------------------------------------------------------------

    @activity.defn
    async def scale_replica_set(self, inp: ScaleInput) -> ReplicaSetCounts:
        """Set a ReplicaSet to exactly ``replicas`` (no-op when it already is)."""
        rs = await self._get_rs(inp.ref.namespace, inp.rs_name)
        return await self._scale(
            inp.ref.namespace, inp.rs_name, rs, inp.replicas, inp.desired_replicas, inp.max_replicas
        )

    async def _scale(
        self, ns: str, name: str, rs: Obj | None, replicas: int, desired_replicas: int, max_replicas: int
    ) -> ReplicaSetCounts:
        """Write ``replicas`` (and the desired/max annotations) into the ReplicaSet ``rs`` as read."""
        updated = await self._scale_object(ns, name, rs, replicas, desired_replicas, max_replicas)
        return counts_of(updated, name)

    async def _scale_object(
        self, ns: str, name: str, rs: Obj | None, replicas: int, desired_replicas: int, max_replicas: int
    ) -> Obj:
        """``_scale``, returning the ReplicaSet as written (``rs`` itself when no write was needed)."""
        if rs is None:
            raise fail(f"ReplicaSet {ns}/{name} not found", errors.STABLE_NOT_FOUND)
        annotations = dict(rs["metadata"].get("annotations") or {})
        want = {ANN_DESIRED: str(desired_replicas), ANN_MAX: str(max_replicas)}
        current = int(rs["spec"].get("replicas") or 0)
        if current == replicas and all(annotations.get(k) == v for k, v in want.items()):
            return rs
        annotations.update(want)
        rs["metadata"]["annotations"] = annotations
        rs["spec"]["replicas"] = replicas
        rs.pop("status", None)
        updated = await self._call(self.kube.put_replica_set, rs)
        activity.logger.info("scaled ReplicaSet %s/%s from %d to %d", ns, name, current, replicas)
        # The status still shows the old ready count; a scale-down removes unready pods first.
        status = updated.setdefault("status", {})
        status["readyReplicas"] = min(int(status.get("readyReplicas") or 0), replicas)
        return updated

    @activity.defn
    async def step_move(self, inp: StepMoveInput) -> StepMoveResult:
        """Read the Deployment and both ReplicaSets, then make the step's next scale move, if any.

        One activity instead of ``get_snapshot`` + a workflow task + ``scale_replica_set``: the
        first write after approve needs no round trip through the workflow. Safe to retry: a retry
        re-reads, and any move ``plan.next_move`` picks from a fresh read is a valid one.
        """
        ns = inp.snapshot.ref.namespace
        dep, rss = await self._read(inp.snapshot)
        snap = snapshot_of(inp.snapshot, dep, rss)
        if inp.check_drift and snap.template_drift:
            return StepMoveResult(snapshot=snap)  # the workflow pauses for the other writer first
        move, surge = plan.step_move(snap, inp.step, inp.rolling_update, inp.failure_threshold)
        if move.action != "scale":
            return StepMoveResult(snapshot=snap)
        name = inp.snapshot.canary_rs if move.side == "canary" else inp.snapshot.stable_rs
        counts = await self._scale(ns, name, rss[name], move.replicas, snap.replicas, snap.replicas + surge)
        if move.side == "canary":
            snap.canary = counts
        else:
            snap.stable = counts
        return StepMoveResult(snapshot=snap, scaled=move.side or "")
