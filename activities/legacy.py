"""Replay only: the activities of rollouts begun before ``converge_step`` (``workflows/legacy.py``).

``wait_for_batch`` (the per-move engine's readiness wait) and ``watch_replicas`` (a pause's watch):
heartbeating waits on watches, cancelled promptly through the heartbeat response (undo, approve); an
abandoned wait ends quietly. They stay registered while such a run can be open (docs/layout.md,
*Retiring old code*).
"""

from __future__ import annotations

import asyncio
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException
from temporalio import activity

from activities.common import (
    DeploymentActivities,
    drift_of,
    quiet_if_abandoned,
    snapshot_of,
)
from activities.watching import HEARTBEAT_EVERY, older, selector_query, watch_seconds
from kube.watch import EventStream
from workflows import plan
from workflows.model import Snapshot, WaitInput, WatchInput, WatchResult

__all__ = ["WaitActivities"]

Obj = dict[str, Any]


class WaitActivities(DeploymentActivities):
    """wait_for_batch, watch_replicas."""

    @activity.defn
    async def wait_for_batch(self, inp: WaitInput) -> Snapshot:
        """Wait (on a watch) until the plan can move again (a scale is possible or the batch is ready)."""
        return await quiet_if_abandoned(self._wait_for_batch(inp))

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
            snap = snapshot_of(inp.snapshot, dep, rss)
            if _batch_can_move(inp, snap):
                return snap
            self._heartbeat_wait(snap)
            versions = [int(rs["metadata"]["resourceVersion"]) for rs in rss.values() if rs is not None]
            if len(versions) < len(rss):  # a ReplicaSet is gone: nothing to watch from; re-read later
                await asyncio.sleep(inp.poll_interval_seconds)
                continue
            events: asyncio.Queue[Any] = asyncio.Queue()
            seconds = watch_seconds()
            streams = [
                EventStream(
                    self.kube,
                    self.kube.replica_set_path(ns),
                    resource_version=str(min(versions)),  # replays nothing we missed between the GETs
                    timeout_seconds=seconds,
                    query=selector_query(dep),
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
                        if older(obj, dep):
                            continue
                        dep = obj
                    elif name in rss and not older(obj, rss[name]):
                        rss[name] = None if event.get("type") == "DELETED" else obj
                    else:
                        continue  # another ReplicaSet, or a replayed state we already read
                    snap = snapshot_of(inp.snapshot, dep, rss)
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
                done, _ = await asyncio.wait({waiter}, timeout=HEARTBEAT_EVERY)
                if done:
                    return waiter.result()
                activity.heartbeat(details)
        finally:
            waiter.cancel()

    @activity.defn
    async def watch_replicas(self, inp: WatchInput) -> WatchResult:
        """Return once the Deployment's spec.replicas differs from ``inp.replicas`` (kubectl scale, HPA)."""
        return await quiet_if_abandoned(self._watch_replicas(inp))

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
                timeout_seconds=watch_seconds(),
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
    drift = drift_of(dep, canary) if inp.canary_rs else ""
    if drift:
        return WatchResult(replicas=replicas, template_drift=drift)
    return None
