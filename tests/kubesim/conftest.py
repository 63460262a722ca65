"""Shared fixtures for kubesim tests: one kubesim subprocess per session and a kubernetes client for it."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from kubesim.testing import KubeSimProcess, api_client_for, start_kubesim

_ns_counter = itertools.count(1)


@pytest.fixture(scope="session")
def kubesim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeSimProcess]:
    """A kubesim shared by the session (tests isolate themselves with their own namespaces)."""
    sim = start_kubesim(tmp_path_factory.mktemp("kubesim-session"), ready_delay=0.1)
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(scope="session")
def kube_api(kubesim: KubeSimProcess) -> Iterator[client.ApiClient]:
    api = api_client_for(kubesim.kubeconfig)
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def namespace(kube_api: client.ApiClient, request: Any) -> str:
    """A fresh namespace named after the test."""
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower().replace("_", "-")).strip("-")
    name = f"t{next(_ns_counter)}-{base}"[:60].rstrip("-")
    client.CoreV1Api(kube_api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


__all__ = ["api_client_for", "Path"]
