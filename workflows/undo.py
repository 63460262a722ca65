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
    from workflows.base import RolloutBase
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


class UndoMixin(RolloutBase):
    """Rollback, retarget, failure."""

    async def _rollback(self, why: str = "") -> None:
        """Undo: routes to stable, stable to full, canary to 0, Services restored, template restored."""
        self._finalizing = True
        if self._cancel_is_undo:
            await self._cancel_sender()
            if not why and self._undo_is_cancel and self._undo is not None:  # the outcome says who asked
                why = f"undo by {self._undo.by}" + (f": {self._undo.reason}" if self._undo.reason else "")
        who = self._undo.by if self._undo else ""
        self._publish(
            Phase.PROGRESSING,
            self._status.step_state,
            f"{Reason.ROLLING_BACK} ({why or 'undo by ' + (who or 'unknown')})",
        )
        if self._takeover is None:  # pragma: no cover - undo is only acted on after take_over returned
            self._publish(Phase.ROLLED_BACK, StepState.COMPLETED, Reason.ROLLED_BACK)
            return
        routing = self._spec.traffic_routing
        try:
            await self._run_traffic(plan_undo_start(routing))
            await self._converge(lambda replicas: (0, replicas), grow_canary=False, interruptible=False)
            await self._run_traffic(plan_undo_end(routing))
            await self._call(
                TakeoverActivities.finalize,
                FinalizeInput(
                    ref=self._ref,
                    workflow_id=workflow.info().workflow_id,
                    original_strategy=self._takeover.original_strategy,
                    restore_template_from_rs=self._takeover.stable_rs,
                ),
                summary=f"hand {self._spec.target} back on the stable template: restore strategy, unpause",
                interruptible=False,
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
        new = self._replace
        tk = self._takeover
        assert new is not None and tk is not None
        st = self._status
        old = tk.canary_revision
        self._publish(Phase.PROGRESSING, StepState.STEP_UPGRADE, Reason.RETARGETING.format(old=old))
        await self._run_traffic(plan_undo_start(self._spec.traffic_routing))
        await self._converge(lambda replicas: (0, replicas), grow_canary=False, interruptible=False)
        result: TakeoverResult = await self._call(
            TakeoverActivities.retarget,
            RetargetInput(
                ref=self._ref,
                workflow_id=workflow.info().workflow_id,
                template=new.template,
                template_hash=new.template_hash,
                stable_rs=tk.stable_rs,
            ),
            summary=f"write the replacement pod template into {self._spec.target}",
            interruptible=False,
        )
        self._takeover = result
        self._replace = None
        self._approved = set()
        self._spec = self._spec.model_copy(
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
        self._finalizing = False
        self._publish(Phase.FAILED, self._status.step_state, Reason.FAILED_WAITING.format(why=why))
        self._notify(NotifyEvent.FAILED)
        await self._wait(self._interrupted)

    async def _fail(self, exc: ActivityError) -> None:
        cause = exc.cause
        text = str(cause) if cause is not None else str(exc)
        if self._traffic_touched:
            try:  # best effort: the user's Service/Ingress/HTTPRoute back, whatever failed
                await self._run_traffic(list(RESTORE_ALL))
            except ActivityError as restore_error:
                workflow.logger.warning("traffic restore after failure failed: %s", restore_error)
        self._publish(Phase.FAILED, self._status.step_state, f"Rollout failed: {text}")
        if self._cancel_is_undo:
            self._remember_status()
        self._notify(NotifyEvent.FAILED)
        await self._notify_drain()
        error_type = cause.type if isinstance(cause, ApplicationError) else None
        details = [self._status] if self._cancel_is_undo else []
        raise ApplicationError(self._status.message, *details, type=error_type, non_retryable=True) from exc
