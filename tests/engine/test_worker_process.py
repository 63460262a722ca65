"""A server without search attributes, and the console scripts (rollout-worker, rollout) as processes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from cli import commands
from cli.commands import RolloutContext, StartOptions
from connect import has_search_attributes
from worker import build_worker
from workflows.model import Phase

BIN = Path(sys.executable).parent


async def _completed(ctx: RolloutContext, name: str) -> bool:
    try:
        return (await commands.get_status(ctx, name)).phase == Phase.COMPLETED
    except commands.CommandError:
        return False


async def test_server_without_search_attributes_then_worker_process(kit: Any) -> None:
    ns, sim, api_client = kit.namespace, kit.sim, kit.api_client
    await kit.create(kit.seed(name="web", replicas=2))
    await kit.create(kit.seed(name="api", replicas=2))
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"), data_converter=pydantic_data_converter
    ) as env:
        # 1. A server without the search attributes: the rollout runs and completes without them.
        assert not await has_search_attributes(env.client)
        ctx = RolloutContext(client=env.client, api_client=api_client, namespace=ns, task_queue="no-sa")
        async with build_worker(env.client, api_client, "no-sa"):
            spec, _ = await commands.start(
                ctx, StartOptions(name="web", images=["nginx=nginx:1.27"], steps="100%")
            )
            assert spec.use_search_attributes is False
            await kit.eventually(lambda: _completed(ctx, "web"), timeout=60, message="web completed")
        assert kit.images() == {"nginx:1.27": (2, 2), "nginx:1.26": (0, 0)}

        # 2. `rollout-worker` with only TEMPORAL_ADDRESS and KUBECONFIG; it registers the search attributes.
        address = env.client.service_client.config.target_host
        proc_env = {**os.environ, "TEMPORAL_ADDRESS": address, "KUBECONFIG": sim.kubeconfig}
        worker = await asyncio.create_subprocess_exec(
            str(BIN / "rollout-worker"),
            "--task-queue",
            "proc",
            env=proc_env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            assert worker.stdout is not None
            line = await asyncio.wait_for(worker.stdout.readline(), timeout=30)
            assert b"rollout-worker ready" in line
            assert await has_search_attributes(env.client)
            starter_proc = await asyncio.create_subprocess_exec(
                str(BIN / "rollout"),
                "start",
                "api",
                "--image",
                "nginx=nginx:1.27",
                "--steps",
                "100%",
                "-n",
                ns,
                "--task-queue",
                "proc",
                env=proc_env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(starter_proc.communicate(), timeout=60)
            assert starter_proc.returncode == 0, err.decode()
            assert f"rollout/{ns}/api" in out.decode()
            ctx2 = RolloutContext(client=env.client, api_client=api_client, namespace=ns, task_queue="proc")
            await kit.eventually(lambda: _completed(ctx2, "api"), timeout=60, message="api completed")
            st = await commands.get_status(ctx2, "api")
            assert st.canary_replicas == 2 and st.stable_replicas == 0
        finally:
            if worker.returncode is None:
                worker.send_signal(signal.SIGTERM)
            rc = await asyncio.wait_for(worker.wait(), timeout=20)
        assert rc == 0  # graceful shutdown on SIGTERM
