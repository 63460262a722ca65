"""Notification delivery: one HTTP POST per event and target, retried by Temporal within a bounded time.

Targets are named: the worker maps names to URLs (``ROLLOUT_NOTIFY_TARGETS``, or a YAML map in
``ROLLOUT_NOTIFY_TARGETS_FILE`` such as a mounted Secret, read at each delivery so a rotated Secret
takes effect without a restart). The workflow only ever holds names, so webhook URLs (bearer secrets)
stay out of workflow history, summaries and errors. ``ROLLOUT_NOTIFY_URLS`` (older: unnamed URLs)
still works: its URLs become the targets ``default-1``, ``default-2``, ... and, like the names in
``ROLLOUT_NOTIFY_DEFAULT``, are told about every rollout.

Every delivery goes through the worker's egress allow-list (``activities/egress.py``), without
redirects. A receiver that is down or answers non-2xx makes the attempt fail; Temporal retries it with
backoff until the workflow's schedule-to-close bound, then gives up. An unknown name or a refused
destination fails at once (non-retryable). The workflow never waits on a failed delivery (see
``workflows/notify_flow.py``), so a dead receiver never blocks or fails a rollout.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import yaml
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.egress import EgressPolicy, EgressRefused
from workflows.model import DeliverInput, ReleaseDeliverInput
from workflows.notify import (
    NOTIFY_DEFAULT_ENV,
    NOTIFY_TARGETS_ENV,
    NOTIFY_TARGETS_FILE_ENV,
    NOTIFY_URLS_ENV,
    is_target_name,
    notification_text,
    parse_notify_targets,
    parse_notify_urls,
    release_notification_text,
)

__all__ = ["NotifyActivities"]

DEFAULT_UI = "http://localhost:8233"
USER_AGENT = "rollout-worker-notify/0.1"


class NotifyActivities:
    """The worker's notification activities: named targets, default names, the egress policy."""

    def __init__(
        self,
        targets: Mapping[str, str] | None = None,
        *,
        defaults: list[str] | None = None,
        targets_file: str | None = None,
        ui_url: str | None = None,
        egress: EgressPolicy | None = None,
    ) -> None:
        self.targets = dict(targets or {})
        self.defaults = list(defaults or [])
        self.targets_file = targets_file
        self.ui_url = (ui_url or DEFAULT_UI).rstrip("/")
        self.egress = egress or EgressPolicy()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NotifyActivities:
        """Targets (``ROLLOUT_NOTIFY_TARGETS``, ``_FILE``, ``ROLLOUT_NOTIFY_URLS``) and the egress policy."""
        env = os.environ if env is None else env
        legacy = {f"default-{i}": u for i, u in enumerate(parse_notify_urls(env.get(NOTIFY_URLS_ENV)), 1)}
        defaults = [n for n in (env.get(NOTIFY_DEFAULT_ENV) or "").replace(",", " ").split() if n]
        for name in defaults:
            if not is_target_name(name):
                raise ValueError(f"{NOTIFY_DEFAULT_ENV}: {name!r} is not a target name")
        return cls(
            {**legacy, **parse_notify_targets(env.get(NOTIFY_TARGETS_ENV))},
            defaults=[*legacy, *defaults],
            targets_file=env.get(NOTIFY_TARGETS_FILE_ENV) or None,
            ui_url=env.get("ROLLOUT_UI_URL"),
            egress=EgressPolicy.from_env(env),
        )

    def resolve(self, name: str) -> str | None:
        """The URL of target ``name``: the file (read now) wins over the environment."""
        if self.targets_file:
            try:
                doc = yaml.safe_load(Path(self.targets_file).read_text()) or {}
            except FileNotFoundError:  # an optional Secret that is not there: the environment's targets
                doc = {}
            except (OSError, yaml.YAMLError) as exc:
                raise ApplicationError(
                    f"cannot read {NOTIFY_TARGETS_FILE_ENV} ({type(exc).__name__})",
                    type="NotifyTargetsUnreadable",
                ) from None
            if isinstance(doc, dict) and isinstance(doc.get(name), str):
                return str(doc[name])
        return self.targets.get(name)

    @activity.defn
    async def notify_targets(self) -> list[str]:
        """Older runs read the default URLs here; URLs no longer leave the worker, so this is empty."""
        return []

    @activity.defn
    async def notify_default_targets(self) -> list[str]:
        """The names of the targets told about every rollout (recorded once per rollout)."""
        return self.defaults

    @activity.defn
    async def deliver_notification(self, inp: DeliverInput) -> None:
        """POST the event as JSON; raise (and so retry) unless the receiver answers 2xx."""
        if inp.target:
            url, who = self._url_of(inp.target), f"target {inp.target}"
        else:  # older runs: a URL from the input
            url, who = inp.url, urlsplit(inp.url).netloc.rsplit("@", 1)[-1]
        n = inp.notification.model_copy(update={"ui_url": self._ui_link(inp.notification.workflow_id)})
        n.text = notification_text(n)
        await self._post(url, who, n.model_dump(mode="json"), n.event.value)

    @activity.defn
    async def deliver_release_notification(self, inp: ReleaseDeliverInput) -> None:
        """A release's event (a wave started, completed, failed; the release ended) to one named target."""
        url, who = self._url_of(inp.target), f"target {inp.target}"
        n = inp.notification.model_copy(update={"ui_url": self._ui_link(inp.notification.workflow_id)})
        n.text = release_notification_text(n)
        await self._post(url, who, n.model_dump(mode="json"), n.event.value)

    def _url_of(self, target: str) -> str:
        url = self.resolve(target)
        if url is None:
            raise ApplicationError(
                f"no notification target named {target!r} on this worker ({NOTIFY_TARGETS_ENV})",
                type="UnknownNotifyTarget",
                non_retryable=True,
            )
        return url

    def _ui_link(self, workflow_id: str) -> str:
        ns, wid = activity.info().namespace, quote(workflow_id, safe="")
        return f"{self.ui_url}/namespaces/{ns}/workflows/{wid}"

    async def _post(self, url: str, who: str, body: dict[str, Any], event: str) -> None:
        """One POST through the egress policy, no redirects; non-2xx raises (Temporal retries)."""
        try:
            self.egress.check_url(url)
        except EgressRefused as exc:
            raise ApplicationError(f"{who}: {exc}", type="EgressRefused", non_retryable=True) from None
        timeout = aiohttp.ClientTimeout(total=10)
        try:
            async with (
                aiohttp.ClientSession(
                    timeout=timeout, headers={"User-Agent": USER_AGENT}, connector=self.egress.connector()
                ) as session,
                session.post(url, json=body, allow_redirects=False) as resp,
            ):
                if resp.status // 100 != 2:
                    raise RuntimeError(f"{who} answered HTTP {resp.status} to {event}")
        except EgressRefused as exc:
            raise ApplicationError(f"{who}: {exc}", type="EgressRefused", non_retryable=True) from None
        except (aiohttp.ClientError, TimeoutError) as exc:  # no URL in the message: it may hold a token
            raise RuntimeError(f"{who}: {type(exc).__name__}") from None

    def activities(self) -> list[Callable[..., Any]]:
        """The bound activity methods to register on the worker."""
        return [
            self.notify_targets,
            self.notify_default_targets,
            self.deliver_notification,
            self.deliver_release_notification,
        ]
