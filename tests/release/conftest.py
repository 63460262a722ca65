"""Release fixtures: three kubesim clusters (dev, staging, prod), one kubeconfig with a context per cluster,
and one in-process worker per cluster on its own task queue (``task_queue_for``), plus the release's
own queue. The workers are built exactly as ``rollout-worker --cluster NAME`` builds them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from connect import WORKER_USER_AGENT, ensure_search_attributes
from kubesim.testing import KubeSimProcess, api_client_for, start_kubesim
from tests.helpers.release import CLUSTERS, Fleet, merged_kubeconfig
from tests.helpers.worker import in_process_worker
from workflows.model import task_queue_for


@pytest.fixture(scope="session")
def fleet_sims(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, KubeSimProcess]]:
    sims: dict[str, KubeSimProcess] = {}
    try:
        for name in CLUSTERS:
            sims[name] = start_kubesim(tmp_path_factory.mktemp(f"release-{name}"), ready_delay=0.1)
        yield sims
    finally:
        for sim in sims.values():
            sim.stop()


@pytest.fixture(scope="session")
async def fleet(
    temporal_client: Client, fleet_sims: dict[str, KubeSimProcess], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Fleet]:
    """The three clusters, their workers (one per cluster queue) and the release queue's worker."""
    assert await ensure_search_attributes(temporal_client)
    base = f"rollouts-release-{uuid.uuid4().hex[:8]}"
    path = Path(tmp_path_factory.mktemp("fleet")) / "kubeconfig"
    kubeconfig = merged_kubeconfig({n: s.kubeconfig for n, s in fleet_sims.items()}, path)
    # The workers' clients name the worker in the audit; the tests' own writes name the tests.
    worker_apis = {n: api_client_for(str(s.kubeconfig), WORKER_USER_AGENT) for n, s in fleet_sims.items()}
    apis = {n: api_client_for(str(s.kubeconfig), "release-tests") for n, s in fleet_sims.items()}
    workers = [in_process_worker(temporal_client, worker_apis[n], task_queue_for(n, base)) for n in CLUSTERS]
    workers.append(in_process_worker(temporal_client, worker_apis[CLUSTERS[0]], base))  # the releases
    try:
        for w in workers:
            await w.__aenter__()
        yield Fleet(temporal_client, fleet_sims, apis, str(kubeconfig), base)
    finally:
        for w in reversed(workers):
            await w.__aexit__(None, None, None)
        for api in [*apis.values(), *worker_apis.values()]:
            api.close()
