"""The shared watcher's decisions (``watcher_decisions.py``), one table per rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

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
