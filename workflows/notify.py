"""Notifications: what a rollout tells a webhook (``--notify URL``, worker default ``ROLLOUT_NOTIFY_URLS``).

One JSON POST per event and URL, camelCase like every other payload::

    {event, namespace, name, workflowId, step, totalSteps, phase, message, uiUrl, at, text}

``text`` is a one-line summary, so a Slack incoming webhook (which reads ``text``) shows it as is.
The payloads are in ``workflows/model.py``; the text here; delivery is ``activities/notify.py``; the
workflow side is ``workflows/notify_flow.py``.
"""

from __future__ import annotations

from workflows.model import Notification, NotifyEvent

__all__ = ["NOTIFY_URLS_ENV", "notification_text", "parse_notify_urls"]

NOTIFY_URLS_ENV = "ROLLOUT_NOTIFY_URLS"


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


def parse_notify_urls(text: str | None) -> list[str]:
    """``ROLLOUT_NOTIFY_URLS``: URLs separated by commas or whitespace."""
    return [u for u in (text or "").replace(",", " ").split() if u]
