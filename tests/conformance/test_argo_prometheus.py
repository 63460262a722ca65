"""argo-rollouts ``metricproviders/prometheus/prometheus_test.go`` (``TestProcess*Response``), ported:
result shapes, the value text and the outcome, against a local Prometheus stub answering the HTTP API.

Upstream: github.com/argoproj/argo-rollouts v1.8.5 (test files identical to ``release-1.8`` at
f49f57137258cbe049d7db052c41a7ee362a6002). A scalar is a number, a vector a list of numbers (even with
one sample), NaN and +Inf are values; the text is Go's (``10``, ``NaN``, ``+Inf``, ``[10,11]``). The
range-query, OAuth and SigV4 cases are not ported: those fields are refused by our parser.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from activities.analysis import AnalysisLimits, query_prometheus
from activities.analysis_eval import prometheus_value
from activities.egress import EgressPolicy
from tests.conformance.test_argo_evaluate import evaluate_result
from workflows.analysis_math import format_value
from workflows.errors import MeasurementError
from workflows.model import MeasurementPhase as M


class PrometheusStub:
    """``/api/v1/query`` answers with ``data`` (the JSON of a real Prometheus)."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.url = ""

    async def handle(self, _request: web.Request) -> web.Response:
        return web.Response(text=json.dumps({"status": "success", "data": self.data}))


async def _query(url: str) -> Any:
    """Our provider's request and answer reading (the worker reads the answer in its evaluation child)."""
    limits = AnalysisLimits(egress=EgressPolicy.parse("127.0.0.0/8"))
    return prometheus_value(await query_prometheus(url, "q", 5, limits))


@pytest.fixture
async def prom() -> AsyncIterator[PrometheusStub]:
    stub = PrometheusStub()
    app = web.Application()
    app.router.add_get("/api/v1/query", stub.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    stub.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    try:
        yield stub
    finally:
        await runner.cleanup()


def scalar(v: str) -> dict[str, Any]:
    return {"resultType": "scalar", "result": [0, v]}


def vector(*vs: str) -> dict[str, Any]:
    return {"resultType": "vector", "result": [{"metric": {}, "value": [0, v]} for v in vs]}


@pytest.mark.parametrize(
    ("name", "data", "success", "failure", "phase", "text"),
    [
        ("TestProcessScalarResponse", scalar("10"), "result == 10", "result != 10", M.SUCCESSFUL, "10"),
        (
            "TestProcessNaNResponse/inconclusive",
            scalar("NaN"),
            "result >= 0.9",
            "result < 0.9",
            M.INCONCLUSIVE,
            "NaN",
        ),
        (
            "TestProcessNaNResponse/success",
            scalar("NaN"),
            "result >= 0.9 || isNaN(result)",
            "",
            M.SUCCESSFUL,
            "NaN",
        ),
        ("TestProcessNaNResponse/failure", scalar("NaN"), "result >= 0.9", "", M.FAILED, "NaN"),
        ("TestProcessInfResponse/success", scalar("+Inf"), "result >= 0.9", "", M.SUCCESSFUL, "+Inf"),
        ("TestProcessInfResponse/failure", scalar("+Inf"), "", "isInf(result)", M.FAILED, "+Inf"),
        (
            "TestProcessVectorResponse",
            vector("10", "11"),
            "10 in result",
            "len(result) != 2",
            M.SUCCESSFUL,
            "[10,11]",
        ),
    ],
)
async def test_process_response(
    prom: PrometheusStub, name: str, data: dict[str, Any], success: str, failure: str, phase: M, text: str
) -> None:
    prom.data = data
    value = await _query(prom.url)
    assert evaluate_result(value, success, failure) == phase, name
    assert format_value(value) == text, name


async def test_process_invalid_response(prom: PrometheusStub) -> None:
    """TestProcessInvalidResponse: a result type we cannot read is an Error measurement."""
    prom.data = {"resultType": "string", "result": [0, "x"]}
    with pytest.raises(MeasurementError):
        await _query(prom.url)


async def test_empty_vector_is_a_value(prom: PrometheusStub) -> None:
    """An empty vector is ``[]`` (Argo: ``[]float64{}``): ``len(result) == 0`` is true, ``result[0]`` errs."""
    prom.data = vector()
    value = await _query(prom.url)
    assert format_value(value) == "[]"
    assert evaluate_result(value, "len(result) == 0", "") == M.SUCCESSFUL
    assert evaluate_result(value, "result[0] < 0.05", "") == M.ERROR
