"""TrafficActivities through the real kubernetes client against kubesim.

Stable and canary pods come from ReplicaSets created directly (labels ``pod-template-hash=<hash>``), like a
Deployment's stable and canary ReplicaSets during a rollout.
"""

from __future__ import annotations

import copy

import pytest
from kubernetes import client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.traffic import TrafficActivities
from kube.client import KubeClient
from kube.names import MANAGED_BY_LABEL
from tests.helpers.poll import wait_for
from tests.helpers.traffic import (
    canonical,
    endpoint_ips,
    get_route,
    make_ingress,
    make_replicaset,
    make_route,
    make_service,
    raw,
    ready_pod_ips,
    scale_replicaset,
)
from workflows.errors import TRAFFIC_OBJECT_CONFLICT, TRAFFIC_OBJECT_INVALID, TRAFFIC_OBJECT_NOT_FOUND
from workflows.model import (
    GatewayRef,
    HeaderMatch,
    HttpRouteMatch,
    IngressRef,
    StepTraffic,
    TrafficChange,
    TrafficInput,
    TrafficRoutingRef,
    TrafficSnapshot,
)
from workflows.traffic import COOKIE_HEADER_NAME, RESTORE_ALL, TrafficOp

NG = "nginx.ingress.kubernetes.io/"
HEADER = HttpRouteMatch(headers=[HeaderMatch(name="X-Canary", value="true")])
COOKIE = HttpRouteMatch(headers=[HeaderMatch(name=COOKIE_HEADER_NAME, value="canary")])
ENV = ActivityEnvironment()


@pytest.fixture
def acts(kube_api: client.ApiClient) -> TrafficActivities:
    return TrafficActivities(KubeClient(kube_api, threads=8))


async def run(fn, inp: TrafficInput):  # type: ignore[no-untyped-def]
    """Run one activity method inside an activity context, as the worker would."""
    return await ENV.run(fn, inp)


def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


async def expect_error(fn, inp: TrafficInput, error_type: str, text: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ApplicationError) as info:
        await run(fn, inp)
    assert info.value.type == error_type and info.value.non_retryable
    assert text in str(info.value)


# --- snapshot validation ----------------------------------------------------------------------------------


async def test_snapshot_rejects_impossible_requests(
    acts: TrafficActivities, kube_api: client.ApiClient, namespace: str
) -> None:
    ns = namespace
    ing = TrafficRoutingRef(service="web", ingress=IngressRef(name="web"))
    await expect_error(
        acts.snapshot_traffic,
        TrafficInput(namespace=ns, routing=ing),
        TRAFFIC_OBJECT_NOT_FOUND,
        f"Service {ns}/web not found",
    )
    make_service(kube_api, ns, "noselector", {})
    await expect_error(
        acts.snapshot_traffic,
        TrafficInput(namespace=ns, routing=ing.model_copy(update={"service": "noselector"})),
        TRAFFIC_OBJECT_INVALID,
        "has no selector",
    )
    make_service(kube_api, ns, "web", {"app": "web"})
    await expect_error(
        acts.snapshot_traffic,
        TrafficInput(namespace=ns, routing=ing),
        TRAFFIC_OBJECT_NOT_FOUND,
        f"Ingress {ns}/web not found",
    )
    make_ingress(kube_api, ns, "other", "elsewhere")
    await expect_error(
        acts.snapshot_traffic,
        TrafficInput(namespace=ns, routing=ing.model_copy(update={"ingress": IngressRef(name="other")})),
        TRAFFIC_OBJECT_INVALID,
        "has no path with backend Service web",
    )
    gw = TrafficRoutingRef(service="web", gateway=GatewayRef(http_route_name="web"))
    await expect_error(
        acts.snapshot_traffic,
        TrafficInput(namespace=ns, routing=gw),
        TRAFFIC_OBJECT_NOT_FOUND,
        f"HTTPRoute {ns}/web not found",
    )
    make_route(kube_api, ns, "web", "elsewhere")
    await expect_error(
        acts.snapshot_traffic,
        TrafficInput(namespace=ns, routing=gw),
        TRAFFIC_OBJECT_INVALID,
        "has no rule with backendRef Service web",
    )
    # A user-owned "<svc>-canary" (the seed's own pattern) is never taken over.
    make_service(kube_api, ns, "web-canary", {"app": "web", "version": "1.27"})
    make_ingress(kube_api, ns, "web", "web")
    await expect_error(
        acts.snapshot_traffic,
        TrafficInput(namespace=ns, routing=ing),
        TRAFFIC_OBJECT_CONFLICT,
        f"Service {ns}/web-canary already exists and is not managed by temporal-rollouts",
    )


# --- nginx Ingress: full sequence with Endpoints ----------------------------------------------------------


async def test_nginx_ingress_step_sequence(
    acts: TrafficActivities, kube_api: client.ApiClient, namespace: str
) -> None:
    ns = namespace
    original_svc = make_service(kube_api, ns, "web", {"app": "web"}, type="NodePort")
    original_ing = make_ingress(kube_api, ns, "web", "web")
    make_replicaset(kube_api, ns, "web-stable1", {"app": "web", "pod-template-hash": "stable1"}, 3)
    stable_ips = wait_for(
        lambda: (ips := ready_pod_ips(kube_api, ns, "pod-template-hash=stable1")) and len(ips) == 3 and ips,
        what="3 stable pods ready",
    )
    wait_for(lambda: endpoint_ips(kube_api, ns, "web") == stable_ips, what="web endpoints = stable pods")

    routing = TrafficRoutingRef(service="web", grace_period_seconds=0, ingress=IngressRef(name="web"))
    base = TrafficInput(namespace=ns, routing=routing)
    snapshot: TrafficSnapshot = await run(acts.snapshot_traffic, base)
    assert snapshot.stable_selector == {"app": "web"}
    assert snapshot.service_spec == original_svc["spec"]
    assert snapshot.ingress_spec == original_ing["spec"]
    inp = base.model_copy(update={"snapshot": snapshot, "stable_hash": "stable1", "canary_hash": "canary1"})

    # Step 1 start: the stable Service selects only stable pods, before any canary pod exists.
    assert await run(acts.route_stable_service, inp) == TrafficChange(
        changed=True, message="Service web now selects pod-template-hash=stable1"
    )
    assert (await run(acts.route_stable_service, inp)).changed is False
    svc = raw(core(kube_api).read_namespaced_service, "web", ns)
    assert svc is not None and svc["spec"]["selector"] == {"app": "web", "pod-template-hash": "stable1"}
    assert svc["spec"]["clusterIP"] == original_svc["spec"]["clusterIP"]

    # Scale: one canary pod; it never shows up behind the stable Service.
    make_replicaset(
        kube_api, ns, "web-canary1", {"app": "web", "pod-template-hash": "canary1"}, 1, "nginx:1.27"
    )
    scale_replicaset(kube_api, ns, "web-stable1", 2)
    canary_ips = wait_for(
        lambda: ready_pod_ips(kube_api, ns, "pod-template-hash=canary1"), what="canary ready"
    )
    stable_now = wait_for(
        lambda: (ips := ready_pod_ips(kube_api, ns, "pod-template-hash=stable1")) and len(ips) == 2 and ips,
        what="2 stable pods",
    )
    wait_for(lambda: endpoint_ips(kube_api, ns, "web") == stable_now, what="stable endpoints = stable pods")

    # Traffic: canary Service lists only canary pod IPs; canary Ingress gets weight 5.
    assert (await run(acts.ensure_canary_service, inp)).changed is True
    assert (await run(acts.ensure_canary_service, inp)).changed is False
    canary_svc = raw(core(kube_api).read_namespaced_service, "web-canary", ns)
    assert canary_svc is not None
    assert canary_svc["spec"]["selector"] == {"app": "web", "pod-template-hash": "canary1"}
    assert canary_svc["spec"]["clusterIP"] != original_svc["spec"]["clusterIP"]
    assert canary_svc["spec"]["ports"][0].get("nodePort") != original_svc["spec"]["ports"][0]["nodePort"]
    assert canary_svc["metadata"]["labels"][MANAGED_BY_LABEL] == "temporal-rollouts"
    wait_for(lambda: endpoint_ips(kube_api, ns, "web-canary") == canary_ips, what="canary endpoints")
    assert endpoint_ips(kube_api, ns, "web") == stable_now

    step1 = inp.model_copy(update={"traffic": StepTraffic(weight=5)})
    assert (await run(acts.set_traffic, step1)) == TrafficChange(
        changed=True, message="created Ingress web-canary"
    )
    assert (await run(acts.set_traffic, step1)).changed is False
    ing = raw(client.NetworkingV1Api(kube_api).read_namespaced_ingress, "web-canary", ns)
    assert ing is not None
    assert {k: v for k, v in ing["metadata"]["annotations"].items() if k.startswith(NG)} == {
        NG + "rewrite-target": "/",
        NG + "canary": "true",
        NG + "canary-weight": "5",
    }
    assert ing["spec"]["rules"] == [
        {
            "host": "web.example.com",
            "http": {
                "paths": [
                    {
                        "path": "/",
                        "pathType": "Prefix",
                        "backend": {"service": {"name": "web-canary", "port": {"number": 80}}},
                    }
                ]
            },
        }
    ]

    # Next steps: weight 50, then an A/B test by header and cookie.
    assert (await run(acts.set_traffic, inp.model_copy(update={"traffic": StepTraffic(weight=50)}))).changed
    ing = raw(client.NetworkingV1Api(kube_api).read_namespaced_ingress, "web-canary", ns)
    assert ing is not None and ing["metadata"]["annotations"][NG + "canary-weight"] == "50"
    ab = inp.model_copy(update={"traffic": StepTraffic(matches=[HEADER, COOKIE])})
    assert (await run(acts.set_traffic, ab)).changed
    ing = raw(client.NetworkingV1Api(kube_api).read_namespaced_ingress, "web-canary", ns)
    assert ing is not None
    assert {k: v for k, v in ing["metadata"]["annotations"].items() if k.startswith(NG + "canary")} == {
        NG + "canary": "true",
        NG + "canary-by-header": "X-Canary",
        NG + "canary-by-header-value": "true",
        NG + "canary-by-cookie": "canary",
    }

    # Finalize: everything back to the user's objects (the RESTORE_ALL ops in order), canary objects gone.
    first = [await run(getattr(acts, op.value), inp) for op in RESTORE_ALL]
    again = [await run(getattr(acts, op.value), inp) for op in RESTORE_ALL]
    assert any(r.changed for r in first)
    assert not any(r.changed for r in again)
    svc = raw(core(kube_api).read_namespaced_service, "web", ns)
    assert svc is not None
    assert canonical(svc["spec"]) == canonical(original_svc["spec"])
    assert svc["metadata"].get("annotations") == original_svc["metadata"].get("annotations")
    assert raw(core(kube_api).read_namespaced_service, "web-canary", ns) is None
    assert raw(client.NetworkingV1Api(kube_api).read_namespaced_ingress, "web-canary", ns) is None
    ing_after = raw(client.NetworkingV1Api(kube_api).read_namespaced_ingress, "web", ns)
    assert ing_after is not None and ing_after["spec"] == original_ing["spec"]
    assert ing_after["metadata"]["resourceVersion"] == original_ing["metadata"]["resourceVersion"]
    all_ips = stable_now | canary_ips
    wait_for(lambda: endpoint_ips(kube_api, ns, "web") == all_ips, what="web endpoints = every pod again")


async def test_weight_zero_without_canary_ingress_is_noop(
    acts: TrafficActivities, kube_api: client.ApiClient, namespace: str
) -> None:
    ns = namespace
    make_service(kube_api, ns, "web", {"app": "web"})
    make_ingress(kube_api, ns, "web", "web")
    routing = TrafficRoutingRef(service="web", ingress=IngressRef(name="web"))
    inp = TrafficInput(namespace=ns, routing=routing)
    assert (await run(acts.set_traffic, inp)).changed is False
    assert raw(client.NetworkingV1Api(kube_api).read_namespaced_ingress, "web-canary", ns) is None


# --- Gateway API HTTPRoute --------------------------------------------------------------------------------


async def test_httproute_weights_matches_and_byte_equal_restore(
    acts: TrafficActivities, kube_api: client.ApiClient, namespace: str
) -> None:
    ns = namespace
    make_service(kube_api, ns, "web", {"app": "web"})
    original = make_route(kube_api, ns, "web", "web")
    routing = TrafficRoutingRef(service="web", gateway=GatewayRef(http_route_name="web"))
    snapshot = await run(acts.snapshot_traffic, TrafficInput(namespace=ns, routing=routing))
    assert snapshot.http_route_spec == original["spec"]
    inp = TrafficInput(namespace=ns, routing=routing, snapshot=snapshot, stable_hash="s1", canary_hash="c1")

    assert (await run(acts.set_traffic, inp.model_copy(update={"traffic": StepTraffic(weight=5)}))).changed
    rules = get_route(kube_api, ns, "web")["spec"]["rules"]
    assert rules[0]["backendRefs"] == [
        {"group": "", "kind": "Service", "name": "web", "port": 80, "weight": 95},
        {"group": "", "kind": "Service", "name": "web-canary", "port": 80, "weight": 5},
    ]
    assert rules[1] == original["spec"]["rules"][1] and len(rules) == 2

    step2 = inp.model_copy(update={"traffic": StepTraffic(weight=50, matches=[HEADER])})
    assert (await run(acts.set_traffic, step2)).changed
    assert (await run(acts.set_traffic, step2)).changed is False
    rules = get_route(kube_api, ns, "web")["spec"]["rules"]
    assert [r["weight"] for r in rules[0]["backendRefs"]] == [50, 50]
    assert rules[2] == {
        "matches": [
            {
                "path": {"type": "PathPrefix", "value": "/"},
                "headers": [{"type": "Exact", "name": "X-Canary", "value": "true"}],
            }
        ],
        "backendRefs": [{"group": "", "kind": "Service", "name": "web-canary", "port": 80}],
    }

    # Undo order: routes first (byte-equal original spec), then Services.
    assert (await run(acts.restore_routes, inp)) == TrafficChange(
        changed=True, message="restored HTTPRoute web"
    )
    assert (await run(acts.restore_routes, inp)).changed is False
    after = get_route(kube_api, ns, "web")
    assert canonical(after["spec"]) == canonical(original["spec"])
    assert after["metadata"]["name"] == "web" and after["metadata"]["uid"] == original["metadata"]["uid"]


# --- recovery, retries and restore without a snapshot -----------------------------------------------------


async def test_restore_stable_service_without_snapshot_uses_parked_selector(
    acts: TrafficActivities, kube_api: client.ApiClient, namespace: str
) -> None:
    ns = namespace
    original = make_service(kube_api, ns, "web", {"app": "web", "tier": "frontend"})
    routing = TrafficRoutingRef(service="web", ingress=IngressRef(name="web"))
    inp = TrafficInput(namespace=ns, routing=routing, stable_hash="s1")
    assert (await run(acts.route_stable_service, inp)).changed
    # A fresh run (e.g. a new workflow after the old one was terminated) snapshots the user's selector.
    make_ingress(kube_api, ns, "web", "web")
    snap = await run(acts.snapshot_traffic, TrafficInput(namespace=ns, routing=routing))
    assert snap.stable_selector == {"app": "web", "tier": "frontend"}
    assert (await run(acts.restore_stable_service, TrafficInput(namespace=ns, routing=routing))).changed
    svc = raw(core(kube_api).read_namespaced_service, "web", ns)
    assert svc is not None and svc["spec"] == original["spec"]
    assert svc["metadata"]["annotations"] == original["metadata"]["annotations"]


async def test_transient_conflict_is_raised_for_retry(
    acts: TrafficActivities, kube_api: client.ApiClient, kubesim, namespace: str
) -> None:  # type: ignore[no-untyped-def]
    ns = namespace
    make_service(kube_api, ns, "web", {"app": "web"})
    routing = TrafficRoutingRef(service="web", ingress=IngressRef(name="web"))
    inp = TrafficInput(namespace=ns, routing=routing, stable_hash="s1")
    kubesim.set_faults(conflictRate=1.0)
    try:
        with pytest.raises(client.ApiException) as info:
            await run(acts.route_stable_service, inp)
        assert info.value.status == 409  # a plain (retryable) error: Temporal retries with a fresh read
    finally:
        kubesim.clear_faults()
    assert (await run(acts.route_stable_service, inp)).changed  # the retry succeeds


async def test_stale_snapshot_write_hits_precondition(
    acts: TrafficActivities, kube_api: client.ApiClient, namespace: str
) -> None:
    """Writes carry the read resourceVersion: a concurrent edit in between makes the write fail (409)."""
    ns = namespace
    make_service(kube_api, ns, "web", {"app": "web"})
    make_route(kube_api, ns, "web", "web")
    routing = TrafficRoutingRef(service="web", gateway=GatewayRef(http_route_name="web"))
    snapshot = await run(acts.snapshot_traffic, TrafficInput(namespace=ns, routing=routing))
    stale = get_route(kube_api, ns, "web")
    edited = copy.deepcopy(stale)
    edited["metadata"].setdefault("labels", {})["edited"] = "yes"
    client.CustomObjectsApi(kube_api).replace_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", ns, "httproutes", "web", edited
    )
    with pytest.raises(client.ApiException) as info:
        await acts._replace_route(ns, "web", stale)
    assert info.value.status == 409
    # The activity itself re-reads, so it succeeds and keeps the concurrent label edit.
    inp = TrafficInput(namespace=ns, routing=routing, snapshot=snapshot, traffic=StepTraffic(weight=10))
    assert (await run(acts.set_traffic, inp)).changed
    assert get_route(kube_api, ns, "web")["metadata"]["labels"]["edited"] == "yes"


async def test_restore_all_order_and_ops_registered(acts: TrafficActivities) -> None:
    names = {fn.__name__ for fn in acts.activities()}
    assert {op.value for op in TrafficOp} <= names
    assert "snapshot_traffic" in names
    assert RESTORE_ALL[0] == TrafficOp.RESTORE_STABLE_SERVICE
