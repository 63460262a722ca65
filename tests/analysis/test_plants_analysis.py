"""Canary analysis as the user meets it, for three bugs that once passed every test (issue 24).

- The ``AnalysisFailed`` notification says why: the receiver gets the metric, the value and the
  condition, not the rollout's generic status line.
- After an inconclusive result is approved, the background analysis measures again, so a canary
  that then goes bad is still rolled back.
- A failed measurement ends a streak of errors (Argo's ``consecutiveError``): errors on both sides
  of one failure do not add up to ``consecutiveErrorLimit``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.helpers.analysis import MetricEndpoint, web_template
from tests.helpers.receiver import name_targets, receiving
from workflows.model import MetricPhase, Phase, RolloutStatus, WaitingFor


async def test_analysis_failed_notification_names_metric_value_and_condition(
    kit: Any, rollout_worker: None, endpoint: MetricEndpoint, tmp_path: Path
) -> None:
    endpoint.value = 0.5
    bg = web_template(tmp_path / "bg.yaml", endpoint.url, interval="1s", failure_limit=0)
    await kit.create(kit.seed(replicas=4))
    async with receiving() as receiver:
        name_targets(hook=receiver.url)  # --notify names a target; its URL stays with the worker
        rc, _, err = await kit.cli(
            "start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,100%",
            "--analysis", bg, "--notify", "hook",
        )  # fmt: skip
        assert rc == 0, err
        await kit.wait_phase("nginx", Phase.ROLLED_BACK, timeout=60)
        body = await kit.eventually(
            lambda: receiver.first("AnalysisFailed"), timeout=30, message="an AnalysisFailed notification"
        )
    wants = ["metric error-rate failed", "measured 0.5", "successCondition `result < 0.05` not met"]
    for part in ("message", "text"):
        missing = [w for w in wants if w not in body[part]]
        assert missing == [], f"the AnalysisFailed notification's {part} {body[part]!r} lacks {missing}"
    assert body["step"] == 1 and body["name"] == "nginx", body


async def test_background_analysis_measures_again_after_inconclusive_is_approved(
    kit: Any, rollout_worker: None, endpoint: MetricEndpoint, tmp_path: Path
) -> None:
    endpoint.value = 0.1  # neither < 0.05 nor > 0.2: inconclusive
    bg = web_template(
        tmp_path / "bg.yaml", endpoint.url, interval="1s", success="result < 0.05", failure="result > 0.2"
    )
    await kit.create(kit.seed(replicas=4))
    rc, _, err = await kit.cli(
        "start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,50%,100%", "--analysis", bg
    )
    assert rc == 0, err

    async def held() -> RolloutStatus | None:
        st: RolloutStatus = await kit.status("nginx")
        return st if st.phase == Phase.PAUSED and st.waiting_for == WaitingFor.ANALYSIS else None

    await kit.eventually(held, timeout=60, message="held on the inconclusive analysis")
    # The canary goes bad while the operator looks; the inconclusive run measures nothing more.
    endpoint.value = 0.5
    hits = endpoint.hits
    rc, out, err = await kit.cli("approve", "nginx")
    assert rc == 0, err
    assert "analysis starts over" in out, out
    await kit.eventually(
        lambda: endpoint.hits > hits,
        timeout=15,
        message=f"the background analysis to measure again after the approval (it had measured {hits} times)",
    )
    st = await kit.wait_phase("nginx", Phase.ROLLED_BACK, timeout=60)
    assert "metric error-rate failed: measured 0.5" in st.message, st.message
    assert kit.images() == {"nginx:1.27": (0, 0), "nginx:1.26": (4, 4)}


class ScriptedEndpoint(MetricEndpoint):
    """Answers its ``script`` of ``(HTTP status, rate)`` one request at a time, then the last forever."""

    def __init__(self, script: list[tuple[int, float]]) -> None:
        super().__init__()
        self.script = script

    async def _handle(self, request: web.Request) -> web.Response:
        status, value = self.script[min(self.hits, len(self.script) - 1)]
        self.hits += 1
        return web.Response(status=status, text=json.dumps({"rate": value}), content_type="application/json")


async def test_failed_measurement_resets_the_error_streak(
    kit: Any, rollout_worker: None, tmp_path: Path
) -> None:
    """error, failed, error, then healthy: never 2 errors in a row (limit 1), 1 failure (limit 1), so
    the rollout goes on; the status shows the streak back at 0."""
    endpoint = ScriptedEndpoint([(500, 0), (200, 0.5), (500, 0), (200, 0.01)])
    await endpoint.start()
    try:
        bg = web_template(
            tmp_path / "bg.yaml", endpoint.url, interval="1s", failure_limit=1, consecutive_error_limit=1
        )
        await kit.create(kit.seed(replicas=4))
        rc, _, err = await kit.cli(
            "start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,100%", "--analysis", bg
        )
        assert rc == 0, err

        async def measured_or_ended() -> RolloutStatus | None:
            st: RolloutStatus = await kit.status("nginx")
            if st.phase in (Phase.ROLLED_BACK, Phase.FAILED, Phase.COMPLETED):
                return st
            runs = st.analysis.runs if st.analysis else []
            return st if runs and runs[0].metrics[0].counts.successful >= 2 else None

        st = await kit.eventually(measured_or_ended, timeout=90, message="2 successful measurements")
        assert st.phase == Phase.PAUSED, (
            f"the rollout ended {st.phase.value} ({st.message}): the failed measurement did not end "
            "the error streak"
        )
        metric = st.analysis.runs[0].metrics[0]
        assert metric.phase == MetricPhase.RUNNING, metric
        c = metric.counts
        assert (c.error, c.failed, c.consecutive_error) == (2, 1, 0), c
        rc, out, err = await kit.cli("status", "nginx", "-o", "json")
        assert rc == 0, err
        shown = json.loads(out)["analysis"]["runs"][0]["metrics"][0]["counts"]
        assert (shown["error"], shown["consecutiveError"]) == (2, 0), shown
    finally:
        await endpoint.stop()
