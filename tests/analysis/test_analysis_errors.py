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

from tests.helpers.analysis import MetricEndpoint, web_template
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
