"""Table tests of the controllers' pure math: fenceposts, rounding, proportional scaling, hash, deletion
ranking."""

from __future__ import annotations

import re
from typing import Any

import pytest

from kubesim.controllers import deployment_util as du
from kubesim.controllers import pod_template, podutil


def _deployment(
    replicas: int,
    surge: Any = "25%",
    unavail: Any = "25%",
    status_replicas: int = 0,
    strategy: str = "RollingUpdate",
) -> dict[str, Any]:
    spec: dict[str, Any] = {"replicas": replicas, "strategy": {"type": strategy}}
    if strategy == "RollingUpdate":
        spec["strategy"]["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavail}
    return {"metadata": {"name": "d", "generation": 1}, "spec": spec, "status": {"replicas": status_replicas}}


def _rs(
    name: str,
    replicas: int,
    created: str,
    max_replicas: int | None = None,
    available: int = 0,
    desired: int | None = None,
) -> dict[str, Any]:
    ann = {}
    if max_replicas is not None:
        ann[du.MAX_REPLICAS] = str(max_replicas)
    if desired is not None:
        ann[du.DESIRED_REPLICAS] = str(desired)
    return {
        "metadata": {"name": name, "creationTimestamp": created, "annotations": ann},
        "spec": {"replicas": replicas},
        "status": {"availableReplicas": available},
    }


@pytest.mark.parametrize(
    ("surge", "unavail", "replicas", "expected"),
    [
        ("25%", "25%", 10, (3, 2)),  # ceil(2.5), floor(2.5)
        ("25%", "25%", 3, (1, 0)),
        ("25%", "25%", 4, (1, 1)),
        (0, 0, 5, (0, 1)),  # both zero forces unavailable to 1
        ("0%", "0%", 5, (0, 1)),
        ("50%", 0, 5, (3, 0)),
        (0, 1, 4, (0, 1)),
        (2, "10%", 9, (2, 0)),
        ("1%", "99%", 1, (1, 0)),
    ],
)
def test_resolve_fenceposts(surge: Any, unavail: Any, replicas: int, expected: tuple[int, int]) -> None:
    assert du.resolve_fenceposts(surge, unavail, replicas) == expected


def test_max_unavailable_is_capped_and_zero_without_replicas() -> None:
    assert du.max_unavailable(_deployment(3, 0, 5)) == 3
    assert du.max_unavailable(_deployment(0)) == 0
    assert du.max_surge(_deployment(10, strategy="Recreate")) == 0
    assert du.max_unavailable(_deployment(10, strategy="Recreate")) == 0


@pytest.mark.parametrize(
    ("x", "expected"),
    [(0.5, 1), (1.5, 2), (2.5, 3), (-0.5, -1), (-2.5, -3), (2.4999, 2), (3.0, 3), (-1.2, -1), (0.0, 0)],
)
def test_round_half_away_from_zero(x: float, expected: int) -> None:
    assert du.round_half_away_from_zero(x) == expected


def test_python_round_would_be_wrong_here() -> None:
    # The reason for the helper: banker's rounding gives 2 for 2.5, Go's math.Round gives 3.
    assert round(2.5) == 2 and du.round_half_away_from_zero(2.5) == 3


@pytest.mark.parametrize(
    ("case", "d", "rss", "expected"),
    [
        # reference 2.4: replicas 11 -> 15 at 25%/25% (maxSurge(15) = 4), old=8, new=3 annotated max 13.
        (
            "scale-up",
            _deployment(15, status_replicas=11),
            [_rs("old", 8, "2026-01-01T00:00:00Z", 13), _rs("new", 3, "2026-01-01T00:01:00Z", 13)],
            {"old": 15, "new": 4},
        ),
        # reference 2.4 / acceptance 15: scale down to 5, stable=8 (older), canary=4, both max 13.
        (
            "scale-down",
            _deployment(5, status_replicas=12),
            [_rs("stable", 8, "2026-01-01T00:00:00Z", 13), _rs("canary", 4, "2026-01-01T00:01:00Z", 13)],
            {"stable": 4, "canary": 3},
        ),
        # reference 2.4: replicas 20 with surge 1 / unavail 0, stable=9, canary=1 (annotated 11).
        (
            "surge-one",
            _deployment(20, 1, 0, status_replicas=10),
            [_rs("stable", 9, "2026-01-01T00:00:00Z", 11), _rs("canary", 1, "2026-01-01T00:01:00Z", 11)],
            {"stable": 19, "canary": 2},
        ),
        # 5 * 7 / 10 = 3.5 -> fraction -1 each; the first (older) RS takes the leftover.
        (
            "tie-down",
            _deployment(6, 1, 0, status_replicas=10),
            [_rs("a", 5, "2026-01-01T00:00:00Z", 10), _rs("b", 5, "2026-01-01T00:01:00Z", 10)],
            {"a": 3, "b": 4},
        ),
        # 1 * 5 / 2 = 2.5 rounds to 3 (Go math.Round), so the newest RS takes the whole +2; Python's round()
        # would give 2 and spread it as c=2, b=2.
        (
            "half-away-from-zero",
            _deployment(4, 1, 0, status_replicas=3),
            [
                _rs("a", 1, "2026-01-01T00:00:00Z", 2),
                _rs("b", 1, "2026-01-01T00:01:00Z", 2),
                _rs("c", 1, "2026-01-01T00:02:00Z", 2),
            ],
            {"c": 3, "b": 1, "a": 1},
        ),
        # Missing max-replicas annotation falls back to status.replicas.
        (
            "no-annotation",
            _deployment(8, 0, 1, status_replicas=4),
            [_rs("a", 2, "2026-01-01T00:00:00Z"), _rs("b", 2, "2026-01-01T00:01:00Z")],
            {"a": 4, "b": 4},
        ),
        # Scaling to zero removes everything.
        (
            "to-zero",
            _deployment(0, status_replicas=10),
            [_rs("a", 6, "2026-01-01T00:00:00Z", 13), _rs("b", 4, "2026-01-01T00:01:00Z", 13)],
            {"a": 0, "b": 0},
        ),
    ],
)
def test_proportional_scaling(
    case: str, d: dict[str, Any], rss: list[dict[str, Any]], expected: dict[str, int]
) -> None:
    _, sizes, _ = du.proportional_sizes(d, rss)
    assert sizes == expected, case


def test_proportional_order_ties_newer_first_up_older_first_down() -> None:
    a, b = _rs("a", 2, "2026-01-01T00:00:00Z"), _rs("b", 2, "2026-01-01T00:01:00Z")
    assert [r["metadata"]["name"] for r in du.sort_by_size_newer([a, b])] == ["b", "a"]
    assert [r["metadata"]["name"] for r in du.sort_by_size_older([b, a])] == ["a", "b"]


@pytest.mark.parametrize(
    ("replicas", "surge", "unavail", "specs", "new_spec", "expected"),
    [
        (10, "25%", "25%", [10], 0, 3),
        (10, "25%", "25%", [8], 3, 5),
        (3, "25%", "25%", [3], 0, 1),
        (5, "50%", 0, [5], 0, 3),
        (4, 0, 1, [4], 0, 0),
        (4, 0, 1, [3], 0, 1),
        (10, "25%", "25%", [10], 10, 10),
    ],
)
def test_new_rs_new_replicas(
    replicas: int, surge: Any, unavail: Any, specs: list[int], new_spec: int, expected: int
) -> None:
    d = _deployment(replicas, surge, unavail)
    new = _rs("new", new_spec, "2026-01-01T00:01:00Z")
    olds = [_rs(f"old{i}", n, "2026-01-01T00:00:00Z") for i, n in enumerate(specs)]
    assert du.new_rs_new_replicas(d, [*olds, new], new) == expected


def test_pod_template_hash_is_deterministic_and_uses_the_alphabet() -> None:
    template = {
        "metadata": {"labels": {"app": "nginx"}},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.26"}]},
    }
    h1 = pod_template.compute_hash(template)
    assert h1 == pod_template.compute_hash(template)
    assert re.fullmatch(r"[4-9bcdf]{1,10}", h1)
    assert pod_template.compute_hash(template, 1) != h1
    other = {
        "metadata": {"labels": {"app": "nginx"}},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]},
    }
    assert pod_template.compute_hash(other) != h1
    # Digits map 0..9 to 4 5 6 7 8 9 b c d f.
    assert pod_template.safe_encode("0123456789") == "456789bcdf"


def test_equal_ignore_hash_ignores_hash_label_defaults_and_empty_values() -> None:
    base = {
        "metadata": {"labels": {"app": "nginx"}},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.26"}]},
    }
    rs_template = {
        "metadata": {"labels": {"app": "nginx", "pod-template-hash": "5d9b8c7f6"}},
        "spec": {
            "containers": [
                {"name": "nginx", "image": "nginx:1.26", "resources": {}, "imagePullPolicy": "IfNotPresent"}
            ],
            "restartPolicy": "Always",
            "dnsPolicy": "ClusterFirst",
            "securityContext": {},
        },
    }
    assert pod_template.equal_ignore_hash(base, rs_template)
    changed = {
        "metadata": {"labels": {"app": "nginx"}},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]},
    }
    assert not pod_template.equal_ignore_hash(changed, rs_template)


def test_revision_history_on_rollback() -> None:
    d = {"metadata": {"annotations": {"team": "a"}}, "spec": {"replicas": 3}}
    rs: dict[str, Any] = {"metadata": {"annotations": {du.REVISION: "1"}}}
    assert du.set_new_rs_annotations(d, rs, "3", True)
    assert rs["metadata"]["annotations"][du.REVISION] == "3"
    assert rs["metadata"]["annotations"][du.REVISION_HISTORY] == "1"
    assert rs["metadata"]["annotations"]["team"] == "a"
    assert du.set_new_rs_annotations(d, rs, "5", True)
    assert rs["metadata"]["annotations"][du.REVISION_HISTORY] == "1,3"
    assert not du.set_new_rs_annotations(d, rs, "2", True)


def _pod(
    name: str,
    *,
    node: str = "n",
    phase: str = "Running",
    ready: bool = True,
    ready_at: str = "",
    restarts: int = 0,
    created: str = "2026-01-01T00:00:00Z",
    cost: int | None = None,
    uid: str | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": uid or name, "creationTimestamp": created}
    if cost is not None:
        meta["annotations"] = {podutil.DELETION_COST: str(cost)}
    conds = [
        {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": ready_at or created}
    ]
    return {
        "metadata": meta,
        "spec": {"nodeName": node},
        "status": {"phase": phase, "conditions": conds, "containerStatuses": [{"restartCount": restarts}]},
    }


NOW = du.parse_time("2026-01-01T01:00:00Z")


@pytest.mark.parametrize(
    ("pods", "first"),
    [
        ([_pod("scheduled"), _pod("unscheduled", node="")], "unscheduled"),
        ([_pod("running"), _pod("pending", phase="Pending", ready=False)], "pending"),
        ([_pod("ready"), _pod("notready", ready=False)], "notready"),
        ([_pod("cheap", cost=-5), _pod("dear", cost=10)], "cheap"),
        # Ready for a shorter time goes first (log2 buckets of the age differ).
        (
            [
                _pod("old-ready", ready_at="2026-01-01T00:00:00Z"),
                _pod("new-ready", ready_at="2026-01-01T00:59:59Z"),
            ],
            "new-ready",
        ),
        ([_pod("calm", restarts=0), _pod("flaky", restarts=4)], "flaky"),
        (
            [
                _pod("older", created="2026-01-01T00:00:00Z", ready_at="2026-01-01T00:00:00Z"),
                _pod("newer", created="2026-01-01T00:59:58Z", ready_at="2026-01-01T00:00:00Z"),
            ],
            "newer",
        ),
    ],
)
def test_pod_deletion_ranking(pods: list[dict[str, Any]], first: str) -> None:
    chosen = podutil.pods_to_delete(pods, pods, 1, NOW)
    assert [p["metadata"]["name"] for p in chosen] == [first]


def test_pod_deletion_same_log_bucket_falls_back_to_uid() -> None:
    a = _pod("a", ready_at="2026-01-01T00:59:00Z", uid="b-uid")
    b = _pod("b", ready_at="2026-01-01T00:59:01Z", uid="a-uid")
    chosen = podutil.pods_to_delete([a, b], [a, b], 1, NOW)
    assert chosen[0]["metadata"]["name"] == "b"


def test_pod_availability_with_min_ready_seconds() -> None:
    pod = _pod("p", ready_at="2026-01-01T00:59:55Z")
    assert podutil.is_available(pod, 0, NOW)
    assert podutil.is_available(pod, 3, NOW)
    assert not podutil.is_available(pod, 10, NOW)
    assert not podutil.is_available(_pod("q", ready=False), 0, NOW)
