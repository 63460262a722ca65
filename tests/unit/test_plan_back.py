"""``plan.step_move(back=True)``: the way back (undo, abort, retarget) as one engine's moves."""

from __future__ import annotations

import pytest

from workflows import plan
from workflows.model import ReplicaSetCounts, Snapshot


def snap(canary: tuple[int, int], stable: tuple[int, int], replicas: int = 10) -> Snapshot:
    return Snapshot(
        replicas=replicas,
        canary=ReplicaSetCounts(name="web-canary", replicas=canary[0], ready_replicas=canary[1]),
        stable=ReplicaSetCounts(name="web-stable", replicas=stable[0], ready_replicas=stable[1]),
    )


ROLLING = {"maxSurge": "25%", "maxUnavailable": "25%"}


@pytest.mark.parametrize(
    ("state", "action", "side", "replicas"),
    [
        # stable cannot reach 10 within replicas + maxSurge (13): the canary shrinks first, keeping 8 ready
        (snap((4, 4), (6, 6)), "scale", "canary", 2),
        (snap((2, 2), (6, 6)), "scale", "stable", 10),  # now stable grows to full in one write
        (snap((4, 4), (9, 9)), "scale", "canary", 0),  # 13 ready: the canary goes to 0 at once
        (snap((0, 0), (10, 10)), "done", "", None),  # all on stable: nothing to do
        (snap((0, 0), (10, 7)), "wait", "", None),  # stable at full, not all ready: wait
    ],
    ids=["shrink-canary-first", "grow-stable", "canary-to-0", "done", "wait-for-stable-ready"],
)
def test_the_way_back_moves_towards_all_stable(
    state: Snapshot, action: str, side: str, replicas: int | None
) -> None:
    move, surge = plan.step_move(state, None, ROLLING, None, shrink_first=True, back=True)
    assert surge == 3
    assert move.action == action
    if action == "scale":
        assert (move.side, move.replicas) == (side, replicas)


def test_the_way_back_ignores_the_failure_threshold() -> None:
    """Rolling back waits for every stable pod; the step's failure threshold is for the canary."""
    move, _ = plan.step_move(snap((0, 0), (10, 9)), None, ROLLING, "20%", back=True)
    assert move.action == "wait"
