"""An Error measurement never counts towards ``count`` (issue 22): it cannot promote a canary.

Argo Rollouts (``analysis/analysis.go`` ``runMeasurements``): an errored measurement raises ``error`` and
``consecutiveError`` but not ``count``; it is measured again after ``DefaultErrorRetryInterval`` (10 s);
the metric is Error once ``consecutiveError > consecutiveErrorLimit``. Before the fix a metric without
``interval`` whose only measurement errored was Successful and the step went on.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from tests.helpers.analysis import MetricEndpoint, web_template
from tests.helpers.poll import assert_holds
from workflows.analysis_math import ERROR_RETRY_SECONDS
from workflows.model import MetricPhase, Phase


async def test_errored_single_measurement_never_promotes(
    kit: Any, rollout_worker: None, endpoint: MetricEndpoint, tmp_path: Path
) -> None:
    endpoint.status = 500  # the provider answers, but with an error: every measurement is Error
    step = web_template(
        tmp_path / "smoke.yaml", endpoint.url, name="smoke", interval=None, consecutive_error_limit=1
    )
    await kit.create(kit.seed())
    with kit.sampler() as sampler:
        t0 = time.monotonic()
        rc, _, err = await kit.cli(
            "start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1+smoke,100%",
            "--pause-duration", "0", "--step-analysis", step,
        )  # fmt: skip
        assert rc == 0, err
        st = await kit.wait_phase("nginx", Phase.ROLLED_BACK, timeout=60)
        elapsed = time.monotonic() - t0
    # the first error is retried once after the error retry interval, and the second one ends it
    assert endpoint.hits == 2
    assert elapsed >= ERROR_RETRY_SECONDS
    assert "metric smoke errored 2 times in a row > consecutiveErrorLimit 1" in st.message
    [run] = st.analysis.runs
    assert run.phase == MetricPhase.ERROR
    counts = run.metrics[0].counts
    assert (counts.count, counts.error, counts.consecutive_error, counts.successful) == (0, 2, 2, 0)
    assert kit.images() == {"nginx:1.27": (0, 0), "nginx:1.26": (10, 10)}
    # never promoted: the canary ReplicaSet never asked for more than step 1's one pod
    assert sampler.error is None
    stable = next(n for n, (spec, _) in sampler.samples[0][2].items() if spec == 10)
    biggest = max((spec for _, _, rss in sampler.samples for n, (spec, _) in rss.items() if n != stable))
    assert biggest == 1


async def test_inconclusive_metric_stops_its_siblings(
    kit: Any, rollout_worker: None, endpoint: MetricEndpoint, tmp_path: Path
) -> None:
    """Argo's terminating run: once one metric is Inconclusive, the run's other metrics stop (they end
    Successful), so a sibling cannot roll the release back while a person decides."""
    endpoint.value = 0.1  # "gate": neither < 0.05 nor > 0.2 -> Inconclusive at its first measurement
    gate = web_template(
        tmp_path / "g.yaml", endpoint.url, name="gate", success="result < 0.05", failure="result > 0.2"
    )
    # "errors": fails every measurement; with failureLimit 2 it would roll back at its third (2 s)
    errors = web_template(
        tmp_path / "e.yaml", endpoint.url, name="errors", success="result < 0.01", failure_limit=2
    )
    doc = yaml.safe_load(Path(gate).read_text())
    doc["metadata"]["name"] = "two-metrics"
    doc["spec"]["metrics"].append(yaml.safe_load(Path(errors).read_text())["spec"]["metrics"][0])
    both = tmp_path / "both.yaml"
    both.write_text(yaml.safe_dump(doc, sort_keys=False))
    await kit.create(kit.seed())
    rc, _, err = await kit.cli(
        "start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,100%",
        "--pause-duration", "0", "--analysis", str(both),
    )  # fmt: skip
    assert rc == 0, err

    async def held() -> Any:
        st = await kit.status("nginx")
        return st if st.phase == Phase.PAUSED and "inconclusive" in st.message else None

    await kit.eventually(held, timeout=60, message="paused on the inconclusive metric")
    hits = endpoint.hits

    async def still_held() -> bool:
        st = await kit.status("nginx")
        return st.phase == Phase.PAUSED and st.analysis is not None

    await assert_holds(still_held, seconds=4, message="no rollback while held")
    st = await kit.status("nginx")
    [run] = st.analysis.runs
    phases = {m.name: m.phase for m in run.metrics}
    assert run.phase == MetricPhase.INCONCLUSIVE
    assert phases == {"gate": MetricPhase.INCONCLUSIVE, "errors": MetricPhase.SUCCESSFUL}
    assert endpoint.hits == hits  # nothing measures any more
    rc, _, err = await kit.cli("undo", "nginx")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.ROLLED_BACK)
