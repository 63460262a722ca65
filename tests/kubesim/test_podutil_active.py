"""The replicaset controller's pod predicates and its node co-location count (``podutil``): which pods
are active, Ready-since without a Ready condition, availability at the epoch's edge, and
``pods_to_delete`` with a pod on a node that has no other active pod. Added for the mutants a pass of
``make mutate`` left alive (docs/testing.md)."""

from __future__ import annotations

from typing import Any

import pytest

from kubesim.controllers import podutil

NOW = 1_800_000_000.0
T0 = "2026-01-01T00:00:00Z"


def _pod(
    name: str,
    *,
    node: str = "n1",
    phase: str | None = "Running",
    ready: bool | None = True,
    deleting: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": name, "creationTimestamp": T0}
    if deleting:
        meta["deletionTimestamp"] = T0
    status: dict[str, Any] = {}
    if phase is not None:
        status["phase"] = phase
    if ready is not None:
        cond = {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": T0}
        status["conditions"] = [cond]
    return {"metadata": meta, "spec": {"nodeName": node}, "status": status}


@pytest.mark.parametrize(
    ("kw", "active"),
    [
        ({}, True),
        ({"phase": "Pending"}, True),
        ({"phase": "Unknown"}, True),
        ({"phase": None}, True),  # no phase yet
        ({"phase": "Succeeded"}, False),
        ({"phase": "Failed"}, False),
        ({"deleting": True}, False),  # being deleted
        ({"phase": "Pending", "deleting": True}, False),
    ],
)
def test_is_active(kw: dict[str, Any], active: bool) -> None:
    assert podutil.is_active(_pod("p", **kw)) is active


def test_phase_missing_is_empty() -> None:
    assert podutil.phase(_pod("p", phase=None)) == ""
    assert podutil.phase({"metadata": {}}) == ""
    assert podutil.phase(_pod("p", phase="Pending")) == "Pending"


def test_ready_since_and_availability_without_a_ready_condition() -> None:
    pod = _pod("p", ready=None)
    assert podutil.ready_since(pod) == 0.0
    assert not podutil.is_available(pod, 0, NOW) and not podutil.is_available(pod, 5, NOW)
    ready = _pod("p")
    assert podutil.ready_since(ready) == 1_767_225_600.0  # T0


def test_available_ready_since_one_second_after_the_epoch() -> None:
    pod = _pod("p")
    pod["status"]["conditions"][0]["lastTransitionTime"] = "1970-01-01T00:00:01Z"
    assert podutil.ready_since(pod) == 1.0
    assert podutil.is_available(pod, 5, NOW)  # a known (if old) time: ready long enough


def test_pods_to_delete_counts_only_active_pods_per_node() -> None:
    """Pods on the node with more active pods go first; a pod on a node with no other active pod
    (rank 0) goes last; pods that are not active do not count."""
    lonely, crowded, middle = _pod("a", node="n0"), _pod("b", node="n2"), _pod("c", node="n1")
    related = [
        crowded,
        _pod("x", node="n2"),
        _pod("y", node="n2"),
        middle,
        _pod("z", node="n1"),
        _pod("done", node="n0", phase="Succeeded"),
        _pod("gone", node="n0", deleting=True),
        _pod("failed", node="n0", phase="Failed"),
    ]
    filtered = [lonely, middle, crowded]
    assert [p["metadata"]["name"] for p in podutil.pods_to_delete(filtered, related, 2, NOW)] == ["b", "c"]
    assert [p["metadata"]["name"] for p in podutil.pods_to_delete(filtered, related, 1, NOW)] == ["b"]
    # n0's three inactive pods would make it the most crowded node if they counted: "a" stays last.
    assert podutil.pods_to_delete([lonely, middle], related, 1, NOW) == [middle]
    # one active pod on its node (rank 1) goes before one on a node with none (rank 0)
    single = _pod("s", node="n3")
    assert podutil.pods_to_delete([lonely, single], [*related, single], 1, NOW) == [single]
    assert podutil.pods_to_delete(filtered, related, 3, NOW) == filtered  # all of them: no ranking


def test_two_pods_without_phase_rank_alike() -> None:
    """An unknown phase ranks as Pending on both sides: two phase-less pods tie on the phase rule and
    fall through to the last rules (here: nothing differs, 0)."""
    a, b = _pod("a", phase=None), _pod("a", phase=None)
    assert podutil.compare_for_deletion((a, 1), (b, 1), NOW) == 0
    assert podutil.compare_for_deletion((b, 1), (a, 1), NOW) == 0
