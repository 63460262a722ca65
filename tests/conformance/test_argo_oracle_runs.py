"""The same analysis under the real Argo Rollouts controller and under our engine, against the same
scripted provider: the outcome phase, the counts and the last measured value must agree.

Argo: ``argo/bin/rollouts-controller`` (``make argo``; version in argo/VERSION) runs its analysis
controller against the session realk8s; each case is an ``AnalysisRun`` with one metric. Ours: the
same metric, parsed from the same template, measured by our ``run_metric`` activity and restarted with
its counts exactly as the workflow's metric loop does (``analysis_math.activity_metric``, the
"count 1, retry an Error after 10 s" form of a metric without interval). The provider is a local
endpoint that replays a scripted sequence of answers, one per request, with its own sequence per
engine and case (web bodies and error statuses, and Prometheus answers: vector, NaN scalar, empty
vector). A few cases only: each costs real time (Argo's error retry is 10 s).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from temporalio.testing import ActivityEnvironment

from activities.analysis import AnalysisActivities
from kubesim.testing import api_client_for
from tests.helpers.argo import ArgoController, install_argo, uninstall_argo
from tests.helpers.poll import assert_eventually
from workflows import analysis_math
from workflows.analysis_math import format_value
from workflows.analysis_parse import parse_template
from workflows.model import MeasurementPhase, MetricCounts, MetricReport, MetricRunInput

NAMESPACE = "argo-oracle"
OK = (200, json.dumps({"value": 0.01}))
BAD = (200, json.dumps({"value": 0.5}))
MID = (200, json.dumps({"value": 0.1}))
DOWN = (500, "boom")


def _prom(kind: str, result: Any) -> tuple[int, str]:
    return 200, json.dumps({"status": "success", "data": {"resultType": kind, "result": result}})


PROM_10_11 = _prom("vector", [{"metric": {"pod": p}, "value": [0, v]} for p, v in (("a", "10"), ("b", "11"))])
PROM_NAN = _prom("scalar", [0, "NaN"])
PROM_EMPTY = _prom("vector", [])

# name -> (metric fields without provider, the provider's answers in order (the last one repeats))
CASES: dict[str, tuple[dict[str, Any], list[tuple[int, str]]]] = {
    "single-success": ({"successCondition": "result < 0.05"}, [OK]),
    "single-failure": ({"successCondition": "result < 0.05"}, [BAD]),
    "inconclusive": ({"successCondition": "result < 0.05", "failureCondition": "result > 0.2"}, [MID]),
    "error-then-success": ({"successCondition": "result < 0.05", "consecutiveErrorLimit": 1}, [DOWN, OK]),
    "errors-past-limit": ({"successCondition": "result < 0.05", "consecutiveErrorLimit": 1}, [DOWN]),
    "count-with-failures": (
        {"successCondition": "result < 0.05", "interval": "1s", "count": 3, "failureLimit": 1},
        [OK, BAD, BAD],
    ),
    "member-access": ({"successCondition": "result.value < 0.05", "jsonPath": "{$}"}, [OK]),
    "condition-error": ({"successCondition": "result.value < 0.05", "consecutiveErrorLimit": 0}, [OK]),
    # Prometheus provider (the stub answers /api/v1/query like a real Prometheus)
    "prom-vector": (
        {"successCondition": "10 in result", "failureCondition": "len(result) != 2"},
        [PROM_10_11],
    ),
    "prom-nan": ({"successCondition": "result >= 0.9", "failureCondition": "result < 0.9"}, [PROM_NAN]),
    "prom-empty": ({"successCondition": "len(result) == 0 || result[0] < 0.05"}, [PROM_EMPTY]),
}


class Replay:
    """``GET /<engine>/<case>`` answers the case's next scripted answer."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        case = request.match_info["case"]
        key = f"{request.match_info['engine']}/{case}"
        n = self.hits.get(key, 0)
        self.hits[key] = n + 1
        answers = CASES[case][1]
        status, body = answers[min(n, len(answers) - 1)]
        return web.Response(status=status, text=body)


@pytest.fixture(scope="module")
async def replay() -> AsyncIterator[Replay]:
    r = Replay()
    app = web.Application()
    app.router.add_get("/{engine}/{case}", r.handle)
    app.router.add_get("/{engine}/{case}/api/v1/query", r.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    r.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    try:
        yield r
    finally:
        await runner.cleanup()


@pytest.fixture(scope="module")
def argo_controller(realk8s: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    api = api_client_for(realk8s.kubeconfig)
    install_argo(api, NAMESPACE)
    controller = ArgoController(realk8s.kubeconfig, tmp_path_factory.mktemp("argo"), NAMESPACE)
    try:
        yield api
    finally:
        controller.stop()
        uninstall_argo(api)
        api.close()


def metric(case: str, engine: str, url: str) -> dict[str, Any]:
    fields = dict(CASES[case][0])
    json_path = fields.pop("jsonPath", "{$.value}")
    if case.startswith("prom-"):
        provider = {"prometheus": {"address": f"{url}/{engine}/{case}", "query": "q", "timeout": 5}}
    else:
        provider = {"web": {"url": f"{url}/{engine}/{case}", "jsonPath": json_path, "timeoutSeconds": 5}}
    return {"name": "m", **fields, "provider": provider}


COUNTS = ("count", "successful", "failed", "inconclusive", "error", "consecutiveError")


async def run_argo(api: Any, case: str, url: str) -> tuple[str, dict[str, Any]]:
    from kubernetes import client

    co = client.CustomObjectsApi(api)
    body = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": case, "namespace": NAMESPACE},
        "spec": {"metrics": [metric(case, "argo", url)]},
    }
    await asyncio.to_thread(
        co.create_namespaced_custom_object, "argoproj.io", "v1alpha1", NAMESPACE, "analysisruns", body
    )

    async def done() -> dict[str, Any] | None:
        run = await asyncio.to_thread(
            co.get_namespaced_custom_object, "argoproj.io", "v1alpha1", NAMESPACE, "analysisruns", case
        )
        status = run.get("status") or {}
        return status if status.get("phase") in ("Successful", "Failed", "Error", "Inconclusive") else None

    status = await assert_eventually(done, timeout=90, interval=0.5, message=f"Argo AnalysisRun {case} ends")
    [result] = status["metricResults"]
    counts: dict[str, Any] = {k: int(result.get(k, 0)) for k in COUNTS}
    last = (result.get("measurements") or [{}])[-1]
    counts["value"] = last.get("value", "") if last.get("phase") != "Error" else "(error)"
    return status["phase"], counts


async def run_ours(case: str, url: str, tmp: Path) -> tuple[str, dict[str, Any]]:
    doc = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": case},
        "spec": {"metrics": [metric(case, "ours", url)]},
    }
    [spec_metric] = parse_template(doc, str(tmp / f"{case}.yaml")).metrics
    sent = analysis_math.activity_metric(spec_metric)
    acts = AnalysisActivities()
    inp = MetricRunInput(run=case, metric=sent, counts=MetricCounts(), heartbeat_seconds=0.5)
    while True:
        report: MetricReport = await ActivityEnvironment().run(acts.run_metric, inp)
        if report.phase in analysis_math.TERMINAL:
            break
        inp = inp.model_copy(update={"counts": report.counts, "started": True})
    c = report.counts
    numbers = (c.count, c.successful, c.failed, c.inconclusive, c.error, c.consecutive_error)
    counts: dict[str, Any] = dict(zip(COUNTS, numbers, strict=True))
    # The last measured value as Argo prints it. Our activity's own text (activities/analysis.py
    # ``value_text``) differs in spacing and numbers (``{"value": 0.01}``, ``10.0``) and keeps the value
    # of a measurement whose condition failed; ``analysis_math.format_value`` is Argo's form.
    counts["value"] = (
        format_value(json.loads(report.value)) if report.measurement != MeasurementPhase.ERROR else "(error)"
    )
    return report.phase.value, counts


async def test_same_outcome_as_argo(argo_controller: Any, replay: Replay, tmp_path: Path) -> None:
    names = list(CASES)
    results = await asyncio.gather(
        *[run_argo(argo_controller, n, replay.url) for n in names],
        *[run_ours(n, replay.url, tmp_path) for n in names],
    )
    theirs, mine = results[: len(names)], results[len(names) :]
    differ = [f"{n}: argo {a}, ours {b}" for n, a, b in zip(names, theirs, mine, strict=True) if a != b]
    print(f"\n{len(names)} AnalysisRuns compared with Argo's controller; {len(names) - len(differ)} agree")
    for n, a in zip(names, theirs, strict=True):
        print(f"  {n}: {a}")
    assert differ == [], "\n".join(differ)
