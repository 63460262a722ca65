"""Fixtures for the UI tests: Debian chromium, and one paused rollout per test module (see ui_stack.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from ui_stack import CHROMIUM, PausedRollout, wait_paused_at_step_1

from cli.dev import Proc
from cli.dev_testing import REPO, DevRun, free_ports, stop_leftovers


@pytest.fixture
def chromium_path() -> Path:
    """Debian's chromium must be installed (`.ci/run` does `apt-get install -y chromium`)."""
    assert CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK), (
        f"{CHROMIUM} is missing: install it with `apt-get install -y chromium` (what .ci/run does)"
    )
    return CHROMIUM


@pytest.fixture(scope="module")
def paused_rollout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PausedRollout]:
    t, u, k = free_ports(3)
    stack = DevRun(state_dir=tmp_path_factory.mktemp("ui") / "stack", temporal_port=t, ui_port=u, kube_port=k)
    seen: dict[str, Proc] = {}
    try:
        up = stack.up()
        seen.update(stack.procs())
        assert up.returncode == 0, up.stderr + up.stdout
        rollout = PausedRollout(stack=stack, status={})
        apply = rollout.cli("kubectl", "apply", "-f", str(REPO / "examples/nginx.yaml"))
        assert apply.returncode == 0, apply.stderr
        ready = rollout.cli("kubectl", "rollout", "status", "deployment/nginx", "--timeout=120s")
        assert ready.returncode == 0, ready.stderr
        start = rollout.cli(
            "rollout", "start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,50%,100%"
        )
        assert start.returncode == 0, start.stderr + start.stdout
        rollout.status = wait_paused_at_step_1(rollout)
        yield rollout
    finally:
        seen.update(stack.procs())
        stack.run("down", timeout=60)
        stop_leftovers(seen)
