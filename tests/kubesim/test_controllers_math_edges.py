"""Edges of the deployment controller's math that its surviving mutants showed untested (``make mutate``,
docs/testing.md): ``GetProportion`` bounds in both directions, ``getReplicaSetFraction``, ``IsSaturated``
clause by clause, the replicas annotations check and ``FindActiveOrLatest``."""

from __future__ import annotations

from typing import Any

import pytest

from kubesim.controllers import deployment_util as du


@pytest.mark.parametrize(
    ("rs_replicas", "fraction", "to_add", "added", "expected"),
    [
        (0, 5, 10, 0, 0),  # an empty ReplicaSet gets nothing
        (3, 5, 0, 0, 0),  # nothing to add
        (3, 5, 10, 10, 0),  # all added already
        (3, 5, 10, 7, 3),  # bounded by what is left (3)
        (3, 2, 10, 0, 2),  # its own fraction
        (3, -5, -4, 0, -4),  # scaling down: bounded by what is left (-4)
        (3, -2, -4, 0, -2),
        (3, -2, -4, -3, -1),
    ],
)
def test_get_proportion(rs_replicas: int, fraction: int, to_add: int, added: int, expected: int) -> None:
    assert du.get_proportion(rs_replicas, fraction, to_add, added) == expected


@pytest.mark.parametrize(
    ("rs_replicas", "d_replicas", "surge", "annotated_max", "expected"),
    [
        (4, 0, 3, 13, -4),  # deployment scaled to zero: everything goes
        (4, 10, 3, 0, 0),  # no max-replicas annotation: no change
        (4, 10, 3, 13, 0),  # same size as annotated
        (4, 20, 5, 13, 4),  # round(4 * 25 / 13) = 8
        (5, 20, 5, 10, 8),  # round(12.5) = 13: half away from zero
        (6, 5, 1, 12, -3),  # round(6 * 6 / 12) = 3
    ],
)
def test_replica_set_fraction(
    rs_replicas: int, d_replicas: int, surge: int, annotated_max: int, expected: int
) -> None:
    assert du.replica_set_fraction(rs_replicas, d_replicas, surge, annotated_max) == expected


def _d(replicas: int) -> dict[str, Any]:
    return {
        "metadata": {"name": "d"},
        "spec": {
            "replicas": replicas,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        },
    }


def _rs(
    name: str, spec: int, available: int = 0, desired: int | None = None, max_replicas: int | None = None
) -> dict[str, Any]:
    ann = {}
    if desired is not None:
        ann[du.DESIRED_REPLICAS] = str(desired)
    if max_replicas is not None:
        ann[du.MAX_REPLICAS] = str(max_replicas)
    return {
        "metadata": {"name": name, "annotations": ann, "creationTimestamp": f"2026-01-01T00:00:0{spec}Z"},
        "spec": {"replicas": spec},
        "status": {"availableReplicas": available},
    }


@pytest.mark.parametrize(
    ("rs", "saturated"),
    [
        (None, False),
        (_rs("no-annotation", 4, 4), False),
        (_rs("all", 4, 4, desired=4), True),
        (_rs("spec-short", 3, 4, desired=4), False),
        (_rs("other-desired", 4, 4, desired=5), False),
        (_rs("not-available", 4, 3, desired=4), False),
    ],
)
def test_is_saturated(rs: dict[str, Any] | None, saturated: bool) -> None:
    assert du.is_saturated(_d(4), rs) is saturated


@pytest.mark.parametrize(
    ("desired", "max_replicas", "need"),
    [(4, 5, False), (3, 5, True), (4, 6, True), (None, None, True), (4, None, True)],
)
def test_replicas_annotations_need_update(desired: int | None, max_replicas: int | None, need: bool) -> None:
    rs = _rs("r", 4, desired=desired, max_replicas=max_replicas)
    assert du.replicas_annotations_need_update(rs, 4, 5) is need


def test_find_active_or_latest() -> None:
    new, old1, old2 = _rs("new", 0), _rs("old1", 0), _rs("old2", 0)
    old2["metadata"]["creationTimestamp"] = "2026-01-02T00:00:00Z"
    assert du.find_active_or_latest(None, []) is None
    assert du.find_active_or_latest(new, [old1, old2]) is new  # nothing active: the new one
    assert du.find_active_or_latest(None, [old1, old2]) is old2  # ... else the newest old one
    active = _rs("active", 3)
    assert du.find_active_or_latest(new, [old1, active]) is active  # the single active one
    assert du.find_active_or_latest(_rs("new", 2), [active]) is None  # several active


def _dp(replicas: int, status_replicas: int | None = None) -> dict[str, Any]:
    d = _d(replicas)
    if status_replicas is not None:
        d["status"] = {"replicas": status_replicas}
    return d


def test_proportional_sizes_operation_and_order() -> None:
    old, new = _rs("old", 2, max_replicas=4), _rs("new", 2, max_replicas=4)
    old["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    new["metadata"]["creationTimestamp"] = "2026-01-01T00:01:00Z"
    # Scaled 4 -> 6 (maxSurge 1): 7 allowed, 3 to add; newer first on ties.
    ordered, sizes, op = du.proportional_sizes(_dp(6, 4), [old, new])
    assert op == "up" and [r["metadata"]["name"] for r in ordered] == ["new", "old"]
    assert sizes == {"new": 4, "old": 3}
    # Scaled 4 -> 2: 3 allowed, 1 to remove; older first on ties.
    ordered, sizes, op = du.proportional_sizes(_dp(2, 4), [new, old])
    assert op == "down" and [r["metadata"]["name"] for r in ordered] == ["old", "new"]
    assert sizes == {"old": 1, "new": 2}
    # Nothing to change: the sizes stay, no operation word, the order is the input's.
    ordered, sizes, op = du.proportional_sizes(_dp(3, 4), [new, old])
    assert (op, sizes, ordered) == ("", {"new": 2, "old": 2}, [new, old])


def test_proportional_sizes_zero_one_and_none() -> None:
    # Scaled to zero: nothing is allowed, every ReplicaSet goes to 0.
    active = [_rs("a", 3, max_replicas=5), _rs("b", 1, max_replicas=5)]
    _, sizes, op = du.proportional_sizes(_dp(0, 4), active)
    assert op == "down" and sizes == {"a": 0, "b": 0}
    # One replica with maxSurge 1: two allowed.
    _, sizes, op = du.proportional_sizes(_dp(1, 1), [_rs("a", 1, max_replicas=1)])
    assert op == "up" and sizes == {"a": 2}
    # No active ReplicaSet: nothing to size.
    assert du.proportional_sizes(_dp(3, 0), []) == ([], {}, "up")


def test_get_proportion_with_one_to_add() -> None:
    assert du.get_proportion(3, 1, 1, 0) == 1
    assert du.get_proportion(3, 0, 1, 0) == 0  # its fraction is 0: it gets none of the one


def _strategy(replicas: int, strategy: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "d"}, "spec": {"replicas": replicas, "strategy": strategy}}


def test_one_replica_fenceposts_and_recreate() -> None:
    one = _strategy(1, {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}})
    assert du.max_unavailable(one) == 1
    recreate = _strategy(10, {"type": "Recreate"})
    assert du.new_rs_new_replicas(recreate, [_rs("old", 10)], _rs("new", 0)) == 10
    surge = {"maxSurge": "25%", "maxUnavailable": 0}
    rolling = _strategy(10, {"type": "RollingUpdate", "rollingUpdate": surge})
    new = _rs("new", 8)
    assert du.new_rs_new_replicas(rolling, [new], new) == 10  # capped by replicas, not by the surge (13)


def test_small_helpers_exact() -> None:
    assert du.revision(_rs("r", 1)) == 0  # no revision annotation
    rounded = du.round_half_away_from_zero(-2.5)
    assert rounded == -3 and isinstance(rounded, int)
    assert du.scaled_value("5", 10, True) == 5  # a bare numeric string
    with pytest.raises(ValueError, match="^invalid value for IntOrString: True$"):
        du.scaled_value(True, 10, True)
