"""The forward path of the rollout workflow: steps, pauses, finalize.

Per step (Kruise's order): traffic before the scale (stable Service narrowed), converge (the engine in
``workflows/base.py``: single moves chosen by ``workflows.plan`` until the batch is ready, with the
progress-deadline and other-writer guards), traffic for the step (canary Service, weight/matches),
then pause. While paused, the worker's shared Deployment watcher signals a change of spec.replicas (the
step is re-scaled) or of the pod template (the rollout is held); rollouts begun before that path
(``workflows/converge.py``) keep a ``watch_replicas`` activity per pause.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.scaling import ScalingActivities
    from activities.takeover import TakeoverActivities
    from workflows import plan
    from workflows.base import Interrupted
    from workflows.jump import JumpMixin
    from workflows.model import (
        FinalizeInput,
        NotifyEvent,
        Phase,
        Reason,
        Snapshot,
        StepSpec,
        StepState,
        WaitingFor,
    )
    from workflows.traffic import plan_finalize, plan_step_ready, plan_step_start

__all__ = ["StepsMixin"]


class StepsMixin(JumpMixin):
    """Steps, pauses, converge, finalize."""

    async def _run_steps(self) -> None:
        self.s.jump, self.s.canary_floor = None, 0  # a new canary (step 1, retry, retarget) starts clean
        index = 1
        while index <= len(self.s.spec.steps):
            if self.s.status.promote_full:
                break  # `rollout approve --full`: finalize now
            try:
                await self._run_step(index, self.s.spec.steps[index - 1])
            except Interrupted:
                if self.s.interrupted() or self.s.jump is None:
                    raise
                self.s.status.paused_at, self.s.status.pause_seconds = None, None
            # a jump (``nextStepIndex``, a plan edit) goes on at its step; otherwise the next one
            index, self.s.jump = (self.s.jump if self.s.jump is not None else index + 1), None
        await self._analysis_gate()  # an inconclusive analysis holds completion too
        self._stop_analysis("stopped: the rollout completed")

    async def _run_step(self, index: int, step: StepSpec) -> None:
        st = self.s.status
        st.current_step_index = index
        total = len(self.s.spec.steps)
        await self._analysis_gate()  # inconclusive analysis: no further step until approve
        self._maybe_start_background(index)
        self._publish(Phase.PROGRESSING, StepState.STEP_UPGRADE, Reason.UPGRADE.format(i=index, n=total))
        await self._hold_point()
        routing = self.s.spec.traffic_routing
        if routing is not None:
            snap: Snapshot = await self._call(
                ScalingActivities.get_snapshot,
                self._snapshot_input(),
                summary=f"read {self.s.spec.target} before step {index} traffic",
                interruptible=True,
            )
            self._record(snap)
            canary, _ = plan.step_targets(
                plan.floored_step(step, self.s.canary_floor, snap.replicas), snap.replicas
            )
            await self._run_traffic(
                plan_step_start(routing, step.traffic, desired_canary=canary, replicas=snap.replicas)
            )
        # after a jump or a plan edit the canary keeps its pods (Kruise's partition style)
        moves = plan.floored_step(step, self.s.canary_floor, self.s.status.replicas)
        await self._converge(lambda replicas: plan.step_targets(moves, replicas), step=moves)
        await self._run_traffic(plan_step_ready(routing, step.traffic), step.traffic)
        if step.analysis:
            await self._run_step_analysis(index, step.analysis)
        if plan.is_final_full_step(step, index, total):
            self._notify(NotifyEvent.STEP_COMPLETED)
            return  # Kruise: a last step of exactly 100% does not pause
        await self._pause(index, moves)
        self._publish(Phase.PROGRESSING, StepState.STEP_READY, Reason.UPGRADE.format(i=index, n=total))
        self._notify(NotifyEvent.STEP_COMPLETED)

    async def _pause(self, index: int, step: StepSpec) -> None:
        """Wait for approve (or the timer); re-scale the step if spec.replicas changes meanwhile."""
        total = len(self.s.spec.steps)
        seconds = step.pause_seconds
        if seconds == 0:
            return
        message = (
            Reason.MANUAL.format(i=index, n=total)
            if seconds is None
            else Reason.TIMED.format(i=index, n=total, s=seconds)
        )
        deadline = workflow.now() + timedelta(seconds=seconds) if seconds is not None else None
        waiting_for = WaitingFor.APPROVAL if seconds is None else WaitingFor.TIMER
        self.s.status.pause_seconds = seconds
        self.s.status.paused_at = workflow.now()
        self._publish(Phase.PAUSED, StepState.STEP_PAUSED, message, waiting_for=waiting_for)
        if seconds is None:
            self._notify(NotifyEvent.STEP_PAUSED)
        if self.s.one_activity:  # no activity while paused: the shared watcher signals changes
            await self._pause_on_signals(index, step, message, deadline, waiting_for)  # returns once approved
        else:
            await self._pause_by_watching(index, step, message, deadline, waiting_for)
        await self._attribute_approvals()
        await self._hold_point()
        self.s.status.paused_at = None
        self.s.status.pause_seconds = None

    async def _complete(self) -> None:
        """Finalize: traffic back to the user's objects, canary = replicas, stable = 0, hand back."""
        assert self.s.takeover is not None
        self._publish(Phase.PROGRESSING, StepState.STEP_READY, Reason.FINALISING, finalizing=True)
        await self._run_traffic(plan_finalize(self.s.spec.traffic_routing))
        st = self.s.status
        converged = st.canary_replicas == st.canary_ready_replicas == st.replicas and st.stable_replicas == 0
        if not (self.s.one_activity and converged):  # a last step of 100% has done finalize's moves
            await self._converge(lambda replicas: (replicas, 0), interruptible=False)
        await self._write(
            TakeoverActivities.finalize,
            FinalizeInput,
            summary=f"hand {self.s.spec.target} back: restore strategy, unpause, remove annotations",
            original_strategy=self.s.takeover.original_strategy,
        )
        self._publish(Phase.COMPLETED, StepState.COMPLETED, Reason.COMPLETED)
        self._notify(NotifyEvent.COMPLETED)

    async def _pause_on_signals(
        self, index: int, step: StepSpec, message: str, deadline: datetime | None, waiting_for: WaitingFor
    ) -> None:
        """Wait for approve or the timer; on a Deployment change from the watcher, converge again."""
        total = len(self.s.spec.steps)
        st = self.s.status
        while index not in self.s.approved and not st.promote_full:
            if self.s.interrupted() or self.s.jump is not None:
                raise Interrupted()
            timeout = None
            held = bool(st.held_by)  # `rollout pause`: the timer waits too
            if deadline is not None and not held:
                timeout = (deadline - workflow.now()).total_seconds()
                if timeout <= 0:
                    self.s.approved.add(index)  # the timed pause is over
                    break
            try:
                await self._wait(
                    lambda h=held: (  # type: ignore[misc]
                        index in self.s.approved
                        or self.s.interrupted()
                        or self._change_pending()
                        or st.promote_full
                        or bool(st.held_by) != h
                        or self.s.analysis_hold is not None
                        or self.s.jump is not None
                    ),
                    timeout=timeout,
                    timeout_summary=f"pause after step {index}",
                )
            except TimeoutError:
                self.s.approved.add(index)
                break
            if self.s.analysis_hold is not None and index not in self.s.approved:
                await self._analysis_gate()  # an inconclusive analysis holds the pause (analysis_flow)
                self._publish(Phase.PAUSED, StepState.STEP_PAUSED, message, waiting_for=waiting_for)
                continue
            if index in self.s.approved or st.promote_full or self.s.interrupted() or self.s.jump is not None:
                continue
            if not self._change_pending():
                continue
            change, self.s.change = self.s.change, None
            assert change is not None  # _change_pending() saw it
            old = self.s.status.replicas
            self._publish(Phase.PROGRESSING, StepState.STEP_UPGRADE, Reason.UPGRADE.format(i=index, n=total))
            snap = await self._converge_in_one(step, interruptible=True)
            note = message
            if snap.replicas != old:
                note = f"{Reason.RESCALED.format(old=old, new=snap.replicas, i=index)}. {message}"
            workflow.logger.info("step %d re-converged after generation %d", index, change.generation)
            self._publish(Phase.PAUSED, StepState.STEP_PAUSED, note, waiting_for=waiting_for)
