"""Signals and updates a running rollout receives (approve, undo, control, the watcher's
``deployment_changed``), how ``rollout undo`` rides on a cancellation request, and recorded approvals."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from workflows.model.base import Model
from workflows.model.spec import StepSpec

__all__ = [
    "ApproveSignal",
    "UndoSignal",
    "PATCH_OUTCOMES",
    "PATCH_COMPACT_HISTORY",
    "UNDO_REASON_PREFIX",
    "MEMO_STATUS",
    "undo_cancel_reason",
    "undo_from_cancel",
    "PauseSignal",
    "ControlAction",
    "ControlSignal",
    "Approval",
    "DeploymentChange",
    "Replan",
    "StepJump",
]


class ApproveSignal(Model):
    """Approve the paused step ``step`` (1-based); ``None`` approves whichever step is paused."""

    step: int | None = None
    by: str = ""
    comment: str = ""


class UndoSignal(Model):
    """Roll everything back to the stable revision."""

    by: str = ""
    reason: str = ""


# Runs that record this patch marker take a cancellation request as an undo and end Failed or Canceled
# (workflows/outcome.py); the CLI reads the marker to choose cancel or the old `undo` signal.
PATCH_OUTCOMES = "outcomes-as-temporal-statuses"
# Runs that record this one marker have every earlier patch of the rollout workflow (PATCH_OUTCOMES
# among them) without recording each, and a shorter history (workflows/rollout.py).
PATCH_COMPACT_HISTORY = "compact-history"
# `rollout undo` is a Temporal cancellation request; its reason carries who asked, in these words.
UNDO_REASON_PREFIX = "rollout undo by "
# Memo key of a closed run's last RolloutStatus (failed and canceled runs have no result to read it from).
MEMO_STATUS = "rolloutStatus"


def undo_cancel_reason(by: str, reason: str = "") -> str:
    """The reason ``rollout undo`` sends with its cancellation request (the UI shows it as is)."""
    text = f"{UNDO_REASON_PREFIX}{by or 'unknown'}"
    return f"{text}: {reason}" if reason else text


def undo_from_cancel(reason: str) -> UndoSignal:
    """The undo a cancellation request asks for; ``by`` is empty when the reason does not name it
    (a raw ``temporal workflow cancel``, the UI's button: the workflow then asks its history)."""
    if not reason.startswith(UNDO_REASON_PREFIX):
        return UndoSignal(by="", reason=reason)
    by, _, why = reason[len(UNDO_REASON_PREFIX) :].partition(": ")
    return UndoSignal(by=by, reason=why)


class PauseSignal(Model):
    """The old ``pause`` signal of declarative mode, kept so runs that received it replay: it now sets or
    releases the ``control`` hold. Controllers send ``ControlSignal`` pause/resume instead."""

    paused: bool = True
    by: str = ""


class ControlAction(StrEnum):
    """The operator verbs beyond approve and undo (``rollout approve --full|pause|resume|abort|retry``)."""

    PROMOTE_FULL = "promote-full"
    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"
    RETRY = "retry"


class ControlSignal(Model):
    """One operator verb: the ``control`` signal (no worker needed) or the ``control_now`` update."""

    action: ControlAction
    by: str = ""
    reason: str = ""


class Approval(Model):
    """A recorded approval."""

    by: str
    at: datetime
    step: int
    comment: str = ""


class DeploymentChange(Model):
    """Signal ``deployment_changed``: the shared watcher saw the rollout's Deployment change.

    Sent by every worker's watcher (duplicates are expected and ignored: the workflow keeps the
    newest ``resource_version`` it acted on). ``template_hash`` is ``kube.template_hash`` of the
    Deployment's pod template; the workflow compares it with the canary's pod-template-hash.
    """

    resource_version: str = ""
    generation: int = 0
    replicas: int = 0
    template_hash: str = ""
    deleted: bool = False
    namespace: str = Field(default="", description="the Deployment's; the workflow ignores another's")
    name: str = ""


class StepJump(Model):
    """Update ``jump_step``: go to step ``step`` (1-based, as Kruise's ``nextStepIndex``) and run it.

    ``key`` names the request (the declarative controller: the Rollout's resourceVersion that carried
    the ``nextStepIndex``), so a request seen twice acts once.
    """

    step: int
    by: str = ""
    key: str = ""


class Replan(Model):
    """Update ``replan``: the steps were edited while the rollout runs (same number of steps).

    The current step is recalculated from the new plan as Kruise does (``workflows.plan.replan_step``).
    """

    steps: list[StepSpec]
    by: str = ""
