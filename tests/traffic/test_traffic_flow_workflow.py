"""The traffic plan run from workflow code (real Temporal dev server, real worker, kubesim).

TrafficProbeWorkflow does what the rollout workflow will do around each step; the test plays the replica part
(creating/scaling ReplicaSets) and checks Services, Endpoints, the canary Ingress and the HTTPRoute at every
step, then after completion and after an undo.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for
from kubernetes import client
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from traffic_fixtures import (
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
from traffic_probe_workflow import ProbeInput, ProbeState, ProbeStep, TrafficProbeWorkflow

from activities.traffic import TrafficActivities
from kubesim.testing import KubeSimProcess
from workflows.traffic import (
    GatewayRef,
    HeaderMatch,
    HttpRouteMatch,
    IngressRef,
    StepTraffic,
    TrafficRoutingRef,
)

NG = "nginx.ingress.kubernetes.io/"
TEMPORAL = shutil.which("temporal") or str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "temporal")


@pytest.fixture(scope="module")
async def temporal_client() -> AsyncIterator[Client]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=TEMPORAL, data_converter=pydantic_data_converter
    )
    async with env:
        yield env.client


async def wait_state(
    handle: WorkflowHandle[Any, Any], phase: str, step: int, timeout: float = 30
) -> ProbeState:
    """Poll the probe query until the workflow reaches ``phase`` at ``step``."""
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = await handle.query(TrafficProbeWorkflow.probe)
        if state.phase == phase and state.step == step:
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"workflow never reached {phase} step {step}; last state {state}")


def ready_count(api: client.ApiClient, ns: str, hash_: str, count: int) -> set[str]:
    def check() -> set[str] | None:
        ips = ready_pod_ips(api, ns, f"pod-template-hash={hash_}")
        return ips if len(ips) == count else None

    if count == 0:
        wait_for(lambda: not ready_pod_ips(api, ns, f"pod-template-hash={hash_}"), what=f"no {hash_} pods")
        return set()
    return wait_for(check, what=f"{count} ready {hash_} pods")


def scale_to(
    api: client.ApiClient, ns: str, canary: int, stable: int, *, create_canary: bool = False
) -> tuple[set[str], set[str]]:
    """Play the engine's scale + wait-ready: canary RS up first, then stable RS down."""
    if create_canary:
        make_replicaset(api, ns, "web-c1", {"app": "web", "pod-template-hash": "c1"}, canary, "nginx:1.27")
    else:
        scale_replicaset(api, ns, "web-c1", canary)
    canary_ips = ready_count(api, ns, "c1", canary)
    scale_replicaset(api, ns, "web-s1", stable)
    return canary_ips, ready_count(api, ns, "s1", stable)


def endpoints_equal(api: client.ApiClient, ns: str, name: str, ips: set[str]) -> None:
    wait_for(lambda: endpoint_ips(api, ns, name) == ips, what=f"Endpoints {name} == {sorted(ips)}")


def service(api: client.ApiClient, ns: str, name: str) -> dict[str, Any] | None:
    return raw(client.CoreV1Api(api).read_namespaced_service, name, ns)


def canary_ingress_annotations(api: client.ApiClient, ns: str) -> dict[str, str] | None:
    ing = raw(client.NetworkingV1Api(api).read_namespaced_ingress, "web-canary", ns)
    if ing is None:
        return None
    return {k: v for k, v in ing["metadata"]["annotations"].items() if k.startswith(NG + "canary")}


async def test_nginx_seed_steps_then_complete(
    temporal_client: Client, kube_api: client.ApiClient, namespace: str
) -> None:
    """``--steps 1:5%,50%:50%,100% --service web --ingress web`` on 10 replicas, then completion."""
    ns, api = namespace, kube_api
    original_svc = make_service(api, ns, "web", {"app": "web"})
    original_ing = make_ingress(api, ns, "web", "web")
    make_replicaset(api, ns, "web-s1", {"app": "web", "pod-template-hash": "s1"}, 10)
    ready_count(api, ns, "s1", 10)
    routing = TrafficRoutingRef(service="web", grace_period_seconds=0, ingress=IngressRef(name="web"))
    inp = ProbeInput(
        namespace=ns,
        routing=routing,
        replicas=10,
        stable_hash="s1",
        canary_hash="c1",
        steps=[
            ProbeStep(canary=1, traffic=StepTraffic(weight=5)),
            ProbeStep(canary=5, traffic=StepTraffic(weight=50)),
            ProbeStep(canary=10),
        ],
    )
    queue = f"traffic-{uuid.uuid4()}"
    async with Worker(
        temporal_client,
        task_queue=queue,
        workflows=[TrafficProbeWorkflow],
        activities=TrafficActivities(api).activities(),
    ):
        handle = await temporal_client.start_workflow(
            TrafficProbeWorkflow.run, inp, id=f"probe-{ns}", task_queue=queue
        )
        # Step 1 start: stable Service narrowed before any canary pod exists; nothing canary yet.
        state = await wait_state(handle, "StepStarted", 1)
        assert state.status == {"trafficWeight": None, "trafficMatches": [], "traffic": ""}
        svc = service(api, ns, "web")
        assert svc is not None and svc["spec"]["selector"] == {"app": "web", "pod-template-hash": "s1"}
        assert service(api, ns, "web-canary") is None and canary_ingress_annotations(api, ns) is None

        for step, (canary, stable, weight) in enumerate([(1, 9, "5"), (5, 5, "50")], start=1):
            if step > 1:
                await wait_state(handle, "StepStarted", step)
            canary_ips, stable_ips = scale_to(api, ns, canary, stable, create_canary=step == 1)
            await handle.signal(TrafficProbeWorkflow.scaled_signal, step)
            state = await wait_state(handle, "StepReady", step)
            assert state.status["trafficWeight"] == int(weight)
            assert state.status["traffic"] == f"weight {weight}%"
            assert canary_ingress_annotations(api, ns) == {
                NG + "canary": "true",
                NG + "canary-weight": weight,
            }
            endpoints_equal(api, ns, "web-canary", canary_ips)
            endpoints_equal(api, ns, "web", stable_ips)
            await handle.signal(TrafficProbeWorkflow.proceed, step)

        # Step 3 (100%, no traffic): everything restored before scaling, traffic follows pods.
        state = await wait_state(handle, "StepStarted", 3)
        assert state.status["traffic"] == ""
        svc = service(api, ns, "web")
        assert svc is not None and canonical(svc["spec"]) == canonical(original_svc["spec"])
        assert service(api, ns, "web-canary") is None and canary_ingress_annotations(api, ns) is None
        canary_ips, _ = scale_to(api, ns, 10, 0)
        await handle.signal(TrafficProbeWorkflow.scaled_signal, 3)
        await wait_state(handle, "StepReady", 3)
        await handle.signal(TrafficProbeWorkflow.proceed, 3)
        assert (await handle.result()).phase == "Finalized"

    svc = service(api, ns, "web")
    assert svc is not None and canonical(svc["spec"]) == canonical(original_svc["spec"])
    assert svc["metadata"].get("annotations") == original_svc["metadata"].get("annotations")
    assert service(api, ns, "web-canary") is None and canary_ingress_annotations(api, ns) is None
    ing = raw(client.NetworkingV1Api(api).read_namespaced_ingress, "web", ns)
    assert ing is not None and ing["spec"] == original_ing["spec"]
    wait_for(lambda: endpoint_ips(api, ns, "web") == canary_ips, what="web endpoints = all new pods")


async def test_httproute_ab_test_then_undo(
    temporal_client: Client, kube_api: client.ApiClient, kubesim: KubeSimProcess, namespace: str
) -> None:
    """HTTPRoute: weight 20%, then header match + 50%, then undo: routes first, Services after replicas."""
    ns, api = namespace, kube_api
    original_svc = make_service(api, ns, "web", {"app": "web"})
    original_route = make_route(api, ns, "web", "web")
    make_replicaset(api, ns, "web-s1", {"app": "web", "pod-template-hash": "s1"}, 4)
    ready_count(api, ns, "s1", 4)
    # The Deployment only serves as owner of the canary Service here (0 replicas, pods of its own label).
    labels = {"app": "owner-only"}
    body: Any = {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "nginx:1.26"}]},
            },
        },
    }
    client.AppsV1Api(api).create_namespaced_deployment(ns, body)
    deployment = raw(client.AppsV1Api(api).read_namespaced_deployment, "web", ns)
    assert deployment is not None
    header = HttpRouteMatch(headers=[HeaderMatch(name="X-Canary", value="true")])
    routing = TrafficRoutingRef(
        service="web", grace_period_seconds=1, gateway=GatewayRef(http_route_name="web")
    )
    inp = ProbeInput(
        namespace=ns,
        routing=routing,
        replicas=4,
        stable_hash="s1",
        canary_hash="c1",
        deployment="web",
        undo_after_step=2,
        steps=[
            ProbeStep(canary=1, traffic=StepTraffic(weight=20)),
            ProbeStep(canary=2, traffic=StepTraffic(weight=50, matches=[header])),
        ],
    )
    queue = f"traffic-{uuid.uuid4()}"
    kubesim.clear_audit()
    async with Worker(
        temporal_client,
        task_queue=queue,
        workflows=[TrafficProbeWorkflow],
        activities=TrafficActivities(api).activities(),
    ):
        handle = await temporal_client.start_workflow(
            TrafficProbeWorkflow.run, inp, id=f"probe-{ns}", task_queue=queue
        )
        await wait_state(handle, "StepStarted", 1)
        canary_ips, stable_ips = scale_to(api, ns, 1, 3, create_canary=True)
        await handle.signal(TrafficProbeWorkflow.scaled_signal, 1)
        state = await wait_state(handle, "StepReady", 1)
        assert state.status["traffic"] == "weight 20%"
        refs = get_route(api, ns, "web")["spec"]["rules"][0]["backendRefs"]
        assert [(r["name"], r["weight"]) for r in refs] == [("web", 80), ("web-canary", 20)]
        wait_for(lambda: endpoint_ips(api, ns, "web-canary") == canary_ips, what="canary endpoints")
        wait_for(lambda: endpoint_ips(api, ns, "web") == stable_ips, what="stable endpoints")
        await handle.signal(TrafficProbeWorkflow.proceed, 1)

        await wait_state(handle, "StepStarted", 2)
        scale_to(api, ns, 2, 2)
        await handle.signal(TrafficProbeWorkflow.scaled_signal, 2)
        state = await wait_state(handle, "StepReady", 2)
        assert state.status == {
            "trafficWeight": 50,
            "trafficMatches": ["header X-Canary=true"],
            "traffic": "weight 50%, header X-Canary=true",
        }
        rules = get_route(api, ns, "web")["spec"]["rules"]
        assert [(r["name"], r["weight"]) for r in rules[0]["backendRefs"]] == [
            ("web", 50),
            ("web-canary", 50),
        ]
        assert rules[2]["matches"][0]["headers"] == [{"type": "Exact", "name": "X-Canary", "value": "true"}]
        assert [r["name"] for r in rules[2]["backendRefs"]] == ["web-canary"]
        canary_svc = service(api, ns, "web-canary")
        assert canary_svc is not None
        owner = canary_svc["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["uid"]) == (
            "Deployment",
            "web",
            deployment["metadata"]["uid"],
        )
        await handle.signal(TrafficProbeWorkflow.proceed, 2)

        # Undo: the HTTPRoute is back to the user's spec before any replica moves.
        state = await wait_state(handle, "UndoRoutesRestored", 2)
        assert state.status["traffic"] == ""
        assert canonical(get_route(api, ns, "web")["spec"]) == canonical(original_route["spec"])
        svc = service(api, ns, "web")
        assert svc is not None and svc["spec"]["selector"]["pod-template-hash"] == "s1"  # stable only, still
        scale_replicaset(api, ns, "web-s1", 4)
        ready_count(api, ns, "s1", 4)
        scale_replicaset(api, ns, "web-c1", 0)
        ready_count(api, ns, "c1", 0)
        await handle.signal(TrafficProbeWorkflow.scaled_signal, 1000)
        assert (await handle.result()).phase == "RolledBack"

    svc = service(api, ns, "web")
    assert svc is not None and canonical(svc["spec"]) == canonical(original_svc["spec"])
    assert service(api, ns, "web-canary") is None
    assert canonical(get_route(api, ns, "web")["spec"]) == canonical(original_route["spec"])
    # Grace period: each change is followed by gracePeriodSeconds before the next write.
    writes = [
        e
        for e in kubesim.audit()
        if e["namespace"] == ns
        and e["verb"] in ("create", "update", "delete")
        and e["resource"] in ("services", "httproutes")
    ]
    created = next(
        e
        for e in writes
        if e["verb"] == "create" and e["resource"] == "services"  # only web-canary is created after clear
    )
    first_route = next(e for e in writes if e["resource"] == "httproutes" and e["seq"] > created["seq"])
    assert first_route["ts"] - created["ts"] >= 0.9


async def test_worker_crash_mid_traffic_change_recovers(
    temporal_client: Client, kube_api: client.ApiClient, namespace: str
) -> None:
    """The worker dies between the canary Service and the Ingress change; a new worker finishes the step."""
    ns, api = namespace, kube_api
    make_service(api, ns, "web", {"app": "web"})
    make_ingress(api, ns, "web", "web")
    make_replicaset(api, ns, "web-s1", {"app": "web", "pod-template-hash": "s1"}, 4)
    ready_count(api, ns, "s1", 4)
    routing = TrafficRoutingRef(service="web", grace_period_seconds=1, ingress=IngressRef(name="web"))
    inp = ProbeInput(
        namespace=ns,
        routing=routing,
        replicas=4,
        stable_hash="s1",
        canary_hash="c1",
        steps=[ProbeStep(canary=1, traffic=StepTraffic(weight=25))],
    )
    queue = f"traffic-{uuid.uuid4()}"
    worker = Worker(
        temporal_client,
        task_queue=queue,
        workflows=[TrafficProbeWorkflow],
        activities=TrafficActivities(api).activities(),
    )
    run = asyncio.create_task(worker.run())
    handle = await temporal_client.start_workflow(
        TrafficProbeWorkflow.run, inp, id=f"probe-{ns}", task_queue=queue
    )
    await wait_state(handle, "StepStarted", 1)
    scale_to(api, ns, 1, 3, create_canary=True)
    await handle.signal(TrafficProbeWorkflow.scaled_signal, 1)
    # Crash while the workflow waits the grace period after creating the canary Service.
    deadline = time.monotonic() + 30
    while service(api, ns, "web-canary") is None:  # async poll: the worker shares this event loop
        assert time.monotonic() < deadline, "canary Service never created"
        await asyncio.sleep(0.02)
    await worker.shutdown()
    await run
    assert canary_ingress_annotations(api, ns) is None  # the Ingress change has not happened yet

    async with Worker(
        temporal_client,
        task_queue=queue,
        workflows=[TrafficProbeWorkflow],
        activities=TrafficActivities(api).activities(),
    ):
        state = await wait_state(handle, "StepReady", 1)
        assert state.status["trafficWeight"] == 25
        assert canary_ingress_annotations(api, ns) == {NG + "canary": "true", NG + "canary-weight": "25"}
        await handle.signal(TrafficProbeWorkflow.proceed, 1)
        assert (await handle.result()).phase == "Finalized"
    assert service(api, ns, "web-canary") is None and canary_ingress_annotations(api, ns) is None
