"""Notifications: what a rollout tells a webhook (``--notify NAME``, the worker's named targets).

Targets are named in the worker's configuration (``ROLLOUT_NOTIFY_TARGETS`` / ``_FILE``), so webhook
URLs, which are bearer secrets, never enter a workflow's input or history: the workflow carries
names, and ``deliver_notification`` resolves them on the worker.

One JSON POST per event and URL, camelCase like every other payload::

    {event, namespace, name, workflowId, step, totalSteps, phase, message, uiUrl, at, text}

``text`` is a one-line summary, so a Slack incoming webhook (which reads ``text``) shows it as is.
The payloads are in ``workflows/model.py``; the text here; delivery is ``activities/notify.py``; the
workflow side is ``workflows/notify_flow.py``.
"""

from __future__ import annotations

import re

from workflows.model import Notification, NotifyEvent, ReleaseNotification, ReleaseNotifyEvent

__all__ = [
    "MAX_NOTIFY_TARGETS",
    "NOTIFY_DEFAULT_ENV",
    "NOTIFY_TARGETS_ENV",
    "NOTIFY_TARGETS_FILE_ENV",
    "NOTIFY_URLS_ENV",
    "is_target_name",
    "notification_text",
    "parse_notify_targets",
    "parse_notify_urls",
    "release_notification_text",
]

NOTIFY_URLS_ENV = "ROLLOUT_NOTIFY_URLS"  # older: unnamed URLs told about every rollout (default-1, ...)
NOTIFY_TARGETS_ENV = "ROLLOUT_NOTIFY_TARGETS"  # name=url pairs
NOTIFY_TARGETS_FILE_ENV = (
    "ROLLOUT_NOTIFY_TARGETS_FILE"  # a YAML map name: url (a mounted Secret), read per delivery
)
NOTIFY_DEFAULT_ENV = "ROLLOUT_NOTIFY_DEFAULT"  # names told about every rollout
MAX_NOTIFY_TARGETS = 10  # per rollout: each event starts one delivery per target

_NAME = re.compile(r"[a-z0-9]([-a-z0-9_.]{0,61}[a-z0-9])?")


_VERB = {
    NotifyEvent.STEP_PAUSED: "is paused at step {step}/{total} and waits for approval",
    NotifyEvent.STEP_COMPLETED: "completed step {step}/{total}",
    NotifyEvent.COMPLETED: "completed",
    NotifyEvent.ROLLED_BACK: "was rolled back",
    NotifyEvent.ABORTED: "was aborted at step {step}/{total}",
    NotifyEvent.FAILED: "failed at step {step}/{total}",
    NotifyEvent.ANALYSIS_FAILED: "failed its analysis at step {step}/{total}",
}


def notification_text(n: Notification) -> str:
    """The Slack-compatible one-liner: ``Rollout default/web is paused at step 1/3 ...: <msg> (<ui url>)``."""
    verb = _VERB[n.event].format(step=n.step, total=n.total_steps)
    text = f"Rollout {n.namespace}/{n.name} {verb}: {n.message}"
    return f"{text} ({n.ui_url})" if n.ui_url else text


def release_notification_text(n: ReleaseNotification) -> str:
    """``Release checkout-1-43: wave prod (3/3) started: <msg> (<ui url>)``."""
    wave = f"wave {n.wave_name} ({n.wave}/{n.total_waves})"
    what = {
        ReleaseNotifyEvent.WAVE_STARTED: f"{wave} started",
        ReleaseNotifyEvent.WAVE_COMPLETED: f"{wave} completed",
        ReleaseNotifyEvent.WAVE_FAILED: f"{wave} failed",
        ReleaseNotifyEvent.RELEASE_ENDED: f"ended {n.phase}",
    }[n.event]
    text = f"Release {n.release_id}: {what}: {n.message}"
    return f"{text} ({n.ui_url})" if n.ui_url else text


def parse_notify_urls(text: str | None) -> list[str]:
    """``ROLLOUT_NOTIFY_URLS``: URLs separated by commas or whitespace."""
    return [u for u in (text or "").replace(",", " ").split() if u]


def is_target_name(text: str) -> bool:
    """A target name: lower-case letters, digits, ``-``, ``_``, ``.``; at most 63 characters."""
    return _NAME.fullmatch(text) is not None


def parse_notify_targets(text: str | None) -> dict[str, str]:
    """``ROLLOUT_NOTIFY_TARGETS``: ``name=url`` pairs separated by commas or whitespace."""
    targets: dict[str, str] = {}
    for entry in (text or "").replace(",", " ").split():
        name, sep, url = entry.partition("=")
        if not sep or not is_target_name(name) or not url:
            raise ValueError(f"{NOTIFY_TARGETS_ENV}: {name!r} is not a name=url pair with a valid name")
        targets[name] = url
    return targets
