"""Durability fixtures (helpers live in ``harness.py``).

The root conftest gives the shared Temporal dev server (``temporal_env``). Here: ``dur_sim``, a kubesim
only for these tests (fault injection and latency never reach other modules); ``dur_api``, the real
kubernetes client with the test's User-Agent; ``launcher``, worker processes reaped at teardown;
``dur``, per-test helpers on a fresh namespace; ``figures``, recovery figures printed in the terminal
summary and written to ``docs/durability-figures.md`` when ``ROLLOUT_WRITE_FIGURES=1``.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from temporalio.testing import WorkflowEnvironment

from kube.client import Kube
from kubesim.testing import KubeSimProcess, api_client_for, start_kubesim
from realk8s.testing import RealK8sProcess
from tests.helpers.durability import (
    FIGURES,
    REPO,
    TEST_UA,
    Dur,
    Figure,
    WorkerLauncher,
    render_figures,
    render_table,
)

_ns_counter = itertools.count(1)


@pytest.fixture(scope="session")
def dur_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeSimProcess]:
    """A kubesim only for the durability tests (faults and latency stay here)."""
    proc = start_kubesim(tmp_path_factory.mktemp("durability-kubesim"), ready_delay=0.1)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def dur_cluster(request: pytest.FixtureRequest) -> KubeSimProcess | RealK8sProcess:
    """``dur_sim`` unless a test parametrizes this fixture (indirect) with ``real``: the session realk8s."""
    name = "realk8s" if getattr(request, "param", "kubesim") == "real" else "dur_sim"
    handle: KubeSimProcess | RealK8sProcess = request.getfixturevalue(name)
    return handle


@pytest.fixture(scope="session")
def dur_api(dur_cluster: KubeSimProcess | RealK8sProcess) -> Iterator[k8s.ApiClient]:
    """The real kubernetes client against the durability cluster, with the test's own User-Agent."""
    api = api_client_for(dur_cluster.kubeconfig, TEST_UA)
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="session")
def temporal_address(temporal_env: WorkflowEnvironment) -> str:
    """host:port of the shared dev server (for worker processes)."""
    return str(temporal_env.client.service_client.config.target_host)


@pytest.fixture
def launcher(
    temporal_address: str, dur_cluster: KubeSimProcess | RealK8sProcess, tmp_path: Path
) -> Iterator[WorkerLauncher]:
    """Worker processes for one test; all terminated at teardown."""
    wl = WorkerLauncher(temporal_address, dur_cluster.kubeconfig, tmp_path)
    try:
        yield wl
    finally:
        wl.stop_all()


@pytest.fixture(scope="session")
def figures() -> list[Figure]:
    """Recovery figures of this session (printed in the terminal summary)."""
    return FIGURES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the recovery figures; write docs/durability-figures.md when ROLLOUT_WRITE_FIGURES=1."""
    if not FIGURES:
        return
    terminalreporter.write_sep("=", "durability: recovery after SIGKILL of the worker")
    terminalreporter.write_line(render_table(FIGURES))
    if os.environ.get("ROLLOUT_WRITE_FIGURES") == "1":
        (REPO / "docs" / "durability-figures.md").write_text(render_figures(FIGURES))


@pytest.fixture
def dur_namespace(dur_api: k8s.ApiClient, request: pytest.FixtureRequest) -> str:
    """A fresh namespace named after the test."""
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower().replace("_", "-")).strip("-")
    name = f"d{next(_ns_counter)}-{base}"[:50].rstrip("-")
    Kube(dur_api).request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    return name


@pytest.fixture
def dur(
    temporal_env: WorkflowEnvironment,
    dur_api: k8s.ApiClient,
    dur_cluster: KubeSimProcess | RealK8sProcess,
    dur_namespace: str,
) -> Dur:
    """Per-test durability helpers on the shared dev server and the durability cluster."""
    return Dur(temporal_env.client, dur_api, dur_cluster, dur_namespace)


@pytest.fixture
async def no_faults(dur_sim: KubeSimProcess) -> AsyncIterator[KubeSimProcess]:
    """Faults on the durability kubesim are always cleared after the test."""
    dur_sim.clear_faults()
    try:
        yield dur_sim
    finally:
        dur_sim.clear_faults()
