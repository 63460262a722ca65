"""Workflow side of notifications: who to tell (once per run), and fire-and-forget delivery.

``_notify_setup`` runs once at the start: the run's ``--notify`` URLs plus the worker's defaults,
read by the ``notify_targets`` activity so replay sees the same list. ``_notify`` starts one
``deliver_notification`` activity per URL and does not wait for it; each is bounded by
``timings.notify_total_seconds`` (retries included), so a dead receiver costs nothing but that
activity. ``_notify_drain`` waits for the ones still running before the workflow closes (a closed
workflow's pending activities would never run), at most that bound.

Rollouts started before this code (no ``notify`` patch marker) skip all of it on replay.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows.base import RolloutBase
    from workflows.model import DeliverInput, Notification, NotifyEvent

__all__ = ["PATCH_NOTIFY", "NotifyMixin"]

PATCH_NOTIFY = "notify"

NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)


class NotifyMixin(RolloutBase):
    """Notifications for the rollout workflow."""

    _notify_urls: list[str]
    _notify_pending: list[workflow.ActivityHandle[Any]]

    async def _notify_setup(self) -> None:
        self._notify_urls, self._notify_pending = [], []
        if not workflow.patched(PATCH_NOTIFY):
            return
        try:
            defaults: list[str] = await workflow.execute_activity(
                "notify_targets",
                result_type=list[str],
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_attempts=3),
                summary="read the worker's default notification URLs",
            )
        except ActivityError as exc:  # notifications never fail a rollout
            workflow.logger.warning("no worker default notification URLs: %s", exc)
            defaults = []
        self._notify_urls = list(dict.fromkeys([*self._spec.notify_urls, *defaults]))

    def _notify(self, event: NotifyEvent, message: str | None = None) -> None:
        """Tell every URL about ``event`` (never waits, never fails the rollout)."""
        if not getattr(self, "_notify_urls", None):
            return
        st = self._status
        n = Notification(
            event=event,
            namespace=st.namespace,
            name=st.name,
            workflow_id=st.workflow_id,
            step=st.current_step_index,
            total_steps=st.total_steps,
            phase=st.phase.value,
            message=message or st.message,
            at=workflow.now(),
        )
        total = timedelta(seconds=self._spec.timings.notify_total_seconds)
        self._notify_pending = [h for h in self._notify_pending if not h.done()]
        for url in self._notify_urls:
            handle = workflow.start_activity(
                "deliver_notification",
                DeliverInput(url=url, notification=n),
                schedule_to_close_timeout=total,
                start_to_close_timeout=min(total, timedelta(seconds=15)),
                retry_policy=NOTIFY_RETRY,
                summary=f"notify {url}: {event.value}",
            )
            handle.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._notify_pending.append(handle)

    async def _notify_drain(self) -> None:
        """Before the workflow closes: let running deliveries finish (each is bounded by its own timeout)."""
        pending = [h for h in getattr(self, "_notify_pending", []) if not h.done()]
        if pending:
            await self._wait(lambda: all(h.done() for h in pending))
