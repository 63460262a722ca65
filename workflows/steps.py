"""The forward path of the rollout workflow: steps, moves within a step, pauses, finalize.

Per step (Kruise's order): traffic before the scale (stable Service narrowed), scale in single
moves chosen by ``workflows.plan`` until the batch is ready, traffic for the step (canary Service,
weight/matches), then pause. Two guards run on every read of the Deployment:

- *progress deadline*: a forward converge that sees no progress (no scale, no newly ready canary
  pod) for ``progress_deadline_seconds`` raises ``DeadlineExceeded`` (pauses never count);
- *other writers*: a pod template that is no longer the canary's pauses the rollout with a message
  saying what changed; approve writes our template back, ``--replace`` adopts the new one, undo
  rolls back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.rollout import RolloutActivities
    from workflows import plan
    from workflows.base import LONG_WAIT, RETRY, DeadlineExceeded, Interrupted, RolloutBase, abandon
    from workflows.model import (
        FinalizeInput,
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
        WaitInput,
        WatchInput,
        WatchResult,
    )
    from workflows.traffic import plan_finalize, plan_step_ready, plan_step_start

__all__ = ["PATCH_STEP_MOVE", "StepsMixin"]

# Rollouts started before this patch read with get_snapshot and scale in a second activity; newer
# ones read and make the first move of a step in one activity (step_move). Replay keeps the old path
# for histories without the marker (tests/replay/histories/*.json).
PATCH_STEP_MOVE = "step-move-in-one-activity"


class StepsMixin(RolloutBase):
    """Steps, pauses, converge, finalize."""

    async def _run_steps(self) -> None:
        for index, step in enumerate(self._spec.steps, start=1):
            await self._run_step(index, step)

    def _snapshot_input(self) -> SnapshotInput:
        tk = self._takeover
        assert tk is not None
        return SnapshotInput(ref=self._ref, stable_rs=tk.stable_rs, canary_rs=tk.canary_rs)

    async def _run_step(self, index: int, step: StepSpec) -> None:
        st = self._status
        st.current_step_index = index
        total = len(self._spec.steps)
        self._publish(Phase.PROGRESSING, StepState.STEP_UPGRADE, Reason.UPGRADE.format(i=index, n=total))
        routing = self._spec.traffic_routing
        if routing is not None:
            snap: Snapshot = await self._call(
                RolloutActivities.get_snapshot,
                self._snapshot_input(),
                summary=f"read {self._spec.target} before step {index} traffic",
                interruptible=True,
            )
            self._record(snap)
            canary, _ = plan.step_targets(step, snap.replicas)
            await self._run_traffic(
                plan_step_start(routing, step.traffic, desired_canary=canary, replicas=snap.replicas)
            )
        await self._converge(lambda replicas: plan.step_targets(step, replicas), grow_canary=True, step=step)
        await self._run_traffic(plan_step_ready(routing, step.traffic), step.traffic)
        last = index == total
        if last and str(step.replicas).strip() == "100%":
            return  # Kruise: a last step of exactly 100% does not pause
        await self._pause(index, step)
        self._publish(Phase.PROGRESSING, StepState.STEP_READY, Reason.UPGRADE.format(i=index, n=total))

    async def _pause(self, index: int, step: StepSpec) -> None:
        """Wait for approve (or the timer); re-scale the step if spec.replicas changes meanwhile."""
        total = len(self._spec.steps)
        seconds = step.pause_seconds
        if seconds == 0:
            return
        message = (
            Reason.MANUAL.format(i=index, n=total)
            if seconds is None
            else Reason.TIMED.format(i=index, n=total, s=seconds)
        )
        deadline = workflow.now() + timedelta(seconds=seconds) if seconds is not None else None
        self._status.pause_seconds = seconds
        self._status.paused_at = workflow.now()
        self._publish(Phase.PAUSED, StepState.STEP_PAUSED, message)
        while index not in self._approved:
            if self._interrupted():
                raise Interrupted()
            tk = self._takeover
            assert tk is not None
            watcher = workflow.start_activity_method(
                RolloutActivities.watch_replicas,
                WatchInput(
                    ref=self._ref,
                    replicas=self._status.replicas,
                    poll_interval_seconds=self._spec.timings.poll_interval_seconds,
                    canary_rs=tk.canary_rs,
                ),
                start_to_close_timeout=LONG_WAIT,
                heartbeat_timeout=timedelta(seconds=self._spec.timings.heartbeat_timeout_seconds),
                retry_policy=RETRY,
                cancellation_type=workflow.ActivityCancellationType.TRY_CANCEL,
                summary=f"watch {self._spec.target} spec.replicas and template while paused at step {index}",
            )
            timeout = None
            if deadline is not None:
                timeout = (deadline - workflow.now()).total_seconds()
                if timeout <= 0:
                    abandon(watcher)
                    self._approved.add(index)  # the timed pause is over
                    break
            try:
                await workflow.wait_condition(
                    lambda w=watcher: index in self._approved or self._interrupted() or w.done(),  # type: ignore[misc]
                    timeout=timeout,
                    timeout_summary=f"pause after step {index}",
                )
            except TimeoutError:
                self._approved.add(index)  # the timed pause is over
            if not watcher.done():
                abandon(watcher)
                continue
            result: WatchResult = watcher.result()
            if result.template_drift:
                await self._hold_for_drift(result.template_drift)
                self._publish(Phase.PAUSED, StepState.STEP_PAUSED, message)
                continue
            old = self._status.replicas
            self._publish(Phase.PROGRESSING, StepState.STEP_UPGRADE, Reason.UPGRADE.format(i=index, n=total))
            await self._converge(
                lambda replicas: plan.step_targets(step, replicas), grow_canary=True, step=step
            )
            self._publish(
                Phase.PAUSED,
                StepState.STEP_PAUSED,
                f"{Reason.RESCALED.format(old=old, new=result.replicas, i=index)}. {message}",
            )
        self._status.paused_at = None
        self._status.pause_seconds = None

    async def _hold_for_drift(self, what: str) -> None:
        """Another writer changed the pod template: pause until approve (keep ours), replace or undo."""
        previous = (self._status.phase, self._status.step_state)
        self._drift, self._drift_ok = what, False
        self._publish(Phase.PAUSED, StepState.STEP_PAUSED, Reason.DRIFT.format(what=what))
        await workflow.wait_condition(lambda: self._drift_ok or self._interrupted())
        approved = self._drift_ok
        self._drift, self._drift_ok = None, False
        if not approved:
            raise Interrupted()
        tk = self._takeover
        assert tk is not None
        await self._call(
            RolloutActivities.retarget,
            RetargetInput(
                ref=self._ref,
                workflow_id=workflow.info().workflow_id,
                template=self._spec.template,
                stable_rs=tk.stable_rs,
            ),
            summary=f"write the rollout's pod template back into {self._spec.target} (approved)",
            interruptible=False,
        )
        i, n = self._status.current_step_index, len(self._spec.steps)
        self._publish(previous[0], previous[1], Reason.UPGRADE.format(i=i, n=n))

    async def _complete(self) -> None:
        """Finalize: traffic back to the user's objects, canary = replicas, stable = 0, hand back."""
        assert self._takeover is not None
        self._publish(Phase.PROGRESSING, StepState.STEP_READY, Reason.FINALISING)
        await self._run_traffic(plan_finalize(self._spec.traffic_routing))
        await self._converge(lambda replicas: (replicas, 0), grow_canary=True, interruptible=False)
        await self._call(
            RolloutActivities.finalize,
            FinalizeInput(
                ref=self._ref,
                workflow_id=workflow.info().workflow_id,
                original_strategy=self._takeover.original_strategy,
            ),
            summary=f"hand {self._spec.target} back: restore strategy, unpause, remove annotations",
            interruptible=False,
        )
        self._publish(Phase.COMPLETED, StepState.COMPLETED, Reason.COMPLETED)

    # -- moves within a step -------------------------------------------------------------------------

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
                RolloutActivities.step_move,
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
                RolloutActivities.get_snapshot, snap_in, summary=read_summary, interruptible=interruptible
            )
        deadline_s = self._spec.progress_deadline_seconds if grow_canary else 0
        progress_at = workflow.now()
        best_ready = snap.canary.ready_replicas
        while True:
            if grow_canary and snap.template_drift and not self._finalizing:
                await self._hold_for_drift(snap.template_drift)
                snap = await self._call(
                    RolloutActivities.get_snapshot, snap_in, summary=read_summary, interruptible=interruptible
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
                rs = tk.canary_rs if move.side == "canary" else tk.stable_rs
                counts: ReplicaSetCounts = await self._call(
                    RolloutActivities.scale_replica_set,
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
                    RolloutActivities.wait_for_batch,
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
