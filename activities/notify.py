"""Notification delivery: one HTTP POST per event and URL, retried by Temporal within a bounded time.

A receiver that is down or answers non-2xx makes the attempt fail; Temporal retries it with backoff
until the workflow's schedule-to-close bound, then gives up. The workflow never waits on a failed
delivery (see ``workflows/notify_flow.py``), so a dead receiver never blocks or fails a rollout.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import aiohttp
from temporalio import activity

from workflows.model import DeliverInput
from workflows.notify import NOTIFY_URLS_ENV, notification_text, parse_notify_urls

__all__ = ["NotifyActivities"]

DEFAULT_UI = "http://localhost:8233"
USER_AGENT = "rollout-worker-notify/0.1"


class NotifyActivities:
    """The worker's notification activities; ``default_urls`` come from ``ROLLOUT_NOTIFY_URLS``."""

    def __init__(self, default_urls: list[str] | None = None, *, ui_url: str | None = None) -> None:
        self.default_urls = list(default_urls or [])
        self.ui_url = (ui_url or DEFAULT_UI).rstrip("/")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> NotifyActivities:
        """Defaults from ``ROLLOUT_NOTIFY_URLS`` and ``ROLLOUT_UI_URL``."""
        env = dict(os.environ if env is None else env)
        return cls(parse_notify_urls(env.get(NOTIFY_URLS_ENV)), ui_url=env.get("ROLLOUT_UI_URL"))

    @activity.defn
    async def notify_targets(self) -> list[str]:
        """The worker's default notification URLs (recorded once per rollout, so replay is stable)."""
        return self.default_urls

    @activity.defn
    async def deliver_notification(self, inp: DeliverInput) -> None:
        """POST the event as JSON; raise (and so retry) unless the receiver answers 2xx."""
        ns, wid = activity.info().namespace, inp.notification.workflow_id
        n = inp.notification.model_copy(update={"ui_url": f"{self.ui_url}/namespaces/{ns}/workflows/{wid}"})
        n.text = notification_text(n)
        body = n.model_dump(mode="json")
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout, headers={"User-Agent": USER_AGENT}) as session:
            async with session.post(inp.url, json=body) as resp:
                if resp.status // 100 != 2:
                    raise RuntimeError(f"{inp.url} answered {resp.status} to {n.event.value}")

    def activities(self) -> list[Callable[..., Any]]:
        """The bound activity methods to register on the worker."""
        return [self.notify_targets, self.deliver_notification]
