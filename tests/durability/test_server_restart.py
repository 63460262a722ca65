"""Temporal server restart: stop the dev server (database file kept) while a rollout is paused, and
while it is mid-batch; start it again on the same port and file; the same worker process reconnects and
the rollout completes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from temporalio.api.enums.v1 import PendingActivityState

from kubesim.testing import KubeSimProcess
from tests.helpers.devserver import DevServer
from tests.helpers.durability import Dur, WorkerLauncher, assert_bounds, expected_state, free_port
from workflows.model import Phase, StepState


@pytest.fixture(scope="module")
def devserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """One restartable dev server for this module; always stopped at the end."""
    server = DevServer(tmp_path_factory.mktemp("temporal-db"), free_port(), free_port(), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def _canary_ready(dur: Dur, at_least: int) -> bool:
    rss = await dur.read(dur.kube.list_replica_sets, dur.namespace)
    return any(
        rs["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
        and int((rs.get("status") or {}).get("readyReplicas") or 0) >= at_least
        for rs in rss
    )


@pytest.mark.parametrize("when", ["paused", "mid_batch"])
async def test_server_restart(
    when: str,
    devserver: DevServer,
    dur_api: k8s.ApiClient,
    dur_sim: KubeSimProcess,
    dur_namespace: str,
    tmp_path: Path,
    no_faults: Any,
) -> None:
    client = await devserver.wait_healthy()
    dur = Dur(client, dur_api, dur_sim, dur_namespace)
    launcher = WorkerLauncher(devserver.address, dur_sim.kubeconfig, tmp_path)
    try:
        pods = {"kubesim.io/ready-delay": "3"} if when == "mid_batch" else None
        await dur.create_seed(pod_annotations=pods)
        worker = await launcher.start(dur.task_queue)
        with dur.sampler() as sampler:
            handle = await dur.start_rollout()
            await dur.wait_paused(1)
            if when == "mid_batch":
                await dur.approve(1)

                async def mid_batch() -> bool:
                    desc = await handle.describe()
                    st = await dur.query()
                    return bool(
                        st
                        and st.current_step_index == 2
                        and st.step_state == StepState.STEP_UPGRADE
                        and any(
                            p.activity_type.name in ("converge_step", "wait_for_batch")
                            and p.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
                            for p in desc.raw_description.pending_activities
                        )
                    )

                await dur.eventually(mid_batch, timeout=60, interval=0.05, message="step 2 mid-batch")

            stopped_for = devserver.stop()
            down_at = time.monotonic()
            if when == "mid_batch":
                # Keep the server down until step 2's canary pods are Ready: the wait that saw
                # them must report back to a server that was away when it happened.
                await dur.eventually(
                    lambda: _canary_ready(dur, 2), timeout=60, message="canary pods ready while down"
                )
            assert worker.proc.poll() is None, "the worker must survive the server going away"
            devserver.start()
            client = await devserver.wait_healthy()
            print(f"\n{when}: SIGTERM took {stopped_for:.2f}s, down {time.monotonic() - down_at:.2f}s")
            dur.client = client
            dur.ctx.client = client
            result = await dur.drive(timeout=120)
        assert result.phase == Phase.COMPLETED, result.message
        assert [a.step for a in result.approvals] == [1, 2]
        assert await dur.final_state() == expected_state(Phase.COMPLETED)
        assert worker.proc.poll() is None, "the same worker process finished the rollout"
        assert_bounds(sampler)
    finally:
        launcher.stop_all()
