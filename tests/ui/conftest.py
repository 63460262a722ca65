"""Fixtures for the browser test: Debian chromium and a local stack (Temporal + UI, kubesim, worker)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.dev import Proc
from cli.dev_testing import DevRun, free_ports, stop_leftovers

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def chromium_path() -> Path:
    """Debian's chromium must be installed (`.ci/run` does `apt-get install -y chromium`)."""
    assert CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK), (
        f"{CHROMIUM} is missing: install it with `apt-get install -y chromium` (what .ci/run does)"
    )
    return CHROMIUM


@pytest.fixture
def ui_stack(tmp_path: Path) -> Iterator[DevRun]:
    """`rollout dev up --detach` on free ports in a tmp state dir; `dev down` afterwards."""
    t, u, k = free_ports(3)
    run = DevRun(state_dir=tmp_path / "stack", temporal_port=t, ui_port=u, kube_port=k)
    seen: dict[str, Proc] = {}
    try:
        up = run.up()
        seen.update(run.procs())
        assert up.returncode == 0, up.stderr + up.stdout
        yield run
    finally:
        seen.update(run.procs())
        run.run("down", timeout=60)
        stop_leftovers(seen)
