"""The shared watcher's decisions: which informer events become a ``deployment_changed`` signal."""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kube.client import Kube
from kube.names import ANN_WORKFLOW_ID, LABEL_STABLE_REVISION
from watcher import DeploymentWatcher

WID = "rollout-shop-web"


class _Handle:
    def __init__(self, sent: list[tuple[str, str, Any]], wid: str) -> None:
        self.sent, self.wid = sent, wid

    async def signal(self, name: str, payload: Any) -> None:
        self.sent.append((self.wid, name, payload))


class _Client:
    """Records signals instead of sending them."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any]] = []

    def get_workflow_handle(self, wid: str) -> _Handle:
        return _Handle(self.sent, wid)


def _dep(replicas: int = 4, image: str = "nginx:1.27", generation: int = 2, rv: str = "10") -> dict[str, Any]:
    return {
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "generation": generation,
            "resourceVersion": rv,
            "labels": {LABEL_STABLE_REVISION: "abc"},
            "annotations": {ANN_WORKFLOW_ID: WID},
        },
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"containers": [{"name": "app", "image": image}]}},
        },
        "status": {"readyReplicas": 1},
    }


def _watcher() -> tuple[DeploymentWatcher, _Client]:
    client = _Client()
    w = DeploymentWatcher(client, Kube(None), executor=ThreadPoolExecutor(1))  # type: ignore[arg-type]
    return w, client


async def test_first_sighting_and_status_updates_send_nothing_a_resize_sends_one() -> None:
    w, client = _watcher()
    await w._on_sync([])
    await w._on_event("ADDED", _dep())  # the take-over write itself
    status_only = _dep(rv="11")
    status_only["status"] = {"readyReplicas": 4}
    await w._on_event("MODIFIED", status_only)
    assert client.sent == []
    await w._on_event("MODIFIED", _dep(replicas=8, generation=3, rv="12"))
    assert [(wid, name) for wid, name, _ in client.sent] == [(WID, "deployment_changed")]
    change = client.sent[0][2]
    assert (change.replicas, change.generation, change.resource_version) == (8, 3, "12")
    assert not change.deleted


async def test_a_template_edit_sends_the_new_template_hash() -> None:
    w, client = _watcher()
    await w._on_sync([_dep()])
    client.sent.clear()  # the re-sync of a state never seen (covered below)
    await w._on_event("MODIFIED", _dep(image="nginx:1.29", generation=3, rv="12"))
    await w._on_event("MODIFIED", _dep(generation=4, rv="13"))  # and back
    hashes = [change.template_hash for _, _, change in client.sent]
    assert len(hashes) == 2 and hashes[0] != hashes[1]


async def test_deleted_is_signalled_but_a_hand_back_is_not() -> None:
    w, client = _watcher()
    await w._on_sync([])
    await w._on_event("ADDED", _dep())
    handed_back = copy.deepcopy(_dep(generation=3, rv="12"))
    handed_back["metadata"]["annotations"] = {}
    handed_back["metadata"]["labels"] = {}
    await w._on_event("DELETED", handed_back)  # out of the label selector: finalize removed our label
    assert client.sent == []
    await w._on_event("ADDED", _dep(rv="20"))
    await w._on_event("DELETED", _dep(rv="21"))
    assert [change.deleted for _, _, change in client.sent] == [True]


async def test_a_re_sync_signals_what_this_watcher_has_not_seen() -> None:
    w, client = _watcher()
    await w._on_sync([_dep()])  # a worker (re)start: the rollout may have missed a change
    assert len(client.sent) == 1
    await w._on_sync([_dep(rv="15")])  # a re-list after a gap, nothing changed
    assert len(client.sent) == 1
    await w._on_sync([_dep(replicas=6, generation=3, rv="16")])  # changed during the gap
    await w._on_sync([])  # gone during the gap
    assert [(c.replicas, c.deleted) for _, _, c in client.sent] == [(4, False), (6, False), (6, True)]


async def test_a_forged_workflow_id_annotation_is_ignored() -> None:
    """Security review F10: the ID comes from namespace and name; a Deployment naming another rollout's
    ID (here the ID of shop-prod/web... or any other) is never signalled, however often it changes."""
    w, client = _watcher()
    await w._on_sync([])
    for forged in ("rollout/other/victim", "rollout-other-victim", "anything"):
        dep = _dep()
        dep["metadata"]["annotations"] = {ANN_WORKFLOW_ID: forged}
        await w._on_event("ADDED", dep)
        for i in range(3):
            await w._on_event(
                "MODIFIED",
                {
                    **_dep(replicas=5 + i, generation=3 + i, rv=f"2{i}"),
                    "metadata": {**dep["metadata"], "generation": 3 + i},
                },
            )
    await w._on_sync([dep])
    assert client.sent == []


async def test_the_new_id_form_is_signalled_with_the_target() -> None:
    w, client = _watcher()
    await w._on_sync([])
    new = _dep()
    new["metadata"]["annotations"] = {ANN_WORKFLOW_ID: "rollout/shop/web"}
    await w._on_event("ADDED", new)
    resized = copy.deepcopy(new)
    resized["metadata"].update(generation=3, resourceVersion="12")
    resized["spec"]["replicas"] = 8
    await w._on_event("MODIFIED", resized)
    [(wid, _, change)] = client.sent
    assert (wid, change.namespace, change.name, change.replicas) == ("rollout/shop/web", "shop", "web", 8)


async def test_namespaces_outside_the_scope_are_ignored() -> None:
    from kube.client import NamespaceScope

    client = _Client()
    w = DeploymentWatcher(
        client,
        Kube(None),
        executor=ThreadPoolExecutor(1),  # type: ignore[arg-type]
        scope=NamespaceScope.of(["team-a"]),
    )
    await w._on_sync([_dep()])
    assert client.sent == [] and w.held == {}
