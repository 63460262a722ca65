"""List and watch semantics (reference 2.2, 2.3; 5.2 checks 24, 25): selectors, paging, replay, selector
transitions, bookmarks, WatchList, 410 Expired, fan-out."""

# The kubernetes client types every model field Optional; these tests read fields the server always sets.
# mypy: disable-error-code="union-attr,arg-type,index,operator"

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from kubesim.testing import KubeSimProcess
from tests.helpers.kubesim_api import http, pod_body, wait_for


@pytest.fixture
def core(kube_api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(kube_api)


def make_pods(core: client.CoreV1Api, namespace: str, specs: dict[str, dict[str, str]]) -> None:
    for name, labels in specs.items():
        core.create_namespaced_pod(namespace, pod_body(name, labels))


def names(items: list[Any]) -> list[str]:
    return [i.metadata.name for i in items]


def test_label_selectors(core: client.CoreV1Api, namespace: str) -> None:
    make_pods(
        core,
        namespace,
        {
            "a": {"app": "web", "track": "canary"},
            "b": {"app": "web", "track": "stable"},
            "c": {"app": "web"},
            "d": {"app": "db", "rank": "3"},
        },
    )
    cases = {
        "app=web": ["a", "b", "c"],
        "app==web,track=canary": ["a"],
        "track!=canary": ["b", "c", "d"],
        "app=web,track in (canary,stable)": ["a", "b"],
        "track notin (canary)": ["b", "c", "d"],
        "track": ["a", "b"],
        "!track": ["c", "d"],
        "rank>2": ["d"],
        "rank<2": [],
    }
    for selector, expected in cases.items():
        assert names(core.list_namespaced_pod(namespace, label_selector=selector).items) == expected, selector


def test_field_selectors_and_bad_selectors(
    kubesim: KubeSimProcess, core: client.CoreV1Api, namespace: str
) -> None:
    make_pods(core, namespace, {"a": {}, "b": {}})
    assert names(core.list_namespaced_pod(namespace, field_selector="metadata.name=b").items) == ["b"]
    assert names(core.list_namespaced_pod(namespace, field_selector="metadata.name!=b").items) == ["a"]
    all_ns = core.list_pod_for_all_namespaces(field_selector=f"metadata.namespace={namespace}")
    assert names(all_ns.items) == ["a", "b"]
    pods = f"/api/v1/namespaces/{namespace}/pods"
    status, _, body = http(kubesim.url, "GET", pods + "?fieldSelector=spec.bogus%3D1")
    assert (status, body["reason"]) == (400, "BadRequest")
    assert body["message"] == "field label not supported: spec.bogus"
    status, _, body = http(kubesim.url, "GET", pods + "?labelSelector=a%20in%20b")
    assert (status, body["reason"]) == (400, "BadRequest")


def test_paging_with_limit_and_continue(core: client.CoreV1Api, namespace: str) -> None:
    make_pods(core, namespace, {f"p{i}": {"app": "page"} for i in range(5)})
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = core.list_namespaced_pod(namespace, limit=2, _continue=token)
        seen += names(page.items)
        pages += 1
        token = page.metadata._continue
        if not token:
            break
        assert page.metadata.remaining_item_count == 5 - len(seen)
    assert seen == [f"p{i}" for i in range(5)] and pages == 3
    empty = core.list_namespaced_pod(namespace, label_selector="app=none")
    assert empty.items == [] and empty.metadata.resource_version


def test_list_rv_and_items_always_present(kubesim: KubeSimProcess, namespace: str) -> None:
    status, _, body = http(kubesim.url, "GET", f"/apis/apps/v1/namespaces/{namespace}/replicasets")
    assert status == 200 and body["items"] == [] and body["kind"] == "ReplicaSetList"
    assert int(body["metadata"]["resourceVersion"]) > 0


def test_watch_replay_and_selector_transitions(core: client.CoreV1Api, namespace: str) -> None:
    rv = core.list_namespaced_pod(namespace).metadata.resource_version
    make_pods(core, namespace, {"c1": {"track": "canary"}, "s1": {"track": "stable"}})
    core.patch_namespaced_pod("c1", namespace, {"metadata": {"labels": {"track": "stable"}}})
    core.patch_namespaced_pod("s1", namespace, {"metadata": {"labels": {"track": "canary"}}})
    core.patch_namespaced_pod("s1", namespace, {"metadata": {"annotations": {"x": "1"}}})
    core.delete_namespaced_pod("s1", namespace)
    events = [
        (e["type"], e["object"].metadata.name)
        for e in watch.Watch().stream(
            core.list_namespaced_pod,
            namespace,
            label_selector="track=canary",
            resource_version=rv,
            timeout_seconds=1,
        )
    ]
    # The simulated kubelet also modifies these pods; the transitions are what this checks.
    assert [e for e in events if e[0] != "MODIFIED"] == [
        ("ADDED", "c1"),
        ("DELETED", "c1"),
        ("ADDED", "s1"),
        ("DELETED", "s1"),
    ]
    assert ("MODIFIED", "s1") in events[events.index(("ADDED", "s1")) :]
    assert ("MODIFIED", "c1") not in events[events.index(("DELETED", "c1")) :]


def test_live_watch_sees_label_change_as_deleted(core: client.CoreV1Api, namespace: str) -> None:
    rv = core.list_namespaced_pod(namespace).metadata.resource_version
    events: list[tuple[str, str]] = []
    w = watch.Watch()

    def consume() -> None:
        for e in w.stream(
            core.list_namespaced_pod,
            namespace,
            label_selector="track=canary",
            resource_version=rv,
            timeout_seconds=5,
        ):
            events.append((e["type"], e["object"].metadata.name))
            if e["type"] == "DELETED":
                w.stop()

    thread = threading.Thread(target=consume)
    thread.start()
    make_pods(core, namespace, {"canary-1": {"track": "canary"}})
    wait_for(lambda: events, what="ADDED event")
    core.patch_namespaced_pod("canary-1", namespace, {"metadata": {"labels": {"track": "stable"}}})
    thread.join(10)
    assert events[0] == ("ADDED", "canary-1") and events[-1] == ("DELETED", "canary-1")


def test_watch_without_rv_starts_with_synthetic_added(core: client.CoreV1Api, namespace: str) -> None:
    make_pods(core, namespace, {"a": {}, "b": {}})
    events = [
        (e["type"], e["object"].metadata.name)
        for e in watch.Watch().stream(core.list_namespaced_pod, namespace, timeout_seconds=1)
    ]
    assert events[:2] == [("ADDED", "a"), ("ADDED", "b")]
    assert all(t == "MODIFIED" for t, _ in events[2:])  # kubelet status updates, if any


def test_bookmarks(core: client.CoreV1Api, namespace: str) -> None:
    w = watch.Watch()
    got: list[dict[str, Any]] = []
    for e in w.stream(core.list_namespaced_pod, namespace, allow_watch_bookmarks=True, timeout_seconds=3):
        if e["type"] == "BOOKMARK":
            got.append(e["raw_object"])
            w.stop()
    assert got and got[0]["kind"] == "Pod" and int(got[0]["metadata"]["resourceVersion"]) > 0


def read_lines(url: str, limit: int, types: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The first ``limit`` watch events (of ``types`` if given) from a raw watch stream."""
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("application/json")
        out = []
        for line in resp:
            event = json.loads(line)
            if not types or event["type"] in types:
                out.append(event)
            if len(out) >= limit:
                break
        return out


def test_watchlist_initial_events_end_bookmark(
    kubesim: KubeSimProcess, core: client.CoreV1Api, namespace: str
) -> None:
    make_pods(core, namespace, {"a": {}, "b": {}})
    query = (
        "allowWatchBookmarks=true&fieldSelector=metadata.name%3Db&resourceVersionMatch=NotOlderThan"
        "&sendInitialEvents=true&timeoutSeconds=5&watch=true"
    )
    events = read_lines(f"{kubesim.url}/api/v1/namespaces/{namespace}/pods?{query}", 2)
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    assert events[0]["object"]["metadata"]["name"] == "b"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    # sendInitialEvents without bookmarks is rejected with 422 (kubectl then falls back to list+watch).
    status, _, body = http(
        kubesim.url,
        "GET",
        f"/api/v1/namespaces/{namespace}/pods?sendInitialEvents=true"
        "&resourceVersionMatch=NotOlderThan&watch=true",
    )
    assert (status, body["reason"]) == (422, "Invalid")


def test_watch_fan_out_to_20_watchers(
    kubesim: KubeSimProcess, core: client.CoreV1Api, namespace: str
) -> None:
    rv = core.list_namespaced_pod(namespace).metadata.resource_version
    results: list[list[str]] = [[] for _ in range(20)]

    def consume(i: int) -> None:
        url = (
            f"{kubesim.url}/api/v1/namespaces/{namespace}/pods?watch=true&resourceVersion={rv}"
            "&timeoutSeconds=10"
        )
        results[i] = [e["object"]["metadata"]["name"] for e in read_lines(url, 10, ("ADDED",))]

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    make_pods(core, namespace, {f"f{i}": {} for i in range(10)})
    for t in threads:
        t.join(15)
    assert all(r == [f"f{i}" for i in range(10)] for r in results)


def test_watch_from_before_a_restart_is_expired(tmp_path: Any) -> None:
    from kubesim.testing import api_client_for, start_kubesim

    state = tmp_path / "state.json"
    sim = start_kubesim(tmp_path / "a", state=state)
    try:
        api = api_client_for(sim.kubeconfig)
        core = client.CoreV1Api(api)
        old_rv = core.list_namespaced_pod("default").metadata.resource_version
        core.create_namespaced_pod("default", pod_body("p"))
        api.close()
    finally:
        sim.stop()
    sim = start_kubesim(tmp_path / "b", state=state)
    try:
        api = api_client_for(sim.kubeconfig)
        core = client.CoreV1Api(api)
        assert core.read_namespaced_pod("p", "default").metadata.name == "p"
        with pytest.raises(ApiException) as exc:
            for _ in watch.Watch().stream(core.list_namespaced_pod, "default", resource_version=old_rv):
                pass
        assert exc.value.status == 410 and exc.value.reason.startswith("Expired")
        api.close()
    finally:
        sim.stop()


def test_single_object_watch_path(kubesim: KubeSimProcess, core: client.CoreV1Api, namespace: str) -> None:
    make_pods(core, namespace, {"a": {}, "b": {}})
    events = read_lines(f"{kubesim.url}/api/v1/namespaces/{namespace}/pods/b?watch=true&timeoutSeconds=2", 1)
    assert events[0]["type"] == "ADDED" and events[0]["object"]["metadata"]["name"] == "b"


def test_cluster_wide_watch_with_field_selector(
    kubesim: KubeSimProcess, core: client.CoreV1Api, namespace: str
) -> None:
    rv = core.list_namespaced_pod(namespace).metadata.resource_version
    make_pods(core, namespace, {"x": {}})
    url = (
        f"{kubesim.url}/api/v1/pods?watch=true&resourceVersion={rv}&timeoutSeconds=2"
        f"&fieldSelector=metadata.namespace%3D{namespace}"
    )
    events = read_lines(url, 1, ("ADDED",))
    assert events[0]["object"]["metadata"]["namespace"] == namespace


def test_open_watches_are_listed_until_they_end(
    kubesim: KubeSimProcess, core: client.CoreV1Api, namespace: str
) -> None:
    """``GET /kubesim/watches`` lists the streams open now (what the paused-rollouts benchmark counts)."""
    w = watch.Watch()

    def consume() -> None:
        for _ in w.stream(
            core.list_namespaced_pod, namespace, label_selector="app=counted", timeout_seconds=30
        ):
            w.stop()  # the first event ends it

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    mine = lambda: [x for x in kubesim.watches() if x["namespace"] == namespace]  # noqa: E731
    wait_for(lambda: mine(), what="the watch to be listed")
    assert mine() == [
        {
            "userAgent": mine()[0]["userAgent"],
            "resource": "pods",
            "namespace": namespace,
            "labelSelector": "app=counted",
            "name": "",
        }
    ]
    make_pods(core, namespace, {"counted-1": {"app": "counted"}})
    thread.join(10)
    wait_for(lambda: not mine(), what="the ended watch to leave the list")
