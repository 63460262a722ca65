"""Analysis providers as untrusted input: each attack of the security review, reproduced and now harmless.

SSRF (F4), unbounded bodies (F6), CPU-bound conditions and jsonPath regexes (F5), escaped exceptions
(F12), bounds on metrics, intervals and retries (F7, F5), terminal escapes (F16), and Argo's web
provider rules for plain-text/empty bodies and a body with GET. Local aiohttp servers on 127.0.0.1
play the metadata service and the hostile endpoints; no Temporal server is needed (the activity runs
in ``ActivityEnvironment``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import os
import resource
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from temporalio.testing import ActivityEnvironment

from activities import analysis
from activities.analysis import AnalysisActivities, AnalysisLimits, measure
from activities.analysis_eval import clean_text, interpret
from activities.egress import EgressPolicy, EgressRefused
from tests.helpers.poll import assert_eventually
from workflows.model import (
    MeasurementPhase,
    MetricCounts,
    MetricPhase,
    MetricReport,
    MetricRunInput,
    MetricSpec,
    PrometheusProvider,
    WebHeader,
    WebProvider,
)

M = MeasurementPhase
LOOPBACK = AnalysisLimits(egress=EgressPolicy.parse("127.0.0.0/8"), eval_timeout=1.0)
ESC = "\x1b]0;PWNED-TITLE\x07\x1b[2K\rAll checks passed \x1b]52;c;ZWNobyBwd25lZA==\x07"


class Hostile:
    """A local server with the review's hostile routes; ``hits`` counts requests per path."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.base = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.hits[path] = self.hits.get(path, 0) + 1
        if path == "/token":  # a GCP-style metadata token
            return web.json_response({"access_token": "ya29.FAKE-NODE-SA-TOKEN"})
        if path == "/redirect":
            raise web.HTTPFound("/token")
        if path == "/escape":
            return web.Response(status=500, text=ESC)
        if path == "/escape-ok":
            return web.Response(text=ESC)
        if path == "/text":
            return web.Response(text=request.query.get("body", ""))
        if path == "/json":
            return web.Response(text=request.query["body"], content_type="application/json")
        if path == "/declared-huge":
            resp = web.StreamResponse(headers={"Content-Length": str(200 * 1024 * 1024)})
            await resp.prepare(request)
            await resp.write(b'"' + b"x" * 1024)
            return resp
        if path == "/api/v1/query" and request.query.get("query") == "failing":
            return web.json_response({"status": "error", "errorType": "bad_data", "error": "SECRET-BODY"})
        if path == "/huge" or request.query.get("query") == "huge":  # 200 MB, chunked, never held whole
            resp = web.StreamResponse()
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            chunk = b"x" * (1024 * 1024)
            try:
                await resp.write(b'"')
                for _ in range(200):
                    await resp.write(chunk)
                await resp.write(b'"')
            except (ConnectionResetError, RuntimeError):
                pass  # the client hung up at its cap
            return resp
        return web.json_response({"rate": 0.01})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def hostile() -> AsyncIterator[Hostile]:
    server = Hostile()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def web_metric(url: str, *, json_path: str = "", success: str = "true", **web_kw: Any) -> MetricSpec:
    return MetricSpec(
        name="m",
        success_condition=success,
        web=WebProvider(url=url, json_path=json_path, timeout_seconds=5, **web_kw),
    )


class Ticker:
    """A loop callback scheduled every 10 ms while ``work`` runs; ``max_gap`` is the longest the event
    loop kept it waiting (a blocked loop delays it)."""

    def __init__(self) -> None:
        self.max_gap = 0.0
        self.ticks = 0
        self._last = 0.0
        self._handle: asyncio.TimerHandle | None = None

    def _tick(self) -> None:
        now = time.monotonic()
        self.max_gap, self._last = max(self.max_gap, now - self._last), now
        self.ticks += 1
        self._handle = asyncio.get_running_loop().call_later(0.01, self._tick)

    async def around(self, work: Awaitable[Any]) -> Any:
        self._last = time.monotonic()
        self._handle = asyncio.get_running_loop().call_later(0.01, self._tick)
        try:
            return await work
        finally:
            self._handle.cancel()


# --- F4: egress allow-list ---------------------------------------------------------------------------


def test_egress_policy_table() -> None:
    broad = EgressPolicy.parse("0.0.0.0/0, ::/0")
    for ip, want in [
        ("10.1.2.3", True),
        ("8.8.8.8", True),
        ("169.254.169.254", False),  # metadata: a broad entry does not cover it
        ("127.0.0.1", False),  # loopback likewise
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("fe80::1", False),
        ("fd00:ec2::254", False),
        ("2001:db8::1", True),
    ]:
        assert broad.address_allowed(ipaddress.ip_address(ip)) is want, ip
    explicit = EgressPolicy.parse("169.254.169.254/32 127.0.0.0/8")
    assert explicit.address_allowed(ipaddress.ip_address("169.254.169.254"))
    assert not explicit.address_allowed(ipaddress.ip_address("169.254.169.253"))
    assert explicit.address_allowed(ipaddress.ip_address("127.0.0.1"))
    named = EgressPolicy.parse("prometheus.monitoring.svc *.example.com")
    named.check_resolved("prometheus.monitoring.svc", ["10.96.0.9"])
    named.check_resolved("api.example.com", ["203.0.113.5"])
    with pytest.raises(EgressRefused):  # an allowed name that resolves to metadata (DNS rebinding)
        named.check_resolved("api.example.com", ["169.254.169.254"])
    with pytest.raises(EgressRefused):  # the same address written the IPv4-mapped way
        named.check_resolved("api.example.com", ["::ffff:169.254.169.254"])
    with pytest.raises(EgressRefused):
        named.check_resolved("other.org", ["203.0.113.5"])
    with pytest.raises(EgressRefused, match="ROLLOUT_EGRESS_ALLOW"):  # unset: nothing is reachable
        EgressPolicy.parse("").check_url("http://prometheus:9090")
    with pytest.raises(ValueError, match="not a host name, IP or CIDR"):
        EgressPolicy.parse("http://x/")
    assert str(EgressPolicy.parse("")) == "(nothing)"
    # The worker's default (unset): anything but the guarded ranges; "none" reaches nothing.
    default = EgressPolicy.from_env({})
    default.check_resolved("prometheus.monitoring.svc", ["10.96.0.9"])
    for guarded in ("169.254.169.254", "127.0.0.1", "::ffff:169.254.169.254"):
        with pytest.raises(EgressRefused):
            default.check_resolved("metadata.internal", [guarded])
    with pytest.raises(EgressRefused):
        EgressPolicy.from_env({"ROLLOUT_EGRESS_ALLOW": "none"}).check_url("http://prometheus:9090")


async def test_metadata_ssrf_is_refused_before_any_request(
    hostile: Hostile, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The review's read-back: a metadata token through a web metric. Off the allow-list: no request."""
    limits = AnalysisLimits(egress=EgressPolicy.parse("10.0.0.0/8"))
    phase, value, message = await measure(
        web_metric(f"{hostile.base}/token", json_path="{$.access_token}"), limits
    )
    assert (phase, value) == (M.ERROR, "")
    assert "127.0.0.1 is not on the worker's egress allow-list" in message and "ya29" not in message
    assert hostile.hits == {}
    # A name that resolves to loopback is refused the same way (the resolved address is what counts).
    port = hostile.base.rsplit(":", 1)[1]
    named = AnalysisLimits(egress=EgressPolicy.parse("localhost 10.0.0.0/8"))
    phase, _, message = await measure(web_metric(f"http://localhost:{port}/token"), named)
    assert phase == M.ERROR and "localhost resolves to" in message
    assert hostile.hits == {}

    # 169.254.169.254, even under 0.0.0.0/0: refused without any network call (no session is even made).
    def no_network(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("a request was attempted")

    monkeypatch.setattr(analysis.aiohttp, "ClientSession", no_network)
    broad = AnalysisLimits(egress=EgressPolicy.parse("0.0.0.0/0"))
    for url in (
        "http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
    ):
        phase, _, message = await measure(web_metric(url), broad)
        assert phase == M.ERROR and "not on the worker's egress allow-list" in message, message
    prom = MetricSpec(name="p", prometheus=PrometheusProvider(address="http://169.254.169.254", query="up"))
    phase, _, message = await measure(prom, broad)
    assert phase == M.ERROR and "169.254.169.254 is not on" in message


async def test_allowed_endpoint_measures_and_redirects_are_not_followed(hostile: Hostile) -> None:
    phase, value, _ = await measure(web_metric(f"{hostile.base}/metric", json_path="{$.rate}"), LOOPBACK)
    assert (phase, value) == (
        M.SUCCESSFUL,
        "0.01",
    )  # the positive control: loopback allowed by the test config
    phase, value, message = await measure(web_metric(f"{hostile.base}/redirect"), LOOPBACK)
    assert (phase, value) == (M.ERROR, "")
    assert message.endswith("answered HTTP 302") and "/token" not in message
    assert "/token" not in hostile.hits


# --- F6: bounded bodies -------------------------------------------------------------------------------


async def test_200_mb_body_is_capped_and_memory_stays_bounded(hostile: Hostile) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    t0 = time.monotonic()
    phase, value, message = await measure(
        web_metric(f"{hostile.base}/huge", success="len(result) > 0"), LOOPBACK
    )
    elapsed = time.monotonic() - t0
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(f"\n200 MB body: Error after {elapsed:.2f} s, peak RSS grew {grown_mib:.1f} MiB")
    assert (phase, value) == (M.ERROR, "")
    assert message == f"GET {hostile.base.removeprefix('http://')}: the body is larger than 1048576 bytes"
    assert grown_mib < 64, grown_mib  # unbounded, the review measured +615 MB for this body
    phase, _, message = await measure(web_metric(f"{hostile.base}/declared-huge"), LOOPBACK)
    assert phase == M.ERROR and message.endswith("the body is larger than 1048576 bytes")
    prom = MetricSpec(name="p", prometheus=PrometheusProvider(address=hostile.base, query="huge"))
    phase, _, message = await measure(prom, LOOPBACK)
    assert phase == M.ERROR and message.endswith(": the body is larger than 1048576 bytes"), message
    prom = prom.model_copy(update={"prometheus": PrometheusProvider(address=hostile.base, query="failing")})
    phase, _, message = await measure(prom, LOOPBACK)
    assert (phase, message) == (M.ERROR, "the query did not succeed (bad_data)")
    small = dataclasses.replace(LOOPBACK, max_body=4)
    phase, _, message = await measure(web_metric(f"{hostile.base}/metric"), small)
    assert phase == M.ERROR and message.endswith("larger than 4 bytes")


# --- F5: CPU-bound conditions and regexes, off the event loop with a hard limit -----------------------


@pytest.mark.parametrize(
    ("success", "phase", "why"),
    [
        ("len([9**4000000 for i in [0]*20]) > 0", M.ERROR, "invalid operation"),  # refused by type check
        ("9**4000000 > 0", M.SUCCESSFUL, ""),  # a float power, as in Argo's expr: +Inf at once
    ],
    ids=["power-comprehension", "power"],
)
async def test_cpu_bomb_conditions_cost_nothing(hostile: Hostile, success: str, phase: M, why: str) -> None:
    """The review's condition bombs: the evaluator has no big-int powers nor comprehensions (Argo's
    expr has neither), so they end at once and the loop never waits."""
    ticker = Ticker()
    t0 = time.monotonic()
    metric = web_metric(hostile.base + "/metric", success=success)
    got, _, message = await ticker.around(measure(metric, LOOPBACK))
    assert (got, why in message) == (phase, True), message
    assert time.monotonic() - t0 < 5
    assert ticker.max_gap < 0.5, ticker.max_gap


@pytest.mark.parametrize(
    ("path", "json_path", "success"),
    [
        ("/json?body=" + '[{"a": "' + "a" * 32 + '!"}]', '$[?(@.a =~ "(a+)+$")]', "true"),  # ReDoS: ~10 min
    ],
    ids=["redos-jsonpath"],
)
async def test_cpu_bombs_do_not_block_the_loop_and_end_as_error(
    hostile: Hostile, path: str, json_path: str, success: str
) -> None:
    ticker = Ticker()
    t0 = time.monotonic()
    phase, _, message = await ticker.around(
        measure(web_metric(hostile.base + path, json_path=json_path, success=success), LOOPBACK)
    )
    elapsed = time.monotonic() - t0
    print(
        f"\n{path[:20]} {success[:30]}: {phase.value} after {elapsed:.2f} s, "
        f"loop max gap {ticker.max_gap:.3f} s"
    )
    assert phase == M.ERROR, message
    # Either the evaluation limit stopped it or the evaluator refused it outright; both are Errors.
    assert "took longer than 1s" in message or "condition" in message, message
    assert elapsed < 15
    assert ticker.max_gap < 0.5, ticker.max_gap  # another coroutine kept running meanwhile
    assert ticker.ticks > 0
    # The stopped evaluation is not left burning a core: no evaluation child of ours is still running.
    await assert_eventually(
        lambda: all(state != "R" for state in _eval_children().values()),
        timeout=5,
        message="no evaluation child process still running",
    )


def _eval_children() -> dict[int, str]:
    """This process's evaluation children (``python -m activities.analysis_eval``): PID -> state letter."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read()
            cmdline = open(f"/proc/{entry}/cmdline", "rb").read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == os.getpid() and b"activities.analysis_eval" in cmdline:
            found[int(entry)] = fields[0]
    return found


# --- F12: nothing escapes as an exception ---------------------------------------------------------------


async def test_crlf_header_and_unexpected_errors_are_error_measurements(
    hostile: Hostile, monkeypatch: pytest.MonkeyPatch
) -> None:
    crlf = web_metric(f"{hostile.base}/metric", headers=[WebHeader(key="X-A", value="a\r\nX-Injected: 1")])
    phase, _, message = await measure(crlf, LOOPBACK)
    assert (phase, message) == (M.ERROR, "header 'X-A' contains a control character")
    assert hostile.hits == {}
    # Through the activity, with consecutiveErrorLimit 0: the metric ends as Error (the review saw attempt 9).
    crlf = crlf.model_copy(update={"consecutive_error_limit": 0})
    report = await ActivityEnvironment().run(
        AnalysisActivities(limits=LOOPBACK).run_metric, MetricRunInput(run="r", metric=crlf)
    )
    assert (report.phase, report.measurement) == (MetricPhase.ERROR, M.ERROR)

    async def boom(*_a: Any, **_k: Any) -> bytes:
        raise ValueError("Forbidden control character detected in headers; secret body bits")

    monkeypatch.setattr(analysis, "query_web", boom)
    phase, _, message = await measure(web_metric(f"{hostile.base}/metric"), LOOPBACK)
    assert (phase, message) == (M.ERROR, "measurement failed (ValueError)")


# --- F16 and F4: no bodies echoed, no control characters ----------------------------------------------


async def test_no_body_echo_and_no_control_characters(hostile: Hostile) -> None:
    phase, value, message = await measure(web_metric(f"{hostile.base}/escape"), LOOPBACK)
    assert (phase, value) == (M.ERROR, "")
    assert message.endswith("answered HTTP 500") and "PWNED" not in message
    # A plain-text body is the measured value (Argo), so it is shown, but without any control character.
    phase, value, _ = await measure(
        web_metric(f"{hostile.base}/escape-ok", success="len(result) > 0"), LOOPBACK
    )
    assert phase == M.SUCCESSFUL
    assert "PWNED-TITLE" in value and not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value)
    report = await ActivityEnvironment().run(
        AnalysisActivities(limits=LOOPBACK).run_metric,
        MetricRunInput(run="r", metric=web_metric(f"{hostile.base}/escape-ok", success="result == 'x'")),
    )
    text = report.value + report.message
    assert (
        report.phase == MetricPhase.FAILED and "\x1b" not in text and "\x07" not in text and "\r" not in text
    )
    assert clean_text("a\x1b[2Kb\x9bc\td") == "a [2Kb c d"


# --- Argo's web provider: plain-text, empty and missing bodies; a body with GET ------------------------


@pytest.mark.parametrize(
    ("body", "json_path", "success", "want", "value"),
    [
        (
            "test: notJson",
            "{$.key[0].key2.value}",
            "result == 'test: notJson'",
            M.SUCCESSFUL,
            "test: notJson",
        ),
        ("OK", "", "result == 'fail123'", M.FAILED, "OK"),
        ("", "{$.key[0].key2.value}", "true", M.SUCCESSFUL, ""),
        ("", "", "result == 'fail123'", M.FAILED, ""),
        ('{"key": [{"key2": {"value": "true"}}]}', "{$.key[0].key2.novalue}", "true", M.ERROR, ""),
        ("{}", "", "true", M.SUCCESSFUL, "{}"),
    ],
    ids=["plain-text", "plain-text-fails", "empty", "empty-fails", "jsonpath-no-match", "any-json"],
)
def test_web_bodies_like_argo(body: str, json_path: str, success: str, want: M, value: str) -> None:
    """Cases of argo-rollouts' metricproviders/webmetric/webmetric_test.go (9f8d111), via ``interpret``."""
    shown, ok, bad, error = interpret("web", body.encode(), json_path, success, "")
    from workflows import analysis_math

    phase = M.ERROR if error else analysis_math.measurement_phase(ok, bad)
    assert (phase, shown) == (want, value), error


async def test_body_with_get_is_refused_like_argo(hostile: Hostile) -> None:
    phase, _, message = await measure(web_metric(f"{hostile.base}/metric", body='{"a": 1}'), LOOPBACK)
    assert (phase, message) == (M.ERROR, "a body can only be sent with POST or PUT (method is GET)")
    assert hostile.hits == {}
    phase, _, _ = await measure(
        web_metric(f"{hostile.base}/metric", body='{"a": 1}', method="POST"), LOOPBACK
    )
    assert phase == M.SUCCESSFUL and hostile.hits == {"/metric": 1}


# --- F7 and F5: interval, metric count and retry bounds on the worker ---------------------------------


def _fake(calls: list[float], result: M = M.SUCCESSFUL) -> Callable[[MetricSpec], Awaitable[Any]]:
    async def fake(_m: MetricSpec) -> tuple[MeasurementPhase, str, str]:
        calls.append(time.monotonic())
        return result, "1", ""

    return fake


async def _until_done(
    acts: AnalysisActivities, inp: MetricRunInput, env: ActivityEnvironment
) -> MetricReport:
    """Run the activity again with the counts it returned until the metric ends (what the workflow does)."""
    while True:
        report: MetricReport = await env.run(acts.run_metric, inp)
        if report.phase not in (MetricPhase.RUNNING, MetricPhase.PENDING):
            return report
        inp = inp.model_copy(update={"counts": report.counts, "started": True})
        env.info = dataclasses.replace(env.info, attempt=1, heartbeat_details=[])


async def test_minimum_interval_is_enforced_by_the_worker() -> None:
    calls: list[float] = []
    acts = AnalysisActivities(_fake(calls), limits=AnalysisLimits(min_interval=0.3))
    metric = MetricSpec(name="m", interval_seconds=0.001, count=3, success_condition="true")
    report = await _until_done(acts, MetricRunInput(run="r", metric=metric), ActivityEnvironment())
    assert report.phase == MetricPhase.SUCCESSFUL and len(calls) == 3
    gaps = [b - a for a, b in zip(calls, calls[1:], strict=False)]
    assert min(gaps) >= 0.29, gaps  # not 1 ms apart (the review made 1,500 requests in 10 s)


async def test_metrics_beyond_the_worker_limit_end_as_error() -> None:
    release = asyncio.Event()

    async def slow(_m: MetricSpec) -> tuple[MeasurementPhase, str, str]:
        await release.wait()
        return M.SUCCESSFUL, "1", ""

    acts = AnalysisActivities(slow, limits=AnalysisLimits(max_metrics=1))
    env = ActivityEnvironment()
    first = asyncio.create_task(
        env.run(
            acts.run_metric, MetricRunInput(run="r", metric=MetricSpec(name="a", success_condition="true"))
        )
    )
    # the first metric is measuring (registered) before the second arrives
    await assert_eventually(lambda: acts._running, timeout=1, interval=0.01, message="the first metric")
    second = await env.run(acts.run_metric, MetricRunInput(run="r", metric=MetricSpec(name="b")))
    assert second.phase == MetricPhase.ERROR
    assert second.message == "metric b errored: more than 1 metrics at once (worker limit)"
    release.set()
    assert (await first).phase == MetricPhase.SUCCESSFUL
    assert acts._running == {}


async def test_lost_measurements_count_as_errors_and_retries_are_bounded() -> None:
    calls: list[float] = []
    acts = AnalysisActivities(_fake(calls), limits=AnalysisLimits(max_attempts=3, min_interval=0))
    metric = MetricSpec(name="m", success_condition="true", consecutive_error_limit=0)
    env = ActivityEnvironment()
    mark = MetricReport(phase=MetricPhase.RUNNING, counts=MetricCounts(), run="r", metric="m")
    # Attempt 2 after the worker died while measuring: that measurement is an Error (limit 0: metric ends).
    env.info = dataclasses.replace(
        env.info, attempt=2, heartbeat_details=[mark.model_dump(mode="json"), "measuring"]
    )
    report = await env.run(acts.run_metric, MetricRunInput(run="r", metric=metric))
    assert (report.phase, report.counts.error, calls) == (MetricPhase.ERROR, 1, [])
    assert "the measurement was lost" in report.message
    # A retried attempt past the bound ends the metric as Error without measuring again.
    env.info = dataclasses.replace(env.info, attempt=4, heartbeat_details=[])
    report = await env.run(
        acts.run_metric,
        MetricRunInput(run="r", metric=metric.model_copy(update={"consecutive_error_limit": 4})),
    )
    assert report.phase == MetricPhase.ERROR and calls == []
    assert report.message == "metric m errored: the measurement activity was retried 3 times"
    # A retry after a loss while sleeping (no mark) counts nothing extra and measures again.
    done = MetricReport(
        phase=MetricPhase.RUNNING,
        counts=MetricCounts(count=1, successful=1),
        run="r",
        metric="m",
        measurement=M.SUCCESSFUL,
        value="1",
        at=datetime.now(UTC),
    )
    env.info = dataclasses.replace(env.info, attempt=2, heartbeat_details=[done.model_dump(mode="json")])
    count2 = metric.model_copy(update={"count": 2, "interval_seconds": 0.01})
    report = await env.run(acts.run_metric, MetricRunInput(run="r", metric=count2, started=True))
    assert (report.phase, report.counts.count, report.counts.error, len(calls)) == (
        MetricPhase.SUCCESSFUL,
        2,
        0,
        1,
    )


def test_limits_from_env() -> None:
    limits = AnalysisLimits.from_env(
        {
            "ROLLOUT_EGRESS_ALLOW": "10.0.0.0/8",
            "ROLLOUT_ANALYSIS_MAX_BODY_BYTES": "2048",
            "ROLLOUT_ANALYSIS_MIN_INTERVAL_SECONDS": "5",
            "ROLLOUT_ANALYSIS_MAX_METRICS": "3",
        }
    )
    assert (limits.max_body, limits.min_interval, limits.max_metrics, limits.eval_timeout) == (
        2048,
        5.0,
        3,
        2.0,
    )
    assert str(limits.egress) == "10.0.0.0/8"
    with pytest.raises(ValueError, match="ROLLOUT_ANALYSIS_MAX_METRICS='x' is not a number"):
        AnalysisLimits.from_env({"ROLLOUT_ANALYSIS_MAX_METRICS": "x"})


def test_status_text_and_ui_details_carry_no_escape_sequences() -> None:
    """The review's `rollout status | cat -v` showed OSC title/clipboard writes; the UI renders Markdown."""
    from cli.status import status_text
    from workflows.base import _md
    from workflows.model import Approval, RolloutStatus

    st = RolloutStatus(namespace="team-a", name="att", workflow_id="w", message=f"analysis: {ESC}")
    st.approvals.append(Approval(by=f"mallory{ESC}", at=datetime.now(UTC), step=1, comment=ESC))
    text = status_text(st, "http://ui")
    assert "PWNED-TITLE" in text and "All checks passed" in text  # the text stays, the sequences go
    assert not any(ord(c) < 0x20 and c != "\n" or 0x7F <= ord(c) <= 0x9F for c in text)
    assert len(text.splitlines()) == 8  # no line broken or erased by a CR
    md = _md("measured [click](http://evil) <img src=x> `code` **bold**" + ESC)
    assert "\\[click\\](http://evil)" in md and "\\<img src=x\\>" in md and "\\*\\*bold\\*\\*" in md
    assert "\x1b" not in md and "\x07" not in md
