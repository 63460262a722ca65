"""The workflow's judges (approve, control, undo) and its activity options table, as pure tables."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from workflows.contract import (
    FEW_ATTEMPTS,
    NOTIFY_RETRY,
    RETRY,
    Purpose,
    Refusal,
    RunFlags,
    activity_options,
    approve_refusal,
    control_refusal,
    undo_refusal,
)
from workflows.model import ControlAction, Phase, RolloutStatus, RolloutTimings, StepState

WID = "rollout/default/web"


def status(
    phase: Phase = Phase.PAUSED, state: StepState = StepState.STEP_PAUSED, step: int = 2
) -> RolloutStatus:
    return RolloutStatus(
        namespace="default",
        name="web",
        workflow_id=WID,
        phase=phase,
        step_state=state,
        current_step_index=step,
        total_steps=4,
        message="the message",
    )


ABORTING = RunFlags(aborting=True)
FINALIZING = RunFlags(finalizing=True)
UNDOING = RunFlags(finalizing=True, undoing=True)


@dataclass(frozen=True)
class ApproveCase:
    name: str
    st: RolloutStatus
    flags: RunFlags
    step: int | None
    refusal: str | None


APPROVE = [
    ApproveCase("paused, no step named: the paused one", status(), RunFlags(), None, None),
    ApproveCase("paused, the paused step named", status(), RunFlags(), 2, None),
    ApproveCase(
        "paused, another step named",
        status(),
        RunFlags(),
        3,
        Refusal.NOT_PAUSED.format(step=3, wid=WID, i=2, n=4, state="StepPaused"),
    ),
    ApproveCase(
        "scaling, no step named",
        status(Phase.PROGRESSING, StepState.STEP_UPGRADE),
        RunFlags(),
        None,
        Refusal.NOT_PAUSED.format(step=2, wid=WID, i=2, n=4, state="StepUpgrade"),
    ),
    ApproveCase("aborted wins over paused", status(), ABORTING, 2, Refusal.ABORTED.format(wid=WID)),
]


@pytest.mark.parametrize("case", APPROVE, ids=[c.name for c in APPROVE])
def test_approve_refusal(case: ApproveCase) -> None:
    assert approve_refusal(case.st, case.flags, case.step, WID) == case.refusal


@dataclass(frozen=True)
class ControlCase:
    name: str
    st: RolloutStatus
    flags: RunFlags
    action: ControlAction
    refusal: str | None


def ending(action: ControlAction) -> str:
    return Refusal.ENDING.format(wid=WID, phase="Paused", message="the message", verb=action.value)


CONTROL = [
    ControlCase("pause while paused at a step", status(), RunFlags(), ControlAction.PAUSE, None),
    ControlCase(
        "full promotion while scaling",
        status(Phase.PROGRESSING),
        RunFlags(),
        ControlAction.PROMOTE_FULL,
        None,
    ),
    ControlCase(
        "abort while finalizing", status(), FINALIZING, ControlAction.ABORT, ending(ControlAction.ABORT)
    ),
    ControlCase(
        "resume while rolling back", status(), UNDOING, ControlAction.RESUME, ending(ControlAction.RESUME)
    ),
    ControlCase(
        "retry when not aborted",
        status(Phase.PROGRESSING),
        RunFlags(),
        ControlAction.RETRY,
        Refusal.NOT_ABORTED.format(wid=WID, phase="Progressing"),
    ),
    ControlCase("retry when aborted", status(Phase.ABORTED), ABORTING, ControlAction.RETRY, None),
    ControlCase("abort again: already in effect", status(Phase.ABORTED), ABORTING, ControlAction.ABORT, None),
    ControlCase(
        "pause when aborted",
        status(Phase.ABORTED),
        ABORTING,
        ControlAction.PAUSE,
        Refusal.ABORTED.format(wid=WID),
    ),
    ControlCase(
        "full promotion when failed",
        status(Phase.FAILED),
        RunFlags(),
        ControlAction.PROMOTE_FULL,
        Refusal.FAILED.format(wid=WID, message="the message"),
    ),
    ControlCase("abort when failed", status(Phase.FAILED), RunFlags(), ControlAction.ABORT, None),
]


@pytest.mark.parametrize("case", CONTROL, ids=[c.name for c in CONTROL])
def test_control_refusal(case: ControlCase) -> None:
    assert control_refusal(case.st, case.flags, case.action, WID) == case.refusal


@pytest.mark.parametrize(
    ("flags", "refusal"),
    [
        (RunFlags(), None),
        (ABORTING, None),
        (UNDOING, None),  # a repeated undo is accepted (the rollback is already running)
        (FINALIZING, Refusal.FINALIZING.format(wid=WID, message="the message")),
    ],
    ids=["running", "aborted", "rolling back", "finalizing"],
)
def test_undo_refusal(flags: RunFlags, refusal: str | None) -> None:
    assert undo_refusal(status(), flags, WID) == refusal


def test_three_retry_policies_cover_every_purpose() -> None:
    timings = RolloutTimings()
    policies = {id(activity_options(p, timings)["retry_policy"]) for p in Purpose}
    assert policies == {id(RETRY), id(FEW_ATTEMPTS), id(NOTIFY_RETRY)}


def test_notify_deliveries_are_bounded_by_the_run_s_total() -> None:
    opts = activity_options(Purpose.NOTIFY, RolloutTimings(notify_total_seconds=5))
    assert opts["schedule_to_close_timeout"].total_seconds() == 5
    assert opts["start_to_close_timeout"].total_seconds() == 5
