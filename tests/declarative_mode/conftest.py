"""Declarative mode: its own kubesim (the CRD and the webhook are cluster-wide), a worker on its own task
queue, and the controller + webhook run in the test's event loop (restartable; see
``tests/helpers/declarative.py``). The seed's commands run with the real kubectl, each test in its
own namespace. Tests marked ``clusters`` also run on the session realk8s: the real apiserver calls the
webhook and serves the CRD's status subresource; the module removes its webhook configurations after.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s
from temporalio.client import Client

from kube.client import Kube
from kubesim.testing import KubeSimProcess, api_client_for, start_kubesim
from realk8s.testing import RealK8sProcess
from tests.helpers.declarative import Stack, install_crd, running_stack
from tests.helpers.kubectl import Kubectl, kubectl_for_test


@pytest.fixture(scope="module")
def dsim(
    cluster: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[KubeSimProcess | RealK8sProcess]:
    """The module's own kubesim, or (``cluster == "real"``) the session realk8s."""
    if cluster == "real":
        real: RealK8sProcess = request.getfixturevalue("realk8s")
        yield real
        _drop_webhook_configurations(real)
        return
    proc = start_kubesim(tmp_path_factory.mktemp("declarative-kubesim"), ready_delay=0.1)
    try:
        yield proc
    finally:
        proc.stop()


def _drop_webhook_configurations(real: RealK8sProcess) -> None:
    """Nobody serves the webhook after this module; other tests share the session realk8s."""
    from declarative.main import MWC_PATH, VWC_PATH, WEBHOOK_CONFIG_NAME

    api = api_client_for(real.kubeconfig)
    try:
        for path in (MWC_PATH, VWC_PATH):
            try:
                Kube(api).request("DELETE", f"{path}/{WEBHOOK_CONFIG_NAME}")
            except k8s.ApiException as exc:
                if exc.status != 404:
                    raise
    finally:
        api.close()


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
    install_crd(k)


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
def kubectl(
    dsim: KubeSimProcess | RealK8sProcess, tmp_path: Path, request: pytest.FixtureRequest, kube_home: Path
) -> Kubectl:
    return kubectl_for_test(dsim, tmp_path, request.node.name, kube_home)
