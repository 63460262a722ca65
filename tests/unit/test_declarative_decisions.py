"""The declarative controller's decisions (``declarative/decisions.py``), one table per rule."""

from __future__ import annotations

from typing import Any

import pytest

from declarative.decisions import HELD_BY_SPEC, approval_due, hold_action, pause_answered, template_action
from workflows.model import ControlAction, Phase, RolloutStatus, StepState

PAUSE, RESUME = ControlAction.PAUSE, ControlAction.RESUME
SPEC_HOLD = f"alice{HELD_BY_SPEC}"  # a hold this controller made for spec.strategy.paused


def _tpl(image: str, hash_: str = "") -> dict[str, Any]:
    labels = {"app": "web", **({"pod-template-hash": hash_} if hash_ else {})}
    return {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "web", "image": image}]}}


def _st(**kw: Any) -> RolloutStatus:
    return RolloutStatus(namespace="shop", name="web", workflow_id="rollout-shop-web", **kw)


STABLE, CANARY = _tpl("web:1", "s1"), _tpl("web:2", "c2")


@pytest.mark.parametrize(
    ("template", "stable", "canary", "want"),
    [
        (_tpl("web:2"), STABLE, CANARY, None),  # the canary's template (the hash label is ignored)
        (_tpl("web:1"), STABLE, CANARY, "undo"),  # set back to the stable revision
        (_tpl("web:3"), STABLE, CANARY, "replace"),  # a newer template: continuous release
        (_tpl("web:1"), STABLE, None, "undo"),  # no canary ReplicaSet yet
        (_tpl("web:3"), STABLE, None, None),  # nothing to compare with
        (_tpl("web:3"), None, CANARY, "replace"),  # stable ReplicaSet gone
        (_tpl("web:1"), None, CANARY, "replace"),
        (_tpl("web:2"), None, None, None),
        (_tpl("web:1"), STABLE, _tpl("web:1", "c1"), "undo"),  # stable wins over the canary check
    ],
)
def test_template_action(template: Any, stable: Any, canary: Any, want: str | None) -> None:
    assert template_action(template, stable, canary) == want


@pytest.mark.parametrize(
    ("canary_status", "state", "step", "want"),
    [
        ({"currentStepState": "StepReady", "currentStepIndex": 2}, StepState.STEP_PAUSED, 2, True),
        # a StepReady left over for step 1 while step 2 pauses: stale, approves nothing
        ({"currentStepState": "StepReady", "currentStepIndex": 1}, StepState.STEP_PAUSED, 2, False),
        ({"currentStepState": "StepReady", "currentStepIndex": 3}, StepState.STEP_PAUSED, 2, False),
        ({"currentStepState": "StepReady"}, StepState.STEP_PAUSED, 2, False),  # no index: not this step
        ({"currentStepState": "StepPaused", "currentStepIndex": 2}, StepState.STEP_PAUSED, 2, False),
        ({"currentStepIndex": 2}, StepState.STEP_PAUSED, 2, False),
        ({}, StepState.STEP_PAUSED, 2, False),
        # the run is not paused (still scaling, or already moving on): nothing to approve
        ({"currentStepState": "StepReady", "currentStepIndex": 2}, StepState.STEP_UPGRADE, 2, False),
        ({"currentStepState": "StepReady", "currentStepIndex": 2}, StepState.STEP_READY, 2, False),
        ({"currentStepState": "StepReady", "currentStepIndex": 2}, StepState.COMPLETED, 2, False),
    ],
)
def test_approval_due(canary_status: dict[str, Any], state: StepState, step: int, want: bool) -> None:
    assert approval_due(canary_status, _st(step_state=state, current_step_index=step)) is want


@pytest.mark.parametrize(
    ("spec_paused", "kw", "asked", "want"),
    [
        (True, {}, None, PAUSE),  # paused in the spec, not held: pause
        (True, {"held_by": SPEC_HOLD}, None, None),  # already held for the spec
        (True, {"held_by": "bob"}, None, None),  # held by `rollout pause`: held already
        (False, {"held_by": SPEC_HOLD}, None, RESUME),  # unpaused: release the spec's hold
        (False, {"held_by": "bob"}, None, None),  # never release a `rollout pause` hold
        (False, {}, None, None),
        # a run that refuses holds now
        (True, {"phase": Phase.ABORTED}, None, None),
        (True, {"phase": Phase.FAILED}, None, None),
        (True, {"finalizing": True}, None, None),
        (False, {"held_by": SPEC_HOLD, "phase": Phase.FAILED}, None, None),
        (True, {"phase": Phase.PAUSED}, None, PAUSE),  # paused at a step: still held
        # asked already and not answered yet: not again
        (True, {}, (True, ""), None),
        (False, {"held_by": SPEC_HOLD}, (False, SPEC_HOLD), None),
        # asked something else before (the spec changed since): ask again
        (True, {}, (False, ""), PAUSE),
        (False, {"held_by": SPEC_HOLD}, (True, SPEC_HOLD), RESUME),
        (True, {}, (True, SPEC_HOLD), PAUSE),  # our hold was released by someone: pause again
    ],
)
def test_hold_action(
    spec_paused: bool, kw: dict[str, Any], asked: tuple[bool, str] | None, want: ControlAction | None
) -> None:
    assert hold_action(spec_paused, _st(**kw), asked) == want


@pytest.mark.parametrize(
    ("asked", "held_by", "want"),
    [
        (None, SPEC_HOLD, None),  # nothing asked by this process (e.g. after a restart)
        ((True, ""), SPEC_HOLD, (True, SPEC_HOLD)),  # our pause answered: its hold is known now
        ((True, ""), "", (True, "")),  # not answered yet
        ((True, ""), "bob", (True, "")),  # a `rollout pause` hold is not ours
        ((False, SPEC_HOLD), SPEC_HOLD, (False, SPEC_HOLD)),  # a resume asked: unchanged
        ((False, ""), SPEC_HOLD, (False, "")),
    ],
)
def test_pause_answered(asked: tuple[bool, str] | None, held_by: str, want: tuple[bool, str] | None) -> None:
    assert pause_answered(asked, _st(held_by=held_by)) == want


def test_pause_then_release_then_pause_again() -> None:
    """The memo walk of one run: pause asked, answered, the spec unpaused, resume asked, released."""
    asked: tuple[bool, str] | None = None
    st = _st()
    assert hold_action(True, st, asked) == PAUSE
    asked = (True, st.held_by)
    assert hold_action(True, st, pause_answered(asked, st)) is None  # not answered yet: not twice
    st = _st(held_by=SPEC_HOLD)
    asked = pause_answered(asked, st)
    assert asked == (True, SPEC_HOLD)
    assert hold_action(True, st, asked) is None
    assert hold_action(False, st, asked) == RESUME
    asked = (False, st.held_by)
    assert hold_action(False, st, pause_answered(asked, st)) is None
    st = _st()
    assert hold_action(False, st, pause_answered(asked, st)) is None
    assert hold_action(True, st, pause_answered(asked, st)) == PAUSE
