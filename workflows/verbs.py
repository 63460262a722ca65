"""Operator verbs beyond approve and undo: full promotion, hold/release, abort and retry.

Each verb arrives as the ``control`` signal (durable: accepted with every worker down) or as the
``control_now`` update (a worker answers at once). Both go through one judge, ``_control_refusal``:
the update's validator raises its text (nothing is written to history), the signal handler logs it
and ignores the request. A repeated verb whose effect is already in place is accepted and does
nothing (idempotent).

- ``promote-full`` (``rollout approve --full``): skip the remaining steps and pauses; the current
  step's moves finish, then the rollout finalizes at 100% (Argo's ``promote --full``).
- ``pause`` / ``resume``: hold at the current step, also through a timed pause (its timer may run
  out, the rollout still waits) and between the single scale moves of a running step; undo and
  abort are never held.
- ``abort``: traffic back to stable, stable back to full, canary to 0; the Deployment stays held
  with the new template, phase ``Aborted``. Then ``retry`` restarts at step 1, ``rollout undo``
  hands the Deployment back on the stable template, ``--replace`` retargets.

Rollouts that never receive these signals issue exactly the commands they did before, so the
committed histories replay without a patch marker.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.base import Interrupted, RolloutBase
    from workflows.contract import RunFlags, control_refusal
    from workflows.model import (
        ControlAction,
        ControlSignal,
        NotifyEvent,
        PauseSignal,
        Phase,
        Reason,
        StepState,
        WaitingFor,
    )
    from workflows.traffic import plan_undo_end, plan_undo_start

__all__ = ["VerbsMixin"]


class VerbsMixin(RolloutBase):
    """Full promotion, hold/release, abort and retry."""

    def _init_verbs(self) -> None:
        self._held_by: str | None = None
        # What the status showed before the hold (restored on release).
        self._held_display: tuple[Phase, StepState, str, WaitingFor | None] | None = None
        self._promote_full = False
        self._abort: ControlSignal | None = None
        self._aborted = False
        self._retry = False

    # -- the judge -----------------------------------------------------------------------------------

    def _control_refusal(self, sig: ControlSignal) -> str | None:
        """Why ``sig`` cannot act now (``None``: it can, or it is already in effect)."""
        return control_refusal(self._status, self._flags(), sig.action, workflow.info().workflow_id)

    def _flags(self) -> RunFlags:
        """The run's recorded intent, as the judges of ``workflows/contract.py`` take it."""
        return RunFlags(
            finalizing=self._finalizing,
            undoing=self._undo is not None,
            aborting=self._aborted or self._abort is not None,
        )

    def _apply_control(self, sig: ControlSignal) -> str:
        """Record the verb's intent (``run`` and the hold points act on it); return what happened."""
        st, act, who = self._status, sig.action, sig.by or "unknown"
        i, n = st.current_step_index, st.total_steps
        if act == ControlAction.PROMOTE_FULL:
            if self._promote_full:
                return "full promotion was already requested"
            self._promote_full = st.promote_full = True
            self._release_hold()
            st.message = Reason.FULL_PROMOTION.format(by=who)
            self._set_details()
            return f"full promotion requested at step {i}/{n}: remaining steps and pauses are skipped"
        if act == ControlAction.PAUSE:
            if self._held_by is not None:
                return f"already paused by {self._held_by} at step {i}/{n}"
            self._held_by = st.held_by = who
            if st.step_state == StepState.STEP_PAUSED:
                self._show_held()
            else:
                self._set_details()  # held_by is status too (declarative mode writes it out at once)
            return f"paused at step {i}/{n}; `rollout resume` continues"
        if act == ControlAction.RESUME:
            if self._held_by is None:
                return f"not paused by `rollout pause` (step {i}/{n} is {st.step_state.value})"
            self._release_hold()
            return f"resumed at step {i}/{n}"
        if act == ControlAction.ABORT:
            if self._abort is not None:
                return f"already aborted at step {i}/{n}"
            self._abort = sig
            self._release_hold()
            return f"abort requested at step {i}/{n}: traffic and pods go back to the stable revision"
        # RETRY
        if self._retry:
            return "retry was already requested"
        self._retry = True
        return "retry requested: the rollout restarts at step 1"

    def _legacy_pause(self, sig: PauseSignal) -> None:
        """The old declarative ``pause`` signal (``paused`` true/false) as the hold.

        Unlike ``control`` pause it does not redraw the status at once (the old signal never did, and
        runs that received it must replay); the hold shows at the next hold point.
        """
        if not sig.paused:
            if self._held_by is not None:
                self._release_hold()
            return
        refusal = self._control_refusal(ControlSignal(action=ControlAction.PAUSE, by=sig.by))
        if self._held_by is None and refusal is None:
            self._held_by = self._status.held_by = sig.by or "unknown"

    # -- hold ----------------------------------------------------------------------------------------

    def _show_held(self) -> None:
        st = self._status
        if self._held_display is None:
            self._held_display = (st.phase, st.step_state, st.message, st.waiting_for)
        text = Reason.HELD.format(by=self._held_by or "unknown", i=st.current_step_index, n=st.total_steps)
        self._publish(Phase.PAUSED, st.step_state, text, waiting_for=WaitingFor.HOLD)

    def _restore_display(self) -> None:
        shown, self._held_display = self._held_display, None
        if shown is not None:
            phase, state, message, waiting_for = shown
            self._publish(phase, state, message, waiting_for=waiting_for)

    def _release_hold(self) -> None:
        self._held_by, self._status.held_by = None, ""
        self._restore_display()
        self._set_details()

    def _hold_released(self) -> bool:
        return self._held_by is None or self._interrupted() or self._promote_full

    async def _hold_point(self) -> None:
        """Wait here while held (forward path only); undo, abort or a replacement end the wait."""
        if self._held_by is None or self._finalizing:
            return
        self._show_held()
        await self._wait(self._hold_released)
        self._restore_display()
        if self._interrupted():
            raise Interrupted()

    # -- abort and retry -----------------------------------------------------------------------------

    async def _abort_and_wait(self) -> None:
        """Traffic and pods back to stable (Deployment stays held); wait for retry, undo or a replacement."""
        assert self._abort is not None and self._takeover is not None
        st, routing = self._status, self._spec.traffic_routing
        self._publish(
            Phase.PROGRESSING, st.step_state, Reason.ABORTING.format(by=self._abort.by or "unknown")
        )
        await self._run_traffic(plan_undo_start(routing))
        await self._converge(lambda replicas: (0, replicas), grow_canary=False, interruptible=False)
        await self._run_traffic(plan_undo_end(routing))
        self._aborted = True
        self._publish(
            Phase.ABORTED,
            StepState.STEP_UPGRADE,
            Reason.ABORTED.format(canary=st.canary_revision, stable=st.stable_revision),
        )
        self._notify(NotifyEvent.ABORTED)
        await self._wait(
            lambda: self._retry or self._undo is not None or self._replace is not None
        )
        self._aborted, self._abort, self._retry = False, None, False
        if self._undo is None and self._replace is None:  # retry: from step 1, approvals start over
            self._approved = set()
            self._promote_full = st.promote_full = False
            st.current_step_index = 0
            workflow.logger.info("retrying the rollout from step 1")
