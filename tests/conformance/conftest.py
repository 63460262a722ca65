"""Declarative mode on either cluster (``@pytest.mark.clusters``: kubesim, then the real control plane).

The session cluster and its session worker carry the Rollout CRD and, for the module, the controller
and its webhooks (run in the test's event loop, ``tests/helpers/declarative.py``). The webhook
configurations are cluster-wide, so the module removes them when it ends: other tests on the session
cluster never call a webhook that is gone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from temporalio.client import Client

from declarative.main import MWC_PATH, VWC_PATH, WEBHOOK_CONFIG_NAME
from kube.client import Kube
from tests.helpers.declarative import Stack, install_crd, running_stack
from tests.helpers.kubectl import Kubectl, kubectl_for_test


@pytest.fixture(scope="module")
def kube_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kubectl-home")


@pytest.fixture(scope="module")
async def stack(
    temporal_client: Client,
    api_client: k8s.ApiClient,
    task_queue: str,
    rollout_worker: None,
    kube_cluster: Any,
    kube_home: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    install_crd(Kubectl(kube_cluster, tmp_path_factory.mktemp("crd"), "default", kube_home))
    try:
        async with running_stack(temporal_client, api_client, task_queue) as s:
            yield s
    finally:
        kube = Kube(api_client)
        for path in (MWC_PATH, VWC_PATH):
            try:
                kube.request("DELETE", f"{path}/{WEBHOOK_CONFIG_NAME}")
            except ApiException as exc:
                if exc.status != 404:
                    raise


@pytest.fixture
def kubectl(kube_cluster: Any, tmp_path: Path, request: pytest.FixtureRequest, kube_home: Path) -> Kubectl:
    return kubectl_for_test(kube_cluster, tmp_path, request.node.name, kube_home)
