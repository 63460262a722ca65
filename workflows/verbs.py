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
    from activities.takeover import TakeoverActivities
    from workflows.base import Interrupted
    from workflows.contract import RunFlags, control_refusal
    from workflows.model import (
        ControlAction,
        ControlSignal,
        PauseSignal,
        Phase,
        Reason,
        RetargetInput,
        StepState,
        WaitingFor,
    )
    from workflows.outcome import OutcomeMixin

__all__ = ["VerbsMixin"]


class VerbsMixin(OutcomeMixin):
    """Full promotion, hold/release, abort and retry."""

    # -- the judge -----------------------------------------------------------------------------------

    def _control_refusal(self, sig: ControlSignal) -> str | None:
        """Why ``sig`` cannot act now (``None``: it can, or it is already in effect)."""
        return control_refusal(self.s.status, self._flags(), sig.action, workflow.info().workflow_id)

    def _flags(self) -> RunFlags:
        """The run's recorded intent, as the judges of ``workflows/contract.py`` take it."""
        return RunFlags(
            finalizing=self.s.finalizing,
            undoing=self.s.undo is not None,
            aborting=self.s.aborted or self.s.abort is not None,
        )

    def _apply_control(self, sig: ControlSignal) -> str:
        """Record the verb's intent (``run`` and the hold points act on it); return what happened."""
        st, act, who = self.s.status, sig.action, sig.by or "unknown"
        i, n = st.current_step_index, st.total_steps
        if act == ControlAction.PROMOTE_FULL:
            if st.promote_full:
                return "full promotion was already requested"
            st.promote_full = True
            self._release_hold()
            st.message = Reason.FULL_PROMOTION.format(by=who)
            self._set_details()
            return f"full promotion requested at step {i}/{n}: remaining steps and pauses are skipped"
        if act == ControlAction.PAUSE:
            if st.held_by:
                return f"already paused by {st.held_by} at step {i}/{n}"
            st.held_by = who
            if st.step_state == StepState.STEP_PAUSED:
                self._show_held()
            else:
                self._set_details()  # held_by is status too (declarative mode writes it out at once)
            return f"paused at step {i}/{n}; `rollout resume` continues"
        if act == ControlAction.RESUME:
            if not st.held_by:
                return f"not paused by `rollout pause` (step {i}/{n} is {st.step_state.value})"
            self._release_hold()
            return f"resumed at step {i}/{n}"
        if act == ControlAction.ABORT:
            if self.s.abort is not None:
                return f"already aborted at step {i}/{n}"
            self.s.abort = sig
            self._release_hold()
            return f"abort requested at step {i}/{n}: traffic and pods go back to the stable revision"
        # RETRY
        if self.s.retry:
            return "retry was already requested"
        self.s.retry = True
        return "retry requested: the rollout restarts at step 1"

    def _legacy_pause(self, sig: PauseSignal) -> None:
        """The old declarative ``pause`` signal (``paused`` true/false) as the hold.

        Unlike ``control`` pause it does not redraw the status at once (the old signal never did, and
        runs that received it must replay); the hold shows at the next hold point.
        """
        if not sig.paused:
            if self.s.status.held_by:
                self._release_hold()
            return
        refusal = self._control_refusal(ControlSignal(action=ControlAction.PAUSE, by=sig.by))
        if not self.s.status.held_by and refusal is None:
            self.s.status.held_by = sig.by or "unknown"

    # -- hold ----------------------------------------------------------------------------------------

    def _show_held(self) -> None:
        st = self.s.status
        if self.s.held_display is None:
            self.s.held_display = (st.phase, st.step_state, st.message, st.waiting_for)
        text = Reason.HELD.format(by=st.held_by or "unknown", i=st.current_step_index, n=st.total_steps)
        self._publish(Phase.PAUSED, st.step_state, text, waiting_for=WaitingFor.HOLD)

    def _restore_display(self) -> None:
        shown, self.s.held_display = self.s.held_display, None
        if shown is not None:
            phase, state, message, waiting_for = shown
            self._publish(phase, state, message, waiting_for=waiting_for)

    def _release_hold(self) -> None:
        self.s.status.held_by = ""
        self._restore_display()
        self._set_details()

    def _hold_released(self) -> bool:
        st = self.s.status
        return not st.held_by or self.s.interrupted() or st.promote_full

    async def _hold_point(self) -> None:
        """Wait here while held (forward path only); undo, abort or a replacement end the wait."""
        if not self.s.status.held_by or self.s.finalizing:
            return
        self._show_held()
        await self._wait(self._hold_released)
        self._restore_display()
        if self.s.interrupted():
            raise Interrupted()

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
        await self._write(
            TakeoverActivities.retarget,
            RetargetInput,
            summary=f"write the rollout's pod template back into {self.s.spec.target} (approved)",
            template=self.s.spec.template,
            stable_rs=tk.stable_rs,
            # by reference: the canary ReplicaSet holds the template the starter wrote
            restore_template_from_rs="" if self.s.spec.template is not None else tk.canary_rs,
        )
        i, n = self.s.status.current_step_index, len(self.s.spec.steps)
        self._publish(previous[0], previous[1], Reason.UPGRADE.format(i=i, n=n))
