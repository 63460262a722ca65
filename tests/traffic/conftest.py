"""Fixtures for traffic tests: one kubesim per session, a kubernetes client, a namespace per test, helpers."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, config

from kubesim.testing import KubeSimProcess, start_kubesim

_ns_counter = itertools.count(1)


@pytest.fixture(scope="session")
def kubesim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeSimProcess]:
    """A kubesim shared by the traffic tests (each test isolates itself in its own namespace)."""
    sim = start_kubesim(tmp_path_factory.mktemp("kubesim-traffic"), ready_delay=0.05)
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(scope="session")
def kube_api(kubesim: KubeSimProcess) -> Iterator[client.ApiClient]:
    cfg = client.Configuration()
    config.load_kube_config(config_file=kubesim.kubeconfig, client_configuration=cfg)
    api = client.ApiClient(cfg)
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def namespace(kube_api: client.ApiClient, request: Any) -> str:
    """A fresh namespace named after the test."""
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower().replace("_", "-")).strip("-")
    name = f"tr{next(_ns_counter)}-{base}"[:60].rstrip("-")
    client.CoreV1Api(kube_api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def wait_for(
    predicate: Callable[[], Any], *, timeout: float = 15.0, interval: float = 0.05, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns a truthy value (returned) or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")
