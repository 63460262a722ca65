"""Canary analysis against a real Prometheus scraping kubesim's simulated pod metrics.

Uses the shipped example template (examples/analysis-error-rate.yaml) and the bad release
(examples/nginx-bad.yaml: error rate 0.5 on the canary's pod template).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from workflows.model import MetricPhase, Phase

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = str(REPO / "examples" / "analysis-error-rate.yaml")


def _release(tmp_path: Path, namespace: str, error_rate: str | None) -> str:
    doc = yaml.safe_load((REPO / "examples" / "nginx-bad.yaml").read_text())
    doc["metadata"]["namespace"] = namespace
    annotations = doc["spec"]["template"]["metadata"]["annotations"]
    if error_rate is None:
        del annotations["kubesim.io/error-rate"]
    else:
        annotations["kubesim.io/error-rate"] = error_rate
    path = tmp_path / "release.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.mark.clusters
async def test_bad_canary_rolls_back_from_prometheus(
    kit: Any, rollout_worker: None, prometheus_url: str, tmp_path: Path
) -> None:
    """Error rate 0.5 on the canary: RolledBack within interval x (failureLimit + 1) plus a scrape or two."""
    await kit.create(kit.seed())
    rc, _, err = await kit.cli(
        "start", "-f", _release(tmp_path, kit.namespace, "0.5"), "--steps", "1,50%,100%",
        "--analysis", TEMPLATE, "--analysis-arg", f"namespace={kit.namespace}",
        "--analysis-arg", f"prometheus-url={prometheus_url}",
    )  # fmt: skip
    assert rc == 0, err
    canary_ready_at: float | None = None
    ready_wall: datetime | None = None
    deadline = time.monotonic() + 90
    while True:
        st = await kit.status("nginx")
        now = time.monotonic()
        if canary_ready_at is None and st.canary_ready_replicas >= 1:
            canary_ready_at, ready_wall = now, datetime.now(UTC)
        if st.phase == Phase.ROLLED_BACK:
            break
        assert now < deadline, f"no rollback: {st.phase} {st.message}"
        assert st.phase in (Phase.PROGRESSING, Phase.PAUSED), st.message
        await kit.eventually(lambda: True, timeout=1)  # one status poll per loop turn
    assert canary_ready_at is not None
    took = time.monotonic() - canary_ready_at
    # interval 2 s x (failureLimit 1 + 1) = 4 s, + rate() needs two 1 s scrapes, + the rollback itself
    decided = st.analysis.runs[0].metrics[0].measured_at
    assert decided is not None and ready_wall is not None
    print(
        f"\nprometheus: canary Ready -> deciding measurement {(decided - ready_wall).total_seconds():.1f} s, "
        f"-> RolledBack {took:.1f} s (interval 2 s, failureLimit 1, scrape 1 s)"
    )
    assert re.search(r"metric error-rate failed: measured \[0\.[45]\d*\]", st.message), st.message
    assert "successCondition `len(result) == 0 || result[0] < 0.05` not met" in st.message
    assert kit.images() == {"nginx:1.27": (0, 0), "nginx:1.26": (10, 10)}
    kit.assert_handed_back(kit.deployment(), "nginx:1.26")
    assert st.analysis.runs[0].phase == MetricPhase.FAILED
    # Within interval x (failureLimit + 1) plus a scrape, counted in measurements rather than seconds:
    # exactly failureLimit + 1 failures, and at most the measurements before the canary's first rate()
    # (one before its pod exists, one more while Prometheus gets its first two scrapes) as successes.
    counts = st.analysis.runs[0].metrics[0].counts
    assert counts.failed == 2 and counts.successful <= 3, counts


@pytest.mark.clusters
async def test_healthy_canary_completes_with_prometheus(
    kit: Any, rollout_worker: None, prometheus_url: str, tmp_path: Path
) -> None:
    """No errors: a step analysis of 6 measurements passes on real data (rate 0); the rollout completes."""
    doc = yaml.safe_load(Path(TEMPLATE).read_text())
    doc["spec"]["metrics"][0].update({"interval": "1s", "count": 6})
    step_template = tmp_path / "step.yaml"
    step_template.write_text(yaml.safe_dump(doc))
    await kit.create(kit.seed())
    rc, _, err = await kit.cli(
        "start", "-f", _release(tmp_path, kit.namespace, None), "--steps", "1+error-rate,100%",
        "--pause-duration", "0", "--step-analysis", str(step_template),
        "--analysis-arg", f"namespace={kit.namespace}", "--analysis-arg", f"prometheus-url={prometheus_url}",
    )  # fmt: skip
    assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.COMPLETED, timeout=90)
    metric = st.analysis.runs[0].metrics[0]
    assert metric.phase == MetricPhase.SUCCESSFUL and metric.counts.successful == 6
    assert metric.value == "[0]"  # as Argo prints it; a real measurement of the canary, not "no data"
    assert kit.images() == {"nginx:1.27": (10, 10), "nginx:1.26": (0, 0)}
