"""The other ways a rollout ends or restarts: undo, failure, and continuous release (``--replace``).

- Undo (also auto-rollback after a progress deadline): traffic back to the stable Service first,
  then stable back to full and canary to 0, then the user's Service and no canary Service, then the
  Deployment handed back on the stable template.
- Retarget (``rollout start --replace``): traffic back to stable, the in-flight canary ReplicaSet
  scaled down, a new canary ReplicaSet of the template the starter wrote (runs started before
  references write the replacement's template themselves); the steps restart at step 1 and
  the stable revision is unchanged. The status lists the superseded revisions.
- Failure: best-effort traffic restore, phase Failed, the workflow fails (no retry loop).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.takeover import TakeoverActivities
    from workflows.converge import ConvergeMixin
    from workflows.model import (
        FinalizeInput,
        NotifyEvent,
        Phase,
        Reason,
        RetargetInput,
        StepState,
        TakeoverResult,
    )
    from workflows.traffic import RESTORE_ALL, plan_undo_end, plan_undo_start

__all__ = ["UndoMixin"]


class UndoMixin(ConvergeMixin):
    """Rollback, retarget, failure."""

    async def _rollback(self, why: str = "") -> None:
        """Undo: routes to stable, stable to full, canary to 0, Services restored, template restored."""
        self.s.finalizing = True
        if self.s.cancel_is_undo:
            await self._cancel_sender()
            if not why and self.s.undo_is_cancel and self.s.undo is not None:  # the outcome says who asked
                why = f"undo by {self.s.undo.by}" + (f": {self.s.undo.reason}" if self.s.undo.reason else "")
        who = self.s.undo.by if self.s.undo else ""
        self._publish(
            Phase.PROGRESSING,
            self.s.status.step_state,
            f"{Reason.ROLLING_BACK} ({why or 'undo by ' + (who or 'unknown')})",
        )
        if self.s.takeover is None:  # pragma: no cover - undo is only acted on after take_over returned
            self._publish(Phase.ROLLED_BACK, StepState.COMPLETED, Reason.ROLLED_BACK)
            return
        routing = self.s.spec.traffic_routing
        try:
            await self._run_traffic(plan_undo_start(routing))
            await self._converge_back()
            await self._run_traffic(plan_undo_end(routing))
            await self._write(
                TakeoverActivities.finalize,
                FinalizeInput,
                summary=f"hand {self.s.spec.target} back on the stable template: restore strategy, unpause",
                original_strategy=self.s.takeover.original_strategy,
                restore_template_from_rs=self.s.takeover.stable_rs,
            )
        except ActivityError as exc:
            await self._fail(exc)
            return
        self._publish(
            Phase.ROLLED_BACK,
            StepState.COMPLETED,
            f"{Reason.ROLLED_BACK} ({why})" if why else Reason.ROLLED_BACK,
        )
        self._notify(NotifyEvent.ROLLED_BACK)

    async def _retarget(self) -> None:
        """Continuous release: scale the in-flight canary down, write the new template, restart at step 1."""
        new = self.s.replace
        tk = self.s.takeover
        assert new is not None and tk is not None
        st = self.s.status
        old = tk.canary_revision
        self._publish(Phase.PROGRESSING, StepState.STEP_UPGRADE, Reason.RETARGETING.format(old=old))
        await self._run_traffic(plan_undo_start(self.s.spec.traffic_routing))
        await self._converge_back()
        result: TakeoverResult = await self._write(
            TakeoverActivities.retarget,
            RetargetInput,
            summary=f"write the replacement pod template into {self.s.spec.target}",
            template=new.template,
            template_hash=new.template_hash,
            stable_rs=tk.stable_rs,
        )
        self.s.takeover = result
        self.s.replace = None
        self.s.approved = set()
        self.s.spec = self.s.spec.model_copy(
            update={
                "template": new.template,
                "template_hash": new.template_hash,
                "generation": new.generation,
                "steps": new.steps,
                "failure_threshold": new.failure_threshold,
                "canary_images": new.canary_images,
                "requested_by": new.requested_by,
                "progress_deadline_seconds": new.progress_deadline_seconds,
                "auto_rollback": new.auto_rollback,
            }
        )
        if old and old != result.canary_revision:
            st.superseded_revisions.append(old)
        st.canary_revision = result.canary_revision
        st.canary_images = new.canary_images
        st.steps = new.steps
        st.total_steps = len(new.steps)
        st.current_step_index = 0
        st.progress_deadline_seconds = new.progress_deadline_seconds
        workflow.logger.info("retargeted from revision %s to %s", old, result.canary_revision)

    async def _hold_failed(self, why: str) -> None:
        """Progress deadline without auto-rollback: phase Failed, waiting for undo or a replacement."""
        self.s.finalizing = False
        self._publish(Phase.FAILED, self.s.status.step_state, Reason.FAILED_WAITING.format(why=why))
        self._notify(NotifyEvent.FAILED)
        await self._wait(self.s.interrupted)

    async def _fail(self, exc: ActivityError) -> None:
        cause = exc.cause
        text = str(cause) if cause is not None else str(exc)
        if self.s.traffic_touched:
            try:  # best effort: the user's Service/Ingress/HTTPRoute back, whatever failed
                await self._run_traffic(list(RESTORE_ALL))
            except ActivityError as restore_error:
                workflow.logger.warning("traffic restore after failure failed: %s", restore_error)
        self._publish(Phase.FAILED, self.s.status.step_state, f"Rollout failed: {text}")
        if self.s.cancel_is_undo:
            self._remember_status()
        await self._notify_defaults_before_failure()  # failed before take_over answered them
        self._notify(NotifyEvent.FAILED)
        await self._notify_drain()
        error_type = cause.type if isinstance(cause, ApplicationError) else None
        details = [self.s.status] if self.s.cancel_is_undo else []
        raise ApplicationError(self.s.status.message, *details, type=error_type, non_retryable=True) from exc

    async def _abort_and_wait(self) -> None:
        """Traffic and pods back to stable (Deployment stays held); wait for retry, undo or a replacement."""
        assert self.s.abort is not None and self.s.takeover is not None
        st, routing = self.s.status, self.s.spec.traffic_routing
        self._publish(
            Phase.PROGRESSING, st.step_state, Reason.ABORTING.format(by=self.s.abort.by or "unknown")
        )
        await self._run_traffic(plan_undo_start(routing))
        await self._converge_back()
        await self._run_traffic(plan_undo_end(routing))
        self.s.aborted = True
        self._publish(
            Phase.ABORTED,
            StepState.STEP_UPGRADE,
            Reason.ABORTED.format(canary=st.canary_revision, stable=st.stable_revision),
        )
        self._notify(NotifyEvent.ABORTED)
        await self._wait(lambda: self.s.retry or self.s.undo is not None or self.s.replace is not None)
        self.s.aborted, self.s.abort, self.s.retry = False, None, False
        if self.s.undo is None and self.s.replace is None:  # retry: from step 1, approvals start over
            self.s.approved = set()
            st.promote_full = False
            st.current_step_index = 0
            workflow.logger.info("retrying the rollout from step 1")
