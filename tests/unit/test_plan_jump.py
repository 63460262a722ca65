"""Step jumps and plan edits, the pure parts: Kruise's step recalculation and next step, the canary
floor, and the controller's and the run's judges (``workflows/plan.py``, ``declarative/decisions.py``,
``workflows/contract.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from declarative.decisions import jump_request, plan_edit
from workflows import plan
from workflows.contract import RunFlags, move_refusal
from workflows.model import Phase, RolloutStatus, StepSpec, StepState


def steps(*replicas: int | str, pause: int | None = None) -> list[StepSpec]:
    return [StepSpec(replicas=r, pause_seconds=pause) for r in replicas]


PARTITION = steps("20%", "40%", "60%", "80%", "100%")


@pytest.mark.parametrize(
    ("old", "new", "current", "replicas", "want"),
    [
        # upstream "plan changed case": 20% -> 60% at step 1 of 1 on 5 pods: step 1 again (3 pods)
        (steps("20%"), steps("60%"), 1, 5, 1),
        # upstream partition jump case: step 3 (60% = 3 pods) edited to 3: step 3 again
        (PARTITION, [*PARTITION[:2], StepSpec(replicas=3), *PARTITION[3:]], 3, 5, 3),
        # the current step now asks for fewer pods: the first step that covers them (step 4's 80% = 4)
        (PARTITION, [*PARTITION[:2], StepSpec(replicas=1), *PARTITION[3:]], 3, 5, 4),
        # every step before covers the current 1 pod: the current step is looked at first
        (steps(1, 2, 3), steps(1, 5, 6), 2, 10, 2),
        # nothing covers the old step's pods: the last step looked at
        (steps(4, 5, 6), steps(1, 2, 3), 2, 10, 3),
        (steps(4, 5, 6), steps(1, 2, 3), 3, 10, 2),
        # before the first step
        (steps(1, 2), steps(2, 3), 0, 10, 1),
    ],
)
def test_replan_step(
    old: list[StepSpec], new: list[StepSpec], current: int, replicas: int, want: int
) -> None:
    assert plan.replan_step(old, new, current, replicas) == want


@pytest.mark.parametrize(
    ("current", "total", "want"), [(0, 3, 1), (1, 3, 2), (2, 3, 3), (3, 3, -1), (5, 5, -1)]
)
def test_next_step_index(current: int, total: int, want: int) -> None:
    assert plan.next_step_index(current, total) == want


def test_same_but_pauses() -> None:
    assert plan.same_but_pauses(steps(1, "50%", pause=None), steps(1, "50%", pause=10))
    assert not plan.same_but_pauses(steps(1, "50%"), steps(1, "60%"))
    assert not plan.same_but_pauses(steps(1, "50%"), steps(1))


@pytest.mark.parametrize(
    ("step", "floor", "replicas", "want"),
    [
        (StepSpec(replicas="40%"), 0, 5, "40%"),  # no floor: the step as is
        (StepSpec(replicas="40%"), 4, 5, 4),  # jumped back from 4 pods: keep them
        (StepSpec(replicas="80%"), 4, 5, "80%"),  # the step asks for as many
        (StepSpec(replicas="100%"), 4, 5, "100%"),
        (StepSpec(replicas=1), 8, 5, 5),  # never more than the Deployment's replicas
    ],
)
def test_floored_step(step: StepSpec, floor: int, replicas: int, want: int | str) -> None:
    out = plan.floored_step(step, floor, replicas)
    assert out.replicas == want
    assert out.pause_seconds == step.pause_seconds


def status(current: int, total: int = 5, **kw: Any) -> RolloutStatus:
    return RolloutStatus(
        namespace="default",
        name="echoserver",
        workflow_id="rollout/default/echoserver",
        current_step_index=current,
        total_steps=total,
        steps=PARTITION[:total],
        **kw,
    )


@pytest.mark.parametrize(
    ("canary", "current", "want"),
    [
        ({"currentStepIndex": 4, "nextStepIndex": 3}, 4, 3),  # jump back
        ({"currentStepIndex": 1, "nextStepIndex": 5}, 1, 5),  # jump to the last step
        ({"currentStepIndex": 3, "nextStepIndex": 3}, 3, 3),  # run the current step again
        ({"currentStepIndex": 4, "nextStepIndex": 5}, 4, None),  # the run's own next step
        ({"currentStepIndex": 5, "nextStepIndex": -1}, 5, None),
        ({"currentStepIndex": 4, "nextStepIndex": 3}, 3, None),  # the run moved on: asks nothing
        ({"currentStepIndex": 2, "nextStepIndex": 9}, 2, 9),  # out of range: sent, the run corrects it
        ({"currentStepIndex": 2, "nextStepIndex": "3"}, 2, None),
        ({"currentStepIndex": 2, "nextStepIndex": True}, 2, None),
        ({"currentStepIndex": 0, "nextStepIndex": 3}, 0, None),  # taking over
        ({}, 2, None),
    ],
)
def test_jump_request(canary: dict[str, Any], current: int, want: int | None) -> None:
    assert jump_request(canary, status(current)) == want


def test_plan_edit() -> None:
    st = status(1)
    assert plan_edit(list(PARTITION), st) is None
    edited = [*PARTITION[:2], StepSpec(replicas=3), *PARTITION[3:]]
    assert plan_edit(edited, st) == edited
    assert plan_edit(PARTITION[:4], st) is None  # another number of steps: the run keeps its plan


WID = "rollout/default/echoserver"


@pytest.mark.parametrize(
    ("st", "flags", "before_steps", "refused"),
    [
        (status(2, phase=Phase.PAUSED, step_state=StepState.STEP_PAUSED), RunFlags(), False, None),
        (status(2), RunFlags(finalizing=True), False, "Progressing"),
        (status(2), RunFlags(undoing=True), False, "refused"),
        (status(2), RunFlags(aborting=True), False, "refused"),
        (status(2, phase=Phase.FAILED), RunFlags(), False, "Failed"),
        (status(0), RunFlags(), False, "still taking over"),
        (status(0), RunFlags(), True, None),  # a plan edit before the first step is taken
    ],
)
def test_move_refusal(st: RolloutStatus, flags: RunFlags, before_steps: bool, refused: str | None) -> None:
    out = move_refusal(st, flags, "jump to step 3", WID, before_steps=before_steps)
    if refused is None:
        assert out is None
    else:
        assert out is not None and refused in out and WID in out
