"""Canary analysis activities: measure one metric on its interval (Prometheus or web provider).

``run_metric`` is one long, heartbeating activity per metric run. It measures, counts and heartbeats
the ``MetricReport`` (counts included) after every measurement; it *returns* only when
``analysis_math.should_report`` says so (first value, a failed/inconclusive measurement that counts
towards a limit, or a terminal phase). A worker killed mid-analysis is replaced after the heartbeat
timeout and the retried attempt continues from the last heartbeat's counts and measurement time, so
no count is lost and no measurement is repeated early.

A provider that cannot be reached (or a condition that fails on the value) is an *Error* measurement,
not an activity failure: errors are counted against ``consecutiveErrorLimit`` like Argo does.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
from temporalio import activity

from workflows import analysis_math
from workflows.analysis_expr import evaluate
from workflows.errors import ConditionError, MeasurementError
from workflows.model import MeasurementPhase, MetricReport, MetricRunInput, MetricSpec

__all__ = ["AnalysisActivities", "measure", "query_prometheus", "query_web"]

USER_AGENT = "temporal-rollouts-analysis"



def _number(text: Any) -> float:
    """Prometheus sample values are strings (``"NaN"``, ``"+Inf"`` included)."""
    return float(text)


async def query_prometheus(address: str, query: str, timeout: float) -> float | list[float]:
    """An instant query: a vector gives a list of floats (``result[0]``), a scalar a float."""
    url = address.rstrip("/") + "/api/v1/query"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(url, params={"query": query}, headers={"User-Agent": USER_AGENT}) as resp,
        ):
            text = await resp.text()
            if resp.status >= 400:
                raise MeasurementError(f"prometheus {url} answered {resp.status}: {text[:200]}")
            body = json.loads(text)
    except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
        raise MeasurementError(f"prometheus {url}: {type(exc).__name__}: {exc}") from None
    if body.get("status") != "success":
        raise MeasurementError(f"prometheus query failed: {body.get('error') or body}")
    data = body.get("data") or {}
    kind, result = data.get("resultType"), data.get("result") or []
    if kind == "vector":
        return [_number(sample["value"][1]) for sample in result]
    if kind == "scalar":
        return _number(result[1])
    raise MeasurementError(f"prometheus result type {kind!r} is not supported (want vector or scalar)")


def _json_path(expr: str) -> Any:
    from jsonpath_ng.ext import parse

    e = expr.strip()
    return parse(e[1:-1] if e.startswith("{") and e.endswith("}") else e)


async def query_web(
    url: str, method: str, headers: dict[str, str], body: str, json_path: str, timeout: float
) -> Any:
    """An HTTP request; the JSON body (or the ``json_path`` match: one value, or a list of several)."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.request(
                method,
                url,
                data=body.encode() if body else None,
                headers={"User-Agent": USER_AGENT, **headers},
            ) as resp,
        ):
            text = await resp.text()
            if not 200 <= resp.status < 300:
                raise MeasurementError(f"{method} {url} answered {resp.status}: {text[:200]}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise MeasurementError(f"{method} {url}: {type(exc).__name__}: {exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        raise MeasurementError(f"{method} {url}: the body is not JSON: {text[:100]!r}") from None
    if not json_path:
        return doc
    matches = [m.value for m in _json_path(json_path).find(doc)]
    if not matches:
        raise MeasurementError(f"jsonPath {json_path} matched nothing in {text[:100]!r}")
    return matches[0] if len(matches) == 1 else matches


def value_text(value: Any) -> str:
    """The value as one short line (JSON; NaN stays NaN)."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


async def measure(metric: MetricSpec) -> tuple[MeasurementPhase, str, str]:
    """One measurement: ``(phase, value as text, message)``; never raises for provider problems."""
    try:
        if metric.prometheus is not None:
            p = metric.prometheus
            value: Any = await query_prometheus(p.address, p.query, p.timeout)
        elif metric.web is not None:
            w = metric.web
            value = await query_web(
                w.url, w.method, {h.key: h.value for h in w.headers}, w.body, w.json_path, w.timeout_seconds
            )
        else:  # pragma: no cover - the parser requires a provider
            raise MeasurementError("no provider")
    except MeasurementError as exc:
        return MeasurementPhase.ERROR, "", str(exc)
    text = value_text(value)
    try:
        success = evaluate(metric.success_condition, value) if metric.success_condition else None
        failure = evaluate(metric.failure_condition, value) if metric.failure_condition else None
    except ConditionError as exc:
        return MeasurementPhase.ERROR, text, str(exc)
    return analysis_math.measurement_phase(success, failure), text, ""


class AnalysisActivities:
    """The analysis activity (no Kubernetes access: providers only)."""

    def __init__(self, measure_fn: Callable[[MetricSpec], Any] = measure) -> None:
        self._measure = measure_fn

    def activities(self) -> list[Callable[..., Any]]:
        """Every activity method, for ``Worker(activities=[...])``."""
        return [self.run_metric]

    @activity.defn
    async def run_metric(self, inp: MetricRunInput) -> MetricReport:
        """Measure ``inp.metric`` on its interval until something worth recording happens (see module doc)."""
        metric = inp.metric
        counts = inp.counts
        wait = (metric.interval_seconds or 0) if inp.started else metric.initial_delay_seconds
        details = activity.info().heartbeat_details
        last: MetricReport | None = None
        if details:  # a retried attempt (worker lost): continue from the last heartbeat
            last = MetricReport.model_validate(details[0])
            counts = last.counts
            if last.at is not None:
                elapsed = (datetime.now(UTC) - last.at).total_seconds()
                wait = max(0.0, (metric.interval_seconds or 0) - elapsed)
        while True:
            await self._sleep(wait, inp.heartbeat_seconds, last)
            phase, value, message = await self._measure(metric)
            before, counts = counts, analysis_math.count_measurement(counts, phase)
            mphase = analysis_math.metric_phase(metric, counts)
            outcome = analysis_math.outcome_message(metric, mphase, counts, value, message)
            last = MetricReport(
                phase=mphase,
                counts=counts,
                run=inp.run,
                metric=metric.name,
                measurement=phase,
                value=value,
                message=outcome if mphase in analysis_math.TERMINAL else (message or outcome),
                at=datetime.now(UTC),
            )
            activity.logger.info(
                "%s/%s measurement %d: %s %s %s",
                inp.run,
                metric.name,
                counts.count,
                phase.value,
                value,
                message,
            )
            if analysis_math.should_report(metric, before, counts, mphase):
                return last
            activity.heartbeat(last.model_dump(mode="json"))
            wait = metric.interval_seconds or 0

    @staticmethod
    async def _sleep(seconds: float, beat: float, last: MetricReport | None) -> None:
        """Sleep, heartbeating (cancellation arrives through heartbeats; details keep the counts)."""
        deadline = time.monotonic() + seconds
        payload = last.model_dump(mode="json") if last is not None else None
        while True:
            left = deadline - time.monotonic()
            if payload is not None:
                activity.heartbeat(payload)
            else:
                activity.heartbeat()
            if left <= 0:
                return
            await asyncio.sleep(min(beat, left))
