"""The rollout workflow's edges, in one place: what it answers to, what it refuses, how it calls out.

- **Names**: the signal, update and query names the CLI, the controller and the watcher send.
- **Refusals**: every sentence a verb is refused with, shared by the workflow's validators and
  signal handlers and by the CLI's no-worker path, and the pure judges that pick one
  (``approve_refusal``, ``control_refusal``, ``undo_refusal``; table tests in
  ``tests/unit/test_contract.py``).
- **Activity options**: one table, by purpose, of the timeouts and retry policies every activity is
  scheduled with (three retry policies: persistent, few attempts, notification).

Pure: no activity, no client, no workflow API; the workflow and the CLI both import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Any

from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityCancellationType

from workflows.errors import NON_RETRYABLE
from workflows.model import ControlAction, Phase, RolloutStatus, RolloutTimings, StepState

__all__ = [
    "ANALYSIS_UNDO_BY",
    "DEADLINE_UNDO_BY",
    "LONG_WAIT",
    "NOTIFY_RETRY",
    "QUERY_STATUS",
    "RETRY",
    "FEW_ATTEMPTS",
    "SIGNAL_APPROVE",
    "SIGNAL_CONTROL",
    "SIGNAL_DEPLOYMENT_CHANGED",
    "SIGNAL_PAUSE",
    "SIGNAL_RELEASE_FINISH",
    "SIGNAL_TARGET_HELD",
    "SIGNAL_UNDO",
    "UPDATE_APPROVE_STEP",
    "UPDATE_CONTROL_NOW",
    "UPDATE_JUMP_STEP",
    "UPDATE_REPLAN",
    "UPDATE_REPLACE",
    "UPDATE_UNDO_NOW",
    "Purpose",
    "Refusal",
    "RunFlags",
    "activity_options",
    "approve_refusal",
    "control_refusal",
    "move_refusal",
    "undo_refusal",
]

# -- names ----------------------------------------------------------------------------------------------

SIGNAL_APPROVE = "approve"
SIGNAL_CONTROL = "control"
SIGNAL_UNDO = "undo"
SIGNAL_PAUSE = "pause"  # the declarative controller's old hold signal (replay and old controllers)
SIGNAL_DEPLOYMENT_CHANGED = "deployment_changed"
SIGNAL_RELEASE_FINISH = "release_finish"  # a release ended: its target held at 100% hands back
SIGNAL_TARGET_HELD = "target_held"  # to the parent release: this target is held at 100%
UPDATE_APPROVE_STEP = "approve_step"
UPDATE_CONTROL_NOW = "control_now"
UPDATE_UNDO_NOW = "undo_now"
UPDATE_REPLACE = "replace"
UPDATE_JUMP_STEP = "jump_step"  # Kruise's nextStepIndex: go to a step (declarative controller)
UPDATE_REPLAN = "replan"  # the Rollout's steps were edited mid-rollout (declarative controller)
QUERY_STATUS = "status"


# Who an undo names when no person asked (its ``by``); the outcome's error type follows from it.
ANALYSIS_UNDO_BY = "analysis"  # a failed analysis rolled the rollout back
DEADLINE_UNDO_BY = "progress-deadline"  # --auto-rollback after a progress deadline


# -- refusals -------------------------------------------------------------------------------------------


class Refusal:
    """The sentences a verb is refused with (``str.format`` templates; ``wid`` is the workflow ID)."""

    ABORTED = "rollout {wid} is aborted; `rollout retry` restarts it, `rollout undo` rolls it back"
    NOT_PAUSED = "step {step} of rollout {wid} is not paused (step {i}/{n} is {state}); nothing to approve"
    ENDING = "rollout {wid} is {phase} ({message}); {verb} refused"
    NOT_ABORTED = "rollout {wid} is {phase}, not Aborted; retry only restarts an aborted rollout"
    FAILED = "rollout {wid} is Failed ({message})"
    FINALIZING = "rollout {wid} is finalizing ({message}); undo refused"
    NOT_MOVING = "rollout {wid} is {phase} ({message}); {verb} refused"
    TAKING_OVER = "rollout {wid} is still taking over its Deployment; {verb} refused, retry in a moment"
    OLD_RUN = "rollout {wid} was started before step jumps and plan edits; {verb} refused"


@dataclass(frozen=True)
class RunFlags:
    """What the judges need beyond the status: the run's recorded intent.

    Attributes:
        finalizing: finalize or a rollback has begun (nothing can be undone or redirected any more).
        undoing: an undo is recorded (by a person, analysis, the deadline or a cancellation).
        aborting: an abort is recorded or done (the rollout is aborted until retry, undo or replace).
    """

    finalizing: bool = False
    undoing: bool = False
    aborting: bool = False


def approve_refusal(st: RolloutStatus, flags: RunFlags, step: int | None, wid: str) -> str | None:
    """Why approving ``step`` (``None``: the paused one) is refused now, or ``None``."""
    if flags.aborting:
        return Refusal.ABORTED.format(wid=wid)
    current = st.current_step_index
    if st.step_state != StepState.STEP_PAUSED or (step is not None and step != current):
        return Refusal.NOT_PAUSED.format(
            step=step if step is not None else current,
            wid=wid,
            i=current,
            n=st.total_steps,
            state=st.step_state.value,
        )
    return None


def control_refusal(st: RolloutStatus, flags: RunFlags, action: ControlAction, wid: str) -> str | None:
    """Why ``action`` cannot act now (``None``: it can, or it is already in effect)."""
    if flags.finalizing or flags.undoing:
        return Refusal.ENDING.format(wid=wid, phase=st.phase.value, message=st.message, verb=action.value)
    if action == ControlAction.RETRY:
        return None if flags.aborting else Refusal.NOT_ABORTED.format(wid=wid, phase=st.phase.value)
    if flags.aborting:
        return None if action == ControlAction.ABORT else Refusal.ABORTED.format(wid=wid)
    if st.phase == Phase.FAILED and action in (ControlAction.PROMOTE_FULL, ControlAction.PAUSE):
        return Refusal.FAILED.format(wid=wid, message=st.message)
    return None


def move_refusal(
    st: RolloutStatus, flags: RunFlags, verb: str, wid: str, *, before_steps: bool = False
) -> str | None:
    """Why a step jump or a plan edit (``verb``) cannot act now: only the forward path moves between
    steps (never while finalizing, undoing, aborted or Failed), and a jump only once a step runs
    (``before_steps``: a plan edit is taken before the first step too)."""
    if flags.finalizing or flags.undoing or flags.aborting or st.phase == Phase.FAILED:
        return Refusal.NOT_MOVING.format(wid=wid, phase=st.phase.value, message=st.message, verb=verb)
    if st.current_step_index < 1 and not before_steps:
        return Refusal.TAKING_OVER.format(wid=wid, verb=verb)
    return None


def undo_refusal(st: RolloutStatus, flags: RunFlags, wid: str) -> str | None:
    """Why undo is refused now (finalize has begun), or ``None`` (a repeated undo is accepted)."""
    if flags.finalizing and not flags.undoing:
        return Refusal.FINALIZING.format(wid=wid, message=st.message)
    return None


# -- activity options -----------------------------------------------------------------------------------

LONG_WAIT = timedelta(days=30)

# Kubernetes reads and writes: retried until they succeed, except the named impossible requests.
RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=NON_RETRYABLE,
)
# Look-ups that may go without an answer (sender identities, default targets, the last status write).
FEW_ATTEMPTS = RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(seconds=5))
# Notification deliveries: retried within their own schedule-to-close bound.
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)

TRAFFIC_TIMEOUT = timedelta(seconds=30)
NOTIFY_ATTEMPT_TIMEOUT = timedelta(seconds=15)


class Purpose(Enum):
    """Why an activity runs; each purpose has one set of options (``activity_options``)."""

    KUBE = "kube"  # one Kubernetes read or write
    WAIT = "wait"  # a long wait that heartbeats (readiness, a watch, a metric)
    CONVERGE = "converge"  # a step's moves and readiness wait; undo waits until it has stopped
    TRAFFIC = "traffic"  # one traffic operation on a Service, Ingress or HTTPRoute
    LOOKUP = "lookup"  # a look-up that may fail without failing the rollout
    NOTIFY = "notify"  # one notification delivery, bounded in time


def activity_options(purpose: Purpose, timings: RolloutTimings) -> dict[str, Any]:
    """Keyword arguments of ``workflow.start_activity_method`` for ``purpose`` (the one table)."""
    kube = timedelta(seconds=timings.activity_timeout_seconds)
    heartbeat = timedelta(seconds=timings.heartbeat_timeout_seconds)
    try_cancel = ActivityCancellationType.TRY_CANCEL
    if purpose == Purpose.KUBE:
        return {"start_to_close_timeout": kube, "retry_policy": RETRY, "cancellation_type": try_cancel}
    if purpose in (Purpose.WAIT, Purpose.CONVERGE):
        return {
            "start_to_close_timeout": LONG_WAIT,
            "heartbeat_timeout": heartbeat,
            "retry_policy": RETRY,
            # Undo waits until a converge has stopped: a write in flight finishes first.
            "cancellation_type": ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
            if purpose == Purpose.CONVERGE
            else try_cancel,
        }
    if purpose == Purpose.TRAFFIC:
        return {"start_to_close_timeout": TRAFFIC_TIMEOUT, "retry_policy": RETRY}
    if purpose == Purpose.LOOKUP:
        return {"start_to_close_timeout": kube, "retry_policy": FEW_ATTEMPTS}
    total = timedelta(seconds=timings.notify_total_seconds)
    return {
        "schedule_to_close_timeout": total,
        "start_to_close_timeout": min(total, NOTIFY_ATTEMPT_TIMEOUT),
        "retry_policy": NOTIFY_RETRY,
    }
