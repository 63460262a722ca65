"""Analysis fixtures: a local web metric endpoint, a real Prometheus (helpers: tests/helpers/analysis.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.helpers.analysis import MetricEndpoint


@pytest.fixture
async def endpoint() -> AsyncIterator[MetricEndpoint]:
    ep = MetricEndpoint()
    await ep.start()
    try:
        yield ep
    finally:
        await ep.stop()


@pytest.fixture(scope="module")
def prometheus_url(kube_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus (Debian package) on a free port scraping the test cluster's pod metrics every second
    (kubesim's ``/kubesim/pod-metrics``, or the same route of realk8s' fake kubelet)."""
    from urllib.parse import urlparse

    from devstack.prometheus import prometheus_binary, start_prometheus
    from tests.helpers.devstack import free_ports

    binary = prometheus_binary()
    assert binary is not None, "prometheus is not installed: run `make prometheus` (.ci/run installs it)"
    [port] = free_ports(1)
    target = urlparse(kube_cluster.pod_metrics_url).netloc
    proc = start_prometheus(binary, tmp_path_factory.mktemp("prometheus"), port, target)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()  # by PID: the process this fixture started
        try:
            proc.wait(timeout=15)
        except Exception:  # noqa: BLE001 - a stuck Prometheus is killed
            proc.kill()
            proc.wait()
