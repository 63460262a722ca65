"""Declarative mode on kubesim: its own kubesim (the CRD and the webhook are cluster-wide), a worker on
its own task queue, and the controller + webhook run in the test's event loop (restartable; see
``tests/helpers/declarative.py``). The seed's commands run with the real kubectl, each test in its
own namespace.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s
from temporalio.client import Client

from kubesim.testing import KubeSimProcess, api_client_for, start_kubesim
from tests.helpers.declarative import Stack, running_stack
from tests.helpers.kubectl import Kubectl, kubectl_for_test

REPO = Path(__file__).resolve().parents[2]
CRD = REPO / "deploy" / "declarative" / "crd-rollouts.yaml"


@pytest.fixture(scope="module")
def dsim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeSimProcess]:
    proc = start_kubesim(tmp_path_factory.mktemp("declarative-kubesim"), ready_delay=0.1)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def dapi(dsim: KubeSimProcess) -> Iterator[k8s.ApiClient]:
    api = api_client_for(dsim.kubeconfig)
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="module")
def kube_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kubectl-home")


@pytest.fixture(scope="module")
def crd(dsim: KubeSimProcess, tmp_path_factory: pytest.TempPathFactory, kube_home: Path) -> None:
    k = Kubectl(dsim, tmp_path_factory.mktemp("crd"), "default", kube_home)
    k.run("apply", "-f", str(CRD))


@pytest.fixture(scope="module")
def dqueue() -> str:
    return f"rollouts-decl-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
async def dworker(temporal_client: Client, dapi: k8s.ApiClient, dqueue: str) -> AsyncIterator[None]:
    from worker import build_worker

    worker = build_worker(temporal_client, dapi, dqueue)
    async with worker:
        yield


@pytest.fixture(scope="module")
async def stack(
    temporal_client: Client, dapi: k8s.ApiClient, dqueue: str, crd: None, dworker: None
) -> AsyncIterator[Stack]:
    async with running_stack(temporal_client, dapi, dqueue) as s:
        yield s


@pytest.fixture
def kubectl(dsim: KubeSimProcess, tmp_path: Path, request: pytest.FixtureRequest, kube_home: Path) -> Kubectl:
    return kubectl_for_test(dsim, tmp_path, request.node.name, kube_home)
