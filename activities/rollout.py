"""Rollout activities: idempotent "set to N" writes and heartbeating waits against the Kubernetes API.

Every write reads the object first, returns early when it is already in the wanted state, and
otherwise PUTs it back with its ``resourceVersion`` as precondition. A 409 Conflict is raised as is,
so Temporal retries the whole read-modify-write. Transient errors (5xx, 429, network) are retried
the same way; requests that can never succeed raise ``ApplicationError`` with a named type from
``workflows.errors`` and ``non_retryable=True``.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.kube import (
    HASH_LABEL,
    Kube,
    describe_template_change,
    find_replica_set_for_template,
    owned_replica_sets,
    template_hash,
    templates_equal,
)
from workflows import errors, plan
from workflows.model import (
    ANN_ORIGINAL_STRATEGY,
    ANN_WORKFLOW_ID,
    ANNOTATION_PREFIX,
    LABEL_STABLE_REVISION,
    FinalizeInput,
    ReplicaSetCounts,
    RetargetInput,
    ScaleInput,
    Snapshot,
    SnapshotInput,
    TakeoverInput,
    TakeoverResult,
    WaitInput,
    WatchInput,
    WatchResult,
)

__all__ = ["RolloutActivities"]

T = TypeVar("T")
Obj = dict[str, Any]

ANN_REVISION = "deployment.kubernetes.io/revision"
ANN_DESIRED = "deployment.kubernetes.io/desired-replicas"
ANN_MAX = "deployment.kubernetes.io/max-replicas"
_MAX_COLLISIONS = 10


def _fail(message: str, error_type: str) -> ApplicationError:
    return ApplicationError(message, type=error_type, non_retryable=True)


def _raise_if_abandoned() -> None:
    """A wait the workflow stopped caring about (undo, approve) ends quietly, not as a warning."""
    details = activity.cancellation_details()
    if details is not None and details.not_found:
        raise ApplicationError(
            "wait abandoned by the workflow", type="Abandoned", category=ApplicationErrorCategory.BENIGN
        )


def _counts(rs: Obj | None, name: str) -> ReplicaSetCounts:
    if rs is None:
        return ReplicaSetCounts(name=name)
    return ReplicaSetCounts(
        name=name,
        replicas=int((rs.get("spec") or {}).get("replicas") or 0),
        ready_replicas=int((rs.get("status") or {}).get("readyReplicas") or 0),
    )


def _drift(dep: Obj, canary: Obj | None) -> str:
    """How the Deployment's template differs from the canary ReplicaSet's ("" when it does not).

    Only our take-over and retarget write the template while we own the Deployment, and both make it
    equal to the canary's; anything else is another writer (kubectl edit, GitOps, CI).
    """
    if canary is None:
        return ""
    current = (dep.get("spec") or {}).get("template") or {}
    ours = (canary.get("spec") or {}).get("template") or {}
    return "" if templates_equal(current, ours) else describe_template_change(ours, current)


class RolloutActivities:
    """Activities of the rollout workflow, bound to one Kubernetes ``ApiClient``."""

    def __init__(self, api_client: ApiClient) -> None:
        self.kube = Kube(api_client)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking client call in a thread; map impossible requests to non-retryable errors."""
        try:
            return await asyncio.to_thread(fn, *args)
        except ApiException as exc:
            if exc.status in (400, 422):
                raise _fail(
                    f"the API server rejected the request: {exc.body or exc.reason}",
                    errors.INVALID_ROLLOUT_SPEC,
                ) from exc
            raise

    async def _get_deployment(self, namespace: str, name: str) -> Obj:
        try:
            return await self._call(self.kube.get_deployment, namespace, name)
        except ApiException as exc:
            if exc.status == 404:
                raise _fail(
                    f'deployment "{name}" not found in namespace "{namespace}"', errors.DEPLOYMENT_NOT_FOUND
                ) from exc
            raise

    async def _get_rs(self, namespace: str, name: str) -> Obj | None:
        try:
            return await self._call(self.kube.get_replica_set, namespace, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    # -- takeover ----------------------------------------------------------------------------------

    @activity.defn
    async def take_over(self, inp: TakeoverInput) -> TakeoverResult:
        """One atomic write: new template, paused, Recreate, parked strategy, our metadata.

        Idempotent: a Deployment that already carries our workflow ID is not written again.
        """
        ns, name = inp.ref.namespace, inp.ref.name
        dep = await self._get_deployment(ns, name)
        md = dep["metadata"]
        annotations: dict[str, str] = dict(md.get("annotations") or {})
        labels: dict[str, str] = dict(md.get("labels") or {})
        owner = annotations.get(ANN_WORKFLOW_ID)
        if owner and owner != inp.workflow_id:
            raise _fail(f"deployment {ns}/{name} is under rollout {owner}", errors.NOT_OWNER)
        spec = dep["spec"]
        rss = await self._call(self.kube.list_replica_sets, ns)

        if owner == inp.workflow_id:
            stable_revision = labels.get(LABEL_STABLE_REVISION, "")
            original = json.loads(annotations.get(ANN_ORIGINAL_STRATEGY) or "{}")
            stable = next(
                (
                    rs
                    for rs in owned_replica_sets(dep, rss)
                    if (rs["metadata"].get("labels") or {}).get(HASH_LABEL) == stable_revision
                ),
                None,
            )
            if stable is None:
                raise _fail(
                    f"stable ReplicaSet {stable_revision!r} of {ns}/{name} is gone", errors.STABLE_NOT_FOUND
                )
            activity.logger.info("deployment %s/%s already taken over by %s", ns, name, owner)
        else:
            if int(spec.get("replicas") or 0) <= 0:
                raise _fail(
                    f"deployment {ns}/{name} has 0 replicas; nothing to roll out", errors.INVALID_ROLLOUT_SPEC
                )
            if spec.get("paused"):
                raise _fail(f"deployment {ns}/{name} is paused by its owner", errors.INVALID_ROLLOUT_SPEC)
            if templates_equal(spec["template"], inp.template):
                raise _fail(
                    f"deployment {ns}/{name} already runs this pod template", errors.INVALID_ROLLOUT_SPEC
                )
            found = find_replica_set_for_template(dep, rss, spec["template"])
            if found is None:
                raise _fail(
                    f"no ReplicaSet of {ns}/{name} runs its current template; "
                    "wait for it to finish rolling out",
                    errors.STABLE_NOT_FOUND,
                )
            stable = found
            stable_revision = (stable["metadata"].get("labels") or {}).get(HASH_LABEL, "")
            original = copy.deepcopy(spec.get("strategy") or {"type": "RollingUpdate"})
            annotations[ANN_WORKFLOW_ID] = inp.workflow_id
            annotations[ANN_ORIGINAL_STRATEGY] = json.dumps(original, sort_keys=True)
            labels[LABEL_STABLE_REVISION] = stable_revision
            md["annotations"] = annotations
            md["labels"] = labels
            spec["template"] = copy.deepcopy(inp.template)
            spec["paused"] = True
            spec["strategy"] = {"type": "Recreate"}
            dep.pop("status", None)
            dep = await self._call(self.kube.put_deployment, dep)
            activity.logger.info(
                "took over %s/%s: paused, Recreate, stable revision %s", ns, name, stable_revision
            )

        canary = await self._ensure_canary(dep, original)
        ru = original.get("rollingUpdate") or {}
        return TakeoverResult(
            stable_rs=stable["metadata"]["name"],
            stable_revision=stable_revision,
            canary_rs=canary["metadata"]["name"],
            canary_revision=(canary["metadata"].get("labels") or {}).get(HASH_LABEL, ""),
            original_strategy=original,
            max_surge=ru.get("maxSurge", "25%"),
            max_unavailable=ru.get("maxUnavailable", "25%"),
        )

    async def _ensure_canary(self, dep: Obj, original_strategy: Obj) -> Obj:
        """Create (or find) the canary ReplicaSet; the native controller adopts it after unpause.

        Deterministic name ``<deploy>-<hash>``; an owned ReplicaSet with an equal template is reused
        (a retry, or a revision that existed before).
        """
        md, spec = dep["metadata"], dep["spec"]
        ns, name = md["namespace"], md["name"]
        template = spec["template"]
        rss = await self._call(self.kube.list_replica_sets, ns)
        existing = find_replica_set_for_template(dep, rss, template)
        if existing is not None:
            return existing
        replicas = int(spec.get("replicas") or 0)
        surge, _ = plan.resolve_fenceposts(original_strategy.get("rollingUpdate"), replicas)
        revisions = [
            int((rs["metadata"].get("annotations") or {}).get(ANN_REVISION, "0") or 0)
            for rs in owned_replica_sets(dep, rss)
        ]
        for collision in range(_MAX_COLLISIONS):
            h = template_hash(template, collision)
            rs_template = copy.deepcopy(template)
            rs_template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
            selector = copy.deepcopy(spec["selector"])
            selector.setdefault("matchLabels", {})[HASH_LABEL] = h
            body: Obj = {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": f"{name}-{h}",
                    "namespace": ns,
                    "labels": dict(rs_template["metadata"]["labels"]),
                    "annotations": {
                        ANN_REVISION: str(max(revisions, default=0) + 1),
                        ANN_DESIRED: str(replicas),
                        ANN_MAX: str(replicas + surge),
                    },
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": name,
                            "uid": md["uid"],
                            "controller": True,
                            "blockOwnerDeletion": True,
                        }
                    ],
                },
                "spec": {
                    "replicas": 0,
                    "minReadySeconds": int(spec.get("minReadySeconds") or 0),
                    "selector": selector,
                    "template": rs_template,
                },
            }
            try:
                created = await self._call(self.kube.create_replica_set, ns, body)
                activity.logger.info("created canary ReplicaSet %s/%s", ns, body["metadata"]["name"])
                return created
            except ApiException as exc:
                if exc.status != 409:
                    raise
            other = await self._get_rs(ns, f"{name}-{h}")
            if other is not None and templates_equal(other["spec"]["template"], template):
                return other
        raise _fail(f"could not find a free ReplicaSet name for {ns}/{name}", errors.REPLICASET_CONFLICT)

    @activity.defn
    async def retarget(self, inp: RetargetInput) -> TakeoverResult:
        """Write ``template`` into the Deployment we own (still paused) and ensure its canary ReplicaSet.

        Used by continuous release (``--replace``) and to restore our template after another writer
        changed it (approve). Idempotent: no write when the template is already there.
        """
        ns, name = inp.ref.namespace, inp.ref.name
        dep = await self._get_deployment(ns, name)
        md, spec = dep["metadata"], dep["spec"]
        annotations = md.get("annotations") or {}
        owner = annotations.get(ANN_WORKFLOW_ID)
        if owner != inp.workflow_id:
            raise _fail(f"deployment {ns}/{name} is not under rollout {inp.workflow_id}", errors.NOT_OWNER)
        original = json.loads(annotations.get(ANN_ORIGINAL_STRATEGY) or "{}")
        stable = await self._get_rs(ns, inp.stable_rs)
        if stable is None:
            raise _fail(f"stable ReplicaSet {ns}/{inp.stable_rs} is gone", errors.STABLE_NOT_FOUND)
        if templates_equal(stable["spec"]["template"], inp.template):
            raise _fail(
                f"the new template of {ns}/{name} equals the stable revision; use undo",
                errors.INVALID_ROLLOUT_SPEC,
            )
        if not templates_equal(spec["template"], inp.template):
            spec["template"] = copy.deepcopy(inp.template)
            dep.pop("status", None)
            dep = await self._call(self.kube.put_deployment, dep)
            activity.logger.info("retargeted %s/%s to a new pod template", ns, name)
        canary = await self._ensure_canary(dep, original)
        ru = original.get("rollingUpdate") or {}
        return TakeoverResult(
            stable_rs=inp.stable_rs,
            stable_revision=(stable["metadata"].get("labels") or {}).get(HASH_LABEL, ""),
            canary_rs=canary["metadata"]["name"],
            canary_revision=(canary["metadata"].get("labels") or {}).get(HASH_LABEL, ""),
            original_strategy=original,
            max_surge=ru.get("maxSurge", "25%"),
            max_unavailable=ru.get("maxUnavailable", "25%"),
        )

    # -- reads ---------------------------------------------------------------------------------------

    async def _snapshot(self, inp: SnapshotInput) -> Snapshot:
        ns = inp.ref.namespace
        dep = await self._get_deployment(ns, inp.ref.name)
        stable = await self._get_rs(ns, inp.stable_rs)
        canary = await self._get_rs(ns, inp.canary_rs)
        return Snapshot(
            replicas=int(dep["spec"].get("replicas") or 0),
            generation=int(dep["metadata"].get("generation") or 0),
            stable=_counts(stable, inp.stable_rs),
            canary=_counts(canary, inp.canary_rs),
            template_drift=_drift(dep, canary),
        )

    @activity.defn
    async def get_snapshot(self, inp: SnapshotInput) -> Snapshot:
        """Read spec.replicas and both ReplicaSets' spec/ready counts."""
        return await self._snapshot(inp)

    # -- writes --------------------------------------------------------------------------------------

    @activity.defn
    async def scale_replica_set(self, inp: ScaleInput) -> ReplicaSetCounts:
        """Set a ReplicaSet to exactly ``replicas`` (no-op when it already is)."""
        ns = inp.ref.namespace
        rs = await self._get_rs(ns, inp.rs_name)
        if rs is None:
            raise _fail(f"ReplicaSet {ns}/{inp.rs_name} not found", errors.STABLE_NOT_FOUND)
        annotations = dict(rs["metadata"].get("annotations") or {})
        want = {ANN_DESIRED: str(inp.desired_replicas), ANN_MAX: str(inp.max_replicas)}
        current = int(rs["spec"].get("replicas") or 0)
        if current == inp.replicas and all(annotations.get(k) == v for k, v in want.items()):
            return _counts(rs, inp.rs_name)
        annotations.update(want)
        rs["metadata"]["annotations"] = annotations
        rs["spec"]["replicas"] = inp.replicas
        rs.pop("status", None)
        updated = await self._call(self.kube.put_replica_set, rs)
        activity.logger.info("scaled ReplicaSet %s/%s from %d to %d", ns, inp.rs_name, current, inp.replicas)
        counts = _counts(updated, inp.rs_name)
        # The status still shows the old ready count; a scale-down removes unready pods first.
        counts.ready_replicas = min(counts.ready_replicas, inp.replicas)
        return counts

    @activity.defn
    async def finalize(self, inp: FinalizeInput) -> None:
        """Hand the Deployment back in one write: strategy restored, unpaused, our metadata removed.

        With ``restore_template_from_rs`` (undo) the pod template is set back to that ReplicaSet's.
        Idempotent: a Deployment without our workflow annotation is left alone.
        """
        ns, name = inp.ref.namespace, inp.ref.name
        dep = await self._get_deployment(ns, name)
        md, spec = dep["metadata"], dep["spec"]
        annotations = dict(md.get("annotations") or {})
        owner = annotations.get(ANN_WORKFLOW_ID)
        if owner is None:
            activity.logger.info("deployment %s/%s already handed back", ns, name)
            return
        if owner != inp.workflow_id:
            raise _fail(f"deployment {ns}/{name} is under rollout {owner}", errors.NOT_OWNER)
        if inp.restore_template_from_rs:
            rs = await self._get_rs(ns, inp.restore_template_from_rs)
            if rs is None:
                raise _fail(
                    f"stable ReplicaSet {inp.restore_template_from_rs} is gone", errors.STABLE_NOT_FOUND
                )
            template = copy.deepcopy(rs["spec"]["template"])
            (template.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
            spec["template"] = template
        md["annotations"] = {k: v for k, v in annotations.items() if not k.startswith(ANNOTATION_PREFIX)}
        md["labels"] = {
            k: v for k, v in (md.get("labels") or {}).items() if not k.startswith(ANNOTATION_PREFIX)
        }
        spec["strategy"] = copy.deepcopy(inp.original_strategy) or {"type": "RollingUpdate"}
        spec["paused"] = False
        dep.pop("status", None)
        await self._call(self.kube.put_deployment, dep)
        activity.logger.info("handed %s/%s back to the Deployment controller", ns, name)

    # -- waits (heartbeating; cancelled promptly through the heartbeat response) ----------------------

    @activity.defn
    async def wait_for_batch(self, inp: WaitInput) -> Snapshot:
        """Poll until the plan can move again (a scale is possible or the batch is ready)."""
        try:
            return await self._wait_for_batch(inp)
        except asyncio.CancelledError:
            _raise_if_abandoned()
            raise

    async def _wait_for_batch(self, inp: WaitInput) -> Snapshot:
        while True:
            snap = await self._snapshot(inp.snapshot)
            move = plan.next_move(
                snap.canary.replicas,
                snap.canary.ready_replicas,
                snap.stable.replicas,
                snap.stable.ready_replicas,
                canary_target=inp.canary_target,
                stable_target=inp.stable_target,
                replicas=snap.replicas,
                max_surge=inp.max_surge,
                max_unavailable=inp.max_unavailable,
                failure_threshold=inp.failure_threshold,
                grow_canary=inp.grow_canary,
            )
            if (
                move.action != "wait"
                or snap.replicas != inp.canary_target + inp.stable_target
                or (snap.template_drift and inp.grow_canary)
                or 0 <= inp.canary_ready < snap.canary.ready_replicas
            ):
                return snap
            activity.heartbeat({"reason": move.reason, **snap.model_dump(mode="json")})
            await asyncio.sleep(inp.poll_interval_seconds)

    @activity.defn
    async def watch_replicas(self, inp: WatchInput) -> WatchResult:
        """Return once the Deployment's spec.replicas differs from ``inp.replicas`` (kubectl scale, HPA)."""
        try:
            return await self._watch_replicas(inp)
        except asyncio.CancelledError:
            _raise_if_abandoned()
            raise

    async def _watch_replicas(self, inp: WatchInput) -> WatchResult:
        while True:
            dep = await self._get_deployment(inp.ref.namespace, inp.ref.name)
            replicas = int(dep["spec"].get("replicas") or 0)
            if replicas != inp.replicas:
                return WatchResult(replicas=replicas)
            if inp.canary_rs:
                drift = _drift(dep, await self._get_rs(inp.ref.namespace, inp.canary_rs))
                if drift:
                    return WatchResult(replicas=replicas, template_drift=drift)
            activity.heartbeat({"replicas": replicas})
            await asyncio.sleep(inp.poll_interval_seconds)
