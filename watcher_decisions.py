"""The shared watcher's decisions: which informer sightings of a held Deployment become a signal (pure).

``watcher.py`` keeps the informer, the last state seen per Deployment and the signalling; these rules
decide, and have table tests (tests/unit/test_watcher_decisions.py) that mutation testing runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

__all__ = ["event_due", "gone", "resync_due", "status_only"]


class Held(Protocol):
    """What the decisions read of a held Deployment's state (``watcher.HeldState``)."""

    @property
    def workflow_id(self) -> str: ...

    @property
    def generation(self) -> int: ...

    def differs(self, other: Any) -> bool: ...


S = TypeVar("S", bound=Held)


def status_only(kind: str, old: Held | None, generation: int, workflow_id: str | None) -> bool:
    """A MODIFIED event that changed only the status: same generation (so the same spec, hence the same
    replicas and template) and the same rollout. Nothing to tell, nothing to recompute."""
    if kind != "MODIFIED" or old is None:
        return False
    return generation == old.generation and workflow_id == old.workflow_id


def event_due(old: S | None, state: S) -> bool:
    """A watch event signals when replicas or template changed, or another rollout holds it now.

    The first sighting (``old`` None) is the take-over's own write: no signal.
    """
    return old is not None and (old.differs(state) or old.workflow_id != state.workflow_id)


def resync_due(old: S | None, state: S) -> bool:
    """After a (re-)list every state this watcher has not seen is signalled: a change made while no
    worker watched (or in a watch gap) must reach its rollout. The rollout ignores what it knows."""
    return old is None or event_due(old, state)


def gone(held: Mapping[str, S], seen: Mapping[str, S]) -> list[S]:
    """Held before a (re-)list, missing from it: deleted or handed back while unwatched."""
    return [old for key, old in held.items() if key not in seen]
