"""SIGKILL the worker mid-analysis: the metric's counts survive in the activity's heartbeat details.

The web endpoint answers HTTP 500, so every measurement is an Error; errors below
consecutiveErrorLimit are heartbeats only (no history event), so after the kill the *only* place the
count lives is the last heartbeat. The retried attempt on a new worker continues from it: the rollout
rolls back after exactly limit + 1 measurements in all, none lost and none repeated.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cli import commands
from cli.commands import StartOptions
from tests.helpers.analysis import MetricEndpoint, web_template
from tests.helpers.durability import FAST, Dur, WorkerLauncher, expected_state
from workflows.model import MetricPhase, MetricReport, Phase


@pytest.fixture
async def endpoint() -> AsyncIterator[MetricEndpoint]:
    ep = MetricEndpoint()
    await ep.start()
    try:
        yield ep
    finally:
        await ep.stop()


async def _heartbeat(dur: Dur) -> MetricReport | None:
    desc = await dur.handle().describe()
    for pa in desc.raw_description.pending_activities:
        if pa.activity_type.name == "run_metric" and pa.heartbeat_details.payloads:
            [report] = await dur.client.data_converter.decode(pa.heartbeat_details.payloads, [MetricReport])
            return report  # type: ignore[no-any-return]
    return None


async def test_sigkill_mid_analysis_keeps_the_error_count(
    dur: Dur, launcher: WorkerLauncher, endpoint: MetricEndpoint, tmp_path: Path
) -> None:
    endpoint.status = 500
    # 3 s between measurements: the heartbeat carrying measurement 3 reaches the server within the
    # worker's 1 s heartbeat throttle, so the kill lands before measurement 4 (a measurement made but not
    # yet heartbeated when the worker dies is made again: at-least-once, like any activity).
    template = web_template(tmp_path / "t.yaml", endpoint.url, interval="3s", consecutive_error_limit=4)
    await dur.create_seed()
    first = await launcher.start(dur.task_queue)
    await commands.start(
        dur.ctx,
        StartOptions(
            name="nginx",
            images=["nginx=nginx:1.27"],
            steps="1,100%",
            requested_by="durability-tests",
            timings=FAST,
            analysis_files=[template],
        ),
    )

    async def three_errors_heartbeated() -> MetricReport | None:
        report = await _heartbeat(dur)
        return report if report is not None and report.counts.consecutive_error == 3 else None

    before = await dur.eventually(three_errors_heartbeated, timeout=60, message="3 errors in a heartbeat")
    killed_at = time.monotonic()
    first.kill()
    hits_at_kill = endpoint.hits
    assert hits_at_kill == 3, hits_at_kill  # measurement 4 has not happened yet
    await launcher.start(dur.task_queue)

    async def rolled_back() -> Any:
        st = await dur.query()
        return st if st is not None and st.phase == Phase.ROLLED_BACK else None

    st = await dur.eventually(rolled_back, timeout=90, message="rolled back after the error limit")
    print(f"\nanalysis after SIGKILL: kill -> RolledBack {time.monotonic() - killed_at:.1f} s")
    metric = st.analysis.runs[0].metrics[0]
    assert metric.phase == MetricPhase.ERROR
    assert (before.counts.error, metric.counts.error, metric.counts.consecutive_error) == (3, 5, 5)
    assert endpoint.hits == 5  # 3 before the kill + 2 after: no count lost, none repeated
    assert "errored 5 times in a row > consecutiveErrorLimit 4" in st.message
    assert await dur.final_state() == expected_state(Phase.ROLLED_BACK)
