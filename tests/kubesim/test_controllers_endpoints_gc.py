"""In-process tests of the endpoints/endpointslice controllers and the garbage collector."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from kubesim.controllers import delete_with_propagation
from kubesim.resources import DEPLOYMENTS, ENDPOINTS, ENDPOINTSLICES, PODS, REPLICASETS, SERVICES
from kubesim.store import WatchEvent
from tests.helpers.kubesim_controllers import (
    NS,
    Sim,
    deployment,
    is_ready,
    owned_rss,
    pods_of,
    rolled_out,
    start_sim,
    until,
)


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    s = await start_sim(ready_delay=0.05)
    try:
        yield s
    finally:
        await s.controllers.stop()


def _service(name: str, selector: dict[str, str], target: Any = "http") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "selector": selector,
            "ports": [{"name": "web", "port": 8080, "targetPort": target, "protocol": "TCP"}],
        },
    }


def _slices(store: Any, svc: str) -> list[dict[str, Any]]:
    return [
        s
        for s in store.list(ENDPOINTSLICES, NS)
        if s["metadata"]["labels"].get("kubernetes.io/service-name") == svc
    ]


async def test_endpoints_list_only_ready_pod_ips(sim: Sim) -> None:
    store = sim.store
    stable = deployment("stable", replicas=2)
    stable["spec"]["template"]["metadata"]["labels"]["tier"] = "web"
    canary = deployment("canary", replicas=1, annotations={"kubesim.io/never-ready": "true"})
    canary["spec"]["template"]["metadata"]["labels"]["tier"] = "web"
    store.create(DEPLOYMENTS, stable)
    store.create(DEPLOYMENTS, canary)
    store.create(SERVICES, _service("web", {"tier": "web"}))
    await until(lambda: rolled_out(store, "stable"))
    await until(lambda: any(p["status"].get("podIP") for p in pods_of(store, "canary")))
    ready_ips = sorted(p["status"]["podIP"] for p in pods_of(store, "stable"))
    canary_ip = pods_of(store, "canary")[0]["status"]["podIP"]

    def endpoints() -> dict[str, Any] | None:
        ep = store.peek(ENDPOINTS, NS, "web")
        subsets = (ep or {}).get("subsets") or []
        if (
            len(subsets) == 1
            and len(subsets[0].get("addresses", [])) == 2
            and subsets[0].get("notReadyAddresses")
        ):
            return ep
        return None

    ep = await until(endpoints, what="endpoints with 2 ready + 1 not ready")
    subset = ep["subsets"][0]
    assert sorted(a["ip"] for a in subset["addresses"]) == ready_ips
    assert [a["ip"] for a in subset["notReadyAddresses"]] == [canary_ip]
    assert subset["ports"] == [{"name": "web", "port": 80, "protocol": "TCP"}]  # named targetPort resolved
    assert subset["addresses"][0]["targetRef"]["kind"] == "Pod"
    slices = _slices(store, "web")
    assert len(slices) == 1
    es = slices[0]
    assert es["addressType"] == "IPv4"
    assert es["metadata"]["ownerReferences"][0]["kind"] == "Service"
    assert (
        es["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"]
        == "endpointslice-controller.k8s.io"
    )
    assert es["ports"] == [{"name": "web", "port": 80, "protocol": "TCP"}]
    by_ip = {e["addresses"][0]: e["conditions"] for e in es["endpoints"]}
    assert by_ip[canary_ip] == {"ready": False, "serving": False, "terminating": False}
    assert all(by_ip[ip]["ready"] for ip in ready_ips)


async def test_selector_switch_repoints_endpoints(sim: Sim) -> None:
    store = sim.store
    store.create(DEPLOYMENTS, deployment("blue", replicas=2))
    store.create(DEPLOYMENTS, deployment("green", replicas=1))
    store.create(SERVICES, _service("app", {"app": "blue"}, target=80))
    await until(lambda: rolled_out(store, "blue") and rolled_out(store, "green"))
    green_ip = pods_of(store, "green")[0]["status"]["podIP"]
    svc = store.get(SERVICES, NS, "app")
    svc["spec"]["selector"] = {"app": "green"}
    store.update(SERVICES, svc)

    def addresses() -> list[str]:
        ep = store.peek(ENDPOINTS, NS, "app") or {}
        return [a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses", [])]

    await until(lambda: addresses() == [green_ip], what="endpoints re-pointed")
    await until(
        lambda: [e["addresses"][0] for s in _slices(store, "app") for e in s["endpoints"]] == [green_ip]
    )


async def test_service_without_matching_pods_has_no_subsets(sim: Sim) -> None:
    store = sim.store
    store.create(SERVICES, _service("empty", {"app": "nothing"}))
    ep = await until(lambda: store.peek(ENDPOINTS, NS, "empty"))
    assert "subsets" not in ep
    await until(lambda: _slices(store, "empty"))
    store.delete(SERVICES, NS, "empty")
    await until(
        lambda: store.peek(ENDPOINTS, NS, "empty") is None and not _slices(store, "empty"),
        what="endpoints and slices removed with the service",
    )


async def test_background_deletion_collects_replicasets_and_pods(sim: Sim) -> None:
    store = sim.store
    store.create(DEPLOYMENTS, deployment("bg", replicas=3))
    await until(lambda: rolled_out(store, "bg"))
    store.delete(DEPLOYMENTS, NS, "bg")
    await until(
        lambda: (
            not pods_of(store, "bg")
            and not [rs for rs in store.list(REPLICASETS, NS) if rs["metadata"]["name"].startswith("bg-")]
        ),
        what="dependents collected",
    )


async def test_foreground_deletion_removes_dependents_before_owner(sim: Sim) -> None:
    store = sim.store
    store.create(DEPLOYMENTS, deployment("fg", replicas=2))
    await until(lambda: rolled_out(store, "fg"))
    order: list[tuple[str, str]] = []

    def observe(event: WatchEvent) -> None:
        if event.type == "DELETED":
            order.append((event.resource, event.obj["metadata"]["name"]))

    store.subscribe(observe)
    try:
        left = delete_with_propagation(store, DEPLOYMENTS, NS, "fg", "Foreground")
        assert left["metadata"]["deletionTimestamp"]
        assert "foregroundDeletion" in left["metadata"]["finalizers"]
        await until(lambda: store.peek(DEPLOYMENTS, NS, "fg") is None, what="owner removed last")
    finally:
        store.unsubscribe(observe)
    kinds = [res for res, _ in order]
    assert kinds[-1] == DEPLOYMENTS
    assert kinds.count(PODS) == 2 and kinds.count(REPLICASETS) == 1
    assert kinds.index(REPLICASETS) > max(i for i, k in enumerate(kinds) if k == PODS)


async def test_orphan_deletion_keeps_dependents(sim: Sim) -> None:
    store = sim.store
    store.create(DEPLOYMENTS, deployment("orph", replicas=2))
    await until(lambda: rolled_out(store, "orph"))
    rs_name = owned_rss(store, "orph")[0]["metadata"]["name"]
    delete_with_propagation(store, DEPLOYMENTS, NS, "orph", "Orphan")
    await until(lambda: store.peek(DEPLOYMENTS, NS, "orph") is None)
    rs = await until(
        lambda: (r := store.peek(REPLICASETS, NS, rs_name)) and not r["metadata"].get("ownerReferences") and r
    )
    assert rs["spec"]["replicas"] == 2
    assert len(pods_of(store, "orph")) == 2 and all(is_ready(p) for p in pods_of(store, "orph"))


async def test_pod_with_deletion_timestamp_is_removed_after_finalizers(sim: Sim) -> None:
    store = sim.store
    store.create(
        PODS,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "fin", "namespace": NS, "finalizers": ["example.com/hold"]},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        },
    )
    await until(lambda: is_ready(store.peek(PODS, NS, "fin") or {}))
    store.delete(PODS, NS, "fin")
    pod = store.get(PODS, NS, "fin")
    assert pod["metadata"]["deletionTimestamp"]
    pod["metadata"]["finalizers"] = []
    store.update(PODS, pod)
    await until(lambda: store.peek(PODS, NS, "fin") is None)
