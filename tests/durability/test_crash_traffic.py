"""Crash matrix, traffic case: SIGKILL the worker in the middle of a traffic change.

The worker dies during the grace period after it created the canary Service and before the canary
Ingress exists. A new worker must finish the step at the right weight, and completion must restore
every object (canary Service and Ingress gone, stable Service selector back to the user's).
"""

from __future__ import annotations

from typing import Any

from cli import commands
from cli.commands import StartOptions
from tests.helpers.durability import FAST, Dur, WorkerLauncher
from tests.helpers.traffic import canonical, make_ingress, make_service, raw
from workflows.model import Phase

NG = "nginx.ingress.kubernetes.io/"


async def test_sigkill_mid_traffic_change_recovers_to_the_right_weight(
    dur: Dur, launcher: WorkerLauncher, no_faults: Any
) -> None:
    from kubernetes import client

    core, net = client.CoreV1Api(dur.api), client.NetworkingV1Api(dur.api)
    ns = dur.namespace
    await dur.create_seed(replicas=4)
    make_service(dur.api, ns, "nginx", {"app": "nginx"})
    make_ingress(dur.api, ns, "nginx", "nginx")
    original_svc = raw(core.read_namespaced_service, "nginx", ns)
    assert original_svc is not None
    first = await launcher.start(dur.task_queue)
    seq0 = dur.audit_seq()
    await commands.start(
        dur.ctx,
        StartOptions(
            name="nginx",
            images=["nginx=nginx:1.27"],
            steps="1:25%,100%",
            service="nginx",
            ingress="nginx",
            grace_period=3,
            requested_by="durability-tests",
            timings=FAST,
        ),
    )
    await dur.wait_entry(
        lambda e: e["verb"] == "create" and e["resource"] == "services" and e["code"] == 201, since=seq0
    )
    first.kill()
    assert raw(net.read_namespaced_ingress, "nginx-canary", ns) is None  # the Ingress change is still due

    await launcher.start(dur.task_queue)
    st = await dur.wait_paused(1)
    assert st.traffic_weight == 25
    ing = raw(net.read_namespaced_ingress, "nginx-canary", ns)
    assert ing is not None
    canary = {k: v for k, v in ing["metadata"]["annotations"].items() if k.startswith(NG + "canary")}
    assert canary == {NG + "canary": "true", NG + "canary-weight": "25"}
    ingress_creates = [
        e
        for e in dur.entries(seq0)
        if e["verb"] == "create" and e["resource"] == "ingresses" and e["code"] == 201
    ]
    assert len(ingress_creates) == 1

    result = await dur.drive(timeout=120)
    assert result.phase == Phase.COMPLETED, result.message
    assert raw(core.read_namespaced_service, "nginx-canary", ns) is None
    assert raw(net.read_namespaced_ingress, "nginx-canary", ns) is None
    restored = raw(core.read_namespaced_service, "nginx", ns)
    assert restored is not None
    assert canonical(restored["spec"]) == canonical(original_svc["spec"])
