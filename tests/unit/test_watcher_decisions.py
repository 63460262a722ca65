"""The shared watcher's decisions (``watcher_decisions.py``), one table per rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from kube.names import ANN_WORKFLOW_ID
from kube.objects import template_hash
from watcher import held_state
from watcher_decisions import event_due, gone, resync_due, status_only


@dataclass(frozen=True)
class _State:
    """A held Deployment's state as the decisions read it (``watcher.HeldState``'s shape)."""

    workflow_id: str = "rollout-shop-web"
    replicas: int = 4
    template_hash: str = "t1"
    generation: int = 2

    def differs(self, other: Any) -> bool:
        return (self.replicas, self.template_hash) != (other.replicas, other.template_hash)


OLD = _State()


@pytest.mark.parametrize(
    ("kind", "old", "generation", "wid", "want"),
    [
        ("MODIFIED", OLD, 2, "rollout-shop-web", True),  # only the status moved
        ("MODIFIED", OLD, 3, "rollout-shop-web", False),  # the spec changed
        ("MODIFIED", OLD, 1, "rollout-shop-web", False),  # an older generation: not the one we hold
        ("MODIFIED", OLD, 2, "rollout-shop-other", False),  # another rollout holds it now
        ("MODIFIED", OLD, 2, None, False),  # our annotation is gone
        ("MODIFIED", None, 2, "rollout-shop-web", False),  # never seen: decide on its state
        ("ADDED", OLD, 2, "rollout-shop-web", False),
        ("DELETED", OLD, 2, "rollout-shop-web", False),  # a deletion always counts
    ],
)
def test_status_only(kind: str, old: _State | None, generation: int, wid: str | None, want: bool) -> None:
    assert status_only(kind, old, generation, wid) is want


@pytest.mark.parametrize(
    ("old", "state", "event", "resync"),
    [
        (None, OLD, False, True),  # first sighting: the take-over's write (event), unknown (re-list)
        (OLD, OLD, False, False),  # nothing new
        (OLD, _State(generation=5), False, False),  # a new generation with the same replicas and template
        (OLD, _State(replicas=8), True, True),  # kubectl scale
        (OLD, _State(replicas=0), True, True),
        (OLD, _State(template_hash="t2"), True, True),  # another writer's template
        (OLD, _State(workflow_id="rollout-shop-web-2"), True, True),  # another rollout holds it now
    ],
)
def test_event_and_resync_due(old: _State | None, state: _State, event: bool, resync: bool) -> None:
    assert event_due(old, state) is event
    assert resync_due(old, state) is resync


def test_gone_lists_what_the_relist_no_longer_holds() -> None:
    a, b, c = _State(workflow_id="a"), _State(workflow_id="b"), _State(workflow_id="c")
    held = {"shop/a": a, "shop/b": b, "shop/c": c}
    assert gone(held, {"shop/b": b}) == [a, c]
    assert gone(held, {"shop/a": _State(replicas=9), "shop/b": b, "shop/c": c}) == []  # keyed by name
    assert gone(held, {}) == [a, b, c]
    assert gone({}, {"shop/a": a}) == []


def _held(md: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "annotations": {ANN_WORKFLOW_ID: "rollout-shop-web"},
            **md,
        },
        "spec": spec,
    }


def test_held_state_reads_what_is_there_and_defaults_what_is_not() -> None:
    tpl = {"spec": {"containers": [{"name": "app", "image": "web:2"}]}}
    full = held_state(_held({"generation": 7, "resourceVersion": "42"}, {"replicas": 0, "template": tpl}))
    assert full is not None
    assert (full.workflow_id, full.replicas, full.generation, full.resource_version) == (
        "rollout-shop-web",
        0,
        7,
        "42",
    )  # scaled to 0 stays 0
    assert full.template_hash == template_hash(tpl)
    bare = held_state(_held({}, {}))
    assert bare is not None
    assert (bare.replicas, bare.generation, bare.resource_version) == (0, 0, "")
    assert bare.template_hash == template_hash({})
    assert held_state({"metadata": {"name": "web", "namespace": "shop"}, "spec": {}}) is None  # not held
    assert held_state({}) is None


def test_held_state_change_is_not_a_deletion_unless_told() -> None:
    state = held_state(_held({"generation": 3, "resourceVersion": "9"}, {"replicas": 5}))
    assert state is not None
    change = state.change()
    assert not change.deleted
    assert (change.replicas, change.generation, change.resource_version) == (5, 3, "9")
    assert state.change(deleted=True).deleted
