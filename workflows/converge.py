"""Converging a batch in one activity: forward (steps, finalize) and back (undo, abort, retarget).

Two guards run on every read of the Deployment:

- *progress deadline*: a forward converge that sees no progress (no scale, no newly ready canary
  pod) for ``progress_deadline_seconds`` raises ``DeadlineExceeded`` (pauses never count);
- *other writers*: a pod template that is no longer the canary's pauses the rollout with a message
  saying what changed (``_hold_for_drift``, ``workflows/verbs.py``); approve writes our template
  back, ``--replace`` adopts the new one, undo rolls back.

- ``_converge_in_one``: a step's (or finalize's) moves run inside one ``converge_step`` activity
  (``activities/converge.py``) instead of one activity and one workflow task per move. It returns
  when the batch is ready, when another writer changed the template (the workflow pauses for it, as
  before) or when the progress deadline passed (``DeadlineExceeded``, as before). Undo cancels it
  and waits for the cancellation (a write in flight finishes first).
- ``_converge_back``: undo, abort and retarget, the same activity with ``back`` (canary to 0,
  stable to full), not interruptible. Runs begun before ``PATCH_ONE_ENGINE`` (and, forward, before
  ``PATCH_ONE_ACTIVITY``) use the per-move engine of ``workflows/legacy.py`` instead.
- ``_on_deployment_changed``: keeps the shared watcher's newest change for the signal-driven pause
  (``workflows/steps.py``).
"""

from __future__ import annotations

from collections.abc import Callable

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.converge import ConvergeActivities
    from workflows import plan
    from workflows.base import DeadlineExceeded, Interrupted
    from workflows.calls import start
    from workflows.contract import Purpose
    from workflows.legacy import LegacyMixin
    from workflows.model import (
        ConvergeInput,
        ConvergeResult,
        DeploymentChange,
        Reason,
        Snapshot,
        SnapshotInput,
        StepSpec,
    )

__all__ = ["PATCH_ONE_ACTIVITY", "PATCH_ONE_ENGINE", "ConvergeMixin"]

PATCH_ONE_ACTIVITY = "converge-in-one-activity-pause-on-signals"
# Undo, abort and retarget converge in one converge_step too (runs begun before: move by move).
PATCH_ONE_ENGINE = "converge-back-in-one-activity"


def _newer(rv: str, than: str) -> bool:
    """Whether resourceVersion ``rv`` is newer than ``than`` (opaque versions: whenever they differ)."""
    if not than:
        return True
    if rv.isdigit() and than.isdigit():
        return int(rv) > int(than)
    return rv != than


class ConvergeMixin(LegacyMixin):
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
                change.namespace,
                change.name,
                self.s.spec.target,
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
                    lambda h=handle: (  # type: ignore[misc]
                        h.done() or self.s.interrupted() or self._hold_requested() or self.s.jump is not None
                    )
                )
                if not handle.done():
                    handle.cancel()
                    try:
                        await handle
                    except ActivityError:
                        pass  # cancelled, as asked (a write in flight finished first)
                    if self.s.interrupted() or self.s.jump is not None:  # a jump: the steps loop goes on
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
