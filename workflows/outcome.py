"""How a run ends, in Temporal's own words (runs with ``PATCH_OUTCOMES``): the UI's list tells the story.

- the new template reached 100%: Completed (the result is the status), phase ``Completed``;
- analysis or the progress deadline rolled it back: Failed, error type ``AnalysisRollback`` or
  ``ProgressDeadlineExceeded``, phase ``RolledBack``;
- a permanent error (the Deployment was deleted, ...): Failed, the activity's error type, phase ``Failed``;
- a person undid it (a cancellation request): Canceled, phase ``RolledBack``.

A cancellation request (``rollout undo``, ``temporal workflow cancel``, the UI's "Request
Cancellation") is an undo: the run's body goes on in its own task, which the request never cancels;
the request only records the undo, as the ``undo`` signal does, so the rollback is the very same
(traffic first, stable to full, canary to 0, the Deployment handed back) and a write in flight
finishes first. Then the run ends Canceled. Aborted rollouts stay open, as before.

Failed and canceled runs have no result, so the last status is also in the memo (``MEMO_STATUS``)
and, for a failure, in the error's details: the CLI reads old and new runs the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.senders import SenderActivities
    from workflows import errors
    from workflows.calls import call
    from workflows.contract import ANALYSIS_UNDO_BY, DEADLINE_UNDO_BY, Purpose
    from workflows.model import MEMO_STATUS, PATCH_OUTCOMES, Phase, undo_from_cancel
    from workflows.notify_flow import NotifyMixin

__all__ = ["PATCH_OUTCOMES", "OutcomeMixin"]

_FAILED_BY = {ANALYSIS_UNDO_BY: errors.ANALYSIS_ROLLBACK, DEADLINE_UNDO_BY: errors.PROGRESS_DEADLINE}


class OutcomeMixin(NotifyMixin):
    """Cancellation as undo, and the Temporal status each outcome ends in."""

    async def _run_cancellable(self, body: Coroutine[Any, Any, None]) -> None:
        """Run ``body`` in a task the cancellation request does not reach; the request becomes an undo."""
        task = asyncio.create_task(body)
        while True:
            try:
                await asyncio.shield(task)
                return
            except asyncio.CancelledError:
                reason = workflow.cancellation_reason()
                if task.done() or reason is None:
                    raise  # the body itself was cancelled (eviction): nothing to undo here
                self._take_cancel(reason)

    def _take_cancel(self, reason: str) -> None:
        """A cancellation request: the same intent as the ``undo`` signal (ignored once finalizing)."""
        self.s.cancel_requested = True
        if self.s.finalizing or self.s.undo is not None:
            phase = self.s.status.phase.value
            workflow.logger.info("cancellation (%s) ignored: rollout is %s", reason, phase)
            return
        self.s.undo, self.s.undo_is_cancel = undo_from_cancel(reason), True
        workflow.logger.info("cancellation requested (%s): rolling back", reason or "no reason given")

    async def _cancel_sender(self) -> None:
        """Fill in who asked, from history, when the cancellation's reason does not say (a raw cancel)."""
        undo = self.s.undo
        if undo is None or undo.by or not self.s.undo_is_cancel:
            return
        try:
            sender: str = await call(
                SenderActivities.cancel_sender,
                purpose=Purpose.LOOKUP,
                timings=self.s.spec.timings,
                summary="look up who requested the cancellation",
            )
        except ActivityError:
            sender = ""
        undo.by = sender or "unknown"

    async def _settle_hold(self) -> None:
        """The hold was this workflow ID's already (a closed run's, taken over): let that run's last
        activity notice, on its next heartbeat, that its run is gone and stop, before any write of ours.

        A terminated run's activity keeps moving ReplicaSets until a heartbeat tells it; two writers
        would break the surge and availability bounds.
        """
        seconds = self.s.spec.timings.heartbeat_timeout_seconds + 1
        self._set_details(f"waiting {seconds:g} s for the closed run's activities to stop")
        await workflow.sleep(timedelta(seconds=seconds), summary="let the closed run's activities stop")

    def _remember_status(self) -> None:
        """The last status in the memo: what ``rollout status``/``list``/``history`` read of a closed run."""
        workflow.upsert_memo({MEMO_STATUS: self.s.status})

    def _end(self) -> None:
        """Raise the run's outcome when it is not Completed (a rollback by analysis, deadline or a person)."""
        st = self.s.status
        if st.phase != Phase.ROLLED_BACK:
            return
        by = self.s.undo.by if self.s.undo is not None else ""
        self._remember_status()
        error_type = None if self.s.undo_is_cancel else _FAILED_BY.get(by)
        if error_type is not None:
            raise ApplicationError(st.message, st, type=error_type, non_retryable=True)
        if self.s.cancel_requested:  # a person's undo (the cancellation, or an undo signal it met)
            raise asyncio.CancelledError(st.message)
        # An `undo` signal (rollouts begun before undo was a cancellation still get it): completes.
