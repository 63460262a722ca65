"""Analysis per wave (`waves[].analysis`): each target of the wave runs the templates as its background
analysis; a failing metric fails that target and the release's failure policy applies."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.helpers.analysis import MetricEndpoint, web_template
from tests.helpers.cluster import Kit
from tests.helpers.release import Fleet, active_hashes, release_yaml


@pytest.fixture
async def endpoint() -> AsyncIterator[MetricEndpoint]:
    ep = MetricEndpoint()
    await ep.start()
    try:
        yield ep
    finally:
        await ep.stop()


async def test_failing_wave_analysis_fails_its_target_and_rolls_back_previous_waves(
    fleet: Fleet, tmp_path: Path, endpoint: MetricEndpoint
) -> None:
    ns = fleet.namespace("analysis")
    await fleet.deploy("dev", ns)
    await fleet.deploy("prod", ns)
    before = {c: active_hashes(fleet, c, ns) for c in ("dev", "prod")}
    endpoint.value = 0.5  # an error rate the template refuses (success: result < 0.05)
    web_template(tmp_path / "error-rate.yaml", endpoint.url, failure_limit=0)
    doc = release_yaml(
        "analysis",
        [
            {"name": "dev", "targets": [{"cluster": "dev", "namespace": ns, "deployment": "nginx"}]},
            {
                "name": "prod",
                "pause": "10m",  # the target waits at step 1: only the analysis can end it
                "analysis": {"templates": ["error-rate.yaml"]},  # relative to the Release file
                "targets": [{"cluster": "prod", "namespace": ns, "deployment": "nginx"}],
            },
        ],
        failurePolicy={"onTargetFailure": "halt", "rollback": "previousWaves"},
    )
    rid = f"analysis-{ns}"
    rc, _, err = await fleet.cli("release", "start", "-f", fleet.write(tmp_path / "r.yaml", doc), "--id", rid)
    assert rc == 0, err
    rc, out, err = await fleet.cli("release", "status", rid, "-w", "-o", "json")
    assert rc == 3, err
    final = json.loads(out.strip().splitlines()[-1])
    assert final["phase"] == "RolledBack"
    dev, prod = (w["targets"][0] for w in final["waves"])
    assert prod["state"] == "Failed" and "error-rate" in prod["message"], prod
    assert dev["state"] == "RolledBack"
    assert endpoint.hits >= 1
    for cluster in ("dev", "prod"):
        assert active_hashes(fleet, cluster, ns) == before[cluster]
        Kit.assert_handed_back(fleet.deployment(cluster, ns), "nginx:1.26")


async def test_a_missing_analysis_template_is_refused_before_any_write(fleet: Fleet, tmp_path: Path) -> None:
    ns = fleet.namespace("analysis-bad")
    await fleet.deploy("dev", ns)
    doc = release_yaml(
        "bad",
        [
            {
                "name": "dev",
                "analysis": {"templates": ["missing.yaml"]},
                "targets": [{"cluster": "dev", "namespace": ns, "deployment": "nginx"}],
            }
        ],
    )
    rc, _, err = await fleet.cli("release", "start", "-f", fleet.write(tmp_path / "r.yaml", doc))
    assert rc == 1
    assert len(err.strip().splitlines()) == 1 and "wave dev: analysis:" in err and "missing.yaml" in err, err
    assert [e for e in fleet.writes("dev", ns) if str(e["userAgent"]).startswith("rollout")] == []  # no hold
