"""The release workflow (``release/<id>``): waves of child rollouts across Deployments and clusters.

Thin and deterministic: each target is today's ``Rollout`` workflow, started as a child on its cluster's
task queue (``task_queue_for``), with ``hold_until_released`` so it stays at 100% (undo still possible)
until the release ends. The rules (how many may start, when a wave failed, which approval is refused,
the rollback order) are pure functions in ``workflows.release_plan``.

    for each wave: [approval gate] -> start targets (maxParallel) -> all held (maxFailures) -> bake
    success  -> ``release_finish`` to every held target: each hands its Deployment back on the new template
    failure  -> the policy's waves roll back, newest first (a cancellation request = the child's undo);
                the other held targets are finished; targets never started are handed back untouched

Approve, halt, resume and abort are validated updates: a refusal is a reason, and leaves no history.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError, CancelledError, ChildWorkflowError
from temporalio.workflow import ChildWorkflowCancellationType, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.takeover import TakeoverActivities
    from workflows import errors, release_plan
    from workflows import release_continue as carry
    from workflows.contract import SIGNAL_TARGET_HELD
    from workflows.model import (
        RELEASE_FINISH_SIGNAL,
        RELEASE_WORKFLOW_TYPE,
        SA_CLUSTER_KEY,
        SA_PHASE_KEY,
        SA_RELEASE_ID_KEY,
        SA_RELEASE_WAVE_KEY,
        SA_STEP_KEY,
        SA_TARGET_KEY,
        ControlAction,
        ControlSignal,
        DeploymentRef,
        FinalizeInput,
        Phase,
        ReleaseAction,
        ReleaseApprove,
        ReleaseControl,
        ReleaseInput,
        ReleaseNotifyEvent,
        ReleasePhase,
        ReleaseStatus,
        ReleaseTargetRun,
        ReleaseTargetStatus,
        RolloutStatus,
        TargetHeld,
        TargetState,
        WaveState,
        task_queue_for,
    )
    from workflows.release_notify import ReleaseNotifier
    from workflows.rollout import RolloutWorkflow

__all__ = ["MEMO_RELEASE_STATUS", "ReleaseWorkflow"]

MEMO_RELEASE_STATUS = "releaseStatus"
# A child canceled by someone else than this release (`rollout undo` of one target) counts as failed.
PATCH_USER_UNDO = "release-user-undo-fails-target"
_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10))
# From PATCH_CONTINUE_AS_NEW on, targets outlive the run that started them (release_continue.py).
_CLOSE_POLICY = {True: ParentClosePolicy.ABANDON, False: ParentClosePolicy.REQUEST_CANCEL}
_SELF_ROLLED_BACK = {errors.ANALYSIS_ROLLBACK, errors.PROGRESS_DEADLINE}
_OUTCOME_TYPE = {
    ReleasePhase.FAILED: errors.RELEASE_FAILED,
    ReleasePhase.ROLLED_BACK: errors.RELEASE_ROLLED_BACK,
    ReleasePhase.ABORTED: errors.RELEASE_ABORTED,
}


@workflow.defn(name=RELEASE_WORKFLOW_TYPE)
class ReleaseWorkflow:
    """One release: waves of child rollouts, gates, bakes, and fleet-wide rollback."""

    @workflow.init
    def __init__(self, spec: ReleaseInput) -> None:
        self._spec = spec
        self._notifier = ReleaseNotifier(spec)
        carried = spec.carried  # a run after continue-as-new: the state the previous run handed on
        self._status = (
            carried.status if carried else release_plan.initial_status(spec, workflow.info().workflow_id)
        )
        self._children: dict[str, workflow.ChildWorkflowHandle[RolloutWorkflow, RolloutStatus]] = {}
        self._runs: dict[str, ReleaseTargetRun] = {
            t.target.workflow_id: t for w in spec.waves for t in w.targets
        }
        self._targets: dict[str, ReleaseTargetStatus] = {
            t.workflow_id: t for w in self._status.waves for t in w.targets
        }
        self._followers: list[asyncio.Task[None]] = []
        self._open_wave: int | None = None
        self._expired: dict[int, datetime] = dict(carried.expired) if carried else {}
        self._abort: ReleaseControl | None = None
        self._cancelled: set[str] = set(carried.cancelled) if carried else set()  # asked to roll back
        self._can = False  # PATCH_CONTINUE_AS_NEW: targets outlive a run, so the release may continue as new
        self._events = 0  # bumped by every signal, update and child outcome: the loops' wake-up

    # -- updates, signals, query ----------------------------------------------------------------------

    @workflow.update
    def approve(self, req: ReleaseApprove) -> ReleaseStatus:
        """Open the gate of the wave waiting for its approval."""
        index = [w.name for w in self._status.waves].index(req.wave)
        self._status.waves[index].approved_by = req.by or "unknown"
        self._bump()
        return self._status

    @approve.validator
    def _check_approve(self, req: ReleaseApprove) -> None:
        refusal = release_plan.approval_refusal(
            self._status,
            req.wave,
            open_wave=self._open_wave,
            expired=self._expired,
            halted_by=self._status.halted_by,
        )
        if refusal is not None:
            raise ValueError(refusal)

    @workflow.update
    async def control(self, req: ReleaseControl) -> str:
        """Halt (no new target starts, running children pause at their step), resume, or abort."""
        st, by = self._status, req.by or "unknown"
        if req.action == ReleaseAction.HALT:
            st.halted_by = by
            self._publish(ReleasePhase.HALTED, f"halted by {by}: running targets pause at their step")
            await self._signal_running(ControlAction.PAUSE, by)
            return f"release {st.release_id} halted"
        if req.action == ReleaseAction.RESUME:
            st.halted_by = ""
            self._expired.pop(self._status.current_wave - 1, None)
            self._publish(ReleasePhase.PROGRESSING, f"resumed by {by}")
            await self._signal_running(ControlAction.RESUME, by)
            return f"release {st.release_id} resumed"
        self._abort = req
        self._bump()
        return f"release {st.release_id} is being aborted (rollback: {req.rollback})"

    @control.validator
    def _check_control(self, req: ReleaseControl) -> None:
        st = self._status
        busy = (ReleasePhase.ROLLING_BACK, ReleasePhase.FINISHING)
        if st.phase in release_plan.FINAL_PHASES or st.phase in busy or self._abort is not None:
            raise ValueError(f"release {st.release_id} is {st.phase.value}; cannot {req.action.value} it")
        if req.action == ReleaseAction.HALT and st.halted_by:
            raise ValueError(f"release {st.release_id} is already halted by {st.halted_by}")
        if req.action == ReleaseAction.RESUME and not st.halted_by:
            raise ValueError(f"release {st.release_id} is not halted")

    @workflow.signal(name=SIGNAL_TARGET_HELD)
    def target_held(self, sig: TargetHeld) -> None:
        """From a child: it reached 100% and waits for the release's end."""
        target = self._targets.get(sig.workflow_id)
        if target is not None and target.state == TargetState.RUNNING:
            target.state, target.message = TargetState.HELD, "at 100%, held until the release ends"
            self._bump()

    @workflow.query
    def status(self) -> ReleaseStatus:
        """The release status (waves > targets)."""
        return self._status

    # -- run ------------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, spec: ReleaseInput) -> ReleaseStatus:
        self._can = workflow.patched(carry.PATCH_CONTINUE_AS_NEW)
        try:
            return await self._run(spec)
        except asyncio.CancelledError:
            # Targets outlive the release's run (ABANDON): its cancellation rolls back those still live.
            for t in self._targets.values():
                if self._can and t.state in (TargetState.RUNNING, TargetState.HELD):
                    await self._cancel(t.workflow_id)
            raise

    async def _run(self, spec: ReleaseInput) -> ReleaseStatus:
        failed_wave: int | None = None
        first = 0
        if spec.carried is not None:
            first = spec.carried.next_wave
            self._set_details()
            for t in self._targets.values():
                if t.state == TargetState.HELD:
                    self._followers.append(asyncio.create_task(self._follow_carried(t.workflow_id)))
        for index in range(first, len(spec.waves)):
            ok = await self._run_wave(index)
            if not ok:
                failed_wave = index
                break
            if self._can and carry.continue_due(spec, self._status, index + 1):
                await self._continue_as_new(index + 1)
        if failed_wave is None and self._abort is None:
            await self._finish_held(ReleasePhase.FINISHING, "the last wave baked: handing every target back")
            final, text = ReleasePhase.COMPLETED, "every target runs the new template"
        else:
            final, text = await self._unwind(
                failed_wave if failed_wave is not None else self._status.current_wave - 1
            )
        await self._hand_back_pending()
        self._publish(final, text)  # last: a watcher that sees it sees every Deployment handed back
        self._notifier.notify(ReleaseNotifyEvent.RELEASE_ENDED, self._status)
        for task in self._followers:
            await task
        await self._notifier.drain()
        workflow.upsert_memo({MEMO_RELEASE_STATUS: self._status})
        error_type = _OUTCOME_TYPE.get(self._status.phase)
        if error_type is not None:
            raise ApplicationError(self._status.message, self._status, type=error_type, non_retryable=True)
        return self._status

    async def _run_wave(self, index: int) -> bool:
        """Run one wave; ``False`` when it failed or the release was aborted."""
        wave, ws = self._spec.waves[index], self._status.waves[index]
        self._status.current_wave = index + 1
        if self._spec.use_search_attributes:
            workflow.upsert_search_attributes([SA_RELEASE_WAVE_KEY.value_set(index + 1)])
        if wave.approval.required and not await self._approval_gate(index):
            return False
        ws.state = WaveState.RUNNING
        self._publish(ReleasePhase.PROGRESSING, f"wave {wave.name} ({index + 1}/{len(self._spec.waves)})")
        self._notifier.notify(ReleaseNotifyEvent.WAVE_STARTED, self._status, index)
        seen_failures = 0
        while self._abort is None:
            states = [t.state for t in ws.targets]
            ws.failures = sum(1 for s in states if s == TargetState.FAILED)
            verdict = release_plan.wave_verdict(states, wave.max_failures)
            if verdict == WaveState.FAILED:
                ws.state = WaveState.FAILED
                self._notifier.notify(
                    ReleaseNotifyEvent.WAVE_FAILED, self._status, index, self._failure_text(index)
                )
                return False
            if verdict == WaveState.SUCCEEDED:
                break
            if ws.failures > seen_failures:
                seen_failures = ws.failures
                if self._spec.failure_policy.on_target_failure == "halt" and not self._status.halted_by:
                    self._status.halted_by = "the failure policy"
                    self._publish(ReleasePhase.HALTED, f"a target of wave {wave.name} failed: halted")
            if not self._status.halted_by:
                for run, target in zip(wave.targets, ws.targets, strict=True):
                    if release_plan.can_start([t.state for t in ws.targets], wave.max_parallel) <= 0:
                        break
                    if target.state == TargetState.PENDING:
                        await self._start_target(run, target, index)
            await self._next_event()
        if self._abort is not None:
            return False
        await self._bake(index)
        return self._abort is None

    async def _approval_gate(self, index: int) -> bool:
        """Wait for ``approve --wave``; a timeout halts the release (``resume`` reopens the gate)."""
        wave, ws = self._spec.waves[index], self._status.waves[index]
        while True:
            ws.state = WaveState.WAITING_APPROVAL
            timeout = wave.approval.timeout_seconds
            ws.approval_deadline = workflow.now() + timedelta(seconds=timeout) if timeout else None
            self._open_wave = index
            rid = self._spec.release_id
            self._publish(
                ReleasePhase.WAITING_APPROVAL,
                f"wave {wave.name} waits for `rollout release approve {rid} --wave {wave.name}`",
            )
            try:
                await workflow.wait_condition(
                    lambda: bool(ws.approved_by) or self._abort is not None,
                    timeout=timeout,
                    timeout_summary=f"approval of wave {wave.name}",
                )
            except TimeoutError:
                self._open_wave = None
                self._expired[index] = workflow.now()
                self._status.halted_by = f"the approval timeout of wave {wave.name}"
                self._publish(ReleasePhase.HALTED, f"the approval of wave {wave.name} timed out: halted")
                await workflow.wait_condition(lambda: not self._status.halted_by or self._abort is not None)
                if self._abort is not None:
                    return False
                continue
            self._open_wave = None
            return self._abort is None

    async def _bake(self, index: int) -> None:
        """The wave's bake: a durable timer after its last target is held; an abort cuts it short."""
        wave, ws = self._spec.waves[index], self._status.waves[index]
        if wave.bake_seconds > 0:
            ws.state = WaveState.BAKING
            ws.bake_until = workflow.now() + timedelta(seconds=wave.bake_seconds)
            self._publish(ReleasePhase.BAKING, f"wave {wave.name} bakes for {wave.bake_seconds:g} s")
            try:
                await workflow.wait_condition(
                    lambda: self._abort is not None,
                    timeout=wave.bake_seconds,
                    timeout_summary=f"bake of wave {wave.name}",
                )
            except TimeoutError:
                pass
        # A halt during the bake holds the next wave back until resume.
        await workflow.wait_condition(lambda: not self._status.halted_by or self._abort is not None)
        if self._abort is None:
            ws.state = WaveState.SUCCEEDED
            done = f"every target of wave {wave.name} is at 100%" + (
                f" and baked {wave.bake_seconds:g} s" if wave.bake_seconds > 0 else ""
            )
            self._notifier.notify(ReleaseNotifyEvent.WAVE_COMPLETED, self._status, index, done)

    async def _start_target(self, run: ReleaseTargetRun, target: ReleaseTargetStatus, wave: int) -> None:
        spec, t = self._spec, run.target
        target.state, target.message = TargetState.RUNNING, "rolling out"
        attrs = None
        if spec.use_search_attributes:
            attrs = TypedSearchAttributes(
                [
                    SearchAttributePair(SA_TARGET_KEY, run.rollout.target),
                    SearchAttributePair(SA_PHASE_KEY, Phase.PROGRESSING.value),
                    SearchAttributePair(SA_STEP_KEY, 0),
                    SearchAttributePair(SA_RELEASE_ID_KEY, spec.release_id),
                    SearchAttributePair(SA_RELEASE_WAVE_KEY, wave + 1),
                    SearchAttributePair(SA_CLUSTER_KEY, t.cluster),
                ]
            )
        try:
            handle = await workflow.start_child_workflow(
                RolloutWorkflow.run,
                run.rollout,
                id=t.workflow_id,
                task_queue=task_queue_for(t.cluster, spec.task_queue),
                parent_close_policy=_CLOSE_POLICY[self._can],
                cancellation_type=ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
                search_attributes=attrs,
                static_summary=f"Release {spec.release_id}, wave {self._status.waves[wave].name}: {t.key}",
            )
        except Exception as exc:  # noqa: BLE001 - e.g. the ID is running already: the target fails
            target.state, target.message = TargetState.FAILED, f"not started: {exc}"
            self._bump()
            return
        self._children[t.workflow_id] = handle
        self._followers.append(asyncio.create_task(self._follow(t.workflow_id, handle)))

    async def _follow(
        self, wid: str, handle: workflow.ChildWorkflowHandle[RolloutWorkflow, RolloutStatus]
    ) -> None:
        """Record how a child ended."""
        target = self._targets[wid]
        try:
            await handle
            target.state, target.message = TargetState.COMPLETED, "handed back on the new template"
        except ChildWorkflowError as exc:
            cause = exc.cause
            if isinstance(cause, CancelledError):
                if wid not in self._cancelled and workflow.patched(PATCH_USER_UNDO):
                    target.state, target.message = TargetState.FAILED, "rolled back by `rollout undo`"
                else:
                    target.state, target.message = TargetState.ROLLED_BACK, "rolled back by the release"
            elif isinstance(cause, ApplicationError) and cause.type in _SELF_ROLLED_BACK:
                target.state, target.message = TargetState.FAILED, f"rolled back: {cause.message}"
            else:
                why = cause.message if isinstance(cause, ApplicationError) else str(cause or exc)
                target.state, target.message = TargetState.FAILED, f"failed: {why}"
        self._bump()

    async def _follow_carried(self, wid: str) -> None:
        """Record how a target started by an earlier run of this release ended."""
        outcome = await carry.wait_outcome(wid)
        target = self._targets[wid]
        target.state, target.message = release_plan.outcome_state(
            outcome, asked_to_roll_back=wid in self._cancelled
        )
        self._bump()

    async def _continue_as_new(self, next_wave: int) -> None:
        """Between waves with no target running: a new run carries the release on from ``next_wave``."""
        await self._notifier.drain()
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._abort is None:  # an abort that landed meanwhile is unwound by this run
            workflow.continue_as_new(
                carry.carry_input(self._spec, self._status, next_wave, self._cancelled, self._expired)
            )

    async def _unwind(self, wave: int) -> tuple[ReleasePhase, str]:
        """A failed wave or an abort: the policy's waves go back (newest first), the rest is finished."""
        abort = self._abort
        waves = release_plan.rollback_waves(
            self._spec.failure_policy, wave, abort.rollback if abort is not None else None
        )
        if abort is not None:
            # An abort stops the wave in flight: its running targets roll back whatever the choice.
            for t in self._status.waves[wave].targets:
                if t.state == TargetState.RUNNING:
                    await self._cancel(t.workflow_id)
        if wave not in waves:
            # Running targets of the failed wave settle first (held or ended) unless they roll back.
            await workflow.wait_condition(
                lambda: all(t.state != TargetState.RUNNING for t in self._status.waves[wave].targets)
            )
        self._publish(ReleasePhase.ROLLING_BACK, self._failure_text(wave))
        for index in waves:
            await self._roll_back_wave(index)
        if abort is not None:
            final, text = ReleasePhase.ABORTED, f"aborted by {abort.by or 'unknown'}"
        elif waves:
            final, text = ReleasePhase.ROLLED_BACK, self._failure_text(wave)
        else:
            final, text = ReleasePhase.FAILED, self._failure_text(wave)
        await self._finish_held(ReleasePhase.ROLLING_BACK, text)
        return final, text

    def _failure_text(self, wave: int) -> str:
        return release_plan.failure_text(
            self._status, wave, self._abort.by or "unknown" if self._abort else None
        )

    async def _roll_back_wave(self, index: int) -> None:
        """Every running or held target of the wave rolls back (its undo), together; wait for all."""
        ws = self._status.waves[index]
        live = [t for t in ws.targets if t.state in (TargetState.RUNNING, TargetState.HELD)]
        for t in live:
            t.message = "rolling back with the release"
            await self._cancel(t.workflow_id)
        await workflow.wait_condition(lambda: all(t.state in release_plan.ENDED for t in live))
        if live:
            ws.state = WaveState.ROLLED_BACK

    async def _cancel(self, wid: str) -> None:
        """Ask a target to roll back (its undo), remembering that the release asked."""
        self._cancelled.add(wid)
        if wid in self._children:
            self._children[wid].cancel()
        else:  # started by an earlier run of this release
            await carry.request_cancel(wid)

    async def _finish_held(self, phase: ReleasePhase, text: str) -> None:
        """The release ended: every held target hands its Deployment back on the new template."""
        self._publish(phase, text)
        held = [t for w in self._status.waves for t in w.targets if t.state == TargetState.HELD]
        for t in held:
            if t.workflow_id in self._children:
                await self._children[t.workflow_id].signal(RELEASE_FINISH_SIGNAL)
            else:  # started by an earlier run of this release
                await carry.signal_target(t.workflow_id, RELEASE_FINISH_SIGNAL)
        await workflow.wait_condition(lambda: all(t.state in release_plan.ENDED for t in held))

    async def _hand_back_pending(self) -> None:
        """Targets that never started are still held by the CLI's write: hand them back untouched."""
        for w in self._status.waves:
            for t in w.targets:
                if t.state != TargetState.PENDING:
                    continue
                run = self._runs[t.workflow_id]
                await workflow.execute_activity_method(
                    TakeoverActivities.finalize,
                    FinalizeInput(
                        ref=DeploymentRef(namespace=t.namespace, name=t.deployment),
                        workflow_id=t.workflow_id,
                        original_strategy=run.original_strategy,
                        restore_template_from_rs=run.stable_rs,
                    ),
                    task_queue=task_queue_for(t.cluster, self._spec.task_queue),
                    start_to_close_timeout=timedelta(minutes=2),
                    retry_policy=_RETRY,
                    summary=f"hand {t.cluster}/{t.namespace}/{t.deployment} back untouched",
                )
                t.state, t.message = TargetState.SKIPPED, "never started: handed back on its old template"

    async def _signal_running(self, action: ControlAction, by: str) -> None:
        """Halt and resume reach every running child as its own pause/resume verb."""
        for t in self._targets.values():
            if t.state == TargetState.RUNNING and t.workflow_id in self._children:
                await self._children[t.workflow_id].signal(
                    "control", ControlSignal(action=action, by=f"release {self._spec.release_id} ({by})")
                )

    # -- status -------------------------------------------------------------------------------------

    async def _next_event(self) -> None:
        seen = self._events
        await workflow.wait_condition(lambda: self._events != seen)

    def _bump(self) -> None:
        self._events += 1
        self._set_details()

    def _publish(self, phase: ReleasePhase, message: str) -> None:
        st = self._status
        if (phase, message) != (st.phase, st.message):
            workflow.logger.info("release %s: %s: %s", st.release_id, phase.value, message)
        st.phase, st.message = phase, message
        self._bump()

    def _set_details(self) -> None:
        workflow.set_current_details(release_plan.details_text(self._status))
