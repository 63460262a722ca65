"""Pure plan math: Kruise partition sizes, fenceposts, sub-step moves, readiness, step validation."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from workflows import plan
from workflows.model import StepSpec


@dataclass(frozen=True)
class BatchCase:
    name: str
    replicas: int
    step: int | str
    want: int


BATCH_CASES = [
    # Kruise TestNewRSReplicasLimit-style rows (reference 2.1).
    BatchCase("n=1 20% rounds up to 1, no n-1 cap", 1, "20%", 1),
    BatchCase("n=1 50%", 1, "50%", 1),
    BatchCase("n=1 100%", 1, "100%", 1),
    BatchCase("n=1 int 1", 1, 1, 1),
    BatchCase("n=1 int 5 clamped", 1, 5, 1),
    BatchCase("n=3 20%", 3, "20%", 1),
    BatchCase("n=3 40%", 3, "40%", 2),
    BatchCase("n=3 60%", 3, "60%", 2),
    BatchCase("n=3 80% capped at n-1", 3, "80%", 2),
    BatchCase("n=3 90% capped at n-1", 3, "90%", 2),
    BatchCase("n=3 100%", 3, "100%", 3),
    BatchCase("n=5 20%", 5, "20%", 1),
    BatchCase("n=5 40%", 5, "40%", 2),
    BatchCase("n=5 60%", 5, "60%", 3),
    BatchCase("n=5 80%", 5, "80%", 4),
    BatchCase("n=5 90% capped at n-1", 5, "90%", 4),
    BatchCase("n=5 100%", 5, "100%", 5),
    BatchCase("n=5 int 10 larger than replicas", 5, 10, 5),
    BatchCase("n=5 int 5 equals replicas (no cap)", 5, 5, 5),
    BatchCase("n=10 20%", 10, "20%", 2),
    BatchCase("n=10 50% (seed)", 10, "50%", 5),
    BatchCase("n=10 90% capped at n-1", 10, "90%", 9),
    BatchCase("n=10 99% capped at n-1", 10, "99%", 9),
    BatchCase("n=10 100% (seed)", 10, "100%", 10),
    BatchCase("n=10 int 1 (seed)", 10, 1, 1),
    BatchCase("n=10 int 20 larger than replicas", 10, 20, 10),
    BatchCase("n=20 50% after kubectl scale", 20, "50%", 10),
]


@pytest.mark.parametrize("case", BATCH_CASES, ids=[c.name for c in BATCH_CASES])
def test_calculate_batch_replicas(case: BatchCase) -> None:
    assert plan.calculate_batch_replicas(case.step, case.replicas) == case.want


@pytest.mark.parametrize(
    ("rolling_update", "replicas", "want"),
    [
        ({"maxSurge": "25%", "maxUnavailable": "25%"}, 10, (3, 2)),
        ({"maxSurge": "25%", "maxUnavailable": "25%"}, 20, (5, 5)),
        ({"maxSurge": "25%", "maxUnavailable": "25%"}, 3, (1, 0)),
        ({"maxSurge": 0, "maxUnavailable": 0}, 4, (0, 1)),
        ({"maxSurge": 0, "maxUnavailable": 1}, 4, (0, 1)),
        ({"maxSurge": "50%", "maxUnavailable": 0}, 5, (3, 0)),
        (None, 10, (3, 2)),
    ],
    ids=["seed-10", "seed-20", "n3-floor-unavail", "both-zero", "surge0", "surge50", "defaults"],
)
def test_resolve_fenceposts(rolling_update: dict | None, replicas: int, want: tuple[int, int]) -> None:
    assert plan.resolve_fenceposts(rolling_update, replicas) == want


def _substeps(c: int, s: int, ct: int, st: int, n: int, surge: int, unavail: int, grow_canary: bool = True):
    return plan.plan_substeps(
        c,
        s,
        canary_target=ct,
        stable_target=st,
        replicas=n,
        max_surge=surge,
        max_unavailable=unavail,
        grow_canary=grow_canary,
    )


def test_seed_substeps() -> None:
    """The seed: 10 replicas, 25%/25% (surge 3, unavailable 2), steps 1, 50%, 100%."""
    assert _substeps(0, 10, 1, 9, 10, 3, 2) == [(1, 10), (1, 9)]
    # Stable shrinks as soon as enough pods are ready: canary 4 (1 ready) + stable 7 = 8 ready.
    assert _substeps(1, 9, 5, 5, 10, 3, 2) == [(4, 9), (4, 7), (5, 7), (5, 5)]
    assert _substeps(5, 5, 10, 0, 10, 3, 2) == [(8, 5), (8, 3), (10, 3), (10, 0)]


def test_undo_substeps_grow_stable_first() -> None:
    assert _substeps(5, 5, 0, 10, 10, 3, 2, grow_canary=False) == [(5, 8), (3, 8), (3, 10), (0, 10)]


def test_surge_zero_lower_bound_one_pod() -> None:
    """maxSurge 0: the canary still gets 1 pod first (Kruise NewRSReplicasLowerBound)."""
    assert _substeps(0, 4, 2, 2, 4, 0, 1) == [(1, 4), (1, 3), (1, 2), (2, 2)]


def test_scale_up_mid_rollout_stable_absorbs() -> None:
    """kubectl scale 10 -> 20 while at 5/5, step 50%: targets 10/10."""
    ct, st = plan.step_targets(StepSpec(replicas="50%"), 20)
    assert (ct, st) == (10, 10)
    steps = _substeps(5, 5, ct, st, 20, 5, 5)
    assert steps[-1] == (10, 10)
    assert all(c + s <= 25 for c, s in steps)


def test_scale_down_mid_rollout_shrinks_both() -> None:
    steps = _substeps(5, 5, 3, 2, 5, 2, 1)
    assert steps[-1] == (3, 2)
    assert all(c + s <= 10 for c, s in steps)


def _simulate(
    c: int, s: int, ct: int, st: int, n: int, surge: int, unavail: int, shrink_first: bool = False
) -> list[tuple[int, int, int, int]]:
    """Run next_move with explicit readiness: new pods become ready only when the plan waits."""
    cr, sr = c, s
    states: list[tuple[int, int, int, int]] = []
    for _ in range(1000):
        m = plan.next_move(
            c,
            cr,
            s,
            sr,
            canary_target=ct,
            stable_target=st,
            replicas=n,
            max_surge=surge,
            max_unavailable=unavail,
            shrink_first=shrink_first,
        )
        if m.action == "done":
            return states
        if m.action == "wait":
            cr, sr = c, s
            continue
        if m.side == "canary":
            c, cr = m.replicas, min(cr, m.replicas)
        else:
            s, sr = m.replicas, min(sr, m.replicas)
        states.append((c, cr, s, sr))
    raise AssertionError("no convergence")


@pytest.mark.parametrize(
    ("n", "surge_pct", "unavail_pct", "shrink_first"),
    list(
        itertools.product(
            [1, 2, 3, 5, 10, 17], ["0%", "25%", "50%", "100%"], ["0%", "25%", "50%"], [False, True]
        )
    ),
)
def test_bounds_hold_for_every_substep(n: int, surge_pct: str, unavail_pct: str, shrink_first: bool) -> None:
    """Property: spec total <= n + surge and ready >= n - unavailable after every single write."""
    surge, unavail = plan.resolve_fenceposts({"maxSurge": surge_pct, "maxUnavailable": unavail_pct}, n)
    c, s = 0, n
    steps: list[int | str] = [1, "20%", "50%", "90%", "100%"]
    for step in steps:
        ct = plan.calculate_batch_replicas(step, n)
        for c2, cr, s2, sr in _simulate(c, s, ct, n - ct, n, surge, unavail, shrink_first):
            lower_bound_pod = surge == 0 and c == 0 and c2 == 1
            assert c2 + s2 <= n + surge + (1 if lower_bound_pod else 0), (step, c2, s2)
            assert cr + sr >= n - unavail, (step, c2, cr, s2, sr)
            c, s = c2, s2
        assert (c, s) == (ct, n - ct)
    # and back again (undo): stable grows first
    for _c, cr, _s, sr in _simulate(c, s, 0, n, n, surge, unavail):
        assert cr + sr >= n - unavail


@pytest.mark.parametrize(
    ("name", "counts", "targets", "ft", "want"),
    [
        ("ready: all canary ready", (5, 5, 5, 5), (5, 5), 0, True),
        ("not ready: one canary pod unready", (5, 4, 5, 5), (5, 5), 0, False),
        ("ready: failureThreshold 1 tolerates one", (5, 4, 5, 5), (5, 5), 1, True),
        ("not ready: failureThreshold 1, two unready", (5, 3, 5, 5), (5, 5), 1, False),
        ("not ready: canary spec below target", (4, 4, 5, 5), (5, 5), 1, False),
        ("not ready: stable not ready", (5, 5, 5, 4), (5, 5), 0, False),
    ],
)
def test_is_batch_ready(name: str, counts: tuple, targets: tuple, ft: int, want: bool) -> None:
    c, cr, s, sr = counts
    assert (
        plan.is_batch_ready(
            c, cr, s, sr, canary_target=targets[0], stable_target=targets[1], failure_threshold=ft
        )
        is want
    )


@pytest.mark.parametrize(
    ("threshold", "target", "want"),
    [(None, 5, 0), (0, 5, 0), (2, 5, 2), ("20%", 5, 1), ("10%", 5, 1), ("50%", 3, 2), ("0%", 10, 0)],
)
def test_failure_threshold_count(threshold: int | str | None, target: int, want: int) -> None:
    assert plan.failure_threshold_count(threshold, target) == want


def test_next_move_waits_for_readiness_before_shrinking() -> None:
    move = plan.next_move(
        5, 0, 8, 8, canary_target=5, stable_target=5, replicas=10, max_surge=3, max_unavailable=2
    )
    assert move.action == "wait"
    assert "at least 8 must stay ready" in move.reason


def test_next_move_done_with_failure_threshold() -> None:
    move = plan.next_move(
        5,
        4,
        5,
        5,
        canary_target=5,
        stable_target=5,
        replicas=10,
        max_surge=3,
        max_unavailable=2,
        failure_threshold=1,
    )
    assert move.action == "done"


def test_parse_steps_seed() -> None:
    steps = plan.parse_steps("1,50%,100%")
    assert [s.replicas for s in steps] == [1, "50%", "100%"]
    assert all(s.pause_seconds is None for s in steps)
    assert plan.parse_steps("1, 2", 30)[1].pause_seconds == 30


@pytest.mark.parametrize("text", ["", "1,,2", "abc", "1,x%", "50%%"])
def test_parse_steps_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        plan.parse_steps(text)


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([], "at least one step"),
        ([0], "must be between 1 and replicas"),
        (["0%"], "must be between 1 and replicas"),
        (["150%"], "must be between 1 and replicas"),
        ([-1], "must be between 1 and replicas"),
        (["50%", "20%"], "non-decreasing"),
        ([5, 2], "non-decreasing"),
        (list(range(1, 52)), "at most 50 steps"),
    ],
    ids=["empty", "zero", "zero-pct", "150pct", "negative", "decreasing-pct", "decreasing-int", "too-many"],
)
def test_validate_steps_rejects(steps: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan.validate_steps([StepSpec(replicas=s) for s in steps])


@pytest.mark.parametrize(
    "steps",
    [[1, "50%", "100%"], ["20%", "40%", "100%"], [1, "10%", 2, "100%"], [10], ["100%"], [3, 3]],
    ids=["seed", "pct", "mixed-kinds-compared-per-kind", "int-only", "one-step", "equal"],
)
def test_validate_steps_accepts(steps: list) -> None:
    plan.validate_steps([StepSpec(replicas=s) for s in steps])


def test_validate_negative_pause() -> None:
    with pytest.raises(ValueError, match="pause duration"):
        plan.validate_steps([StepSpec(replicas=1, pause_seconds=-1)])


@pytest.mark.parametrize("value", [-1, "101%", "abc"])
def test_validate_failure_threshold_rejects(value: int | str) -> None:
    with pytest.raises(ValueError):
        plan.validate_failure_threshold(value)


@pytest.mark.parametrize(
    ("replicas", "index", "total", "final"),
    [
        ("100%", 3, 3, True),
        (" 100% ", 2, 2, True),
        ("100%", 2, 3, False),  # not the last step: it pauses
        (10, 3, 3, False),  # an absolute count, even if it is every pod, pauses (Kruise compares the text)
        ("50%", 3, 3, False),
    ],
    ids=["last-100%", "last-100%-spaces", "not-last", "last-int", "last-50%"],
)
def test_is_final_full_step(replicas: int | str, index: int, total: int, final: bool) -> None:
    assert plan.is_final_full_step(StepSpec(replicas=replicas), index, total) is final


def _writes(shrink_first: bool, n: int, surge: int, unavail: int) -> list[tuple[int, int]]:
    out = [(0, n)]
    for step in [1, "50%", "100%"]:
        ct = plan.calculate_batch_replicas(step, n)
        c, s = out[-1]
        moves = _simulate(c, s, ct, n - ct, n, surge, unavail, shrink_first)
        out.extend((c2, s2) for c2, _cr, s2, _sr in moves)
    return out[1:]


def test_shrink_first_reaches_the_seed_batches_in_fewer_writes() -> None:
    """The seed (10 pods, 25%/25%: surge 3, unavailable 2): shrinking stable first lets the canary
    reach 5 and 10 in one write each, and never writes the same ReplicaSet twice without a wait."""
    grow_first = [(1, 10), (1, 9), (4, 9), (4, 7), (5, 7), (5, 5), (8, 5), (8, 3), (10, 3), (10, 0)]
    assert _writes(False, 10, 3, 2) == grow_first
    assert _writes(True, 10, 3, 2) == [(1, 10), (1, 9), (1, 7), (5, 7), (5, 5), (5, 3), (10, 3), (10, 0)]


@pytest.mark.parametrize(
    ("n", "surge_pct", "unavail_pct"),
    list(itertools.product([2, 3, 5, 10, 17], ["0%", "25%", "50%", "100%"], ["0%", "25%", "50%"])),
)
def test_shrink_first_never_needs_more_writes(n: int, surge_pct: str, unavail_pct: str) -> None:
    surge, unavail = plan.resolve_fenceposts({"maxSurge": surge_pct, "maxUnavailable": unavail_pct}, n)
    assert len(_writes(True, n, surge, unavail)) <= len(_writes(False, n, surge, unavail))
