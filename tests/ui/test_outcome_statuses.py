"""Outcomes in the Temporal Web UI's own words, read with headless chromium (cdp_driver.py).

Four rollouts of one Deployment on a local stack (kubesim and realk8s): one reaches 100%, one is
rolled back by a failing canary analysis, one is undone by a person, and one is rolled back by the
progress deadline. The UI's workflow list shows them COMPLETED, FAILED, CANCELED, FAILED without any
column set up, and the failure banner of the analysis rollback names the metric.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from devstack import Proc
from tests.helpers.analysis import MetricEndpoint, web_template
from tests.helpers.cdp_driver import Chromium, open_page
from tests.helpers.devstack import REPO, DevRun, free_ports, stop_leftovers
from tests.helpers.poll import assert_eventually
from tests.helpers.ui_stack import CHROMIUM, WORKFLOW_PATH, PausedRollout

STATUSES = ("Completed", "Failed", "Canceled", "Terminated", "Running", "Timed Out")


@pytest.fixture(params=["kubesim", "real"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PausedRollout]:
    """`rollout dev up` on the cluster kind, with the seed Deployment applied and ready."""
    if request.param == "real":
        assert (REPO / "realk8s/bin/realk8s").exists(), "build realk8s first (`make realk8s`)"
    t, u, k = free_ports(3)
    run = DevRun(state_dir=tmp_path / "stack", temporal_port=t, ui_port=u, kube_port=k)
    seen: dict[str, Proc] = {}
    try:
        up = run.up("--cluster", request.param)
        seen.update(run.procs())
        assert up.returncode == 0, up.stderr + up.stdout
        rollout = PausedRollout(stack=run, status={})
        apply = rollout.cli("kubectl", "apply", "-f", str(REPO / "examples/nginx.yaml"))
        assert apply.returncode == 0, apply.stderr
        ready = rollout.cli("kubectl", "rollout", "status", "deployment/nginx", "--timeout=180s")
        assert ready.returncode == 0, ready.stderr
        yield rollout
    finally:
        seen.update(run.procs())
        run.run("down", timeout=60)
        stop_leftovers(seen)


async def _cli(stack: PausedRollout, *args: str) -> tuple[int, str]:
    """A venv tool in a thread: the analysis endpoint answers from this test's event loop meanwhile."""
    proc = await asyncio.to_thread(stack.cli, *args, timeout=240)
    return proc.returncode, proc.stdout + proc.stderr


async def _ends(stack: PausedRollout, code: int) -> None:
    rc, out = await _cli(stack, "rollout", "status", "nginx", "-w")
    assert rc == code, out[-2000:]


async def _four_outcomes(stack: PausedRollout, tmp: Path) -> None:
    rc, out = await _cli(stack, "rollout", "start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "100%")
    assert rc == 0, out
    await _ends(stack, 0)  # Completed

    endpoint = MetricEndpoint()
    await endpoint.start()
    try:
        endpoint.value = 0.5  # the error rate is far above the 0.05 limit
        template = web_template(tmp / "error-rate.yaml", endpoint.url, interval="1s", failure_limit=1)
        rc, out = await _cli(
            stack, "rollout", "start", "nginx", "--image", "nginx=nginx:1.28", "--steps", "1,50%,100%",
            "--analysis", template,
        )  # fmt: skip
        assert rc == 0, out
        await _ends(stack, 3)  # rolled back by the analysis
    finally:
        await endpoint.stop()

    rc, out = await _cli(
        stack, "rollout", "start", "nginx", "--image", "nginx=nginx:1.29", "--steps", "1,100%"
    )
    assert rc == 0, out

    async def paused() -> bool:
        rc, out = await _cli(stack, "rollout", "status", "nginx", "-o", "json")
        return rc == 0 and json.loads(out).get("phase") == "Paused"

    await assert_eventually(paused, timeout=120, interval=0.3, message="the rollout paused at step 1")
    rc, out = await _cli(stack, "rollout", "undo", "nginx", "--reason", "not today")
    assert rc == 0, out
    await _ends(stack, 3)  # undone

    rc, out = await _cli(stack, "kubectl", "get", "deployment", "nginx", "-o", "json")
    assert rc == 0, out
    spec = json.loads(out)["spec"]
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx"}, "spec": spec}
    template = spec["template"]
    template["spec"]["containers"][0]["image"] = "nginx:1.30"
    template.setdefault("metadata", {}).setdefault("annotations", {})["kubesim.io/never-ready"] = "true"
    never_ready = tmp / "never-ready.yaml"
    never_ready.write_text(yaml.safe_dump(dep))
    rc, out = await _cli(
        stack, "rollout", "start", "-f", str(never_ready), "--steps", "1,100%",
        "--progress-deadline", "3", "--auto-rollback",
    )  # fmt: skip
    assert rc == 0, out
    await _ends(stack, 3)  # rolled back by the progress deadline


def _statuses_in_list(text: str, run_ids: list[str]) -> list[str]:
    """Each run's status badge: the last status word before its run ID in the list's text."""
    found = []
    for run_id in run_ids:
        at = text.find(run_id)
        assert at >= 0, f"run {run_id} is not in the workflow list:\n{text[:3000]}"
        before = text[:at].lower()
        found.append(max(STATUSES, key=lambda s: before.rfind(s.lower())))
    return found


async def test_ui_list_shows_each_outcome_in_temporal_words(stack: PausedRollout, tmp_path: Path) -> None:
    assert CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK), (
        f"{CHROMIUM} is missing: install it with `apt-get install -y chromium` (what .ci/run does)"
    )
    await _four_outcomes(stack, tmp_path)
    rc, out = await _cli(stack, "rollout", "history", "nginx", "-o", "json")
    assert rc == 0, out
    runs = json.loads(out)  # newest first
    assert [r["outcome"] for r in runs] == ["RolledBack", "RolledBack", "RolledBack", "Completed"]
    run_ids = [r["runId"] for r in runs]
    analysis_run = run_ids[2]

    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    browser = Chromium(profile)
    try:
        ws, page = await open_page(browser)
        try:
            ui = f"http://127.0.0.1:{stack.stack.ui_port}/namespaces/default/workflows"
            await page.navigate(ui)
            text = await page.wait_text(*run_ids)
            await page.screenshot(tmp_path / "temporal-ui-outcomes.png")
            # Oldest first: COMPLETED, FAILED (analysis), CANCELED (undo), FAILED (deadline).
            assert _statuses_in_list(text, run_ids[::-1]) == ["Completed", "Failed", "Canceled", "Failed"]

            await page.navigate(f"{ui}/{WORKFLOW_PATH}/{analysis_run}/history")
            banner = await page.wait_text("error-rate")
            await page.screenshot(tmp_path / "temporal-ui-analysis-failure.png")
            squashed = " ".join(banner.split())
            named = re.search(r"analysis [\w-]+: metric error-rate failed: measured 0\.5", squashed)
            assert named, squashed[:3000]
        finally:
            await ws.close()
    finally:
        browser.stop()
