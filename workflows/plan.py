"""Pure rollout arithmetic: batch sizes, surge/availability fenceposts, sub-step moves, readiness.

No Temporal, no Kubernetes, no clock: the workflow and the activities both call these functions,
and tests/unit/test_plan.py pins them with tables taken from Kruise.

Vocabulary: the *canary* ReplicaSet runs the new template, the *stable* one the old template.
A *step* (Kruise "batch") has a canary target; within a step the workflow makes *moves*: one
"set ReplicaSet X to N" at a time, chosen so that at every instant

    canary.spec + stable.spec            <= replicas + maxSurge          (surge bound)
    canary.ready + stable.ready          >= replicas - maxUnavailable    (availability bound)

where maxSurge/maxUnavailable are the Deployment's parked RollingUpdate values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from workflows.model import Snapshot, StepSpec

__all__ = [
    "MAX_STEPS",
    "Move",
    "calculate_batch_replicas",
    "failure_threshold_count",
    "floored_step",
    "is_batch_ready",
    "is_final_full_step",
    "next_move",
    "next_step_index",
    "parse_int_or_percent",
    "parse_steps",
    "plan_substeps",
    "replan_step",
    "same_but_pauses",
    "resolve_fenceposts",
    "scaled_value",
    "step_move",
    "step_targets",
    "validate_failure_threshold",
    "validate_steps",
]

MAX_STEPS = 50  # Kruise CRD: canary.steps maxItems
_PERCENT = re.compile(r"^(\d+)%$")


def parse_int_or_percent(value: int | str) -> tuple[int, bool]:
    """Split an IntOrString into ``(number, is_percent)``.

    Raises:
        ValueError: for anything but a non-negative int, a digit string or ``"N%"``.
    """
    if isinstance(value, bool):
        raise ValueError(f"invalid value {value!r}: want an integer or a percentage like 50%")
    if isinstance(value, int):
        return value, False
    text = str(value).strip()
    m = _PERCENT.match(text)
    if m:
        return int(m.group(1)), True
    if text.lstrip("-").isdigit():
        return int(text), False
    raise ValueError(f"invalid value {value!r}: want an integer or a percentage like 50%")


def scaled_value(value: int | str | None, total: int, *, round_up: bool) -> int:
    """Kubernetes' ``GetScaledValueFromIntOrPercent``: ints as is, percentages of ``total``."""
    if value is None:
        return 0
    number, is_percent = parse_int_or_percent(value)
    if not is_percent:
        return number
    exact = number * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def calculate_batch_replicas(step_replicas: int | str, total: int) -> int:
    """Canary pods for a step, Kruise partition style (``NewRSReplicasLimit``).

    ``ceil(p% * total)`` clamped to ``[0, total]``; a percentage other than exactly ``"100%"`` is
    then capped at ``total - 1`` when ``total > 1``. Integers are only clamped (10 on 5 gives 5).

    Examples: total=10: 1 -> 1, 50% -> 5, 90% -> 9, 100% -> 10; total=5: 90% -> 4;
    total=3: 60% -> 2, 80% -> 2; total=1: 20% -> 1.
    """
    number, is_percent = parse_int_or_percent(step_replicas)
    value = math.ceil(number * total / 100) if is_percent else number
    value = max(0, min(value, total))
    if is_percent and number != 100 and total > 1:
        value = min(value, total - 1)
    return value


def resolve_fenceposts(rolling_update: dict[str, Any] | None, replicas: int) -> tuple[int, int]:
    """``ResolveFenceposts``: maxSurge ceil, maxUnavailable floor, both 0 -> maxUnavailable 1.

    ``rolling_update`` is the Deployment's ``spec.strategy.rollingUpdate`` (camelCase keys);
    missing values default to 25% like the API server does.
    """
    ru = rolling_update or {}
    surge = scaled_value(ru.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = scaled_value(ru.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, replicas)


def failure_threshold_count(threshold: int | str | None, canary_target: int) -> int:
    """Unready canary pods tolerated when judging a batch (a percentage of the target, rounded up).

    ``None`` means 0, as Kruise's code does (not what its comment says).
    """
    return scaled_value(threshold, canary_target, round_up=True)


def is_final_full_step(step: StepSpec, index: int, total: int) -> bool:
    """Whether step ``index`` (1-based) of ``total`` is the last one and exactly ``100%``.

    Kruise does not pause after such a step: the rollout goes straight on to finalize.
    """
    return index == total and str(step.replicas).strip() == "100%"


def step_targets(step: StepSpec, replicas: int) -> tuple[int, int]:
    """``(canary, stable)`` pod targets of a step for the current ``spec.replicas``."""
    canary = calculate_batch_replicas(step.replicas, replicas)
    return canary, replicas - canary


def next_step_index(current: int, total: int) -> int:
    """Kruise's ``nextStepIndex``: the step after ``current`` (1-based), -1 after the last one."""
    return current + 1 if current < total else -1


def replan_step(old: Sequence[StepSpec], new: Sequence[StepSpec], current: int, replicas: int) -> int:
    """The step a running release goes to when its steps are edited (Kruise's ``recalculateCanaryStep``).

    The pods the current step of the *old* plan asks for are compared with the new steps, the current
    step first, then the others in order: the first whose pods are at least as many wins, else the
    last one looked at. Before any step (``current`` 0) it is step 1.
    """
    if current < 1:
        return 1
    planned = scaled_value(old[current - 1].replicas, replicas, round_up=True) if current <= len(old) else 0
    first = [current - 1] if current <= len(new) else []
    index = 0
    for i in first + [i for i in range(len(new)) if i != current - 1]:
        index = i + 1
        if planned <= scaled_value(new[i].replicas, replicas, round_up=True):
            break
    return index


def same_but_pauses(old: Sequence[StepSpec], new: Sequence[StepSpec]) -> bool:
    """Whether two plans differ at most in their pauses (Kruise's rollout hash leaves pauses out)."""
    return len(old) == len(new) and all(
        a.model_copy(update={"pause_seconds": None}) == b.model_copy(update={"pause_seconds": None})
        for a, b in zip(old, new, strict=True)
    )


def floored_step(step: StepSpec, floor: int, replicas: int) -> StepSpec:
    """``step``, or ``floor`` pods if it asks for fewer: after a jump or a plan edit the canary keeps the
    pods it has (Kruise's partition style never takes updated pods back)."""
    floor = min(floor, replicas)
    if floor <= 0 or step_targets(step, replicas)[0] >= floor:
        return step
    return step.model_copy(update={"replicas": floor})


@dataclass(frozen=True)
class Move:
    """The next thing to do inside a step.

    Attributes:
        action: ``scale`` (set ``side`` to ``replicas``), ``wait`` (readiness must improve first)
            or ``done`` (targets reached and the batch is ready).
        side: ``canary`` or ``stable`` for a scale.
        replicas: the new ``spec.replicas`` for a scale.
        reason: which inequality holds the step back, for status and heartbeat details.
    """

    action: Literal["scale", "wait", "done"]
    side: Literal["canary", "stable"] | None = None
    replicas: int = 0
    reason: str = ""


def is_batch_ready(
    canary_spec: int,
    canary_ready: int,
    stable_spec: int,
    stable_ready: int,
    *,
    canary_target: int,
    stable_target: int,
    failure_threshold: int = 0,
) -> bool:
    """Both ReplicaSets at their targets, canary ready + failureThreshold >= target, stable ready."""
    return (
        canary_spec == canary_target
        and stable_spec == stable_target
        and canary_ready + failure_threshold >= canary_target
        and stable_ready >= stable_target
    )


def next_move(
    canary_spec: int,
    canary_ready: int,
    stable_spec: int,
    stable_ready: int,
    *,
    canary_target: int,
    stable_target: int,
    replicas: int,
    max_surge: int,
    max_unavailable: int,
    failure_threshold: int = 0,
    grow_canary: bool = True,
    shrink_first: bool = False,
) -> Move:
    """Choose the next single write that moves both ReplicaSets towards their targets.

    Grow first (the side that needs pods, canary when rolling forward, stable when rolling back)
    as far as ``replicas + maxSurge`` allows; otherwise shrink the other side as far as
    ``replicas - maxUnavailable`` ready pods allow, counting only pods that are ready now.
    Scaling down removes unready pods first, so shrinking to ``n`` keeps ``min(ready, n)`` ready.

    A growing side at 0 always gets at least 1 pod (Kruise's ``NewRSReplicasLowerBound``): with
    maxSurge 0 the other side would otherwise be the only active ReplicaSet, and the paused native
    controller scales a lone active ReplicaSet back to ``spec.replicas``. That one pod may exceed
    ``replicas + maxSurge`` by one when maxSurge is 0.

    ``shrink_first``: when the surge bound stops a grow short of its target and a shrink is allowed
    now, shrink first, so the grow reaches its target in one write instead of two (same bounds, one
    write fewer, and no second write to a ReplicaSet whose status the controller is still updating).
    """
    spec = {"canary": canary_spec, "stable": stable_spec}
    ready = {"canary": canary_ready, "stable": stable_ready}
    target = {"canary": canary_target, "stable": stable_target}
    grow_order: tuple[Literal["canary", "stable"], Literal["canary", "stable"]] = (
        ("canary", "stable") if grow_canary else ("stable", "canary")
    )
    max_total = replicas + max_surge
    min_ready = replicas - max_unavailable
    total = canary_spec + stable_spec

    def grow() -> tuple[Move | None, bool]:
        """The grow move, and whether it stops short of its target."""
        for side in grow_order:
            if spec[side] < target[side]:
                n = min(target[side], spec[side] + max(0, max_total - total))
                if spec[side] == 0:
                    n = max(n, 1)
                if n > spec[side]:
                    return Move("scale", side, n, f"scale {side} up to {n}"), n < target[side]
        return None, False

    def shrink() -> Move | None:
        for side in reversed(grow_order):
            other = "stable" if side == "canary" else "canary"
            if spec[side] > target[side]:
                n = max(target[side], min_ready - ready[other])
                if n < spec[side]:
                    return Move("scale", side, n, f"scale {side} down to {n}")
        return None

    up, short = grow()
    if shrink_first and short:
        down = shrink()
        if down is not None:
            return down
    move = up or shrink()
    if move is not None:
        return move
    ft = failure_threshold
    if is_batch_ready(
        canary_spec,
        canary_ready,
        stable_spec,
        stable_ready,
        canary_target=canary_target,
        stable_target=stable_target,
        failure_threshold=ft,
    ):
        return Move("done", reason="batch ready")
    if canary_spec == canary_target and stable_spec == stable_target:
        return Move(
            "wait",
            reason=(
                f"waiting for pods to become ready: canary {canary_ready}+{ft} of {canary_target}, "
                f"stable {stable_ready} of {stable_target}"
            ),
        )
    return Move(
        "wait",
        reason=(
            f"waiting for ready pods before scaling further: {canary_ready + stable_ready} ready, "
            f"at least {min_ready} must stay ready"
        ),
    )


def plan_substeps(
    canary: int,
    stable: int,
    *,
    canary_target: int,
    stable_target: int,
    replicas: int,
    max_surge: int,
    max_unavailable: int,
    grow_canary: bool = True,
    limit: int = 1000,
) -> list[tuple[int, int]]:
    """Simulate ``next_move`` assuming every pod becomes ready before the next move.

    Returns the ``(canary, stable)`` spec after each write (used by the table tests).
    """
    out: list[tuple[int, int]] = []
    c_ready, s_ready = canary, stable
    for _ in range(limit):
        move = next_move(
            canary,
            c_ready,
            stable,
            s_ready,
            canary_target=canary_target,
            stable_target=stable_target,
            replicas=replicas,
            max_surge=max_surge,
            max_unavailable=max_unavailable,
            grow_canary=grow_canary,
        )
        if move.action == "done":
            return out
        if move.action == "wait":
            c_ready, s_ready = canary, stable  # pods become ready
            continue
        if move.side == "canary":
            canary = move.replicas
            c_ready = min(c_ready, canary)
        else:
            stable = move.replicas
            s_ready = min(s_ready, stable)
        out.append((canary, stable))
    raise RuntimeError("plan did not converge")  # pragma: no cover - guards the loop


# --- validation (Kruise's validating webhook, section 1.2/1.4 of the reference) -----------------------


def parse_steps(text: str, pause_seconds: int | None = None) -> list[StepSpec]:
    """Parse ``--steps 1,50%,100%`` into steps that all pause the same way.

    Raises:
        ValueError: on an empty list or a token that is neither an int nor ``N%``.
    """
    tokens = [t.strip() for t in text.split(",")]
    if not text.strip() or any(not t for t in tokens):
        raise ValueError(f"invalid --steps {text!r}: want a comma list like 1,50%,100%")
    steps: list[StepSpec] = []
    for token in tokens:
        number, is_percent = parse_int_or_percent(token)
        steps.append(StepSpec(replicas=f"{number}%" if is_percent else number, pause_seconds=pause_seconds))
    return steps


def validate_steps(steps: Sequence[StepSpec]) -> None:
    """Apply Kruise's step rules.

    At least one and at most 50 steps; replicas > 0; a percentage in (0%, 100%]; adjacent steps of
    the same kind (int or %) must not decrease; pause durations non-negative.

    Raises:
        ValueError: with Kruise's message for the first broken rule.
    """
    if not steps:
        raise ValueError("invalid steps: at least one step is required")
    if len(steps) > MAX_STEPS:
        raise ValueError(f"invalid steps: at most {MAX_STEPS} steps are allowed, got {len(steps)}")
    previous: tuple[int, bool] | None = None
    for i, step in enumerate(steps, start=1):
        number, is_percent = parse_int_or_percent(step.replicas)
        if number <= 0 or (is_percent and number > 100):
            raise ValueError(
                f"invalid steps: step {i} replicas {step.replicas!r} must be between 1 and replicas "
                "or 1% and 100%"
            )
        if previous is not None and previous[1] == is_percent and number < previous[0]:
            raise ValueError(
                f"invalid steps: step {i} replicas {step.replicas!r} is smaller than step {i - 1}; "
                "steps must be a non-decreasing sequence"
            )
        if step.pause_seconds is not None and step.pause_seconds < 0:
            raise ValueError(f"invalid steps: step {i} pause duration must be >= 0")
        previous = (number, is_percent)


def validate_failure_threshold(value: int | str | None) -> None:
    """failureThreshold: a non-negative int or a percentage in [0%, 100%].

    Raises:
        ValueError: otherwise.
    """
    if value is None:
        return
    number, is_percent = parse_int_or_percent(value)
    if number < 0 or (is_percent and number > 100):
        raise ValueError(f"invalid failureThreshold {value!r}: want >= 0 or 0%..100%")


def move_for(
    snap: Snapshot,
    *,
    canary_target: int,
    stable_target: int,
    max_surge: int,
    max_unavailable: int,
    failure_threshold: int = 0,
    grow_canary: bool = True,
    shrink_first: bool = False,
) -> Move:
    """``next_move`` for the counts of a snapshot (the workflow and the activities share this)."""
    return next_move(
        snap.canary.replicas,
        snap.canary.ready_replicas,
        snap.stable.replicas,
        snap.stable.ready_replicas,
        canary_target=canary_target,
        stable_target=stable_target,
        replicas=snap.replicas,
        max_surge=max_surge,
        max_unavailable=max_unavailable,
        failure_threshold=failure_threshold,
        grow_canary=grow_canary,
        shrink_first=shrink_first,
    )


def step_move(
    snap: Snapshot,
    step: StepSpec | None,
    rolling_update: dict[str, Any] | None,
    failure_threshold: int | str | None,
    *,
    shrink_first: bool = False,
    back: bool = False,
) -> tuple[Move, int]:
    """A step's next move from a snapshot, and the surge it allows (for the max-replicas annotation).

    ``step`` ``None`` is the hand-back: everything to the canary, every pod ready. ``back`` is the
    way back (undo, abort, retarget): everything to the stable ReplicaSet, the canary to 0.
    """
    if back:
        canary_target, stable_target, threshold = 0, snap.replicas, 0
    elif step is None:
        canary_target, stable_target, threshold = snap.replicas, 0, 0
    else:
        canary_target, stable_target = step_targets(step, snap.replicas)
        threshold = failure_threshold_count(failure_threshold, canary_target)
    surge, unavailable = resolve_fenceposts(rolling_update, snap.replicas)
    move = move_for(
        snap,
        canary_target=canary_target,
        stable_target=stable_target,
        max_surge=surge,
        max_unavailable=unavailable,
        failure_threshold=threshold,
        grow_canary=not back,
        shrink_first=shrink_first,
    )
    return move, surge
