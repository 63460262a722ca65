"""Workflow side of a release's notifications (a Release file's ``spec.notify``): each wave's start,
completion or failure, and the release's end, one ``deliver_release_notification`` per named target.

Fire and forget, as a rollout's notifications (``workflows/notify_flow.py``): a delivery is bounded by
its schedule-to-close timeout and never fails or holds up the release; ``drain`` waits for the ones
still running before the release closes. Releases with no ``notify`` names (every run started before
this code among them) schedule nothing, so their histories are unchanged; the first delivery of a
release records the ``release-notify`` patch marker.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.notify import NotifyActivities
    from workflows.model import (
        ReleaseDeliverInput,
        ReleaseInput,
        ReleaseNotification,
        ReleaseNotifyEvent,
        ReleaseStatus,
    )
    from workflows.notify import MAX_NOTIFY_TARGETS

__all__ = ["PATCH_RELEASE_NOTIFY", "ReleaseNotifier"]

PATCH_RELEASE_NOTIFY = "release-notify"
_DELIVERY_BOUND = timedelta(seconds=60)  # retries included: a dead receiver costs only this
_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10))


class ReleaseNotifier:
    """Tells the release's notify targets about its waves and its end."""

    def __init__(self, spec: ReleaseInput) -> None:
        self._names = list(dict.fromkeys(spec.notify))[:MAX_NOTIFY_TARGETS]
        self._enabled: bool | None = None
        self._pending: list[asyncio.Future[None]] = []

    def notify(
        self, event: ReleaseNotifyEvent, status: ReleaseStatus, wave: int = 0, message: str = ""
    ) -> None:
        """Start one delivery per target (``wave``: 0-based index of the wave, for wave events;
        ``message``: default the release's status message)."""
        if not self._names:
            return
        if self._enabled is None:
            self._enabled = workflow.patched(PATCH_RELEASE_NOTIFY)
        if not self._enabled:
            return
        is_wave = event != ReleaseNotifyEvent.RELEASE_ENDED
        n = ReleaseNotification(
            event=event,
            release_id=status.release_id,
            workflow_id=status.workflow_id,
            wave=wave + 1 if is_wave else 0,
            wave_name=status.waves[wave].name if is_wave else "",
            total_waves=status.total_waves,
            phase=status.phase.value,
            message=message or status.message,
            at=workflow.now(),
        )
        self._pending = [h for h in self._pending if not h.done()]
        for target in self._names:
            handle = workflow.start_activity_method(
                NotifyActivities.deliver_release_notification,
                ReleaseDeliverInput(target=target, notification=n),
                schedule_to_close_timeout=_DELIVERY_BOUND,
                start_to_close_timeout=timedelta(seconds=15),
                retry_policy=_RETRY,
                summary=f"notify {target}: {event.value}",
            )
            handle.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._pending.append(handle)

    async def drain(self) -> None:
        """Before the release closes: let running deliveries finish (each is bounded)."""
        pending = [h for h in self._pending if not h.done()]
        if pending:
            await workflow.wait_condition(lambda: all(h.done() for h in pending))
