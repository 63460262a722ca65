"""Fixtures for the local-stack tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.dev import Proc
from cli.dev_testing import DevRun, free_ports, stop_leftovers


@pytest.fixture
def dev_run(tmp_path: Path) -> Iterator[DevRun]:
    t, u, k = free_ports(3)
    run = DevRun(state_dir=tmp_path / "state", temporal_port=t, ui_port=u, kube_port=k)
    seen: dict[str, Proc] = {}
    try:
        yield run
    finally:
        seen.update(run.procs())
        run.run("down", timeout=60)
        stop_leftovers(seen)
