"""The `rollout` console script itself: `--help` lists every command (with `dev`), `dev` passes its
arguments through to `devstack`, and exit codes and output survive the SDK's teardown crash
(temporalio/sdk-python#300), which `main` sidesteps with flush + `os._exit`.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import starter
from workflows.model import Phase

ROLLOUT = Path(sys.executable).parent / "rollout"


def _rollout(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROLLOUT), *argv], capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL
    )


def test_help_lists_every_command_with_dev() -> None:
    proc = _rollout("--help")
    assert proc.returncode == 0 and proc.stderr == ""
    assert "{start,approve,undo,pause,resume,abort,retry,status,history,list,release,dev}" in proc.stdout
    dev_line = next(line for line in proc.stdout.splitlines() if line.strip().startswith("dev "))
    assert "local stack" in dev_line


def test_dev_passes_its_arguments_through(tmp_path: Path) -> None:
    # `--help` after `dev` is devstack's own help, not the `rollout` parser's
    proc = _rollout("dev", "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: rollout dev [-h] {up,down,status}")
    state = tmp_path / "stack"
    proc = _rollout("dev", "status", "--state-dir", str(state))
    assert proc.returncode == 1  # nothing recorded there: `dev status` says so and fails
    assert proc.stdout == f"dev stack is not running (no {state / 'pids.json'})\n"


async def test_dev_in_process_through_run(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    rc = await starter.run(["dev", "down", "--state-dir", str(tmp_path)], out=out, err=err)
    assert rc == 0 and err.getvalue() == ""
    assert out.getvalue() == f"dev stack is not running (no {tmp_path / 'pids.json'})\n"


def test_usage_error_is_one_line_exit_2() -> None:
    proc = _rollout("status")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("rollout: error: ")


async def test_repeated_calls_exit_0_with_whole_output(kit: Any, rollout_worker: None) -> None:
    """Each call connects to Temporal; before the `os._exit` edge about 1 in 6 died with SIGABRT at exit."""
    await kit.create(kit.seed(replicas=2))
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,100%")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": kit.ctx.client.service_client.config.target_host,
        "KUBECONFIG": kit.sim.kubeconfig,
    }
    wid = f"rollout/{kit.namespace}/nginx"
    for _ in range(6):  # in a thread: the session worker answering the query runs on this loop
        proc = await asyncio.to_thread(
            _rollout, "status", "nginx", "-o", "json", "-n", kit.namespace, env=env
        )
        assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
        assert json.loads(proc.stdout)["workflowId"] == wid  # the whole document was flushed
    rc, _, err = await kit.cli("undo", "nginx")
    assert rc == 0, err
