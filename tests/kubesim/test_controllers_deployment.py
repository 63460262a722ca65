"""In-process tests of the deployment and replicaset controllers: a Store plus the real controllers on the
test's event loop, driven by store writes (what the HTTP layer does), observed through store subscriptions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from kubesim.controllers import deployment_util as du
from kubesim.resources import DEPLOYMENTS, EVENTS, PODS, REPLICASETS
from kubesim.store import WatchEvent
from tests.helpers.kubesim_controllers import (
    NS,
    Sim,
    condition,
    deployment,
    edit,
    is_ready,
    owned_rss,
    pods_of,
    rolled_out,
    rs_with_image,
    set_image,
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


async def test_rolling_update_keeps_surge_and_availability_bounds(sim: Sim) -> None:
    store = sim.store
    store.create(DEPLOYMENTS, deployment("nginx", replicas=10))
    await until(lambda: rolled_out(store, "nginx"), what="initial rollout")
    first = owned_rss(store, "nginx")
    assert len(first) == 1 and du.POD_TEMPLATE_HASH in first[0]["metadata"]["labels"]
    # Observe every single write during the rollout.
    totals: list[tuple[int, int]] = []

    def observe(_: WatchEvent) -> None:
        pods = pods_of(store, "nginx")
        totals.append((len(pods), sum(1 for p in pods if is_ready(p))))

    store.subscribe(observe)
    try:
        set_image(store, "nginx", "nginx:1.27")
        await until(
            lambda: rolled_out(store, "nginx") and rs_with_image(store, "nginx", "nginx:1.27"),
            what="rollout to 1.27",
        )
    finally:
        store.unsubscribe(observe)
    assert max(t for t, _ in totals) <= 13
    assert min(r for _, r in totals) >= 8
    d = store.peek(DEPLOYMENTS, NS, "nginx")
    assert d is not None
    assert d["metadata"]["generation"] == 2
    assert d["metadata"]["annotations"][du.REVISION] == "2"
    new = rs_with_image(store, "nginx", "nginx:1.27")
    old = rs_with_image(store, "nginx", "nginx:1.26")
    assert new is not None and old is not None
    assert new["spec"]["replicas"] == 10 and old["spec"]["replicas"] == 0
    assert new["metadata"]["annotations"][du.REVISION] == "2"
    assert new["metadata"]["annotations"][du.DESIRED_REPLICAS] == "10"
    assert new["metadata"]["annotations"][du.MAX_REPLICAS] == "13"
    conds = {c["type"]: c for c in d["status"]["conditions"]}
    assert conds["Available"]["reason"] == "MinimumReplicasAvailable"
    assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
    assert (
        conds["Progressing"]["message"]
        == f'ReplicaSet "{new["metadata"]["name"]}" has successfully progressed.'
    )
    assert d["status"]["observedGeneration"] == 2
    messages = [e["message"] for e in store.list(EVENTS, NS) if e["reason"] == "ScalingReplicaSet"]
    assert f"Scaled up replica set {new['metadata']['name']} from 0 to 3" in messages
    assert f"Scaled down replica set {old['metadata']['name']} from 10 to 8" in messages
    # Pods carry the RS ownerReference and the template labels.
    pod = pods_of(store, "nginx")[0]
    ref = pod["metadata"]["ownerReferences"][0]
    assert ref["kind"] == "ReplicaSet" and ref["controller"] is True
    assert pod["metadata"]["name"].startswith(ref["name"] + "-")


async def test_paused_template_change_creates_no_replicaset(sim: Sim) -> None:
    store = sim.store
    store.create(DEPLOYMENTS, deployment("web", replicas=4))
    await until(lambda: rolled_out(store, "web"))

    def pause_and_change(d: dict[str, Any]) -> None:
        d["spec"]["paused"] = True
        d["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.27"

    edit(store, DEPLOYMENTS, "web", pause_and_change)
    await until(
        lambda: (store.peek(DEPLOYMENTS, NS, "web") or {}).get("status", {}).get("observedGeneration") == 2,
        what="observedGeneration 2",
    )
    await until(lambda: (condition(store, "web", "Progressing") or {}).get("reason") == "DeploymentPaused")
    assert (condition(store, "web", "Progressing") or {}).get("status") == "Unknown"
    assert len(owned_rss(store, "web")) == 1
    st = store.get(DEPLOYMENTS, NS, "web")["status"]
    assert st.get("updatedReplicas", 0) == 0
    assert st["replicas"] == 4
    # Resume: the rollout starts and a second RS appears.
    edit(store, DEPLOYMENTS, "web", lambda d: d["spec"].update(paused=False))
    await until(lambda: rolled_out(store, "web") and rs_with_image(store, "web", "nginx:1.27"))
    assert len(owned_rss(store, "web")) == 2


async def test_paused_scale_is_proportional(sim: Sim) -> None:
    store = sim.store
    store.create(DEPLOYMENTS, deployment("prop", replicas=10))
    await until(lambda: rolled_out(store, "prop"))
    # A canary that never becomes ready stalls the rollout at old=8, new=5.

    def bad_release(d: dict[str, Any]) -> None:
        d["spec"]["template"]["metadata"]["annotations"] = {"kubesim.io/never-ready": "true"}

    edit(store, DEPLOYMENTS, "prop", bad_release)

    def sizes() -> tuple[int, int] | None:
        new = next(
            (rs for rs in owned_rss(store, "prop") if rs["spec"]["template"]["metadata"].get("annotations")),
            None,
        )
        old = next(
            (
                rs
                for rs in owned_rss(store, "prop")
                if not rs["spec"]["template"]["metadata"].get("annotations")
            ),
            None,
        )
        if new is None or old is None:
            return None
        return old["spec"]["replicas"], new["spec"]["replicas"]

    await until(lambda: sizes() == (8, 5), what="stalled rollout 8/5")
    edit(store, DEPLOYMENTS, "prop", lambda d: d["spec"].update(paused=True))
    await until(lambda: (condition(store, "prop", "Progressing") or {}).get("reason") == "DeploymentPaused")
    edit(store, DEPLOYMENTS, "prop", lambda d: d["spec"].update(replicas=20))
    # maxSurge(20) = 5: fractions round(8*25/13)=15 and round(5*25/13)=10.
    await until(lambda: sizes() == (15, 10), what="proportional 15/10")
    for rs in owned_rss(store, "prop"):
        assert rs["metadata"]["annotations"][du.DESIRED_REPLICAS] == "20"
        assert rs["metadata"]["annotations"][du.MAX_REPLICAS] == "25"
    edit(store, DEPLOYMENTS, "prop", lambda d: d["spec"].update(replicas=5))
    # maxSurge(5) = 2, allowed 7, toAdd -18: old 15*7/25=4.2 -> 4, new 10*7/25=2.8 -> 3.
    await until(lambda: sizes() == (4, 3), what="proportional 4/3")


async def test_external_replicaset_is_adopted_as_new_on_unpause(sim: Sim) -> None:
    store = sim.store
    store.create(DEPLOYMENTS, deployment("adopt", replicas=4))
    await until(lambda: rolled_out(store, "adopt"))
    edit(store, DEPLOYMENTS, "adopt", lambda d: d["spec"].update(paused=True))
    d = set_image(store, "adopt", "nginx:1.27")
    # An external tool (the rollout workflow) creates the canary RS itself: deployment template + hash label.
    template = d["spec"]["template"]
    template["metadata"]["labels"]["pod-template-hash"] = "canary1"
    store.create(
        REPLICASETS,
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": "adopt-canary1",
                "namespace": NS,
                "labels": dict(template["metadata"]["labels"]),
            },
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "adopt", "pod-template-hash": "canary1"}},
                "template": template,
            },
        },
    )
    await until(
        lambda: any(
            r.get("controller")
            for r in (store.peek(REPLICASETS, NS, "adopt-canary1") or {})
            .get("metadata", {})
            .get("ownerReferences", [])
        ),
        what="adoption",
    )
    assert len(owned_rss(store, "adopt")) == 2
    edit(store, DEPLOYMENTS, "adopt", lambda d: d["spec"].update(paused=False))
    await until(lambda: rolled_out(store, "adopt"), what="rollout through the adopted RS")
    rss = owned_rss(store, "adopt")
    assert len(rss) == 2, [rs["metadata"]["name"] for rs in rss]
    canary = store.peek(REPLICASETS, NS, "adopt-canary1")
    assert canary is not None and canary["spec"]["replicas"] == 4
    assert canary["metadata"]["annotations"][du.REVISION] == "2"
    assert store.get(DEPLOYMENTS, NS, "adopt")["metadata"]["annotations"][du.REVISION] == "2"


async def test_recreate_never_runs_old_and_new_pods_together(sim: Sim) -> None:
    store = sim.store
    store.create(DEPLOYMENTS, deployment("rec", replicas=3, strategy={"type": "Recreate"}))
    await until(lambda: rolled_out(store, "rec"))
    mixed: list[set[str]] = []

    def observe(_: WatchEvent) -> None:
        images = {p["spec"]["containers"][0]["image"] for p in pods_of(store, "rec")}
        if len(images) > 1:
            mixed.append(images)

    store.subscribe(observe)
    try:
        set_image(store, "rec", "nginx:1.27")
        await until(lambda: rolled_out(store, "rec") and rs_with_image(store, "rec", "nginx:1.27"))
    finally:
        store.unsubscribe(observe)
    assert not mixed
    assert {p["spec"]["containers"][0]["image"] for p in pods_of(store, "rec")} == {"nginx:1.27"}


async def test_revision_history_limit_cleans_old_replicasets(sim: Sim) -> None:
    store = sim.store
    store.create(DEPLOYMENTS, deployment("hist", replicas=2, revisionHistoryLimit=1))
    await until(lambda: rolled_out(store, "hist"))
    for image in ("nginx:1.27", "nginx:1.28", "nginx:1.29"):
        set_image(store, "hist", image)
        await until(lambda: rolled_out(store, "hist") and rs_with_image(store, "hist", image))  # noqa: B023
    await until(lambda: len(owned_rss(store, "hist")) == 2, what="history cleanup")
    images = sorted(
        rs["spec"]["template"]["spec"]["containers"][0]["image"] for rs in owned_rss(store, "hist")
    )
    assert images == ["nginx:1.28", "nginx:1.29"]


async def test_rollback_reuses_old_replicaset_with_revision_history(sim: Sim) -> None:
    store = sim.store
    store.create(DEPLOYMENTS, deployment("undo", replicas=2))
    await until(lambda: rolled_out(store, "undo"))
    set_image(store, "undo", "nginx:1.27")
    await until(lambda: rolled_out(store, "undo") and rs_with_image(store, "undo", "nginx:1.27"))
    set_image(store, "undo", "nginx:1.26")
    await until(
        lambda: (
            rolled_out(store, "undo")
            and (rs_with_image(store, "undo", "nginx:1.26") or {}).get("spec", {}).get("replicas") == 2
        )
    )
    assert len(owned_rss(store, "undo")) == 2
    first = rs_with_image(store, "undo", "nginx:1.26")
    assert first is not None
    assert first["metadata"]["annotations"][du.REVISION] == "3"
    assert first["metadata"]["annotations"][du.REVISION_HISTORY] == "1"
    assert store.get(DEPLOYMENTS, NS, "undo")["metadata"]["annotations"][du.REVISION] == "3"


async def test_never_ready_release_exceeds_progress_deadline(sim: Sim) -> None:
    store = sim.store
    store.create(DEPLOYMENTS, deployment("stuck", replicas=2, progressDeadlineSeconds=1))
    await until(lambda: rolled_out(store, "stuck"))

    def bad(d: dict[str, Any]) -> None:
        d["spec"]["template"]["metadata"]["annotations"] = {"kubesim.io/never-ready": "true"}

    edit(store, DEPLOYMENTS, "stuck", bad)
    cond = await until(
        lambda: (
            (c := condition(store, "stuck", "Progressing"))
            and c["reason"] == "ProgressDeadlineExceeded"
            and c
        ),
        timeout=8,
        what="deadline exceeded",
    )
    assert cond["status"] == "False"
    assert cond["message"].endswith("has timed out progressing.")
    # The stable pods keep serving: 2 replicas with maxUnavailable 0 stay available.
    assert store.get(DEPLOYMENTS, NS, "stuck")["status"]["availableReplicas"] == 2


async def test_crash_loop_pods_restart_and_never_become_ready(sim: Sim) -> None:
    store = sim.store
    store.create(DEPLOYMENTS, deployment("crash", replicas=1, annotations={"kubesim.io/crash-loop": "true"}))

    def restarts() -> int:
        pods = pods_of(store, "crash")
        if not pods:
            return 0
        return int(pods[0]["status"].get("containerStatuses", [{}])[0].get("restartCount", 0))

    await until(lambda: restarts() >= 3, timeout=10, what="restartCount rising")
    pod = pods_of(store, "crash")[0]
    cs = pod["status"]["containerStatuses"][0]
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert pod["status"]["phase"] == "Running"
    assert not is_ready(pod)
    assert store.get(DEPLOYMENTS, NS, "crash")["status"].get("availableReplicas", 0) == 0
    # Identical kubelet events aggregate into one Event with a rising count.
    backoff = [e for e in store.list(EVENTS, NS) if e["reason"] == "BackOff"]
    assert len(backoff) == 1 and backoff[0]["count"] >= 2 and backoff[0]["type"] == "Warning"
    assert backoff[0]["involvedObject"]["name"] == pod["metadata"]["name"]
    scheduled = [e for e in store.list(EVENTS, NS) if e["reason"] == "Scheduled"]
    assert scheduled[0]["source"]["component"] == "default-scheduler"


async def test_ready_delay_annotation_overrides_global_delay(sim: Sim) -> None:
    store = sim.store
    store.create(DEPLOYMENTS, deployment("slow", replicas=1, annotations={"kubesim.io/ready-delay": "0.6"}))
    pod = await until(lambda: next((p for p in pods_of(store, "slow") if p["status"].get("podIP")), None))
    assert pod["status"]["phase"] == "Running" and not is_ready(pod)
    assert pod["spec"]["nodeName"] == "kubesim-node"
    assert pod["status"]["podIP"].startswith("10.244.")
    await until(lambda: rolled_out(store, "slow"), timeout=5)


async def test_replicaset_scale_down_deletes_not_ready_pods_first(sim: Sim) -> None:
    store = sim.store
    store.create(
        REPLICASETS,
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "rs", "namespace": NS},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "rs"}},
                "template": {
                    "metadata": {"labels": {"app": "rs"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]},
                },
            },
        },
    )
    await until(lambda: (store.peek(REPLICASETS, NS, "rs") or {}).get("status", {}).get("readyReplicas") == 3)
    rs = store.peek(REPLICASETS, NS, "rs")
    assert rs is not None
    assert rs["status"] == {
        "replicas": 3,
        "fullyLabeledReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "observedGeneration": 1,
    }
    # An orphan pod matching the selector is adopted (and makes one pod surplus): make it NotReady by
    # marking it never-ready; the RS must delete exactly that one.
    victim = store.create(
        PODS,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "odd-one",
                "namespace": NS,
                "labels": {"app": "rs"},
                "annotations": {"kubesim.io/never-ready": "true"},
            },
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        },
    )
    await until(lambda: store.peek(PODS, NS, "odd-one") is None, what="surplus not-ready pod deleted")
    assert victim["metadata"]["name"] == "odd-one"
    assert len(pods_of(store, "rs")) == 3
    reasons = [
        (e["reason"], e["message"]) for e in store.list(EVENTS, NS) if e["involvedObject"]["name"] == "rs"
    ]
    assert ("SuccessfulDelete", "Deleted pod: odd-one") in reasons


async def test_min_ready_seconds_delays_availability(sim: Sim) -> None:
    store = sim.store
    store.create(DEPLOYMENTS, deployment("mrs", replicas=1, minReadySeconds=2))
    await until(
        lambda: (store.peek(DEPLOYMENTS, NS, "mrs") or {}).get("status", {}).get("readyReplicas") == 1
    )
    assert store.get(DEPLOYMENTS, NS, "mrs")["status"].get("availableReplicas", 0) == 0
    await until(lambda: rolled_out(store, "mrs"), timeout=5, what="available after minReadySeconds")
