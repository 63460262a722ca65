"""Temporal server restart during a bake: a restartable dev server of this module's own (the session's
shared server is never stopped) is down across the bake's end; after it is back the bake timer fires
once and the next wave's first write comes after the bake's end."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest

from connect import WORKER_USER_AGENT, ensure_search_attributes
from kubesim.testing import KubeSimProcess, api_client_for
from tests.helpers.cluster import Kit
from tests.helpers.devserver import DevServer
from tests.helpers.durability import free_port
from tests.helpers.poll import assert_eventually
from tests.helpers.release import CLUSTERS, Fleet, merged_kubeconfig, release_yaml
from tests.helpers.release_safety import history, start_fast, timers
from tests.helpers.worker import in_process_worker
from workflows.errors import CommandError
from workflows.model import ReleasePhase, ReleaseStatus, WaveState, task_queue_for

BAKE = 5.0  # longer than the server takes to stop (SIGTERM), so the stop completes within it


@pytest.fixture(scope="module")
def devserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    server = DevServer(tmp_path_factory.mktemp("release-temporal-db"), free_port(), free_port(), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_server_restart_during_a_bake_fires_the_timer_once(
    devserver: DevServer, fleet_sims: dict[str, KubeSimProcess], tmp_path: Path
) -> None:
    client = await devserver.wait_healthy()
    assert await ensure_search_attributes(client)
    queue = f"release-restart-{uuid.uuid4().hex[:8]}"
    kubeconfig = merged_kubeconfig({n: s.kubeconfig for n, s in fleet_sims.items()}, tmp_path / "kubeconfig")
    apis = {n: api_client_for(str(s.kubeconfig), "release-tests") for n, s in fleet_sims.items()}
    worker_apis = {n: api_client_for(str(s.kubeconfig), WORKER_USER_AGENT) for n, s in fleet_sims.items()}
    fleet = Fleet(client, fleet_sims, apis, str(kubeconfig), queue)
    workers = [in_process_worker(client, worker_apis[n], task_queue_for(n, queue)) for n in CLUSTERS]
    workers.append(in_process_worker(client, worker_apis["dev"], queue))
    ns = fleet.namespace("restart")
    for cluster in ("dev", "staging"):
        await fleet.deploy(cluster, ns)
    doc = release_yaml(
        "restart",
        [
            {
                "name": "dev",
                "targets": [{"cluster": "dev", "namespace": ns, "deployment": "nginx"}],
                "bake": f"{BAKE:g}s",
            },
            {"name": "staging", "targets": [{"cluster": "staging", "namespace": ns, "deployment": "nginx"}]},
        ],
    )
    rid = f"restart-{ns}"
    async with contextlib.AsyncExitStack() as stack:
        for w in workers:
            await stack.enter_async_context(w)
        await start_fast(fleet, doc, rid, tmp_path / "r.yaml", queue)
        st = await fleet.wait_phase(rid, ReleasePhase.BAKING)
        bake = st.waves[0]
        assert bake.state == WaveState.BAKING and bake.bake_until is not None
        bake_end = bake.bake_until.timestamp()
        assert fleet.worker_writes("staging", ns) == []
        stopped_in = devserver.stop()
        down_at = time.time()
        assert down_at < bake_end, f"the stop took {stopped_in:.1f} s: longer than the bake"

        async def bake_over() -> bool:
            return time.time() > bake_end + 1.0

        # Down across the bake's end: the timer is due while no server runs.
        await assert_eventually(bake_over, timeout=2 * BAKE + 5, interval=0.1, message="bake over")
        assert fleet.worker_writes("staging", ns) == [], "no wave-2 write while the server is down"
        up_at = time.time()
        devserver.start()
        fleet.client = await devserver.wait_healthy()

        async def ended() -> ReleaseStatus | None:
            try:
                st = await fleet.status(rid)
            except CommandError:  # "no worker answered": the workers' polls are still backing off
                return None
            return st if st.phase in (ReleasePhase.COMPLETED, ReleasePhase.FAILED) else None

        final = await assert_eventually(ended, timeout=120, interval=0.3, message=f"release {rid} ended")
        hist = await history(fleet.client, f"release/{rid}")
    for api in [*apis.values(), *worker_apis.values()]:
        api.close()
    print(
        f"\nserver stopped in {stopped_in:.1f} s, down {up_at - down_at:.1f} s; "
        f"the bake ended {bake_end - down_at:.1f} s into the outage"
    )
    assert devserver.starts == 2
    assert final.phase == ReleasePhase.COMPLETED, final.message
    started, fired = timers(hist, "bake of wave dev")
    assert (len(started), len(fired)) == (1, 1), (started, fired)
    assert (
        fired[0].event_time.ToDatetime(tzinfo=UTC).timestamp() >= up_at
    )  # it came due while the server was down
    first = fleet.worker_writes("staging", ns)[0]["ts"]
    assert first >= bake_end, (first, bake_end)
    assert first >= up_at  # nothing of wave 2 happened before the server was started again
    for cluster in ("dev", "staging"):
        Kit.assert_handed_back(fleet.deployment(cluster, ns), "nginx:1.27")
