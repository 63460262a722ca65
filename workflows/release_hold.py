"""A release target's hold at 100% (runs whose input sets ``hold_until_released``, behind a patch).

After the last step the target stays on the new template at 100%, the stable ReplicaSet kept at 0, and
tells its parent release (signal ``target_held``). It then waits for the release's end: the
``release_finish`` signal hands the Deployment back on the new template (``_complete``); an undo (the
parent's cancellation request, when the release rolls back) rolls it back exactly as undo does at any
step. Runs without the flag never reach this code.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.release import ReleaseActivities
    from workflows.base import Interrupted
    from workflows.contract import SIGNAL_TARGET_HELD
    from workflows.model import Phase, StableTemplateInput, StepState, TargetHeld, WaitingFor
    from workflows.steps import StepsMixin

__all__ = ["PATCH_RELEASE_HOLD", "ReleaseHoldMixin"]

PATCH_RELEASE_HOLD = "release-hold-at-full"


class ReleaseHoldMixin(StepsMixin):
    """``_hold_until_released``: wait at 100% for the release's end (or an undo). The last part of the
    chain below ``rollout``."""

    def _take_release_finish(self) -> None:
        self.s.release_done = True

    async def _hold_until_released(self) -> None:
        """Hold at 100% until ``release_finish``; raise ``Interrupted`` when an undo arrives meanwhile."""
        spec = self.s.spec
        if not spec.hold_until_released or not workflow.patched(PATCH_RELEASE_HOLD):
            return
        st = self.s.status
        message = (
            f"Rollout reached 100% and is held for release {spec.release_id}: the Deployment is handed "
            "back when the release ends, or rolled back if the release rolls back"
        )
        self._publish(Phase.PAUSED, StepState.STEP_READY, message, waiting_for=WaitingFor.HOLD)
        parent = workflow.info().parent
        if parent is not None:
            await workflow.get_external_workflow_handle(parent.workflow_id).signal(
                SIGNAL_TARGET_HELD, TargetHeld(workflow_id=workflow.info().workflow_id)
            )
        await self._wait(lambda: self.s.release_done or self.s.interrupted())
        if not self.s.release_done or self.s.interrupted():
            if self.s.undo is not None and self.s.takeover is not None:
                # The full canary is saturated: the stable template first, or the Deployment controller
                # scales the stable ReplicaSet down again as soon as the rollback scales it up.
                await self._write(
                    ReleaseActivities.hold_stable_template,
                    StableTemplateInput,
                    summary=f"hold {spec.target} on its stable template before the rollback",
                    stable_rs=self.s.takeover.stable_rs,
                )
            raise Interrupted()
        st.waiting_for = None
