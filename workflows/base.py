"""Shared state and engine of the rollout workflow: activity calls, converge, interrupts, traffic, status, UI.

The converge engine (``_converge``) makes single moves chosen by ``workflows.plan`` until a batch is ready;
the forward path (steps), rollback and finalize all use it. Two guards run on every read of the
Deployment:

- *progress deadline*: a forward converge that sees no progress (no scale, no newly ready canary
  pod) for ``progress_deadline_seconds`` raises ``DeadlineExceeded`` (pauses never count);
- *other writers*: a pod template that is no longer the canary's pauses the rollout with a message
  saying what changed; approve writes our template back, ``--replace`` adopts the new one, undo
  rolls back.

The workflow class is assembled from mixins (``workflows/steps.py``, ``workflows/undo.py``) over
this base, so each concern stays a small module; all of it is deterministic workflow code.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.scaling import ScalingActivities
    from activities.senders import SenderActivities
    from activities.takeover import TakeoverActivities
    from activities.waits import WaitActivities
    from workflows import plan
    from workflows.calls import call, start
    from workflows.contract import LONG_WAIT, RETRY, Purpose
    from workflows.model import (
        SA_PHASE_KEY,
        SA_STEP_KEY,
        SA_TARGET_KEY,
        DeploymentRef,
        NotifyEvent,
        Phase,
        Reason,
        ReplicaSetCounts,
        RetargetInput,
        RolloutSpec,
        RolloutStatus,
        ScaleInput,
        Snapshot,
        SnapshotInput,
        StepMoveInput,
        StepMoveResult,
        StepSpec,
        StepState,
        StepTraffic,
        TakeoverResult,
        TrafficInput,
        TrafficSnapshot,
        UndoSignal,
        WaitingFor,
        WaitInput,
    )
    from workflows.traffic import TrafficOp, traffic_status
    from workflows.traffic_flow import run_traffic_ops, traffic_after

__all__ = [
    "LONG_WAIT",
    "PATCH_STEP_MOVE",
    "PHASE_KEY",
    "RETRY",
    "STEP_KEY",
    "TARGET_KEY",
    "DeadlineExceeded",
    "Interrupted",
    "RolloutBase",
    "abandon",
]

# The typed keys live in workflows.model (the starter sets the same ones); these names stay for callers.
TARGET_KEY, PHASE_KEY, STEP_KEY = SA_TARGET_KEY, SA_PHASE_KEY, SA_STEP_KEY

# Approvals without `by` get the sender identity from history (an activity); older runs skip it.
PATCH_APPROVAL_SENDER = "approval-sender"

# Rollouts started before this patch read with get_snapshot and scale in a second activity; newer
# ones read and make the first move of a step in one activity (step_move). Replay keeps the old path
# for histories without the marker (tests/replay/histories/*.json).
PATCH_STEP_MOVE = "step-move-in-one-activity"


# Messages can carry provider text (measured values, conditions): the UI renders the details as Markdown,
# so the characters that make links, images, HTML or formatting are escaped, and control characters dropped.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _md(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", _CONTROL.sub(" ", text))


class Interrupted(Exception):
    """Internal: unwinds the forward path when ``undo`` or a replacement (``--replace``) arrives."""


class DeadlineExceeded(Exception):
    """Internal: a step made no progress for ``progress_deadline_seconds``; ``str()`` says which RS."""


def abandon(handle: workflow.ActivityHandle[Any]) -> None:
    """Cancel a read-only activity without waiting for it (its outcome no longer matters)."""
    handle.cancel()
    handle.add_done_callback(lambda f: f.cancelled() or f.exception())


class RolloutBase:
    """State every part of the workflow shares, and the helpers that touch it."""

    _spec: RolloutSpec
    _ref: DeploymentRef
    _approved: set[int]
    _undo: UndoSignal | None
    _replace: RolloutSpec | None
    _finalizing: bool
    _takeover: TakeoverResult | None
    _status: RolloutStatus
    _traffic_snapshot: TrafficSnapshot | None
    _traffic_cur: StepTraffic | None
    _traffic_touched: bool
    _drift: str | None
    _drift_ok: bool
    _status_version: int

    def _init_state(self, spec: RolloutSpec) -> None:
        self._status_version = 0
        self._spec = spec
        self._ref = DeploymentRef(namespace=spec.namespace, name=spec.name)
        self._approved = set()
        self._undo = None
        self._replace = None
        self._finalizing = False
        self._takeover = None
        self._traffic_snapshot = None
        self._traffic_cur = None
        self._traffic_touched = False
        self._drift = None
        self._drift_ok = False
        self._unattributed: list[tuple[int, int]] = []  # (index in approvals, index among by-less signals)

    # Set by the run: a cancellation request is an undo (``workflows/outcome.py``, patched runs only).
    _cancel_is_undo: bool = False
    _undo_is_cancel: bool = False  # the undo came from a cancellation request

    async def _wait(
        self, fn: Callable[[], bool], *, timeout: float | None = None, timeout_summary: str | None = None
    ) -> None:
        """``workflow.wait_condition``, minus the SDK's echo of a workflow cancellation request.

        The SDK raises ``CancelledError`` out of every wait begun before a cancellation request. A
        rollout that turned the request into an undo keeps running: its waits see ``_interrupted()``.
        Only a real cancellation of this task (eviction, a stopped analysis) is raised.
        """
        try:
            await workflow.wait_condition(fn, timeout=timeout, timeout_summary=timeout_summary)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not self._cancel_is_undo or task is None or task.cancelling():
                raise
            if timeout is not None and not fn():
                raise TimeoutError() from None

    def _interrupted(self) -> bool:
        aborting = getattr(self, "_abort", None) is not None  # set by VerbsMixin
        return self._undo is not None or self._replace is not None or aborting

    async def _cancel_sender(self) -> None:  # pragma: no cover
        """Implemented by ``OutcomeMixin`` (``workflows/outcome.py``)."""

    def _remember_status(self) -> None:  # pragma: no cover
        """Implemented by ``OutcomeMixin``."""

    async def _settle_hold(self) -> None:  # pragma: no cover
        """Implemented by ``OutcomeMixin``."""

    async def _hold_point(self) -> None:  # pragma: no cover
        """Implemented by ``VerbsMixin`` (``workflows/verbs.py``)."""

    async def _notify_drain(self) -> None:  # pragma: no cover
        """Implemented by ``NotifyMixin``."""

    def _notify(self, event: NotifyEvent, message: str | None = None) -> None:  # pragma: no cover
        """Implemented by ``NotifyMixin`` (``workflows/notify_flow.py``)."""

    async def _attribute_approvals(self) -> None:
        """Fill in ``by`` of approvals sent without one, from the sender identity in history."""
        pending, self._unattributed = self._unattributed, []
        if not pending or not workflow.patched(PATCH_APPROVAL_SENDER):
            return
        senders: list[str] = await call(
            SenderActivities.approve_senders,
            purpose=Purpose.LOOKUP,
            timings=self._spec.timings,
            summary="look up who sent approvals without a name",
        )
        for approval_index, signal_index in pending:
            if signal_index < len(senders):
                self._status.approvals[approval_index].by = senders[signal_index]

    # -- activities ----------------------------------------------------------------------------------

    def _start_activity(
        self, fn: Callable[[Any, Any], Any], arg: Any, *, summary: str, wait: bool = False
    ) -> workflow.ActivityHandle[Any]:
        """Schedule one Kubernetes activity: a ``wait`` runs long and heartbeats."""
        purpose = Purpose.WAIT if wait else Purpose.KUBE
        return start(fn, arg, purpose=purpose, timings=self._spec.timings, summary=summary)

    async def _call(
        self,
        fn: Callable[[Any, Any], Any],
        arg: Any,
        *,
        summary: str,
        interruptible: bool,
        wait: bool = False,
        timeout: float | None = None,
    ) -> Any:
        """Run one activity; an interruptible one is abandoned (cancelled) as soon as undo arrives.

        Only reads and waits are interruptible, so cancelling them cannot race a rollback write.
        ``timeout`` (seconds) abandons the activity and raises ``TimeoutError`` (progress deadline).
        """
        handle = self._start_activity(fn, arg, summary=summary, wait=wait)
        if interruptible or timeout is not None:
            try:
                await self._wait(
                    lambda: handle.done() or (interruptible and self._interrupted()), timeout=timeout
                )
            except TimeoutError:
                abandon(handle)
                raise
            if not handle.done():
                abandon(handle)
                raise Interrupted()
        result = await handle
        if interruptible and self._interrupted():
            raise Interrupted()
        return result

    def _snapshot_input(self) -> SnapshotInput:
        tk = self._takeover
        assert tk is not None
        return SnapshotInput(ref=self._ref, stable_rs=tk.stable_rs, canary_rs=tk.canary_rs)

    async def _hold_for_drift(self, what: str) -> None:
        """Another writer changed the pod template: pause until approve (keep ours), replace or undo."""
        previous = (self._status.phase, self._status.step_state)
        self._drift, self._drift_ok = what, False
        self._publish(
            Phase.PAUSED, StepState.STEP_PAUSED, Reason.DRIFT.format(what=what), waiting_for=WaitingFor.DRIFT
        )
        await self._wait(lambda: self._drift_ok or self._interrupted())
        approved = self._drift_ok
        self._drift, self._drift_ok = None, False
        if not approved:
            raise Interrupted()
        tk = self._takeover
        assert tk is not None
        await self._call(
            TakeoverActivities.retarget,
            RetargetInput(
                ref=self._ref,
                workflow_id=workflow.info().workflow_id,
                template=self._spec.template,
                stable_rs=tk.stable_rs,
                # by reference: the canary ReplicaSet holds the template the starter wrote
                restore_template_from_rs="" if self._spec.template is not None else tk.canary_rs,
            ),
            summary=f"write the rollout's pod template back into {self._spec.target} (approved)",
            interruptible=False,
        )
        i, n = self._status.current_step_index, len(self._spec.steps)
        self._publish(previous[0], previous[1], Reason.UPGRADE.format(i=i, n=n))

    # -- the converge engine (moves within a step; rollback and finalize use it too) --------------

    async def _converge(
        self,
        targets_for: Callable[[int], tuple[int, int]],
        *,
        grow_canary: bool,
        interruptible: bool = True,
        step: StepSpec | None = None,
    ) -> Snapshot:
        """Make single writes chosen by ``plan.next_move`` until the batch is ready.

        With ``step`` (the forward path) the first read and the first move are one activity.
        """
        tk = self._takeover
        assert tk is not None
        snap_in = self._snapshot_input()
        read_summary = f"read {self._spec.target} and its ReplicaSets"
        snap: Snapshot
        if step is not None and workflow.patched(PATCH_STEP_MOVE):
            # A write: it finishes even when undo arrives meanwhile, then the loop is interrupted.
            moved: StepMoveResult = await self._call(
                ScalingActivities.step_move,
                StepMoveInput(
                    snapshot=snap_in,
                    step=step,
                    rolling_update=tk.original_strategy.get("rollingUpdate"),
                    failure_threshold=self._spec.failure_threshold,
                    check_drift=not self._finalizing,
                ),
                summary=f"read {self._spec.target}, make step {self._status.current_step_index}'s first move",
                interruptible=False,
            )
            snap = moved.snapshot
            if interruptible and self._interrupted():
                raise Interrupted()
        else:
            snap = await self._call(
                ScalingActivities.get_snapshot, snap_in, summary=read_summary, interruptible=interruptible
            )
        deadline_s = self._spec.progress_deadline_seconds if grow_canary else 0
        progress_at = workflow.now()
        best_ready = snap.canary.ready_replicas
        while True:
            if grow_canary and snap.template_drift and not self._finalizing:
                await self._hold_for_drift(snap.template_drift)
                snap = await self._call(
                    ScalingActivities.get_snapshot, snap_in, summary=read_summary, interruptible=interruptible
                )
                progress_at = workflow.now()
                continue
            self._record(snap)
            if snap.canary.ready_replicas > best_ready:
                best_ready, progress_at = snap.canary.ready_replicas, workflow.now()
            canary_target, stable_target = targets_for(snap.replicas)
            surge, unavailable = plan.resolve_fenceposts(
                tk.original_strategy.get("rollingUpdate"), snap.replicas
            )
            ft = (
                plan.failure_threshold_count(self._spec.failure_threshold, canary_target)
                if grow_canary
                else 0
            )
            move = plan.move_for(
                snap,
                canary_target=canary_target,
                stable_target=stable_target,
                max_surge=surge,
                max_unavailable=unavailable,
                failure_threshold=ft,
                grow_canary=grow_canary,
            )
            if move.action == "done":
                return snap
            if move.action == "scale":
                if grow_canary and self._status.held_by:
                    await self._hold_point()  # `rollout pause` between single moves of a running step
                    snap = await self._call(
                        ScalingActivities.get_snapshot,
                        snap_in,
                        summary=read_summary,
                        interruptible=interruptible,
                    )
                    continue
                rs = tk.canary_rs if move.side == "canary" else tk.stable_rs
                counts: ReplicaSetCounts = await self._call(
                    ScalingActivities.scale_replica_set,
                    ScaleInput(
                        ref=self._ref,
                        rs_name=rs,
                        replicas=move.replicas,
                        desired_replicas=snap.replicas,
                        max_replicas=snap.replicas + surge,
                    ),
                    summary=f"scale {move.side} ReplicaSet {rs} to {move.replicas}",
                    interruptible=False,
                )
                progress_at = workflow.now()
                if move.side == "canary":
                    snap.canary = counts
                else:
                    snap.stable = counts
                continue
            timeout = None
            if deadline_s > 0:
                timeout = (progress_at + timedelta(seconds=deadline_s) - workflow.now()).total_seconds()
            self._set_details(move.reason)
            try:
                if timeout is not None and timeout <= 0:
                    raise TimeoutError()
                snap = await self._call(
                    WaitActivities.wait_for_batch,
                    WaitInput(
                        snapshot=snap_in,
                        canary_target=canary_target,
                        stable_target=stable_target,
                        max_surge=surge,
                        max_unavailable=unavailable,
                        failure_threshold=ft,
                        grow_canary=grow_canary,
                        poll_interval_seconds=self._spec.timings.poll_interval_seconds,
                        canary_ready=best_ready if deadline_s > 0 else -1,
                    ),
                    summary=f"wait for {tk.canary_rs} {canary_target} / {tk.stable_rs} {stable_target} ready",
                    interruptible=interruptible,
                    wait=True,
                    timeout=timeout,
                )
            except TimeoutError:
                raise DeadlineExceeded(
                    Reason.DEADLINE.format(
                        rs=tk.canary_rs,
                        ready=self._status.canary_ready_replicas,
                        target=canary_target,
                        s=deadline_s,
                    )
                ) from None

    # -- traffic -------------------------------------------------------------------------------------

    async def _run_traffic(self, ops: list[TrafficOp], traffic: StepTraffic | None = None) -> None:
        """Run traffic operations (see ``workflows/traffic.py`` plans) and record the traffic in effect."""
        routing, tk = self._spec.traffic_routing, self._takeover
        if not ops or routing is None or tk is None:
            return
        inp = TrafficInput(
            namespace=self._spec.namespace,
            routing=routing,
            snapshot=self._traffic_snapshot,
            stable_hash=tk.stable_revision,
            canary_hash=tk.canary_revision,
            traffic=traffic,
            deployment=self._spec.name,
        )
        self._traffic_touched = True
        await run_traffic_ops(ops, inp, self._spec.timings)
        self._set_traffic(traffic_after(ops, self._traffic_cur, traffic))

    def _set_traffic(self, current: StepTraffic | None) -> None:
        self._traffic_cur = current
        fields = traffic_status(current)
        st = self._status
        st.traffic_weight = fields["trafficWeight"]
        st.traffic_matches = fields["trafficMatches"]
        st.traffic = fields["traffic"]
        self._set_details()

    # -- status, UI, search attributes ---------------------------------------------------------------

    def _record(self, snap: Snapshot) -> None:
        st = self._status
        st.replicas = snap.replicas
        st.canary_replicas = snap.canary.replicas
        st.canary_ready_replicas = snap.canary.ready_replicas
        st.stable_replicas = snap.stable.replicas
        st.stable_ready_replicas = snap.stable.ready_replicas
        self._status_version += 1

    def _publish(
        self,
        phase: Phase,
        state: StepState,
        message: str,
        *,
        waiting_for: WaitingFor | None = None,
        finalizing: bool = False,
    ) -> None:
        """Record a transition: status, log line, search attributes, UI current details.

        ``waiting_for`` and ``finalizing`` are the typed state behind ``message`` (a transition that
        does not name them clears them).
        """
        st = self._status
        st.waiting_for, st.finalizing = waiting_for, finalizing
        if (phase, state, message) != (st.phase, st.step_state, st.message):
            workflow.logger.info(
                "step %d/%d: %s/%s -> %s/%s: %s",
                st.current_step_index,
                st.total_steps,
                st.phase.value,
                st.step_state.value,
                phase.value,
                state.value,
                message,
            )
        st.phase, st.step_state, st.message = phase, state, message
        if self._spec.use_search_attributes:
            workflow.upsert_search_attributes(
                [
                    TARGET_KEY.value_set(self._spec.target),
                    PHASE_KEY.value_set(phase.value),
                    STEP_KEY.value_set(st.current_step_index),
                ]
            )
        self._set_details()

    def _set_details(self, waiting_for: str | None = None) -> None:
        self._status_version += 1  # every status change passes here (declarative mode writes it out)
        st = self._status
        ns, name = self._spec.namespace, self._spec.name
        lines = [
            f"**{st.phase.value}** · step {st.current_step_index}/{st.total_steps} · {st.step_state.value}",
            "",
            f"- canary `{st.canary_revision or '-'}`: {st.canary_replicas} pods, "
            f"{st.canary_ready_replicas} ready",
            f"- stable `{st.stable_revision or '-'}`: {st.stable_replicas} pods, "
            f"{st.stable_ready_replicas} ready",
            f"- {_md(st.message)}",
        ]
        routing = self._spec.traffic_routing
        if routing is not None and routing.service_only:
            lines.append(
                f"- Services: `{routing.service}` stable pods, `{routing.canary_service}` canary pods"
            )
        elif routing is not None:
            lines.append(f"- traffic to canary: {st.traffic or 'none (routes to stable only)'}")
        if st.superseded_revisions:
            lines.append(f"- superseded revisions: {', '.join(st.superseded_revisions)}")
        if st.analysis is not None:
            lines.extend(f"- analysis {_md(line)}" for line in st.analysis.describe())
        if waiting_for:
            lines.append(f"- {_md(waiting_for)}")
        if st.step_state == StepState.STEP_PAUSED:
            lines.append(f"- approve: `rollout approve {name} -n {ns}`")
        if st.phase in (Phase.PROGRESSING, Phase.PAUSED, Phase.FAILED) and not self._finalizing:
            also = " or **Request Cancellation** above" if self._cancel_is_undo else ""
            lines.append(f"- undo: `rollout undo {name} -n {ns}`{also}")
        workflow.set_current_details("\n".join(lines))
