"""Release fixtures: three kubesim clusters (dev, staging, prod), one kubeconfig with a context per cluster,
and one in-process worker per cluster on its own task queue (``task_queue_for``), plus the release's
own queue. The workers are built exactly as ``rollout-worker --cluster NAME`` builds them.

``real_fleet`` is the same fleet with prod on the real control plane (the session ``realk8s``, a namespace
per test), so the release path also runs against a real apiserver and Deployment controller;
``fleet_on`` picks one of the two by parameter (``kubesim`` or ``real``)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from temporalio.client import Client

from connect import WORKER_USER_AGENT, ensure_search_attributes
from kubesim.testing import KubeSimProcess, api_client_for, start_kubesim
from realk8s.testing import RealK8sProcess
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


@asynccontextmanager
async def _serve(
    client: Client, sims: dict[str, KubeSimProcess], real: dict[str, RealK8sProcess], workdir: Path
) -> AsyncIterator[Fleet]:
    """The fleet over those clusters (kubesim or realk8s, named as in ``CLUSTERS``): a worker per cluster
    queue, the release queue's worker, and the merged kubeconfig."""
    assert await ensure_search_attributes(client)
    servers: dict[str, KubeSimProcess | RealK8sProcess] = {**sims, **real}
    assert sorted(servers) == sorted(CLUSTERS), servers
    base = f"rollouts-release-{uuid.uuid4().hex[:8]}"
    kubeconfig = merged_kubeconfig({n: servers[n].kubeconfig for n in CLUSTERS}, workdir / "kubeconfig")
    # The workers' clients name the worker in the audit; the tests' own writes name the tests.
    worker_apis = {n: api_client_for(str(s.kubeconfig), WORKER_USER_AGENT) for n, s in servers.items()}
    apis = {n: api_client_for(str(s.kubeconfig), "release-tests") for n, s in servers.items()}
    workers = [in_process_worker(client, worker_apis[n], task_queue_for(n, base)) for n in CLUSTERS]
    workers.append(in_process_worker(client, worker_apis[CLUSTERS[0]], base))  # the releases
    try:
        for w in workers:
            await w.__aenter__()
        yield Fleet(client, sims, apis, str(kubeconfig), base, real)
    finally:
        for w in reversed(workers):
            await w.__aexit__(None, None, None)
        for api in [*apis.values(), *worker_apis.values()]:
            api.close()


@pytest.fixture(scope="session")
async def fleet(
    temporal_client: Client, fleet_sims: dict[str, KubeSimProcess], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Fleet]:
    """The three kubesim clusters, their workers (one per cluster queue) and the release queue's worker."""
    async with _serve(temporal_client, fleet_sims, {}, tmp_path_factory.mktemp("fleet")) as served:
        yield served


@pytest.fixture(scope="session")
async def real_fleet(
    temporal_client: Client,
    fleet_sims: dict[str, KubeSimProcess],
    realk8s: RealK8sProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Fleet]:
    """dev and staging on kubesim, prod on the real control plane; workers and queues of its own."""
    sims = {n: fleet_sims[n] for n in ("dev", "staging")}
    async with _serve(
        temporal_client, sims, {"prod": realk8s}, tmp_path_factory.mktemp("real-fleet")
    ) as served:
        yield served


@pytest.fixture
def fleet_on(request: pytest.FixtureRequest) -> Fleet:
    """``kubesim`` (the default): ``fleet``; ``real``: ``real_fleet`` (parametrize indirectly)."""
    which = str(getattr(request, "param", "kubesim"))
    assert which in ("kubesim", "real"), which
    served: Fleet = request.getfixturevalue("real_fleet" if which == "real" else "fleet")
    return served
