"""Declarative mode on kubesim: its own kubesim (the CRD and the webhook are cluster-wide), a worker on
its own task queue, and the controller + webhook run in the test's event loop (restartable).

The seed's commands are run with the real kubectl, each test in its own namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from temporalio.client import Client

from declarative.certs import make_serving_cert, server_context
from declarative.controller import Controller
from declarative.main import ensure_webhook_configuration, make_resolver
from declarative.webhook import PATH, WebhookServer
from kube.client import Kube
from kubesim.testing import KubeSimProcess, api_client_for, start_kubesim
from tests.helpers.cluster import ReplicaSetSampler, images_counts
from tests.helpers.kubectl import Kubectl, kubectl_for_test
from workflows.model import RolloutTimings

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


class Stack:
    """The controller and its webhook, in this event loop; each can be stopped and started again."""

    def __init__(self, client: Client, api: k8s.ApiClient, queue: str) -> None:
        self.client, self.api, self.queue = client, api, queue
        self.kube = Kube(api)
        self.webhook: WebhookServer | None = None
        self.controller: Controller | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    async def start_webhook(self) -> None:
        cert = make_serving_cert(["127.0.0.1"])
        self.webhook = WebhookServer(make_resolver(self.kube), server_context(cert.cert_pem, cert.key_pem),
                                     port=self.port)
        self.port = await self.webhook.start()
        await asyncio.to_thread(ensure_webhook_configuration, self.kube, cert.ca_pem,
                                f"https://127.0.0.1:{self.port}{PATH}", None)

    async def stop_webhook(self) -> None:
        if self.webhook is not None:
            await self.webhook.stop()
            self.webhook = None

    def start_controller(self) -> None:
        self._stop = asyncio.Event()
        self.controller = Controller(self.client, self.api, task_queue=self.queue,
                                     timings=RolloutTimings(poll_interval_seconds=0.2), resync_seconds=2.0)
        self._task = asyncio.create_task(self.controller.run(self._stop))

    async def stop_controller(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, 30)
            self._task = None


@pytest.fixture(scope="module")
async def stack(temporal_client: Client, dapi: k8s.ApiClient, dqueue: str, crd: None,
                dworker: None) -> AsyncIterator[Stack]:
    s = Stack(temporal_client, dapi, dqueue)
    await s.start_webhook()
    s.start_controller()
    try:
        yield s
    finally:
        await s.stop_controller()
        await s.stop_webhook()


@pytest.fixture
def kubectl(dsim: KubeSimProcess, tmp_path: Path, request: pytest.FixtureRequest, kube_home: Path) -> Kubectl:
    return kubectl_for_test(dsim, tmp_path, request.node.name, kube_home)


def seed_deployment(replicas: int = 10, image: str = "nginx:1.26") -> dict[str, Any]:
    """The seed's Deployment, word for word."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"labels": {"app": "nginx"}, "name": "nginx"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "nginx"}},
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                         "type": "RollingUpdate"},
            "template": {"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": [{
                "image": image, "imagePullPolicy": "IfNotPresent", "name": "nginx",
                "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}},
        },
    }


SEED_ROLLOUT = """apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata:
  name: rollouts-nginx
spec:
  workloadRef:
    apiVersion: apps/v1
    kind: Deployment
    name: nginx
  strategy:
    canary:
      enableExtraWorkloadForCanary: false
      steps:
      - replicas: 1
      - replicas: 50%
      - replicas: 100%
"""

__all__ = ["SEED_ROLLOUT", "ReplicaSetSampler", "Stack", "images_counts", "seed_deployment"]
