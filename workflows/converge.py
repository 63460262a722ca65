"""The cheap path of a step (issue 15): one activity per step, pauses that wait on signals.

- ``_converge_in_one``: a step's (or finalize's) moves run inside one ``converge_step`` activity
  (``activities/converge.py``) instead of one activity and one workflow task per move. It returns
  when the batch is ready, when another writer changed the template (the workflow pauses for it, as
  before) or when the progress deadline passed (``DeadlineExceeded``, as before). Undo cancels it
  and waits for the cancellation (a write in flight finishes first).
- ``_pause_on_signals``: a pause holds no activity and no watch. The worker's shared watcher
  (``watcher.py``) signals ``deployment_changed`` when the Deployment's replicas or template change
  or it is deleted; the pause then re-runs the step's converge (which rescales, pauses for the
  template's other writer, or fails on a deleted Deployment).

Both are behind one ``workflow.patched`` marker taken at the start of the run, so rollouts begun
before keep their per-move activities and their ``watch_replicas`` pauses on replay.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.converge import ConvergeActivities
    from workflows import plan
    from workflows.base import DeadlineExceeded, Interrupted, RolloutBase
    from workflows.calls import start
    from workflows.contract import Purpose
    from workflows.model import (
        ConvergeInput,
        ConvergeResult,
        DeploymentChange,
        Phase,
        Reason,
        Snapshot,
        SnapshotInput,
        StepSpec,
        StepState,
        WaitingFor,
    )

__all__ = ["PATCH_ONE_ACTIVITY", "ConvergeMixin"]

PATCH_ONE_ACTIVITY = "converge-in-one-activity-pause-on-signals"


def _newer(rv: str, than: str) -> bool:
    """Whether resourceVersion ``rv`` is newer than ``than`` (opaque versions: whenever they differ)."""
    if not than:
        return True
    if rv.isdigit() and than.isdigit():
        return int(rv) > int(than)
    return rv != than


class ConvergeMixin(RolloutBase):
    """One-activity converge and signal-driven pauses."""

    _one_activity: bool = False
    _change: DeploymentChange | None = None
    _change_rv: str = ""

    async def _converge(
        self,
        targets_for: Callable[[int], tuple[int, int]],
        *,
        grow_canary: bool,
        interruptible: bool = True,
        step: StepSpec | None = None,
    ) -> Snapshot:
        """The forward converges (steps, finalize) in one activity on new runs; undo keeps the engine's."""
        if grow_canary and self._one_activity:
            return await self._converge_in_one(step, interruptible)
        return await super()._converge(
            targets_for, grow_canary=grow_canary, interruptible=interruptible, step=step
        )

    def _on_deployment_changed(self, change: DeploymentChange) -> None:
        """Signal handler body: keep the newest change (every worker's watcher sends each one).

        A change about another Deployment is ignored (the watcher derives the ID from namespace and
        name; this is the second check). Runs by reference require the target in the change.
        """
        target = (self._spec.namespace, self._spec.name)
        if (change.namespace or self._spec.template_hash) and (change.namespace, change.name) != target:
            workflow.logger.info(
                "deployment_changed about %s/%s ignored: this rollout is for %s",
                change.namespace, change.name, self._spec.target,
            )
            return
        if not _newer(change.resource_version, self._change_rv):
            return
        self._change_rv = change.resource_version
        self._change = change

    def _analysis_pending(self) -> bool:
        return getattr(self, "_analysis_hold", None) is not None  # set by AnalysisMixin

    async def _analysis_gate_hook(self) -> None:
        gate = getattr(self, "_analysis_gate", None)  # AnalysisMixin's
        if gate is not None:
            await gate()

    def _hold_requested(self) -> bool:
        return bool(self._status.held_by) and not self._finalizing

    def _change_pending(self) -> bool:
        """Whether the last change asks for action: deleted, resized, or another pod template."""
        change, tk = self._change, self._takeover
        if change is None or tk is None:
            return False
        return (
            change.deleted
            or change.replicas != self._status.replicas
            or change.template_hash != tk.canary_revision
        )

    async def _converge_in_one(self, step: StepSpec | None, interruptible: bool) -> Snapshot:
        """All moves of ``step`` (``None``: finalize, canary = replicas) in one activity per attempt."""
        tk = self._takeover
        assert tk is not None
        while True:
            await self._hold_point()  # `rollout pause`: no new moves until resumed (not while finalizing)
            inp = ConvergeInput(
                snapshot=SnapshotInput(ref=self._ref, stable_rs=tk.stable_rs, canary_rs=tk.canary_rs),
                step=step,
                rolling_update=tk.original_strategy.get("rollingUpdate"),
                failure_threshold=self._spec.failure_threshold,
                check_drift=not self._finalizing,
                progress_deadline_seconds=self._spec.progress_deadline_seconds,
                poll_interval_seconds=self._spec.timings.poll_interval_seconds,
            )
            what = f"step {self._status.current_step_index}" if step is not None else "finalize"
            # Undo waits until the activity has stopped: a write in flight finishes first.
            handle = start(
                ConvergeActivities.converge_step,
                inp,
                purpose=Purpose.CONVERGE,
                timings=self._spec.timings,
                summary=f"converge {self._spec.target} for {what}: scale and wait until the batch is ready",
            )
            if interruptible:
                await self._wait(
                    lambda h=handle: h.done() or self._interrupted() or self._hold_requested()  # type: ignore[misc]
                )
                if not handle.done():
                    handle.cancel()
                    try:
                        await handle
                    except ActivityError:
                        pass  # cancelled, as asked (a write in flight finished first)
                    if self._interrupted():
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
                        s=self._spec.progress_deadline_seconds,
                    )
                )
            if interruptible and self._interrupted():
                raise Interrupted()
            return snap

    async def _pause_on_signals(
        self, index: int, step: StepSpec, message: str, deadline: datetime | None, waiting_for: WaitingFor
    ) -> None:
        """Wait for approve or the timer; on a Deployment change from the watcher, converge again."""
        total = len(self._spec.steps)
        st = self._status
        while index not in self._approved and not st.promote_full:
            if self._interrupted():
                raise Interrupted()
            timeout = None
            held = bool(st.held_by)  # `rollout pause`: the timer waits too
            if deadline is not None and not held:
                timeout = (deadline - workflow.now()).total_seconds()
                if timeout <= 0:
                    self._approved.add(index)  # the timed pause is over
                    break
            try:
                await self._wait(
                    lambda h=held: (  # type: ignore[misc]
                        index in self._approved
                        or self._interrupted()
                        or self._change_pending()
                        or st.promote_full
                        or bool(st.held_by) != h
                        or self._analysis_pending()
                    ),
                    timeout=timeout,
                    timeout_summary=f"pause after step {index}",
                )
            except TimeoutError:
                self._approved.add(index)
                break
            if self._analysis_pending() and index not in self._approved:
                await self._analysis_gate_hook()  # an inconclusive analysis holds the pause (analysis_flow)
                self._publish(Phase.PAUSED, StepState.STEP_PAUSED, message, waiting_for=waiting_for)
                continue
            if index in self._approved or st.promote_full or self._interrupted():
                continue
            if not self._change_pending():
                continue
            change, self._change = self._change, None
            assert change is not None  # _change_pending() saw it
            old = self._status.replicas
            self._publish(Phase.PROGRESSING, StepState.STEP_UPGRADE, Reason.UPGRADE.format(i=index, n=total))
            snap = await self._converge_in_one(step, interruptible=True)
            note = message
            if snap.replicas != old:
                note = f"{Reason.RESCALED.format(old=old, new=snap.replicas, i=index)}. {message}"
            workflow.logger.info("step %d re-converged after generation %d", index, change.generation)
            self._publish(Phase.PAUSED, StepState.STEP_PAUSED, note, waiting_for=waiting_for)
