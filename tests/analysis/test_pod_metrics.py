"""The pods' simulated metrics (``/kubesim/pod-metrics``) on both clusters: kubesim serves them from its
store, realk8s' fake kubelet from its pod informer; the same pod annotations drive the same series."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from typing import Any

import pytest

from tests.helpers.poll import assert_eventually

SERIES = re.compile(r"^(?P<name>[a-z_]+)\{(?P<labels>[^}]*)\} (?P<value>\S+)$")


def _scrape(url: str) -> tuple[str, dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        content_type = resp.headers.get("Content-Type", "")
        text = resp.read().decode()
    samples = {}
    for line in text.splitlines():
        m = SERIES.match(line)
        if m:
            labels = frozenset(tuple(kv.split("=", 1)) for kv in m["labels"].split(","))
            samples[(m["name"], labels)] = float(m["value"])
    return content_type, samples


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    want = {(k, f'"{v}"') for k, v in labels.items()}
    found = [v for (n, ls), v in samples.items() if n == name and want <= ls]
    assert len(found) == 1, (name, labels, found)
    return found[0]


@pytest.mark.clusters
async def test_annotations_shape_the_pod_metrics(kit: Any, kube_cluster: Any) -> None:
    """Error rate 0.5 and mean latency 100 ms: half the requests are 500s, half the durations are <= 0.1 s,
    none <= 0.05 s, all <= 0.25 s; counters grow with time; other namespaces' pods are not listed."""
    await kit.create(
        kit.seed(replicas=1, pod_annotations={"kubesim.io/error-rate": "0.5", "kubesim.io/latency-ms": "100"})
    )
    pods = kit.kubectl("get", "pods", "-n", kit.namespace, "-o", "jsonpath={.items[0].metadata.name}")
    assert pods[0] == 0, pods
    pod = pods[1].strip()
    url = f"{kube_cluster.pod_metrics_url}?namespace={kit.namespace}"

    async def counted() -> tuple[str, dict[Any, float]] | None:
        content_type, samples = await asyncio.to_thread(_scrape, url)
        if not samples or _value(samples, "http_request_duration_seconds_count", pod=pod) < 20:
            return None
        return content_type, samples

    content_type, samples = await assert_eventually(counted, timeout=30, message="the pod's requests counted")
    assert content_type.startswith("text/plain; version=0.0.4")
    assert {dict(ls)["namespace"] for _, ls in samples} == {f'"{kit.namespace}"'}
    total = _value(samples, "http_request_duration_seconds_count", pod=pod)
    ok = _value(samples, "http_requests_total", pod=pod, code="200")
    errors = _value(samples, "http_requests_total", pod=pod, code="500")
    assert ok + errors == total and errors == int(total * 0.5 + 0.5)
    bucket = {
        le: _value(samples, "http_request_duration_seconds_bucket", pod=pod, le=le)
        for le in ("0.05", "0.1", "0.25", "+Inf")
    }
    assert bucket == {"0.05": 0, "0.1": total // 2, "0.25": total, "+Inf": total}
    assert _value(samples, "http_request_duration_seconds_sum", pod=pod) == pytest.approx(total * 0.1)
    template_hash = kit.kubectl(
        "get", "pod", pod, "-n", kit.namespace, "-o", "jsonpath={.metadata.labels.pod-template-hash}"
    )[1]
    assert _value(samples, "http_requests_total", pod=pod, code="200", pod_template_hash=template_hash) == ok

    async def grown() -> bool:
        _, later = await asyncio.to_thread(_scrape, url)
        return _value(later, "http_request_duration_seconds_count", pod=pod) > total

    await assert_eventually(grown, timeout=10, message="the counters grow while the pod is Ready")
