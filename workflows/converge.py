"""Converging a batch: the one-activity engine, the per-move engine, and the other-writer hold.

Two guards run on every read of the Deployment:

- *progress deadline*: a forward converge that sees no progress (no scale, no newly ready canary
  pod) for ``progress_deadline_seconds`` raises ``DeadlineExceeded`` (pauses never count);
- *other writers*: a pod template that is no longer the canary's pauses the rollout with a message
  saying what changed (``_hold_for_drift``); approve writes our template back, ``--replace`` adopts
  the new one, undo rolls back.

- ``_converge_in_one``: a step's (or finalize's) moves run inside one ``converge_step`` activity
  (``activities/converge.py``) instead of one activity and one workflow task per move. It returns
  when the batch is ready, when another writer changed the template (the workflow pauses for it, as
  before) or when the progress deadline passed (``DeadlineExceeded``, as before). Undo cancels it
  and waits for the cancellation (a write in flight finishes first).
- ``_converge_by_moves``: single moves chosen by ``plan.move_for``, one activity each, then
  ``wait_for_batch``. Rollouts begun before ``PATCH_ONE_ACTIVITY`` use it forward; every run uses
  it for undo, abort and retarget.
- ``_on_deployment_changed``: keeps the shared watcher's newest change for the signal-driven pause
  (``workflows/steps.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.converge import ConvergeActivities
    from activities.scaling import ScalingActivities
    from activities.takeover import TakeoverActivities
    from activities.waits import WaitActivities
    from workflows import plan
    from workflows.base import DeadlineExceeded, Interrupted
    from workflows.calls import start
    from workflows.contract import Purpose
    from workflows.model import (
        ConvergeInput,
        ConvergeResult,
        DeploymentChange,
        Phase,
        Reason,
        ReplicaSetCounts,
        RetargetInput,
        ScaleInput,
        Snapshot,
        SnapshotInput,
        StepMoveInput,
        StepMoveResult,
        StepSpec,
        StepState,
        WaitingFor,
        WaitInput,
    )
    from workflows.verbs import VerbsMixin

__all__ = ["PATCH_ONE_ACTIVITY", "PATCH_ONE_ENGINE", "PATCH_STEP_MOVE", "ConvergeMixin"]

PATCH_ONE_ACTIVITY = "converge-in-one-activity-pause-on-signals"
# Undo, abort and retarget converge in one converge_step too (runs begun before: move by move).
PATCH_ONE_ENGINE = "converge-back-in-one-activity"

# Rollouts started before this patch read with get_snapshot and scale in a second activity; newer
# ones read and make the first move of a step in one activity (step_move). Replay keeps the old path
# for histories without the marker (tests/replay/histories/*.json).
PATCH_STEP_MOVE = "step-move-in-one-activity"


def _newer(rv: str, than: str) -> bool:
    """Whether resourceVersion ``rv`` is newer than ``than`` (opaque versions: whenever they differ)."""
    if not than:
        return True
    if rv.isdigit() and than.isdigit():
        return int(rv) > int(than)
    return rv != than


class ConvergeMixin(VerbsMixin):
    """One-activity converge and signal-driven pauses."""

    async def _converge(
        self,
        targets_for: Callable[[int], tuple[int, int]],
        *,
        interruptible: bool = True,
        step: StepSpec | None = None,
    ) -> Snapshot:
        """The forward converges (steps, finalize): one activity on runs with ``PATCH_ONE_ACTIVITY``."""
        if self.s.one_activity:
            return await self._converge_in_one(step, interruptible)
        return await self._converge_by_moves(
            targets_for, grow_canary=True, interruptible=interruptible, step=step
        )

    async def _converge_back(self) -> Snapshot:
        """The way back (undo, abort, retarget): canary to 0, stable to full; not interruptible.

        One ``converge_step`` on runs with ``PATCH_ONE_ENGINE``; older runs move by move.
        """
        if not self.s.one_engine:
            return await self._converge_by_moves(
                lambda replicas: (0, replicas), grow_canary=False, interruptible=False
            )
        tk = self.s.takeover
        assert tk is not None
        inp = ConvergeInput(
            snapshot=SnapshotInput(ref=self.s.ref, stable_rs=tk.stable_rs, canary_rs=tk.canary_rs),
            back=True,
            rolling_update=tk.original_strategy.get("rollingUpdate"),
            check_drift=False,
            poll_interval_seconds=self.s.spec.timings.poll_interval_seconds,
        )
        result: ConvergeResult = await start(
            ConvergeActivities.converge_step,
            inp,
            purpose=Purpose.CONVERGE,
            timings=self.s.spec.timings,
            summary=f"converge {self.s.spec.target} back: canary {tk.canary_rs} to 0, "
            f"stable {tk.stable_rs} to full",
        )
        self._record(result.snapshot)
        return result.snapshot

    def _on_deployment_changed(self, change: DeploymentChange) -> None:
        """Signal handler body: keep the newest change (every worker's watcher sends each one).

        A change about another Deployment is ignored (the watcher derives the ID from namespace and
        name; this is the second check). Runs by reference require the target in the change.
        """
        target = (self.s.spec.namespace, self.s.spec.name)
        if (change.namespace or self.s.spec.template_hash) and (change.namespace, change.name) != target:
            workflow.logger.info(
                "deployment_changed about %s/%s ignored: this rollout is for %s",
                change.namespace, change.name, self.s.spec.target,
            )
            return
        if not _newer(change.resource_version, self.s.change_rv):
            return
        self.s.change_rv = change.resource_version
        self.s.change = change

    def _hold_requested(self) -> bool:
        return bool(self.s.status.held_by) and not self.s.finalizing

    def _change_pending(self) -> bool:
        """Whether the last change asks for action: deleted, resized, or another pod template."""
        change, tk = self.s.change, self.s.takeover
        if change is None or tk is None:
            return False
        return (
            change.deleted
            or change.replicas != self.s.status.replicas
            or change.template_hash != tk.canary_revision
        )

    async def _converge_in_one(self, step: StepSpec | None, interruptible: bool) -> Snapshot:
        """All moves of ``step`` (``None``: finalize, canary = replicas) in one activity per attempt."""
        tk = self.s.takeover
        assert tk is not None
        while True:
            await self._hold_point()  # `rollout pause`: no new moves until resumed (not while finalizing)
            inp = ConvergeInput(
                snapshot=SnapshotInput(ref=self.s.ref, stable_rs=tk.stable_rs, canary_rs=tk.canary_rs),
                step=step,
                rolling_update=tk.original_strategy.get("rollingUpdate"),
                failure_threshold=self.s.spec.failure_threshold,
                check_drift=not self.s.finalizing,
                progress_deadline_seconds=self.s.spec.progress_deadline_seconds,
                poll_interval_seconds=self.s.spec.timings.poll_interval_seconds,
            )
            what = f"step {self.s.status.current_step_index}" if step is not None else "finalize"
            # Undo waits until the activity has stopped: a write in flight finishes first.
            handle = start(
                ConvergeActivities.converge_step,
                inp,
                purpose=Purpose.CONVERGE,
                timings=self.s.spec.timings,
                summary=f"converge {self.s.spec.target} for {what}: scale and wait until the batch is ready",
            )
            if interruptible:
                await self._wait(
                    lambda h=handle: h.done() or self.s.interrupted() or self._hold_requested()  # type: ignore[misc]
                )
                if not handle.done():
                    handle.cancel()
                    try:
                        await handle
                    except ActivityError:
                        pass  # cancelled, as asked (a write in flight finished first)
                    if self.s.interrupted():
                        raise Interrupted()
                    continue  # held between moves: the hold point above waits for resume
            result: ConvergeResult = await handle
            snap = result.snapshot
            self._record(snap)
            if result.outcome == "drift":
                await self._hold_for_drift(snap.template_drift)
                continue
            if result.outcome == "deadline":
                target = plan.step_targets(step, snap.replicas)[0] if step is not None else snap.replicas
                raise DeadlineExceeded(
                    Reason.DEADLINE.format(
                        rs=tk.canary_rs,
                        ready=snap.canary.ready_replicas,
                        target=target,
                        s=self.s.spec.progress_deadline_seconds,
                    )
                )
            if interruptible and self.s.interrupted():
                raise Interrupted()
            return snap

    async def _hold_for_drift(self, what: str) -> None:
        """Another writer changed the pod template: pause until approve (keep ours), replace or undo."""
        previous = (self.s.status.phase, self.s.status.step_state)
        self.s.drift, self.s.drift_ok = what, False
        self._publish(
            Phase.PAUSED, StepState.STEP_PAUSED, Reason.DRIFT.format(what=what), waiting_for=WaitingFor.DRIFT
        )
        await self._wait(lambda: self.s.drift_ok or self.s.interrupted())
        approved = self.s.drift_ok
        self.s.drift, self.s.drift_ok = None, False
        if not approved:
            raise Interrupted()
        tk = self.s.takeover
        assert tk is not None
        await self._call(
            TakeoverActivities.retarget,
            RetargetInput(
                ref=self.s.ref,
                workflow_id=workflow.info().workflow_id,
                template=self.s.spec.template,
                stable_rs=tk.stable_rs,
                # by reference: the canary ReplicaSet holds the template the starter wrote
                restore_template_from_rs="" if self.s.spec.template is not None else tk.canary_rs,
            ),
            summary=f"write the rollout's pod template back into {self.s.spec.target} (approved)",
            interruptible=False,
        )
        i, n = self.s.status.current_step_index, len(self.s.spec.steps)
        self._publish(previous[0], previous[1], Reason.UPGRADE.format(i=i, n=n))

    async def _converge_by_moves(
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
        tk = self.s.takeover
        assert tk is not None
        snap_in = self._snapshot_input()
        read_summary = f"read {self.s.spec.target} and its ReplicaSets"
        snap: Snapshot
        if step is not None and workflow.patched(PATCH_STEP_MOVE):
            # A write: it finishes even when undo arrives meanwhile, then the loop is interrupted.
            moved: StepMoveResult = await self._call(
                ScalingActivities.step_move,
                StepMoveInput(
                    snapshot=snap_in,
                    step=step,
                    rolling_update=tk.original_strategy.get("rollingUpdate"),
                    failure_threshold=self.s.spec.failure_threshold,
                    check_drift=not self.s.finalizing,
                ),
                summary=f"read {self.s.spec.target}, make step {self.s.status.current_step_index}'s "
                "first move",
                interruptible=False,
            )
            snap = moved.snapshot
            if interruptible and self.s.interrupted():
                raise Interrupted()
        else:
            snap = await self._call(
                ScalingActivities.get_snapshot, snap_in, summary=read_summary, interruptible=interruptible
            )
        deadline_s = self.s.spec.progress_deadline_seconds if grow_canary else 0
        progress_at = workflow.now()
        best_ready = snap.canary.ready_replicas
        while True:
            if grow_canary and snap.template_drift and not self.s.finalizing:
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
                plan.failure_threshold_count(self.s.spec.failure_threshold, canary_target)
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
                if grow_canary and self.s.status.held_by:
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
                        ref=self.s.ref,
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
                        poll_interval_seconds=self.s.spec.timings.poll_interval_seconds,
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
                        ready=self.s.status.canary_ready_replicas,
                        target=canary_target,
                        s=deadline_s,
                    )
                ) from None
