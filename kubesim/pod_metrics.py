"""Simulated application metrics of kubesim's pods, in the Prometheus text format (``/kubesim/pod-metrics``).

Every Ready pod serves about ``REQUESTS_PER_SECOND`` requests a second from the moment it became
Ready. Two pod annotations (set them in the Deployment's pod template) shape them:

- ``kubesim.io/error-rate`` (0..1): the share of requests answered ``code="500"``;
- ``kubesim.io/latency-ms``: the mean request duration; durations are spread evenly over
  [0.5, 1.5] x the mean, which makes the ``http_request_duration_seconds`` histogram deterministic.

Counters are derived from time (no randomness), so they only grow while a pod lives; a deleted pod's
series disappear, as they do when a real pod goes away. A real Prometheus scrapes this one target
(``honor_labels``) and sees ``http_requests_total{namespace,pod,pod_template_hash,code}``.
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any

from aiohttp import web

from kubesim.store import Store

__all__ = [
    "BUCKETS",
    "ERROR_RATE_ANNOTATION",
    "LATENCY_ANNOTATION",
    "REQUESTS_PER_SECOND",
    "PodMetrics",
    "render",
]

ERROR_RATE_ANNOTATION = "kubesim.io/error-rate"
LATENCY_ANNOTATION = "kubesim.io/latency-ms"
REQUESTS_PER_SECOND = 10.0
DEFAULT_LATENCY_MS = 20.0
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _annotation_float(pod: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(key)
    try:
        value = float(raw) if raw is not None else default
    except ValueError:
        return default
    return min(max(value, low), high) if math.isfinite(value) else default


def _ready_since(pod: dict[str, Any]) -> float | None:
    """Epoch seconds of the pod's Ready transition, or None while not Ready."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            if cond.get("status") != "True":
                return None
            when = cond.get("lastTransitionTime")
            try:
                return datetime.fromisoformat(str(when).replace("Z", "+00:00")).timestamp()
            except ValueError:
                return None
    return None


def _labels(**kv: str) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in kv.items()) + "}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def render(pods: list[dict[str, Any]], now: float) -> str:
    """The exposition text for ``pods`` at epoch time ``now``."""
    requests: list[str] = []
    durations: list[str] = []
    for pod in sorted(pods, key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"]["name"])):
        since = _ready_since(pod)
        if since is None or (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue
        md = pod["metadata"]
        base = {
            "namespace": md.get("namespace", ""),
            "pod": md["name"],
            "pod_template_hash": (md.get("labels") or {}).get("pod-template-hash", ""),
        }
        total = math.floor(REQUESTS_PER_SECOND * max(0.0, now - since))
        rate = _annotation_float(pod, ERROR_RATE_ANNOTATION, 0.0, 0.0, 1.0)
        errors = math.floor(total * rate + 0.5)
        requests.append(f"http_requests_total{_labels(**base, code='200')} {total - errors}")
        requests.append(f"http_requests_total{_labels(**base, code='500')} {errors}")
        mean = _annotation_float(pod, LATENCY_ANNOTATION, DEFAULT_LATENCY_MS, 0.0, 600_000.0) / 1000.0
        for le in BUCKETS:
            share = 1.0 if mean == 0 else min(1.0, max(0.0, (le - 0.5 * mean) / mean))
            bucket = _labels(**base, le=_num(le))
            durations.append(f"http_request_duration_seconds_bucket{bucket} {math.floor(total * share)}")
        durations.append(f"http_request_duration_seconds_bucket{_labels(**base, le='+Inf')} {total}")
        durations.append(f"http_request_duration_seconds_sum{_labels(**base)} {total * mean:.6f}")
        durations.append(f"http_request_duration_seconds_count{_labels(**base)} {total}")
    return "\n".join(
        [
            "# HELP http_requests_total Requests served by the simulated pod, by status code.",
            "# TYPE http_requests_total counter",
            *requests,
            "# HELP http_request_duration_seconds Simulated request durations.",
            "# TYPE http_request_duration_seconds histogram",
            *durations,
            "",
        ]
    )


class PodMetrics:
    """The ``/kubesim/pod-metrics`` route over the store's pods."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/kubesim/pod-metrics", self.get)

    async def get(self, request: web.Request) -> web.Response:
        namespace = request.query.get("namespace") or None
        text = render(self.store.list("pods", namespace), time.time())
        return web.Response(text=text, headers={"Content-Type": CONTENT_TYPE})
