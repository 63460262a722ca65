"""Canary analysis with the web provider against a local endpoint (kubesim, real Temporal, session worker).

Healthy canary completes; a failing metric rolls back by itself (message names metric, value and
condition); inconclusive pauses until approve; a provider that is down rolls back after
consecutiveErrorLimit; bad templates are one line with no write and no workflow.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.analysis import MetricEndpoint, web_template
from workflows.model import MetricPhase, Phase


@pytest.mark.clusters
async def test_healthy_canary_completes_with_step_and_background_analysis(
    kit: Any, rollout_worker: None, endpoint: MetricEndpoint, tmp_path: Path
) -> None:
    endpoint.value = 0.01
    bg = web_template(tmp_path / "bg.yaml", endpoint.url, name="error-rate")
    step = web_template(tmp_path / "step.yaml", endpoint.url, name="smoke", count=2)
    await kit.create(kit.seed())
    rc, _, err = await kit.cli(
        "start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1+smoke,100%",
        "--pause-duration", "0", "--analysis", bg, "--step-analysis", step,
    )  # fmt: skip
    assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.COMPLETED, timeout=90)
    assert kit.images() == {"nginx:1.27": (10, 10), "nginx:1.26": (0, 0)}
    assert st.analysis is not None
    runs = {r.name: r for r in st.analysis.runs}
    assert runs["step1-smoke"].phase == MetricPhase.SUCCESSFUL
    assert runs["step1-smoke"].metrics[0].counts.successful == 2
    assert runs["background-error-rate"].phase == MetricPhase.SUCCESSFUL
    assert runs["background-error-rate"].metrics[0].value == "0.01"
    rc, out, err = await kit.cli("status", "nginx", "-o", "json")
    assert rc == 0, err
    section = json.loads(out)["analysis"]["runs"]
    assert {r["name"] for r in section} == {"step1-smoke", "background-error-rate"}
    assert section[0]["metrics"][0]["counts"]["successful"] >= 1


@pytest.mark.clusters
async def test_failing_metric_rolls_back_by_itself(
    kit: Any, rollout_worker: None, endpoint: MetricEndpoint, tmp_path: Path
) -> None:
    endpoint.value = 0.5
    bg = web_template(tmp_path / "bg.yaml", endpoint.url, interval="1s", failure_limit=1)
    await kit.create(kit.seed())
    with kit.sampler() as sampler:
        t0 = time.monotonic()
        rc, _, err = await kit.cli(
            "start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,50%,100%", "--analysis", bg
        )
        assert rc == 0, err
        st = await kit.wait_phase("nginx", Phase.ROLLED_BACK, timeout=60)
        elapsed = time.monotonic() - t0
    print(f"\nweb failure: start -> RolledBack {elapsed:.1f} s (interval 1 s, failureLimit 1)")
    assert "metric error-rate failed: measured 0.5" in st.message
    assert "successCondition `result < 0.05` not met" in st.message
    assert "2 failed > failureLimit 1" in st.message
    assert kit.images() == {"nginx:1.27": (0, 0), "nginx:1.26": (10, 10)}
    kit.assert_handed_back(kit.deployment(), "nginx:1.26")
    assert sampler.error is None
    assert [s for s in sampler.samples if s[1] < 8] == []
    run = st.analysis.runs[0]
    assert run.phase == MetricPhase.FAILED
    assert run.metrics[0].counts.failed == 2


async def test_inconclusive_pauses_until_approve(
    kit: Any, rollout_worker: None, endpoint: MetricEndpoint, tmp_path: Path
) -> None:
    endpoint.value = 0.1  # neither < 0.05 nor > 0.2
    bg = web_template(tmp_path / "bg.yaml", endpoint.url, success="result < 0.05", failure="result > 0.2")
    await kit.create(kit.seed())
    rc, _, err = await kit.cli(
        "start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,100%",
        "--pause-duration", "0", "--analysis", bg,
    )  # fmt: skip
    assert rc == 0, err

    async def held() -> Any:
        st = await kit.status("nginx")
        return st if st.phase == Phase.PAUSED and "inconclusive" in st.message else None

    st = await kit.eventually(held, timeout=60, message="paused on inconclusive analysis")
    assert "measured 0.1" in st.message and "rollout approve" in st.message
    assert kit.images()["nginx:1.26"][0] >= 9  # no further step while held
    endpoint.value = 0.0
    rc, _, err = await kit.cli("approve", "nginx")
    assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.COMPLETED, timeout=60)
    assert kit.images() == {"nginx:1.27": (10, 10), "nginx:1.26": (0, 0)}
    assert any(a.by for a in st.approvals)


async def test_provider_down_rolls_back_after_consecutive_error_limit(
    kit: Any, rollout_worker: None, endpoint: MetricEndpoint, tmp_path: Path
) -> None:
    await endpoint.stop()  # nothing listens on the URL any more
    bg = web_template(tmp_path / "bg.yaml", endpoint.url, interval="1s", consecutive_error_limit=2)
    await kit.create(kit.seed())
    rc, _, err = await kit.cli(
        "start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,100%", "--analysis", bg
    )
    assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.ROLLED_BACK, timeout=60)
    assert "errored 3 times in a row > consecutiveErrorLimit 2" in st.message
    assert kit.images() == {"nginx:1.27": (0, 0), "nginx:1.26": (10, 10)}
    assert st.analysis.runs[0].phase == MetricPhase.ERROR


async def test_bad_templates_are_one_line_and_change_nothing(
    kit: Any, rollout_worker: None, tmp_path: Path
) -> None:
    await kit.create(kit.seed())
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("apiVersion: [")
    unknown = web_template(tmp_path / "u.yaml", "http://x", extra={"provider": {"datadog": {"query": "q"}}})
    cond = web_template(tmp_path / "c.yaml", "http://x", success="result <")
    missing = web_template(tmp_path / "m.yaml", "http://x/{{args.svc}}")
    seq = kit.audit_seq()
    for argv, want in [
        (["--analysis", str(bad_yaml)], f"{bad_yaml}: invalid YAML"),
        (["--analysis", unknown], f"{unknown}: metric error-rate: provider.datadog: provider is not"),
        (["--analysis", cond], f"{cond}: metric error-rate: successCondition: condition 'result <' does"),
        (["--analysis", missing], f"{missing}: metric error-rate: provider.web.url: {{{{args.svc}}}} is not"),
        (["--analysis-arg", "x=1"], "--analysis-arg given without --analysis"),
        (["--steps", "1+nope,100%"], "step 1: analysis template 'nope' not found"),
        (["--replace", "--analysis", cond], "cannot be combined with --replace"),
    ]:
        rc, out, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", *argv)
        assert rc != 0, (argv, out)
        assert want in err, (argv, err)
        assert len(err.strip().splitlines()) == 1, err
    assert kit.writes_since(seq) == []
    rc, _, err = await kit.cli("status", "nginx")
    assert rc != 0  # no workflow was started


async def test_status_shows_live_analysis_from_heartbeats(
    kit: Any, rollout_worker: None, endpoint: MetricEndpoint, tmp_path: Path
) -> None:
    """Healthy measurements are heartbeats only; `rollout status` still shows the newest value and counts."""
    endpoint.value = 0.02
    bg = web_template(tmp_path / "bg.yaml", endpoint.url, interval="1s")
    await kit.create(kit.seed())
    rc, _, err = await kit.cli(
        "start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,100%", "--analysis", bg
    )
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)

    async def three_measured() -> str | None:
        rc, out, _ = await kit.cli("status", "nginx")
        m = re.search(r"error-rate: .*✔ (\d+)", out)
        return out if rc == 0 and m and int(m[1]) >= 3 else None

    out = await kit.eventually(three_measured, timeout=30, message="3+ successful measurements in status")
    assert "Analysis:" in out
    assert "α background-error-rate (background): ◌ Running" in out
    assert "error-rate: ◌ Running value 0.02" in out
    handle = kit.ctx.client.get_workflow_handle(f"rollout/{kit.namespace}/nginx")
    metadata = await handle.query("__temporal_workflow_metadata")  # the Temporal UI's current details
    assert "- analysis background-error-rate/error-rate: Running value 0.02" in metadata.current_details
    rc, out, err = await kit.cli("status", "nginx", "-o", "json")
    metric = json.loads(out)["analysis"]["runs"][0]["metrics"][0]
    assert metric["counts"]["successful"] >= 3 and metric["phase"] == "Running"
    rc, _, err = await kit.cli("undo", "nginx")
    assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.ROLLED_BACK)
    assert "analysis" not in st.message  # a human's undo, not the analysis
    assert st.analysis.runs[0].phase == MetricPhase.SUCCESSFUL  # stopped by the undo, nothing had failed


async def test_analysis_from_step_starts_later(
    kit: Any, rollout_worker: None, endpoint: MetricEndpoint, tmp_path: Path
) -> None:
    """--analysis-from-step 2: a failing metric does nothing at step 1 and rolls back once step 2 starts."""
    endpoint.value = 0.5
    bg = web_template(tmp_path / "bg.yaml", endpoint.url, interval="1s")
    await kit.create(kit.seed())
    rc, _, err = await kit.cli(
        "start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,50%,100%",
        "--analysis", bg, "--analysis-from-step", "2",
    )  # fmt: skip
    assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.PAUSED, 1)
    assert st.analysis is None and endpoint.hits == 0
    rc, _, err = await kit.cli("approve", "nginx")
    assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.ROLLED_BACK, timeout=60)
    assert "metric error-rate failed: measured 0.5" in st.message
    assert kit.images() == {"nginx:1.27": (0, 0), "nginx:1.26": (10, 10)}
