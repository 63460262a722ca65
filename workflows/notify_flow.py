"""Workflow side of notifications: who to tell (once per run), and fire-and-forget delivery.

``_notify_setup`` runs once at the start: the run's ``--notify`` URLs plus the worker's defaults,
read by the ``notify_targets`` activity so replay sees the same list. ``_notify`` starts one
``deliver_notification`` activity per URL and does not wait for it; each is bounded by
``timings.notify_total_seconds`` (retries included), so a dead receiver costs nothing but that
activity. ``_notify_drain`` waits for the ones still running before the workflow closes (a closed
workflow's pending activities would never run), at most that bound.

Rollouts started before this code (no ``notify`` patch marker) skip all of it on replay. Since the
``notify-by-name`` patch, the workflow holds target *names* (``--notify NAME`` and the worker's
defaults, read by ``notify_default_targets``); the worker resolves them to URLs at delivery, so no
webhook URL (a bearer secret) is recorded in history or shown in a summary. Runs recorded before the
patch keep the URL path on replay. At most ``MAX_NOTIFY_TARGETS`` targets per run.

Compact runs (``PATCH_COMPACT_HISTORY``) take the worker's default names from ``take_over``'s answer
instead of an activity of their own; a run that fails before take_over answered reads them on its
way to Failed, so the failure is still told.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.notify import NotifyActivities
    from workflows.base import RolloutBase
    from workflows.calls import call, start
    from workflows.contract import Purpose
    from workflows.model import DeliverInput, Notification, NotifyEvent
    from workflows.notify import MAX_NOTIFY_TARGETS

__all__ = ["PATCH_NOTIFY", "PATCH_NOTIFY_BY_NAME", "NotifyMixin"]

PATCH_NOTIFY = "notify"
PATCH_NOTIFY_BY_NAME = "notify-by-name"


class NotifyMixin(RolloutBase):
    """Notifications for the rollout workflow."""

    async def _notify_setup(self) -> None:
        self.s.notify_urls, self.s.notify_names, self.s.notify_pending = [], [], []
        self.s.notify_by_name = False
        if not (self.s.compact or workflow.patched(PATCH_NOTIFY)):
            return
        self.s.notify_by_name = self.s.compact or workflow.patched(PATCH_NOTIFY_BY_NAME)
        if self.s.compact:  # the worker's defaults come with take_over's answer (no activity here)
            self._set_notify_targets([])
            self.s.notify_defaults_due = True
            return
        if self.s.notify_by_name:
            await self._notify_setup_by_name()
            return
        defaults = await self._worker_defaults(
            NotifyActivities.notify_targets, "the worker's default notification URLs"
        )
        self.s.notify_urls = list(dict.fromkeys([*self.s.spec.notify_urls, *defaults]))

    async def _worker_defaults(
        self, fn: Callable[[NotifyActivities], Coroutine[Any, Any, list[str]]], what: str
    ) -> list[str]:
        """The worker's default targets (the activity ``fn`` answers them); none if it cannot say."""
        try:
            defaults: list[str] = await call(
                fn, purpose=Purpose.LOOKUP, timings=self.s.spec.timings, summary=f"read {what}"
            )
        except ActivityError as exc:  # notifications never fail a rollout
            workflow.logger.warning("no %s: %s", what, exc)
            return []
        return defaults

    async def _notify_setup_by_name(self) -> None:
        self._set_notify_targets(await self._default_names())

    async def _default_names(self) -> list[str]:
        return await self._worker_defaults(
            NotifyActivities.notify_default_targets, "the names of the worker's default notification targets"
        )

    def _take_notify_defaults(self, defaults: list[str]) -> None:
        """Compact runs: the worker's default targets, as take_over answered them."""
        if self.s.notify_defaults_due:
            self.s.notify_defaults_due = False
            self._set_notify_targets(defaults)

    async def _notify_defaults_before_failure(self) -> None:
        """Compact runs that fail before take_over answered: read the worker's defaults now."""
        if self.s.notify_defaults_due:
            self._take_notify_defaults(await self._default_names())

    def _set_notify_targets(self, defaults: list[str]) -> None:
        """The run's own targets, then the worker's defaults (by name; at most ``MAX_NOTIFY_TARGETS``)."""
        names = list(dict.fromkeys([*self.s.spec.notify_targets, *defaults]))
        # URLs in older-style input (raw Temporal starts) are still told, through the worker's allow-list.
        urls = list(dict.fromkeys(self.s.spec.notify_urls))
        room = max(0, MAX_NOTIFY_TARGETS - len(names))
        self.s.notify_names, self.s.notify_urls = names[:MAX_NOTIFY_TARGETS], urls[:room]

    def _deliveries(self, n: Notification) -> list[tuple[DeliverInput, str]]:
        """(input, summary) per target: names since ``notify-by-name``, URLs in older runs."""
        if not self.s.notify_by_name:
            return [
                (DeliverInput(url=u, notification=n), f"notify {u}: {n.event.value}")
                for u in self.s.notify_urls
            ]
        by_name = [
            (DeliverInput(target=t, notification=n), f"notify {t}: {n.event.value}")
            for t in self.s.notify_names
        ]
        by_url = [
            (DeliverInput(url=u, notification=n), f"notify URL #{i} of the input: {n.event.value}")
            for i, u in enumerate(self.s.notify_urls, 1)
        ]
        return by_name + by_url

    def _notify(self, event: NotifyEvent, message: str | None = None) -> None:
        """Tell every target about ``event`` (never waits, never fails the rollout)."""
        if not self.s.notify_urls and not self.s.notify_names:
            return
        st = self.s.status
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
        self.s.notify_pending = [h for h in self.s.notify_pending if not h.done()]
        for inp, summary in self._deliveries(n):
            handle = start(
                NotifyActivities.deliver_notification,
                inp,
                purpose=Purpose.NOTIFY,
                timings=self.s.spec.timings,
                summary=summary,
            )
            handle.add_done_callback(lambda f: f.cancelled() or f.exception())
            self.s.notify_pending.append(handle)

    async def _notify_drain(self) -> None:
        """Before the workflow closes: let running deliveries finish (each is bounded by its own timeout)."""
        pending = [h for h in self.s.notify_pending if not h.done()]
        if pending:
            await self._wait(lambda: all(h.done() for h in pending))
