"""The replicaset controller's deletion ranking in detail (``ActivePodsWithRanks.Less`` with
LogarithmicScaleDown): the log2 age buckets, the time comparison with zero times and UID tie-breaks,
and each rule of ``compare_for_deletion`` in both argument orders. Added for the surviving mutants of
``make mutate`` (docs/testing.md)."""

from __future__ import annotations

from typing import Any

import pytest

from kubesim.controllers import podutil


@pytest.mark.parametrize(
    ("age_s", "rank"),
    [
        (1.0, 29),  # 1e9 ns: log2 = 29.9
        (2.0, 30),
        (1.073741823, 29),  # 2**30 - 1 ns: just below the bucket edge
        (1.1, 30),
        (1e-9, 0),  # one nanosecond
        (0.0, -1),  # not positive: -1, like Go
        (-5.0, -1),
    ],
)
def test_log_rank(age_s: float, rank: int) -> None:
    assert podutil._log_rank(100.0 - age_s, 100.0) == rank


@pytest.mark.parametrize(
    ("t1", "t2", "uid1", "uid2", "now", "expected"),
    [
        # Zero times sort first (afterOrZero), whatever ``now`` is.
        (0.0, 0.0, "a", "b", 100.0, 0),
        (0.0, 50.0, "a", "b", 100.0, -1),
        (50.0, 0.0, "a", "b", 100.0, 1),
        # Without a clock: the newer time first.
        (60.0, 50.0, "a", "b", 0.0, -1),
        (50.0, 60.0, "a", "b", 0.0, 1),
        # Different log2 buckets of the age: the younger first.
        (99.0, 36.0, "b", "a", 100.0, -1),
        (36.0, 99.0, "a", "b", 100.0, 1),
        # Same bucket: the UID decides.
        (99.0, 99.1, "a", "b", 100.0, -1),  # ages 1.0 s and 0.9 s: both in bucket 29
        (99.0, 99.1, "b", "a", 100.0, 1),
        (99.0, 99.1, "a", "a", 100.0, 0),
    ],
)
def test_compare_times(t1: float, t2: float, uid1: str, uid2: str, now: float, expected: int) -> None:
    assert podutil._compare_times(t1, t2, uid1, uid2, now) == expected


def _pod(
    name: str,
    *,
    node: str = "n1",
    phase: str = "Running",
    ready: bool = True,
    ready_at: str = "2026-01-01T00:00:00Z",
    restarts: int = 0,
    created: str = "2026-01-01T00:00:00Z",
    cost: int | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": name, "creationTimestamp": created}
    if cost is not None:
        meta["annotations"] = {podutil.DELETION_COST: str(cost)}
    return {
        "metadata": meta,
        "spec": {"nodeName": node},
        "status": {
            "phase": phase,
            "conditions": [
                {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": ready_at}
            ],
            "containerStatuses": [{"restartCount": restarts}],
        },
    }


NOW = 1767229200.0  # 2026-01-01T01:00:00Z


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (_pod("unscheduled", node=""), _pod("scheduled")),
        (_pod("pending", phase="Pending", ready=False), _pod("running", ready=False)),
        (_pod("unknown", phase="Unknown", ready=False), _pod("running", ready=False)),
        (_pod("notready", ready=False), _pod("ready")),
        (_pod("cheap", cost=-5), _pod("dear", cost=10)),
        (_pod("young", ready_at="2026-01-01T00:59:59Z"), _pod("old", ready_at="2026-01-01T00:00:00Z")),
        (_pod("flaky", restarts=4), _pod("calm", restarts=1)),
        (
            _pod("newer", created="2026-01-01T00:59:58Z"),
            _pod("older", created="2026-01-01T00:00:00Z"),
        ),
    ],
    ids=lambda p: p["metadata"]["name"],
)
def test_compare_for_deletion_each_rule_both_ways(first: dict[str, Any], second: dict[str, Any]) -> None:
    assert podutil.compare_for_deletion((first, 1), (second, 1), NOW) == -1
    assert podutil.compare_for_deletion((second, 1), (first, 1), NOW) == 1


def test_compare_for_deletion_doubled_up_first_and_equal_pods() -> None:
    a, b = _pod("a"), _pod("b")
    assert podutil.compare_for_deletion((a, 3), (b, 1), NOW) == -1  # more pods on its node
    assert podutil.compare_for_deletion((a, 1), (b, 3), NOW) == 1
    same = _pod("same")
    assert podutil.compare_for_deletion((same, 1), (same, 1), NOW) == 0


def test_pods_to_delete_counts_active_pods_per_node() -> None:
    crowded = [_pod(f"c{i}", node="busy") for i in range(3)]
    alone = _pod("alone", node="quiet")
    # Same age and readiness: the pods on the node with more active pods go first.
    chosen = podutil.pods_to_delete([alone, *crowded], [alone, *crowded], 2, NOW)
    assert {p["metadata"]["name"] for p in chosen} <= {"c0", "c1", "c2"} and len(chosen) == 2
    # Asking for as many as there are returns them all, in their order.
    assert podutil.pods_to_delete([alone, *crowded], [], 4, NOW) == [alone, *crowded]


def test_deletion_cost_and_restarts_defaults() -> None:
    pod = _pod("p")
    assert podutil.deletion_cost(pod) == 0
    pod["metadata"]["annotations"] = {podutil.DELETION_COST: "-7"}
    assert podutil.deletion_cost(pod) == -7
    pod["metadata"]["annotations"] = {podutil.DELETION_COST: "cheap"}
    assert podutil.deletion_cost(pod) == 0
    assert podutil.max_restarts(_pod("p", restarts=0)) == 0
    pod["status"]["containerStatuses"] = [{"restartCount": 2}, {}, {"restartCount": 5}]
    assert podutil.max_restarts(pod) == 5
    pod["status"]["containerStatuses"] = [{}]
    assert podutil.max_restarts(pod) == 0
    del pod["status"]["containerStatuses"]
    assert podutil.max_restarts(pod) == 0


def test_creation_times_in_one_log_bucket_fall_back_to_the_uid() -> None:
    # Ages 1000 s and 1010 s: both in log2 bucket 39, so the UID decides (smaller first).
    a = _pod("a", created="2026-01-01T00:43:10Z", ready_at="2026-01-01T00:00:00Z")
    b = _pod("b", created="2026-01-01T00:43:20Z", ready_at="2026-01-01T00:00:00Z")
    assert podutil.compare_for_deletion((a, 1), (b, 1), NOW) == -1
    assert podutil.compare_for_deletion((b, 1), (a, 1), NOW) == 1


def test_a_pod_without_phase_ranks_like_pending() -> None:
    nophase = _pod("nophase", ready=False)
    del nophase["status"]["phase"]
    assert podutil.compare_for_deletion((nophase, 1), (_pod("running", ready=False), 1), NOW) == -1
    unknown = _pod("unknown", phase="Unknown", ready=False)
    assert podutil.compare_for_deletion((unknown, 1), (nophase, 1), NOW) == 1


def test_is_available_needs_strictly_more_than_min_ready_seconds() -> None:
    ready_at = "2026-01-01T00:59:50Z"  # 10 s before NOW
    assert not podutil.is_available(_pod("p", ready_at=ready_at), 10, NOW)
    assert podutil.is_available(_pod("p", ready_at=ready_at), 9, NOW)
    assert not podutil.is_available(_pod("p", ready_at="2026-01-01T01:00:00Z"), 1, NOW)
    unknown = _pod("p")
    del unknown["status"]["conditions"][0]["lastTransitionTime"]
    assert not podutil.is_available(unknown, 5, NOW)  # ready since an unknown time
    assert podutil.is_available(unknown, 0, NOW)


def test_pods_to_delete_all_keeps_the_input_order() -> None:
    ready, notready = _pod("ready"), _pod("notready", ready=False)
    assert podutil.pods_to_delete([ready, notready], [ready, notready], 2, NOW) == [ready, notready]
    assert podutil.pods_to_delete([ready, notready], [ready, notready], 1, NOW) == [notready]
