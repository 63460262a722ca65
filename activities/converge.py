"""``converge_step``: all of a step's moves in one heartbeating activity (F4 in docs/benchmarks.md).

The workflow used to run one activity per move (scale canary -> wait ready -> scale stable ...), a
workflow task and six history events each. Here one activity applies the same ``workflows.plan``
decisions in a loop: read the Deployment and its two ReplicaSets, make ``plan.next_move``'s write,
use the object the PUT returned as the new state (no re-read), and when the plan must wait, follow
the ReplicaSets and the Deployment on watches until it can move again. The bounds are the plan's, so
they hold exactly as before: every move is chosen from the state after the previous one.

Crash guarantees: every write is a "set to N" with the object's resourceVersion as precondition, so a
retry (another worker, after the heartbeat timeout) re-reads and continues from whatever state the
cluster is in; a 409 re-reads within the activity. Undo cancels the activity; the cancel is delivered
between writes (a write in flight is shielded and finishes first), and the workflow waits for the
cancellation to complete (``WAIT_CANCELLATION_COMPLETED``) before it rolls back, so a rollback never
races a scale. The progress deadline is kept here (wall clock, carried across retries in the
heartbeat details), since the workflow no longer sees each move.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException
from temporalio import activity

from activities.common import DeploymentActivities, quiet_if_abandoned, snapshot_of
from activities.scaling import ScalingActivities
from activities.watching import HEARTBEAT_EVERY, older, selector_query, watch_seconds
from kube.client import KubeClient
from kube.watch import EventStream
from workflows import plan
from workflows.model import ConvergeInput, ConvergeResult, Snapshot

__all__ = ["ConvergeActivities"]

Obj = dict[str, Any]


# ``_next``'s answer when a watch stream ended at its timeoutSeconds (not an error).
_ENDED: Obj = {"type": "ENDED"}


def _later(since: str, obj: Obj) -> str:
    """The resourceVersion to resume a watch from after seeing ``obj``."""
    rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    if not since or (rv.isdigit() and since.isdigit() and int(rv) > int(since)):
        return rv
    return since


class _Pulse:
    """Heartbeats once a second for as long as the step runs, with the latest state.

    The heartbeat says "this worker is alive", not "the batch moved" (the progress deadline is kept
    separately): a slow API call, e.g. an overloaded server answering after 10 s, must not time the
    attempt out and start a second one beside it.
    """

    def __init__(self, progress_at: float) -> None:
        self.snap: Snapshot | None = None  # None until the first read
        self.progress_at = progress_at

    def details(self) -> dict[str, Any]:
        state = self.snap.model_dump(mode="json") if self.snap is not None else {}
        return {**state, "progressAt": self.progress_at}

    async def run(self) -> None:
        while True:
            activity.heartbeat(self.details())
            await asyncio.sleep(HEARTBEAT_EVERY)


def _past_deadline(
    exc: BaseException, inp: ConvergeInput, pulse: _Pulse, writes: int
) -> ConvergeResult | None:
    """An API server that does not answer (no connection, 5xx, 429) shows no progress either: past the
    deadline the step fails as any stalled step does, with the last state seen, instead of retrying
    until the server is back."""
    if isinstance(exc, ApiException) and exc.status and exc.status != 429 and exc.status < 500:
        return None  # the server answered: the request itself is refused
    deadline = inp.progress_deadline_seconds
    if pulse.snap is None or deadline <= 0 or time.time() - pulse.progress_at <= deadline:
        return None
    activity.logger.info("converge of %s: %s, past the progress deadline", inp.snapshot.ref.name, exc)
    return ConvergeResult(snapshot=pulse.snap, outcome="deadline", writes=writes)


def _carried_snapshot(details: Any) -> Snapshot | None:
    """The last state an earlier attempt saw (its heartbeat details), if it read one."""
    state = dict(details[0]) if details else {}
    state.pop("progressAt", None)
    return Snapshot.model_validate(state) if state else None


class ConvergeActivities(DeploymentActivities):
    """``converge_step`` on the shared ``KubeClient`` (writes through ``ScalingActivities``' scale)."""

    def __init__(self, client: KubeClient) -> None:
        super().__init__(client)
        self.scaling = ScalingActivities(client)

    @activity.defn
    async def converge_step(self, inp: ConvergeInput) -> ConvergeResult:
        """Make the step's moves until its batch is ready (or the template drifted, or no progress)."""
        return await quiet_if_abandoned(self._converge(inp))

    async def _converge(self, inp: ConvergeInput) -> ConvergeResult:
        ref = inp.snapshot.ref
        ns = ref.namespace
        details = activity.info().heartbeat_details
        carried = float(details[0].get("progressAt", 0)) if details else 0.0  # from an earlier attempt
        best_ready = -1
        writes = 0
        pulse = _Pulse(carried or time.time())  # also holds the progress clock the deadline reads
        pulse.snap = _carried_snapshot(details)
        beating = asyncio.create_task(pulse.run())
        events: asyncio.Queue[Any] | None = None
        streams: list[EventStream] = []

        def close() -> None:
            for stream in streams:
                stream.close()
            streams.clear()

        try:
            dep, rss, since = await self._read_listed(inp)
            while True:
                snap = snapshot_of(inp.snapshot, dep, rss)
                pulse.snap = snap
                if inp.check_drift and snap.template_drift:
                    return ConvergeResult(snapshot=snap, outcome="drift", writes=writes)
                if snap.canary.ready_replicas > best_ready:
                    if best_ready >= 0:
                        pulse.progress_at = time.time()
                    best_ready = snap.canary.ready_replicas
                move, surge = plan.step_move(
                    snap,
                    inp.step,
                    inp.rolling_update,
                    inp.failure_threshold,
                    # The way back grows stable before the canary shrinks (Kruise's order, and what a
                    # person watching the undo expects); forward, shrinking first saves a write.
                    shrink_first=not inp.back,
                    back=inp.back,
                )
                if move.action == "done":
                    return ConvergeResult(snapshot=snap, writes=writes)
                if move.action == "scale":
                    name = inp.snapshot.canary_rs if move.side == "canary" else inp.snapshot.stable_rs
                    try:
                        rss[name] = await self._write(ns, name, rss[name], move.replicas, snap, surge)
                    except ApiException as exc:
                        if exc.status != 409:
                            raise
                        close()  # someone else wrote it: read everything again, then decide again
                        dep, rss, since = await self._read_listed(inp)
                        continue
                    writes += 1
                    pulse.progress_at = time.time()
                    continue
                # Wait: follow the Deployment and the ReplicaSets until the plan can move again.
                deadline = inp.progress_deadline_seconds
                if deadline > 0 and time.time() - pulse.progress_at > deadline:
                    return ConvergeResult(snapshot=snap, outcome="deadline", writes=writes)
                if not streams:
                    events = asyncio.Queue()
                    streams.extend(self._open(inp, dep, rss, since, events))
                    if not streams:  # a ReplicaSet is gone: nothing to watch from; read again soon
                        await asyncio.sleep(inp.poll_interval_seconds)
                        dep, rss, since = await self._read_listed(inp)
                        continue
                assert events is not None
                event = await self._next(events, pulse.progress_at, inp)
                if event is _ENDED:
                    # The watch ran its time: the ReplicaSets are as current as its last event, so only
                    # the Deployment is read again (a resize or template edit), and the next watch
                    # resumes where this one ended. No LIST: in a namespace of thousands of ReplicaSets
                    # a LIST by selector is the API server's most expensive read.
                    close()
                    dep = await self._get_deployment(ns, ref.name)
                    continue
                if event is None or event.get("type") == "ERROR":
                    close()  # 410 Expired, an error, or the deadline check: read everything again
                    dep, rss, since = await self._read_listed(inp)
                    continue
                obj = event.get("object") or {}
                since = _later(since, obj)
                changed = str((obj.get("metadata") or {}).get("name") or "")
                if obj.get("kind") == "Deployment":
                    if changed != ref.name or event.get("type") == "DELETED":
                        close()
                        dep, rss, since = await self._read_listed(inp)  # a deleted one fails the read
                        continue
                    if not older(obj, dep):
                        dep = obj
                elif changed in rss and not older(obj, rss[changed]):
                    rss[changed] = None if event.get("type") == "DELETED" else obj
        except (ApiException, OSError, urllib3.exceptions.HTTPError) as exc:
            late = _past_deadline(exc, inp, pulse, writes)
            if late is not None:
                return late
            activity.logger.info("converge of %s/%s: %s; retrying", ns, ref.name, exc)
            raise
        finally:
            beating.cancel()
            close()

    async def _read_listed(self, inp: ConvergeInput) -> tuple[Obj, dict[str, Obj | None], str]:
        """The Deployment, then its ReplicaSets in one LIST by its selector (2 requests, not 3 GETs),
        and the list's resourceVersion."""
        ns = inp.snapshot.ref.namespace
        dep = await self._get_deployment(ns, inp.snapshot.ref.name)
        listed, since = await self._call(self.kube.list_deployment_replica_sets_at, dep)
        by_name = {rs["metadata"]["name"]: rs for rs in listed}
        rss = {name: by_name.get(name) for name in (inp.snapshot.stable_rs, inp.snapshot.canary_rs)}
        return dep, rss, since

    async def _write(
        self, ns: str, name: str, rs: Obj | None, replicas: int | None, snap: Snapshot, surge: int
    ) -> Obj:
        """The scale write, shielded: a cancel (undo) waits for a write in flight to finish."""
        write = asyncio.ensure_future(
            self.scaling._scale_object(ns, name, rs, int(replicas or 0), snap.replicas, snap.replicas + surge)
        )
        try:
            return await asyncio.shield(write)
        except asyncio.CancelledError:
            await asyncio.wait({write})
            raise

    def _open(
        self, inp: ConvergeInput, dep: Obj, rss: dict[str, Obj | None], since: str, events: asyncio.Queue[Any]
    ) -> list[EventStream]:
        """Watch the ReplicaSets (the Deployment's label selector) from the LIST's resourceVersion.

        Not from the older ReplicaSet's own version: the stable one may not have changed for days, and
        a watch from there makes the API server replay (and filter) every ReplicaSet change since. Our
        own writes after the LIST come back as events older than the objects we hold and are ignored.

        The Deployment itself is not watched: a resize or template edit in the middle of a step is
        seen at the next read (every watch ends within 5 s), and the worker's shared watcher signals it
        to the workflow as well (one watch per cluster instead of one per rollout).
        """
        versions = [int(rs["metadata"]["resourceVersion"]) for rs in rss.values() if rs is not None]
        if len(versions) < len(rss):
            return []
        ns, seconds = inp.snapshot.ref.namespace, watch_seconds()
        return [
            EventStream(
                self.kube,
                self.kube.replica_set_path(ns),
                resource_version=since or str(min(versions)),
                timeout_seconds=seconds,
                query=selector_query(dep),
                queue=events,
            ).start(self.executor),
        ]

    @staticmethod
    async def _next(events: asyncio.Queue[Any], progress_at: float, inp: ConvergeInput) -> Obj | None:
        """The next watch event; ``_ENDED`` when the stream ran its time; ``None`` when it failed or the
        progress deadline passed (read everything again)."""
        while True:
            try:
                item = await asyncio.wait_for(events.get(), timeout=HEARTBEAT_EVERY)
            except TimeoutError:
                if (
                    inp.progress_deadline_seconds > 0
                    and time.time() - progress_at > inp.progress_deadline_seconds
                ):
                    return None
                continue
            if isinstance(item, BaseException):
                # The watch failed (403 without watch rights, a dropped connection): read again soon.
                activity.logger.info("watch of %s ended (%s); reading again", inp.snapshot.ref.name, item)
                await asyncio.sleep(inp.poll_interval_seconds)
                return None
            if isinstance(item, dict):
                return item
            return _ENDED  # a stream's end marker: its timeoutSeconds ran out
