"""Code that exists only to replay (and finish) rollouts begun before today's shapes.

New runs never reach it. Which code a run takes is decided once, at its start, by ``workflow.patched``
markers recorded in its history (``RolloutState.one_activity``, ``one_engine``), so a run keeps the
shape it began with to the end:

- ``_converge_by_moves``: the per-move engine (one ``get_snapshot``/``step_move``, then one
  ``scale_replica_set`` per move and ``wait_for_batch``). Forward for runs without
  ``PATCH_ONE_ACTIVITY``; undo, abort and retarget for runs without ``PATCH_ONE_ENGINE``. Inside
  it, ``PATCH_STEP_MOVE`` picks the read-and-first-move activity over a plain read.
- ``_pause_by_watching``: a pause that holds a ``watch_replicas`` activity (runs without
  ``PATCH_ONE_ACTIVITY``; new runs wait on the shared watcher's signals).

Retirement (docs/layout.md): once no run begun before a marker can still be open, the marker's
``workflow.patched`` becomes ``workflow.deprecate_patch`` and the old branch here is deleted with its
histories; a release later the ``deprecate_patch`` call goes too.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.legacy import WaitActivities
    from activities.scaling import ScalingActivities
    from workflows import plan
    from workflows.analysis_flow import AnalysisMixin
    from workflows.base import DeadlineExceeded, Interrupted, abandon
    from workflows.model import (
        Phase,
        Reason,
        ReplicaSetCounts,
        ScaleInput,
        Snapshot,
        StepMoveInput,
        StepMoveResult,
        StepSpec,
        StepState,
        WaitingFor,
        WaitInput,
        WatchInput,
        WatchResult,
    )

__all__ = ["PATCH_STEP_MOVE", "LegacyMixin"]

# Rollouts started before this patch read with get_snapshot and scale in a second activity; newer
# ones read and make the first move of a step in one activity (step_move). Replay keeps the old path
# for histories without the marker (tests/replay/histories/seed.json).
PATCH_STEP_MOVE = "step-move-in-one-activity"


class LegacyMixin(AnalysisMixin):
    """The per-move engine and the watching pause, for runs begun before their markers."""

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

    async def _pause_by_watching(
        self, index: int, step: StepSpec, message: str, deadline: datetime | None, waiting_for: WaitingFor
    ) -> None:
        """Wait for approve or the timer, with a ``watch_replicas`` activity that returns on a change."""
        total = len(self.s.spec.steps)
        while index not in self.s.approved and not self.s.status.promote_full:
            if self.s.interrupted():
                raise Interrupted()
            tk = self.s.takeover
            assert tk is not None
            watcher = self._start_activity(
                WaitActivities.watch_replicas,
                WatchInput(
                    ref=self.s.ref,
                    replicas=self.s.status.replicas,
                    poll_interval_seconds=self.s.spec.timings.poll_interval_seconds,
                    canary_rs=tk.canary_rs,
                ),
                summary=f"watch {self.s.spec.target} spec.replicas and template while paused at step {index}",
                wait=True,
            )
            timeout = None
            held = bool(self.s.status.held_by)  # `rollout pause`: the timer waits too
            if deadline is not None and not held:
                timeout = (deadline - workflow.now()).total_seconds()
                if timeout <= 0:
                    abandon(watcher)
                    self.s.approved.add(index)  # the timed pause is over
                    break
            try:
                await self._wait(
                    lambda w=watcher, h=held: (  # type: ignore[misc]
                        index in self.s.approved
                        or self.s.interrupted()
                        or w.done()
                        or self.s.status.promote_full
                        or (deadline is not None and bool(self.s.status.held_by) != h)
                        or self.s.analysis_hold is not None
                    ),
                    timeout=timeout,
                    timeout_summary=f"pause after step {index}",
                )
            except TimeoutError:
                self.s.approved.add(index)  # the timed pause is over
            if self.s.analysis_hold is not None and index not in self.s.approved:
                if not watcher.done():
                    abandon(watcher)
                await self._analysis_gate()
                self._publish(Phase.PAUSED, StepState.STEP_PAUSED, message, waiting_for=waiting_for)
                continue
            if not watcher.done():
                abandon(watcher)
                continue
            result: WatchResult = watcher.result()
            if result.template_drift:
                await self._hold_for_drift(result.template_drift)
                self._publish(Phase.PAUSED, StepState.STEP_PAUSED, message, waiting_for=waiting_for)
                continue
            old = self.s.status.replicas
            self._publish(Phase.PROGRESSING, StepState.STEP_UPGRADE, Reason.UPGRADE.format(i=index, n=total))
            await self._converge_by_moves(
                lambda replicas: plan.step_targets(step, replicas), grow_canary=True, step=step
            )
            self._publish(
                Phase.PAUSED,
                StepState.STEP_PAUSED,
                f"{Reason.RESCALED.format(old=old, new=result.replicas, i=index)}. {message}",
                waiting_for=waiting_for,
            )
