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
import functools
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import urllib3
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from kube.client import Kube
from kube.names import (
    ANN_DESIRED,
    ANN_MAX,
    ANN_ORIGINAL_STRATEGY,
    ANN_REVISION,
    ANN_WORKFLOW_ID,
    ANNOTATION_PREFIX,
    HASH_LABEL,
    LABEL_STABLE_REVISION,
)
from kube.objects import (
    describe_template_change,
    find_replica_set_for_template,
    label_selector,
    owned_replica_sets,
    template_hash,
    templates_equal,
)
from kube.watch import EventStream
from workflows import errors, plan
from workflows.checks import Refusal, check_takeover, stable_by_revision
from workflows.model import (
    FinalizeInput,
    ReplicaSetCounts,
    RetargetInput,
    ScaleInput,
    Snapshot,
    SnapshotInput,
    StepMoveInput,
    StepMoveResult,
    TakeoverInput,
    TakeoverResult,
    WaitInput,
    WatchInput,
    WatchResult,
)

__all__ = ["ACTIVITY_THREADS", "RolloutActivities"]

T = TypeVar("T")
Obj = dict[str, Any]

_MAX_COLLISIONS = 10
# Threads for the blocking client calls (see worker.py: sized with the activity slots and the
# connection pool). Our own pool, not the loop's default one (min(32, CPUs + 4) = 6 threads here).
# A readiness wait holds two (its Deployment and ReplicaSet watches), any other activity at most one.
ACTIVITY_THREADS = 2048


def _refuse(refusal: Refusal | None) -> ApplicationError:
    """A precondition check's refusal as a non-retryable activity error of its named type."""
    assert refusal is not None
    return _fail(refusal.message, refusal.error_type)


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

    def __init__(self, api_client: ApiClient, *, threads: int = ACTIVITY_THREADS) -> None:
        self.kube = Kube(api_client)
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="rollout-activity")

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, functools.partial(fn, *args))

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking client call in a thread; map impossible requests to non-retryable errors."""
        try:
            return await self._in_thread(fn, *args)
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
        rss = await self._call(self.kube.list_deployment_replica_sets, dep)

        if owner == inp.workflow_id:
            stable_revision = labels.get(LABEL_STABLE_REVISION, "")
            original = json.loads(annotations.get(ANN_ORIGINAL_STRATEGY) or "{}")
            found, refusal = stable_by_revision(dep, rss)
            if found is None:
                raise _refuse(refusal)
            stable = found
            activity.logger.info("deployment %s/%s already taken over by %s", ns, name, owner)
        else:
            refusal = check_takeover(dep, rss, inp.template)
            if refusal is not None:
                raise _refuse(refusal)
            found = find_replica_set_for_template(dep, rss, spec["template"])
            assert found is not None  # check_takeover found it
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
        rss = await self._call(self.kube.list_deployment_replica_sets, dep)
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

    async def _read(self, inp: SnapshotInput) -> tuple[Obj, dict[str, Obj | None]]:
        """The Deployment and its stable and canary ReplicaSets, as the server has them."""
        ns = inp.ref.namespace
        dep = await self._get_deployment(ns, inp.ref.name)
        rss = {
            inp.stable_rs: await self._get_rs(ns, inp.stable_rs),
            inp.canary_rs: await self._get_rs(ns, inp.canary_rs),
        }
        return dep, rss

    async def _snapshot(self, inp: SnapshotInput) -> Snapshot:
        dep, rss = await self._read(inp)
        return _snapshot_of(inp, dep, rss)

    @activity.defn
    async def get_snapshot(self, inp: SnapshotInput) -> Snapshot:
        """Read spec.replicas and both ReplicaSets' spec/ready counts."""
        return await self._snapshot(inp)

    # -- writes --------------------------------------------------------------------------------------

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
        if rs is None:
            raise _fail(f"ReplicaSet {ns}/{name} not found", errors.STABLE_NOT_FOUND)
        annotations = dict(rs["metadata"].get("annotations") or {})
        want = {ANN_DESIRED: str(desired_replicas), ANN_MAX: str(max_replicas)}
        current = int(rs["spec"].get("replicas") or 0)
        if current == replicas and all(annotations.get(k) == v for k, v in want.items()):
            return _counts(rs, name)
        annotations.update(want)
        rs["metadata"]["annotations"] = annotations
        rs["spec"]["replicas"] = replicas
        rs.pop("status", None)
        updated = await self._call(self.kube.put_replica_set, rs)
        activity.logger.info("scaled ReplicaSet %s/%s from %d to %d", ns, name, current, replicas)
        counts = _counts(updated, name)
        # The status still shows the old ready count; a scale-down removes unready pods first.
        counts.ready_replicas = min(counts.ready_replicas, replicas)
        return counts

    @activity.defn
    async def step_move(self, inp: StepMoveInput) -> StepMoveResult:
        """Read the Deployment and both ReplicaSets, then make the step's next scale move, if any.

        One activity instead of ``get_snapshot`` + a workflow task + ``scale_replica_set``: the
        first write after approve needs no round trip through the workflow. Safe to retry: a retry
        re-reads, and any move ``plan.next_move`` picks from a fresh read is a valid one.
        """
        ns = inp.snapshot.ref.namespace
        dep, rss = await self._read(inp.snapshot)
        snap = _snapshot_of(inp.snapshot, dep, rss)
        if inp.check_drift and snap.template_drift:
            return StepMoveResult(snapshot=snap)  # the workflow pauses for the other writer first
        canary_target, stable_target = plan.step_targets(inp.step, snap.replicas)
        surge, unavailable = plan.resolve_fenceposts(inp.rolling_update, snap.replicas)
        move = plan.move_for(
            snap,
            canary_target=canary_target,
            stable_target=stable_target,
            max_surge=surge,
            max_unavailable=unavailable,
            failure_threshold=plan.failure_threshold_count(inp.failure_threshold, canary_target),
            grow_canary=True,
        )
        if move.action != "scale":
            return StepMoveResult(snapshot=snap)
        name = inp.snapshot.canary_rs if move.side == "canary" else inp.snapshot.stable_rs
        counts = await self._scale(ns, name, rss[name], move.replicas, snap.replicas, snap.replicas + surge)
        if move.side == "canary":
            snap.canary = counts
        else:
            snap.stable = counts
        return StepMoveResult(snapshot=snap, scaled=move.side or "")

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
        """Wait (on a watch) until the plan can move again (a scale is possible or the batch is ready)."""
        try:
            return await self._wait_for_batch(inp)
        except asyncio.CancelledError:
            _raise_if_abandoned()
            raise

    async def _wait_for_batch(self, inp: WaitInput) -> Snapshot:
        """Read, then follow the Deployment and its two ReplicaSets on watches until the plan can move.

        Every event replaces that object in the snapshot (no extra reads); readiness is judged by
        ``plan.next_move`` on every change. The watches end at ``timeoutSeconds`` (or on 410
        Expired / an error) and the loop reads everything again.
        """
        ref = inp.snapshot.ref
        ns = ref.namespace
        while True:
            dep, rss = await self._read(inp.snapshot)
            snap = _snapshot_of(inp.snapshot, dep, rss)
            if _batch_can_move(inp, snap):
                return snap
            self._heartbeat_wait(snap)
            versions = [int(rs["metadata"]["resourceVersion"]) for rs in rss.values() if rs is not None]
            if len(versions) < len(rss):  # a ReplicaSet is gone: nothing to watch from; re-read later
                await asyncio.sleep(inp.poll_interval_seconds)
                continue
            events: asyncio.Queue[Any] = asyncio.Queue()
            seconds = _watch_seconds()
            streams = [
                EventStream(
                    self.kube,
                    self.kube.replica_set_path(ns),
                    resource_version=str(min(versions)),  # replays nothing we missed between the GETs
                    timeout_seconds=seconds,
                    query=_selector_query(dep),
                    queue=events,
                ).start(self.executor),
                EventStream(
                    self.kube,
                    self.kube.deployment_path(ns),
                    resource_version=str(dep["metadata"]["resourceVersion"]),
                    timeout_seconds=seconds,
                    query={"fieldSelector": f"metadata.name={ref.name}"},
                    queue=events,
                ).start(self.executor),
            ]
            try:
                while True:
                    event = await self._next_event(streams[0], snap.model_dump(mode="json"))
                    if event is None or event.get("type") == "ERROR":
                        break  # timeout, 410 Expired or an error: re-read and watch again
                    obj = event.get("object") or {}
                    name = (obj.get("metadata") or {}).get("name")
                    if obj.get("kind") == "Deployment":
                        if name != ref.name or event.get("type") == "DELETED":
                            break  # the GET reports a deleted Deployment
                        if _older(obj, dep):
                            continue
                        dep = obj
                    elif name in rss and not _older(obj, rss[name]):
                        rss[name] = None if event.get("type") == "DELETED" else obj
                    else:
                        continue  # another ReplicaSet, or a replayed state we already read
                    snap = _snapshot_of(inp.snapshot, dep, rss)
                    if _batch_can_move(inp, snap):
                        return snap
                    self._heartbeat_wait(snap)
            except (ApiException, OSError, ValueError, urllib3.exceptions.HTTPError) as exc:
                activity.logger.info("watch of %s/%s ended (%s); reading again", ns, ref.name, exc)
                await asyncio.sleep(inp.poll_interval_seconds)
            finally:
                for stream in streams:
                    stream.close()

    @staticmethod
    def _heartbeat_wait(snap: Snapshot) -> None:
        activity.heartbeat(snap.model_dump(mode="json"))

    @staticmethod
    async def _next_event(stream: EventStream, details: Obj) -> Obj | None:
        """The stream's next event; heartbeats ``details`` while none comes (keeps cancellation prompt)."""
        waiter = asyncio.ensure_future(stream.next())
        try:
            while True:
                done, _ = await asyncio.wait({waiter}, timeout=_HEARTBEAT_EVERY)
                if done:
                    return waiter.result()
                activity.heartbeat(details)
        finally:
            waiter.cancel()

    @activity.defn
    async def watch_replicas(self, inp: WatchInput) -> WatchResult:
        """Return once the Deployment's spec.replicas differs from ``inp.replicas`` (kubectl scale, HPA)."""
        try:
            return await self._watch_replicas(inp)
        except asyncio.CancelledError:
            _raise_if_abandoned()
            raise

    async def _watch_replicas(self, inp: WatchInput) -> WatchResult:
        """Read the Deployment, then follow it on a watch (re-read at the watch's end or on 410)."""
        ns, name = inp.ref.namespace, inp.ref.name
        while True:
            dep = await self._get_deployment(ns, name)
            # The canary's template does not change; read it once per round for the drift check.
            canary = await self._get_rs(ns, inp.canary_rs) if inp.canary_rs else None
            result = _replicas_changed(inp, dep, canary)
            if result is not None:
                return result
            activity.heartbeat({"replicas": inp.replicas})
            stream = EventStream(
                self.kube,
                self.kube.deployment_path(ns),
                resource_version=str(dep["metadata"]["resourceVersion"]),
                timeout_seconds=_watch_seconds(),
                query={"fieldSelector": f"metadata.name={name}"},
            ).start(self.executor)
            try:
                while True:
                    event = await self._next_event(stream, {"replicas": inp.replicas})
                    if event is None or event.get("type") in ("ERROR", "DELETED"):
                        break  # timeout, 410 Expired, deleted (the GET reports it): read again
                    result = _replicas_changed(inp, event.get("object") or {}, canary)
                    if result is not None:
                        return result
            except (ApiException, OSError, ValueError, urllib3.exceptions.HTTPError) as exc:
                activity.logger.info("watch of deployment %s/%s ended (%s); reading again", ns, name, exc)
                await asyncio.sleep(inp.poll_interval_seconds)
            finally:
                stream.close()


# -- pure helpers of the waits ---------------------------------------------------------------------------

# Heartbeat at least this often while a watch is quiet: heartbeats carry cancellation (undo, approve).
_HEARTBEAT_EVERY = 1.0


def _watch_seconds() -> int:
    """A watch's timeoutSeconds: half the heartbeat timeout, 1-5 s, so the loop re-reads regularly."""
    hb = activity.info().heartbeat_timeout
    seconds = hb.total_seconds() / 2 if hb else 5.0
    return max(1, min(5, int(seconds)))


def _older(new: Obj, current: Obj | None) -> bool:
    """Whether watch object ``new`` is not newer than ``current`` (the watch starts at the older read)."""
    if current is None:
        return False
    try:
        return int(new["metadata"]["resourceVersion"]) <= int(current["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):  # opaque resourceVersions: take the event
        return False


def _selector_query(dep: Obj) -> dict[str, str] | None:
    selector = label_selector((dep.get("spec") or {}).get("selector"))
    return {"labelSelector": selector} if selector else None


def _snapshot_of(inp: SnapshotInput, dep: Obj, rss: dict[str, Obj | None]) -> Snapshot:
    canary = rss.get(inp.canary_rs)
    return Snapshot(
        replicas=int(dep["spec"].get("replicas") or 0),
        generation=int(dep["metadata"].get("generation") or 0),
        stable=_counts(rss.get(inp.stable_rs), inp.stable_rs),
        canary=_counts(canary, inp.canary_rs),
        template_drift=_drift(dep, canary),
    )


def _batch_can_move(inp: WaitInput, snap: Snapshot) -> bool:
    """Whether ``wait_for_batch`` returns: the plan can move, the size or template changed, or progress."""
    move = plan.move_for(
        snap,
        canary_target=inp.canary_target,
        stable_target=inp.stable_target,
        max_surge=inp.max_surge,
        max_unavailable=inp.max_unavailable,
        failure_threshold=inp.failure_threshold,
        grow_canary=inp.grow_canary,
    )
    return (
        move.action != "wait"
        or snap.replicas != inp.canary_target + inp.stable_target
        or bool(snap.template_drift and inp.grow_canary)
        or 0 <= inp.canary_ready < snap.canary.ready_replicas
    )


def _replicas_changed(inp: WatchInput, dep: Obj, canary: Obj | None) -> WatchResult | None:
    """``watch_replicas``'s answer for this Deployment state, or ``None`` to keep watching."""
    replicas = int((dep.get("spec") or {}).get("replicas") or 0)
    if replicas != inp.replicas:
        return WatchResult(replicas=replicas)
    drift = _drift(dep, canary) if inp.canary_rs else ""
    if drift:
        return WatchResult(replicas=replicas, template_drift=drift)
    return None
