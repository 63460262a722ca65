"""Notification payloads (``--notify``, ``ROLLOUT_NOTIFY_URLS``; see workflows/notify.py)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from workflows.model.base import Model

__all__ = [
    "NotifyEvent",
    "Notification",
    "DeliverInput",
]


class NotifyEvent(StrEnum):
    """The events a rollout notifies (Argo's triggers: on-rollout-paused, -step-completed, ...)."""

    STEP_PAUSED = "StepPaused"  # a step waits for `rollout approve`
    STEP_COMPLETED = "StepCompleted"
    COMPLETED = "Completed"
    ROLLED_BACK = "RolledBack"
    ABORTED = "Aborted"
    FAILED = "Failed"
    ANALYSIS_FAILED = "AnalysisFailed"


class Notification(Model):
    """One event of one rollout (``ui_url`` and ``text`` are filled in by the delivering activity)."""

    event: NotifyEvent
    namespace: str
    name: str
    workflow_id: str
    step: int
    total_steps: int
    phase: str
    message: str
    at: datetime
    ui_url: str = ""
    text: str = ""


class DeliverInput(Model):
    """Input of ``deliver_notification``: one event to one target (by name; ``url`` in older runs)."""

    url: str = ""
    target: str = Field(default="", description="a name the worker resolves to its URL")
    notification: Notification
