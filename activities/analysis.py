"""Canary analysis activities: measure one metric on its interval (Prometheus or web provider).

``run_metric`` is one long, heartbeating activity per metric run. It measures, counts and heartbeats
the ``MetricReport`` (counts included) after every measurement; it *returns* only when
``analysis_math.should_report`` says so (first value, a failed/inconclusive measurement that counts
towards a limit, or a terminal phase). A worker killed mid-analysis is replaced after the heartbeat
timeout and the retried attempt continues from the last heartbeat's counts and measurement time, so
no count is lost and no measurement is repeated early.

Provider URLs, bodies, conditions and jsonPaths are the rollout author's, so they are untrusted input
(docs/operations.md, "Analysis and notification egress"):

- every request goes through the worker's egress allow-list (``activities/egress.py``), without
  redirects, with at most ``max_body`` bytes read and at most ``max_timeout`` seconds;
- JSON, jsonPath and conditions run in a child process with a hard time limit (``analysis_eval``);
- a measurement never raises: whatever goes wrong is an *Error* measurement with a short, classified
  reason (never the response body), counted against ``consecutiveErrorLimit`` like Argo does;
- a measurement whose attempt was lost (the worker died or stalled while measuring) counts as an
  Error on the retry, and an activity retried more than ``max_attempts`` times ends the metric as
  Error, so a poison measurement cannot be retried for ever;
- measurements are at least ``min_interval`` apart, and one rollout runs at most ``max_metrics``
  metrics at once on a worker (more end as Error at once).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from temporalio import activity

from activities.analysis_eval import EvalPool, clean_text, shared_pool
from activities.egress import EgressPolicy, EgressRefused
from workflows import analysis_math
from workflows.errors import MeasurementError
from workflows.model import (
    MeasurementPhase,
    MetricCounts,
    MetricPhase,
    MetricReport,
    MetricRunInput,
    MetricSpec,
)

__all__ = ["AnalysisActivities", "AnalysisLimits", "measure", "query_prometheus", "query_web"]

USER_AGENT = "temporal-rollouts-analysis"
MEASURING = "measuring"  # second heartbeat detail while a measurement is in flight
MiB = 1024 * 1024


@dataclass(frozen=True)
class AnalysisLimits:
    """The worker's bounds on analysis (environment variables in ``from_env``)."""

    egress: EgressPolicy = field(default_factory=EgressPolicy)
    max_body: int = MiB  # ROLLOUT_ANALYSIS_MAX_BODY_BYTES
    max_timeout: float = 60.0  # ROLLOUT_ANALYSIS_MAX_TIMEOUT_SECONDS: caps a provider's own timeout
    eval_timeout: float = 2.0  # ROLLOUT_ANALYSIS_EVAL_TIMEOUT_SECONDS: jsonPath + conditions, per measurement
    eval_processes: int = 2  # ROLLOUT_ANALYSIS_EVAL_PROCESSES
    eval_memory: int = 128 * MiB  # ROLLOUT_ANALYSIS_EVAL_MEMORY_BYTES: address space of one child
    min_interval: float = 1.0  # ROLLOUT_ANALYSIS_MIN_INTERVAL_SECONDS
    max_metrics: int = 10  # ROLLOUT_ANALYSIS_MAX_METRICS: per rollout, at once, on one worker
    max_attempts: int = 10  # ROLLOUT_ANALYSIS_MAX_ATTEMPTS: of one run_metric activity

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AnalysisLimits:
        env = os.environ if env is None else env

        def num(key: str, default: float) -> float:
            text = env.get(f"ROLLOUT_ANALYSIS_{key}", "").strip()
            try:
                value = float(text) if text else default
            except ValueError:
                raise ValueError(f"ROLLOUT_ANALYSIS_{key}={text!r} is not a number") from None
            if value < 0:
                raise ValueError(f"ROLLOUT_ANALYSIS_{key} must not be negative")
            return value

        return cls(
            egress=EgressPolicy.from_env(env),
            max_body=int(num("MAX_BODY_BYTES", MiB)),
            max_timeout=num("MAX_TIMEOUT_SECONDS", 60.0) or 60.0,
            eval_timeout=num("EVAL_TIMEOUT_SECONDS", 2.0) or 2.0,
            eval_processes=max(1, int(num("EVAL_PROCESSES", 2))),
            eval_memory=int(num("EVAL_MEMORY_BYTES", 128 * MiB)),
            min_interval=num("MIN_INTERVAL_SECONDS", 1.0),
            max_metrics=max(1, int(num("MAX_METRICS", 10))),
            max_attempts=max(1, int(num("MAX_ATTEMPTS", 10))),
        )


def _where(url: str) -> str:
    """Host and port only: paths and queries may carry tokens."""
    parts = urlsplit(url)
    return parts.netloc.rsplit("@", 1)[-1] or "(no host)"


def _check_headers(headers: Mapping[str, str]) -> None:
    for key, value in headers.items():
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key + value):
            raise MeasurementError(f"header {clean_text(key, 40)!r} contains a control character")


async def _read_capped(resp: aiohttp.ClientResponse, cap: int, what: str) -> bytes:
    """The body, refused as soon as it is longer than ``cap`` bytes (never held whole)."""
    if resp.content_length is not None and resp.content_length > cap:
        raise MeasurementError(f"{what}: the body is larger than {cap} bytes")
    buf = bytearray()
    async for chunk in resp.content.iter_chunked(64 * 1024):
        buf += chunk
        if len(buf) > cap:
            raise MeasurementError(f"{what}: the body is larger than {cap} bytes")
    return bytes(buf)


async def _fetch(
    limits: AnalysisLimits,
    method: str,
    url: str,
    *,
    params: dict[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    body: str = "",
    timeout: float,
) -> bytes:
    """One request under the worker's limits; a 2xx answer's body, else ``MeasurementError``."""
    where = _where(url)
    try:
        limits.egress.check_url(url)
    except EgressRefused as exc:
        raise MeasurementError(f"{method} {where}: {exc}") from None
    _check_headers(headers or {})
    seconds = max(1.0, min(float(timeout) if timeout and timeout > 0 else 10.0, limits.max_timeout))
    sent = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **(headers or {})}
    try:
        async with (
            asyncio.timeout(seconds + 1),
            aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=seconds),
                connector=limits.egress.connector(),
                auto_decompress=False,  # a compressed bomb is refused as "not JSON", never inflated
            ) as session,
            session.request(
                method,
                url,
                params=params,
                data=body.encode() if body else None,
                headers=sent,
                allow_redirects=False,
            ) as resp,
        ):
            if not 200 <= resp.status < 300:
                raise MeasurementError(f"{method} {where} answered HTTP {resp.status}")
            return await _read_capped(resp, limits.max_body, f"{method} {where}")
    except EgressRefused as exc:
        raise MeasurementError(f"{method} {where}: {exc}") from None
    except TimeoutError:
        raise MeasurementError(f"{method} {where}: no answer within {seconds:g}s") from None
    except aiohttp.ClientConnectorError as exc:
        why = exc.os_error.strerror if exc.os_error and exc.os_error.strerror else type(exc).__name__
        raise MeasurementError(f"{method} {where}: cannot connect ({why})") from None
    except aiohttp.ClientError as exc:
        raise MeasurementError(f"{method} {where}: {type(exc).__name__}") from None


async def query_prometheus(address: str, query: str, timeout: float, limits: AnalysisLimits) -> bytes:
    """An instant query's raw answer (``analysis_eval`` reads it: vector -> list, scalar -> float)."""
    url = address.rstrip("/") + "/api/v1/query"
    return await _fetch(limits, "GET", url, params={"query": query}, timeout=timeout)


async def query_web(
    url: str, method: str, headers: dict[str, str], body: str, timeout: float, limits: AnalysisLimits
) -> bytes:
    """The web provider's request; like Argo, a body is refused with GET."""
    method = (method or "GET").upper()
    if body and method == "GET":
        raise MeasurementError("a body can only be sent with POST or PUT (method is GET)")
    return await _fetch(limits, method, url, headers=headers, body=body, timeout=timeout)


async def measure(
    metric: MetricSpec, limits: AnalysisLimits | None = None, pool: EvalPool | None = None
) -> tuple[MeasurementPhase, str, str]:
    """One measurement: ``(phase, value as text, message)``; never raises (Error measurement instead)."""
    limits = limits or AnalysisLimits.from_env()
    pool = pool or shared_pool(limits.eval_processes, limits.eval_memory)
    try:
        if metric.prometheus is not None:
            p = metric.prometheus
            kind, raw, path = "prometheus", await query_prometheus(p.address, p.query, p.timeout, limits), ""
        elif metric.web is not None:
            w = metric.web
            headers = {h.key: h.value for h in w.headers}
            raw = await query_web(w.url, w.method, headers, w.body, w.timeout_seconds, limits)
            kind, path = "web", w.json_path
        else:  # pragma: no cover - the parser requires a provider
            raise MeasurementError("no provider")
        value, success, failure, error = await pool.run(
            kind, raw, path, metric.success_condition, metric.failure_condition, timeout=limits.eval_timeout
        )
    except MeasurementError as exc:
        return MeasurementPhase.ERROR, "", clean_text(str(exc), 300)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - any provider problem is an Error measurement, never a retry
        activity.logger.warning("metric %s: unexpected %s", metric.name, type(exc).__name__, exc_info=True)
        return MeasurementPhase.ERROR, "", f"measurement failed ({type(exc).__name__})"
    if error:
        return MeasurementPhase.ERROR, value, error
    return analysis_math.measurement_phase(success, failure), value, ""


# Reads one key of a Secret: (namespace, name, key) -> value; raises MeasurementError.
SecretReader = Callable[[str, str, str], Awaitable[str]]


async def fill_secret_headers(metric: MetricSpec, namespace: str, read: SecretReader | None) -> MetricSpec:
    """The web headers with their Secret args filled in (in memory: the result never leaves the activity)."""
    if metric.web is None or not any(h.secrets for h in metric.web.headers):
        return metric
    headers = []
    for h in metric.web.headers:
        value = h.value
        for arg, ref in h.secrets.items():
            marker = re.compile(r"\{\{\s*args\." + re.escape(arg) + r"\s*\}\}")
            if not marker.search(value):
                continue  # given a literal value at start instead
            if read is None or not namespace:
                raise MeasurementError(
                    f"header {h.key!r} reads Secret {ref.name}: this worker reads no Secrets"
                )
            secret = await read(namespace, ref.name, ref.key)
            if "\r" in secret or "\n" in secret:
                raise MeasurementError(
                    f"Secret {ref.name} key {ref.key}: a header value cannot hold a line break"
                )
            value = marker.sub(secret.replace("\\", "\\\\"), value)  # the value verbatim, no escapes
        headers.append(h.model_copy(update={"value": value, "secrets": {}}))
    return metric.model_copy(update={"web": metric.web.model_copy(update={"headers": headers})})


def secret_reader(client: Any) -> SecretReader:
    """A ``SecretReader`` over a ``kube.client.KubeClient`` (its namespace scope applies)."""
    import base64

    from kubernetes.client.exceptions import ApiException

    async def read(namespace: str, name: str, key: str) -> str:
        path = f"/api/v1/namespaces/{namespace}/secrets/{name}"
        try:
            obj = await client.run(client.kube.request, "GET", path)
        except ApiException as exc:
            raise MeasurementError(f"Secret {namespace}/{name}: HTTP {exc.status} {exc.reason}") from None
        except PermissionError as exc:  # outside the worker's namespaces
            raise MeasurementError(str(exc)) from None
        data = (obj.get("data") or {}).get(key)
        if data is None:
            raise MeasurementError(f"Secret {namespace}/{name} has no key {key!r}")
        return base64.b64decode(data).decode("utf-8", "replace")

    return read


def _namespace_of(workflow_id: str) -> str:
    """``rollout/<namespace>/<name>``: the namespace whose Secrets a rollout's headers may read."""
    parts = workflow_id.split("/")
    return parts[1] if len(parts) == 3 and parts[0] == "rollout" else ""


class AnalysisActivities:
    """The analysis activity (providers; with ``secrets``, Kubernetes reads of header Secrets only)."""

    def __init__(
        self,
        measure_fn: Callable[[MetricSpec], Awaitable[tuple[MeasurementPhase, str, str]]] | None = None,
        *,
        limits: AnalysisLimits | None = None,
        secrets: SecretReader | None = None,
    ) -> None:
        self.secrets = secrets
        self.limits = limits or AnalysisLimits.from_env()
        self._pool = shared_pool(self.limits.eval_processes, self.limits.eval_memory)
        self._measure = measure_fn or (lambda m: measure(m, self.limits, self._pool))
        if measure_fn is None:
            self._pool.warm()
            logging.getLogger("rollout-worker").info(
                "analysis and notification egress allowed to: %s", self.limits.egress
            )
        self._running: dict[str, set[tuple[str, str]]] = {}  # workflow ID -> (run, metric) measuring here

    def activities(self) -> list[Callable[..., Any]]:
        """Every activity method, for ``Worker(activities=[...])``."""
        return [self.run_metric]

    @activity.defn
    async def run_metric(self, inp: MetricRunInput) -> MetricReport:
        """Measure ``inp.metric`` on its interval until something worth recording happens (see module doc)."""
        info = activity.info()
        key, wid = (inp.run, inp.metric.name), info.workflow_id or ""
        running = self._running.setdefault(wid, set())
        if key not in running and len(running) >= self.limits.max_metrics:
            return self._ended(inp, f"more than {self.limits.max_metrics} metrics at once (worker limit)")
        running.add(key)
        try:
            return await self._run(inp, info.attempt, info.heartbeat_details)
        finally:
            running.discard(key)
            if not running:
                self._running.pop(wid, None)

    @staticmethod
    def _ended(inp: MetricRunInput, why: str, counts: MetricCounts | None = None) -> MetricReport:
        """The metric ends as Error at once (a worker limit, not a measurement of the target)."""
        counts = analysis_math.count_measurement(counts or inp.counts, MeasurementPhase.ERROR)
        return MetricReport(
            phase=MetricPhase.ERROR,
            counts=counts,
            run=inp.run,
            metric=inp.metric.name,
            measurement=MeasurementPhase.ERROR,
            message=f"metric {inp.metric.name} errored: {why}",
            at=datetime.now(UTC),
        )

    async def _run(self, inp: MetricRunInput, attempt: int, details: Any) -> MetricReport:
        metric = inp.metric
        counts = inp.counts
        interval = max(metric.interval_seconds or 0, self.limits.min_interval)
        wait = interval if inp.started else metric.initial_delay_seconds
        last: MetricReport | None = None
        if details:  # a retried attempt (worker lost): continue from the last heartbeat
            last = MetricReport.model_validate(details[0])
            counts = last.counts
            if last.at is None:  # the mark of a first measurement: nothing measured yet
                last = None
            else:
                elapsed = (datetime.now(UTC) - last.at).total_seconds()
                wait = max(0.0, interval - elapsed)
            if len(details) > 1 and details[1] == MEASURING:
                # The previous attempt died or stalled while measuring: that measurement is an Error.
                lost = "the measurement was lost (worker stopped or stalled)"
                last, counts, done = self._count(inp, counts, MeasurementPhase.ERROR, "", lost)
                if done:
                    return last
                activity.heartbeat(last.model_dump(mode="json"))
        if attempt > self.limits.max_attempts:
            return self._ended(inp, f"the measurement activity was retried {attempt - 1} times", counts)
        while True:
            await self._sleep(wait, inp.heartbeat_seconds, last)
            phase, value, message = await self._beating(inp, counts, last)
            last, counts, done = self._count(inp, counts, phase, value, message)
            if done:
                return last
            activity.heartbeat(last.model_dump(mode="json"))
            wait = interval

    @staticmethod
    def _count(
        inp: MetricRunInput, counts: MetricCounts, phase: MeasurementPhase, value: str, message: str
    ) -> tuple[MetricReport, MetricCounts, bool]:
        """Count one measurement: the report, the counts, and whether the report is worth returning."""
        metric = inp.metric
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
            "%s/%s measurement %d: %s %s %s", inp.run, metric.name, counts.count, phase.value, value, message
        )
        return last, counts, analysis_math.should_report(metric, before, counts, mphase)

    async def _measure_filled(self, metric: MetricSpec) -> tuple[MeasurementPhase, str, str]:
        """Measure with the header Secrets read now (a rotated Secret applies at the next measurement)."""
        try:
            metric = await fill_secret_headers(
                metric, _namespace_of(activity.info().workflow_id or ""), self.secrets
            )
        except MeasurementError as exc:
            return MeasurementPhase.ERROR, "", clean_text(str(exc), 300)
        return await self._measure(metric)

    async def _beating(
        self, inp: MetricRunInput, counts: MetricCounts, last: MetricReport | None
    ) -> tuple[MeasurementPhase, str, str]:
        """Measure, heartbeating meanwhile with the ``measuring`` mark (a lost attempt counts as Error)."""
        metric, run, beat = inp.metric, inp.run, inp.heartbeat_seconds
        mark = last or MetricReport(phase=MetricPhase.RUNNING, counts=counts, run=run, metric=metric.name)
        payload = mark.model_dump(mode="json")
        task = asyncio.ensure_future(self._measure_filled(metric))
        try:
            while True:
                activity.heartbeat(payload, MEASURING)
                done, _ = await asyncio.wait({task}, timeout=beat)
                if done:
                    return task.result()
        finally:
            task.cancel()  # cancelled activity: stop the request (and the child's job) too

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
