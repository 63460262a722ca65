"""The store's watch plumbing at scale: events reach only the subscribers they can concern, and a watch
from a resourceVersion replays exactly the events after it (kubesim must carry thousands of watches)."""

from __future__ import annotations

from typing import Any

from kubesim.store import Interest, Store, WatchEvent


def _pod(ns: str, name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": ns, "name": name, "labels": labels}}


def _recorder(seen: list[tuple[str, str]], tag: str) -> Any:
    def on_event(event: WatchEvent) -> None:
        seen.append((tag, f"{event.type} {event.obj['metadata']['name']}"))

    return on_event


def test_events_reach_only_interested_subscribers_including_label_transitions() -> None:
    store = Store()
    seen: list[tuple[str, str]] = []
    subs = {
        "everything": (_recorder(seen, "everything"), None),
        "pods": (_recorder(seen, "pods"), Interest("pods")),
        "pods-a": (_recorder(seen, "pods-a"), Interest("pods", "a")),
        "web": (_recorder(seen, "web"), Interest("pods", "a", ("app", "web"))),
        "db": (_recorder(seen, "db"), Interest("pods", None, ("app", "db"))),
        "replicasets": (_recorder(seen, "replicasets"), Interest("replicasets")),
    }
    for fn, interest in subs.values():
        store.subscribe(fn, interest)

    store.create("pods", _pod("a", "p1", app="web"))
    assert sorted(tag for tag, _ in seen) == ["everything", "pods", "pods-a", "web"]

    seen.clear()
    moved = store.get("pods", "a", "p1")
    moved["metadata"]["labels"] = {"app": "db"}
    store.update("pods", moved)
    # The web watcher still hears it (the old labels matched): it must see the pod leave its selector.
    assert sorted(tag for tag, _ in seen) == ["db", "everything", "pods", "pods-a", "web"]

    seen.clear()
    store.create("pods", _pod("b", "p2", app="db"))
    assert sorted(tag for tag, _ in seen) == ["db", "everything", "pods"]

    fn, interest = subs["db"]
    store.unsubscribe(fn, interest)
    seen.clear()
    store.create("pods", _pod("b", "p3", app="db"))
    assert sorted(tag for tag, _ in seen) == ["everything", "pods"]


def test_events_since_replays_exactly_the_later_events() -> None:
    store = Store()
    rvs = []
    for i in range(200):
        store.create("pods", _pod("a", f"p{i}"))
        rvs.append(store.rv)
    for start in (0, rvs[0], rvs[99], rvs[198], rvs[199]):
        replayed = [e.rv for e in store.events_since(start)]
        assert replayed == [rv for rv in rvs if rv > start]
