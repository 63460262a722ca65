"""The controller's decisions on a running rollout (pure; table tests in tests/unit).

``controller.py`` reads the Rollout, the Deployment, its ReplicaSets and the run's status, asks these
functions what the objects say, and acts (a signal or an update). Apart from its I/O, each rule has a
table test and mutation testing reaches it (docs/testing.md).
"""

from __future__ import annotations

from typing import Any, Literal

from kube.objects import templates_equal
from workflows.model import ControlAction, Phase, RolloutStatus, StepSpec, StepState
from workflows.plan import next_step_index

__all__ = [
    "HELD_BY_SPEC",
    "Asked",
    "approval_due",
    "hold_action",
    "jump_request",
    "pause_answered",
    "plan_edit",
    "template_action",
]

Obj = dict[str, Any]
# The controller's holds (spec.strategy.paused) end ``held_by`` with this, so it only releases its own.
HELD_BY_SPEC = " (spec.strategy.paused)"
# What the controller last asked of a run's hold: (spec.strategy.paused, the held_by it saw then).
Asked = tuple[bool, str]


def template_action(
    template: Obj, stable_template: Obj | None, canary_template: Obj | None
) -> Literal["undo", "replace"] | None:
    """What the Deployment's pod template asks of its running rollout.

    Back on the stable ReplicaSet's template -> ``undo`` (Kruise's rollback detection); different
    from the canary ReplicaSet's -> ``replace`` (continuous release); the canary's -> nothing.
    """
    if stable_template is not None and templates_equal(stable_template, template):
        return "undo"
    if canary_template is not None and not templates_equal(canary_template, template):
        return "replace"
    return None


def approval_due(canary_status: Obj, st: RolloutStatus) -> bool:
    """``currentStepState: StepReady`` on the very step the run pauses at (what ``kubectl-kruise rollout
    approve`` patches). A ``StepReady`` left over for another step (a stale one) approves nothing."""
    return (
        canary_status.get("currentStepState") == StepState.STEP_READY.value
        and st.step_state == StepState.STEP_PAUSED
        and canary_status.get("currentStepIndex") == st.current_step_index
    )


def pause_answered(asked: Asked | None, st: RolloutStatus) -> Asked | None:
    """The memo of what was asked, once the run holds for our spec pause: a later release is news."""
    if asked is not None and asked[0] and st.held_by.endswith(HELD_BY_SPEC):
        return (True, st.held_by)
    return asked


def hold_action(spec_paused: bool, st: RolloutStatus, asked: Asked | None) -> ControlAction | None:
    """``spec.strategy.paused`` as the run's hold (the ``control`` pause/resume of `rollout pause`).

    The spec wins, as in Kruise: paused and not held -> pause; unpaused and held by the spec -> resume
    (a `rollout pause` hold is never released here). Nothing for a run that refuses holds now
    (Aborted, Failed, finalizing), or when this very request was sent and not answered yet.
    """
    held, by_spec = bool(st.held_by), st.held_by.endswith(HELD_BY_SPEC)
    if spec_paused and not held:
        action = ControlAction.PAUSE
    elif not spec_paused and by_spec:
        action = ControlAction.RESUME
    else:
        return None
    if st.phase in (Phase.ABORTED, Phase.FAILED) or st.finalizing:
        return None
    if asked == (spec_paused, st.held_by):
        return None
    return action


def plan_edit(steps: list[StepSpec], st: RolloutStatus) -> list[StepSpec] | None:
    """The Rollout's steps when they differ from the run's and keep their number (what Kruise's webhook
    lets through mid-rollout): the run recalculates its step from them. Another number of steps got
    past a webhook that was down; the run keeps its plan."""
    if steps == st.steps or len(steps) != len(st.steps):
        return None
    return steps


def jump_request(canary_status: Obj, st: RolloutStatus) -> int | None:
    """A ``nextStepIndex`` patched into the status (Kruise's step jump): the step asked for, or None.

    Only a value beside the run's own current step asks anything (a status the run has moved on from
    asks nothing), and the step after the current one is what the run writes itself. Any other
    integer is sent, out of range too: the run then writes its status again, which corrects it.
    """
    raw = canary_status.get("nextStepIndex")
    if not isinstance(raw, int) or isinstance(raw, bool) or st.current_step_index < 1:
        return None
    if canary_status.get("currentStepIndex") != st.current_step_index:
        return None
    return None if raw == next_step_index(st.current_step_index, st.total_steps) else raw
