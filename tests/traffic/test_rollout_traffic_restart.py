"""The worker stops in the middle of a traffic change; a new worker finishes the step at the right weight."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from cli import commands
from cli.commands import RolloutContext, StartOptions
from tests.helpers.traffic import make_ingress, make_service, raw
from tests.helpers.worker import in_process_worker
from workflows.model import Phase

NG = "nginx.ingress.kubernetes.io/"


async def test_worker_stop_mid_traffic_change_recovers(kit: Any) -> None:
    from kubernetes import client

    ns, api = kit.namespace, kit.api_client
    core, net = client.CoreV1Api(api), client.NetworkingV1Api(api)
    await kit.create(kit.seed(replicas=4))
    make_service(api, ns, "nginx", {"app": "nginx"})
    make_ingress(api, ns, "nginx", "nginx")
    queue = f"traffic-restart-{uuid.uuid4().hex[:8]}"
    ctx = RolloutContext(client=kit.ctx.client, api_client=api, namespace=ns, task_queue=queue)
    worker = in_process_worker(ctx.client, api, queue)
    running = asyncio.create_task(worker.run())
    await commands.start(
        ctx,
        StartOptions(
            name="nginx",
            images=["nginx=nginx:1.27"],
            steps="1:25%,100%",
            service="nginx",
            ingress="nginx",
            grace_period=1,
        ),
    )
    # Stop the worker while the workflow waits the grace period after creating the canary Service.
    await kit.eventually(
        lambda: raw(core.read_namespaced_service, "nginx-canary", ns), timeout=60, interval=0.02
    )
    await worker.shutdown()
    await running
    assert raw(net.read_namespaced_ingress, "nginx-canary", ns) is None  # the Ingress change is still due

    async with in_process_worker(ctx.client, api, queue):

        async def paused() -> Any:
            try:  # the first query may time out while the server still routes to the old sticky queue
                st = await commands.get_status(ctx, "nginx")
            except commands.CommandError:
                return None
            return st if st.phase == Phase.PAUSED else None

        st = await kit.eventually(paused, timeout=60, message="paused at step 1")
        assert st.current_step_index == 1 and st.traffic_weight == 25
        ing = raw(net.read_namespaced_ingress, "nginx-canary", ns)
        assert ing is not None
        canary = {k: v for k, v in ing["metadata"]["annotations"].items() if k.startswith(NG + "canary")}
        assert canary == {NG + "canary": "true", NG + "canary-weight": "25"}
        await commands.approve(ctx, "nginx")

        async def completed() -> bool:
            return (await commands.get_status(ctx, "nginx")).phase == Phase.COMPLETED

        await kit.eventually(completed, timeout=60, message="completed")
    assert raw(core.read_namespaced_service, "nginx-canary", ns) is None
    assert raw(net.read_namespaced_ingress, "nginx-canary", ns) is None
    assert kit.images() == {"nginx:1.27": (4, 4), "nginx:1.26": (0, 0)}
