"""Edges of workflows/plan.py that its surviving mutants showed untested (``make mutate``, docs/testing.md):
exact moves and their defaults, the grow order when both sides need pods, the n-1 cap at 2 replicas,
the snapshot-level ``move_for``, and the exact validation messages the CLI prints."""

from __future__ import annotations

import pytest

from workflows import plan
from workflows.model import ReplicaSetCounts, Snapshot, StepSpec


@pytest.mark.parametrize(
    ("step", "total", "expected"),
    [("0%", 10, 0), (0, 5, 0), ("90%", 2, 1), ("50%", 2, 1), ("100%", 2, 2), (2, 2, 2)],
)
def test_batch_replicas_edges(step: int | str, total: int, expected: int) -> None:
    assert plan.calculate_batch_replicas(step, total) == expected


def test_next_move_is_exact_and_defaults_to_no_failure_threshold() -> None:
    # One canary pod short of the target, nothing else to do: wait (no failureThreshold by default).
    move = plan.next_move(
        3, 2, 2, 2, canary_target=3, stable_target=2, replicas=5, max_surge=0, max_unavailable=1
    )
    assert move.action == "wait"
    assert plan.next_move(
        2, 2, 3, 3, canary_target=3, stable_target=2, replicas=5, max_surge=1, max_unavailable=0
    ) == plan.Move("scale", "canary", 3, "scale canary up to 3")
    assert plan.next_move(
        3, 3, 3, 3, canary_target=3, stable_target=2, replicas=5, max_surge=1, max_unavailable=0
    ) == plan.Move("scale", "stable", 2, "scale stable down to 2")


def test_both_sides_growing_follow_the_direction() -> None:
    """After a scale-up both ReplicaSets need pods: forward grows the canary first, rollback stable."""
    kw = dict(canary_target=3, stable_target=3, replicas=6, max_surge=0, max_unavailable=0)
    assert plan.next_move(1, 1, 1, 1, **kw) == plan.Move("scale", "canary", 3, "scale canary up to 3")  # type: ignore[arg-type]
    assert plan.next_move(1, 1, 1, 1, grow_canary=False, **kw) == plan.Move(  # type: ignore[arg-type]
        "scale", "stable", 3, "scale stable up to 3"
    )
    forward = plan.plan_substeps(1, 1, **kw)  # type: ignore[arg-type]
    back = plan.plan_substeps(1, 1, grow_canary=False, **kw)  # type: ignore[arg-type]
    assert forward[0] == (3, 1) and back[0] == (1, 3)


def test_move_for_reads_the_snapshot() -> None:
    snap = Snapshot(
        replicas=10,
        stable=ReplicaSetCounts(name="s", replicas=9, ready_replicas=9),
        canary=ReplicaSetCounts(name="c", replicas=1, ready_replicas=0),
    )
    # Canary not ready: with failureThreshold 0 it waits, with 1 the batch counts as ready.
    assert plan.move_for(snap, canary_target=1, stable_target=9, max_surge=3, max_unavailable=2).action == (
        "wait"
    )
    assert plan.move_for(
        snap, canary_target=1, stable_target=9, max_surge=3, max_unavailable=2, failure_threshold=1
    ) == plan.Move("done", reason="batch ready")
    # Next batch: canary grows by the surge (9 + 4 = 13), stable shrinks by the ready canary pods.
    assert plan.move_for(snap, canary_target=5, stable_target=5, max_surge=3, max_unavailable=2) == plan.Move(
        "scale", "canary", 4, "scale canary up to 4"
    )
    # Rolling back (grow_canary False): stable grows first.
    assert plan.move_for(
        snap, canary_target=0, stable_target=10, max_surge=3, max_unavailable=2, grow_canary=False
    ) == plan.Move("scale", "stable", 10, "scale stable up to 10")


def test_parse_steps_rejects_an_empty_token_with_the_usage() -> None:
    with pytest.raises(ValueError, match=r"^invalid --steps '1,,2': want a comma list like 1,50%,100%$"):
        plan.parse_steps("1,,2")


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([], "invalid steps: at least one step is required"),
        (["101%"], "invalid steps: step 1 replicas '101%' must be between 1 and replicas or 1% and 100%"),
        ([1, 0], "invalid steps: step 2 replicas 0 must be between 1 and replicas or 1% and 100%"),
        (
            ["50%", "20%"],
            "invalid steps: step 2 replicas '20%' is smaller than step 1; steps must be a non-decreasing "
            "sequence",
        ),
        ([1] * 51, "invalid steps: at most 50 steps are allowed, got 51"),
    ],
)
def test_validate_steps_messages(steps: list[int | str], message: str) -> None:
    with pytest.raises(ValueError) as err:
        plan.validate_steps([StepSpec(replicas=r) for r in steps])
    assert str(err.value) == message


def test_validate_steps_accepts_the_limits() -> None:
    plan.validate_steps([StepSpec(replicas=1)] * plan.MAX_STEPS)
    plan.validate_steps([StepSpec(replicas="100%", pause_seconds=0)])
    with pytest.raises(ValueError, match="^invalid steps: step 1 pause duration must be >= 0$"):
        plan.validate_steps([StepSpec(replicas=1, pause_seconds=-1)])


@pytest.mark.parametrize("value", [0, "0%", "100%", 7])
def test_failure_threshold_accepts(value: int | str) -> None:
    plan.validate_failure_threshold(value)


@pytest.mark.parametrize("value", [-1, "101%"])
def test_failure_threshold_rejects_with_the_message(value: int | str) -> None:
    with pytest.raises(ValueError) as err:
        plan.validate_failure_threshold(value)
    assert str(err.value) == f"invalid failureThreshold {value!r}: want >= 0 or 0%..100%"


def test_batch_replicas_above_one_hundred_pods() -> None:
    assert plan.calculate_batch_replicas("50%", 202) == 101
    assert plan.calculate_batch_replicas("1%", 10000) == 100


def test_is_batch_ready_defaults_to_no_failure_threshold() -> None:
    assert not plan.is_batch_ready(3, 2, 2, 2, canary_target=3, stable_target=2)
    assert plan.is_batch_ready(3, 2, 2, 2, canary_target=3, stable_target=2, failure_threshold=1)


def test_wait_reasons_are_exact() -> None:
    kw = dict(canary_target=3, stable_target=2, replicas=5, max_surge=0, max_unavailable=1)
    assert plan.next_move(3, 2, 2, 2, **kw) == plan.Move(  # type: ignore[arg-type]
        "wait", reason="waiting for pods to become ready: canary 2+0 of 3, stable 2 of 2"
    )
    # Canary still below target and no room to scale: wait for ready pods (4 ready, 4 must stay).
    assert plan.next_move(2, 1, 3, 3, **kw) == plan.Move(  # type: ignore[arg-type]
        "wait", reason="waiting for ready pods before scaling further: 4 ready, at least 4 must stay ready"
    )


def test_move_for_grows_the_canary_first_by_default() -> None:
    snap = Snapshot(
        replicas=6,
        stable=ReplicaSetCounts(name="s", replicas=1, ready_replicas=1),
        canary=ReplicaSetCounts(name="c", replicas=1, ready_replicas=1),
    )
    kw = dict(canary_target=3, stable_target=3, max_surge=0, max_unavailable=0)
    assert plan.move_for(snap, **kw) == plan.Move("scale", "canary", 3, "scale canary up to 3")  # type: ignore[arg-type]
    assert plan.move_for(snap, grow_canary=False, **kw) == plan.Move(  # type: ignore[arg-type]
        "scale", "stable", 3, "scale stable up to 3"
    )


def test_parse_int_or_percent_negative_and_garbage() -> None:
    assert plan.parse_int_or_percent("-3") == (-3, False)
    assert plan.parse_int_or_percent("40%") == (40, True)
    with pytest.raises(ValueError) as err:
        plan.parse_int_or_percent("x1")
    assert str(err.value) == "invalid value 'x1': want an integer or a percentage like 50%"


def test_parse_int_or_percent_rejects_a_bool() -> None:
    with pytest.raises(ValueError) as err:
        plan.parse_int_or_percent(True)
    assert str(err.value) == "invalid value True: want an integer or a percentage like 50%"


def test_step_move_targets_threshold_and_surge() -> None:
    """What converge_step and step_move ask the plan: the step's targets, its failure threshold, the surge."""
    snap = Snapshot(
        replicas=10,
        stable=ReplicaSetCounts(name="s", replicas=9, ready_replicas=9),
        canary=ReplicaSetCounts(name="c", replicas=1, ready_replicas=1),
    )
    ru = {"maxSurge": "25%", "maxUnavailable": "25%"}
    half = StepSpec(replicas="50%")
    grow = plan.Move("scale", "canary", 4, "scale canary up to 4")
    assert plan.step_move(snap, half, ru, None) == (grow, 3)
    assert plan.step_move(snap, half, ru, None, shrink_first=True) == (
        plan.Move("scale", "stable", 7, "scale stable down to 7"),
        3,
    )
    # None: the hand-back's converge, all pods to the canary.
    assert plan.step_move(snap, None, {"maxSurge": 1, "maxUnavailable": 0}, "50%")[0] == plan.Move(
        "scale", "canary", 2, "scale canary up to 2"
    )
    # The failure threshold counts against the step's canary target: 1 of 1 unready is tolerated at 100%.
    waiting = snap.model_copy(update={"canary": ReplicaSetCounts(name="c", replicas=1, ready_replicas=0)})
    assert plan.step_move(waiting, StepSpec(replicas=1), ru, None)[0].action == "wait"
    assert plan.step_move(waiting, StepSpec(replicas=1), ru, "100%")[0].action == "done"
    # The hand-back's converge ignores it: every pod must be ready.
    full = Snapshot(
        replicas=10,
        stable=ReplicaSetCounts(name="s", replicas=0, ready_replicas=0),
        canary=ReplicaSetCounts(name="c", replicas=10, ready_replicas=9),
    )
    assert plan.step_move(full, StepSpec(replicas="100%"), ru, "50%")[0].action == "done"
    assert plan.step_move(full, None, ru, "50%")[0].action == "wait"
