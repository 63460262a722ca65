"""A release's continue-as-new (``workflow.patched`` marker ``release-continue-as-new``).

A release of many targets, or one that waits for days, grows its history. Between two waves, with no
target in flight, the parent may continue as new: when the server suggests it, or once the history
reached the input's ``continue_as_new_after`` events. The next run gets the same input plus
``carried`` (the status: waves done, approvals, halts, every target's state; the targets it asked to
roll back; the approval timeouts). The targets' previous templates stay in the input's waves, so
``rollout release revert`` reads them from whichever run is the latest.

A child belongs to the run that started it, and a run's parent close policy applies when it continues
as new. So from this marker on targets start with ``ABANDON``: targets held at 100% outlive the run
that started them, and the next run reaches them by workflow ID (``release_finish``, the cancellation
that rolls one back) and learns how they end from ``wait_target_outcome``. A cancellation request of
the release itself still rolls back every target in flight or held (``ReleaseWorkflow.run``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.release_outcome import TargetOutcomeActivities
    from workflows import release_plan
    from workflows.model import ReleaseCarry, ReleaseInput, ReleaseStatus, TargetOutcome, TargetOutcomeInput

__all__ = [
    "PATCH_CONTINUE_AS_NEW",
    "carry_input",
    "continue_due",
    "request_cancel",
    "signal_target",
    "wait_outcome",
]

PATCH_CONTINUE_AS_NEW = "release-continue-as-new"
_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10))
# A target may stay held for as long as the release runs; the heartbeat notices a dead worker.
_FOLLOW_BOUND = timedelta(days=365)
_HEARTBEAT = timedelta(seconds=30)


def continue_due(spec: ReleaseInput, status: ReleaseStatus, next_wave: int) -> bool:
    """Whether to continue as new before wave ``next_wave`` (0-based)."""
    info = workflow.info()
    return release_plan.continue_as_new_due(
        status,
        next_wave,
        history_length=info.get_current_history_length(),
        threshold=spec.continue_as_new_after,
        suggested=info.is_continue_as_new_suggested(),
    )


def carry_input(
    spec: ReleaseInput,
    status: ReleaseStatus,
    next_wave: int,
    cancelled: set[str],
    expired: dict[int, datetime],
) -> ReleaseInput:
    """The next run's input: the release as started, and what this run knows."""
    runs = spec.carried.runs + 1 if spec.carried is not None else 2
    carry = ReleaseCarry(
        status=status, next_wave=next_wave, cancelled=sorted(cancelled), expired=dict(expired), runs=runs
    )
    return spec.model_copy(update={"carried": carry})


async def wait_outcome(workflow_id: str) -> TargetOutcome:
    """How a target started by an earlier run ends (an activity on the release's own queue)."""
    return await workflow.execute_activity_method(
        TargetOutcomeActivities.wait_target_outcome,
        TargetOutcomeInput(workflow_id=workflow_id),
        start_to_close_timeout=_FOLLOW_BOUND,
        heartbeat_timeout=_HEARTBEAT,
        retry_policy=_RETRY,
        summary=f"wait for {workflow_id} to end",
    )


async def signal_target(workflow_id: str, name: str) -> None:
    """Signal a target by ID; one that already ended is left to its follower."""
    try:
        await workflow.get_external_workflow_handle(workflow_id).signal(name)
    except Exception:  # noqa: BLE001 - ended meanwhile (a person's undo): its outcome says how
        workflow.logger.info("target %s did not take %s: it ended", workflow_id, name)


async def request_cancel(workflow_id: str) -> None:
    """Ask a target to roll back (its undo) by ID; one that already ended is left to its follower."""
    try:
        await workflow.get_external_workflow_handle(workflow_id).cancel()
    except Exception:  # noqa: BLE001 - ended meanwhile: its outcome says how
        workflow.logger.info("target %s did not take the cancellation: it ended", workflow_id)
