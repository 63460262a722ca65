"""Helpers for the UI tests: one paused rollout on a local stack, shared by a test module.

The stack is `rollout dev up --detach` (Temporal dev server with Web UI, kubesim, worker) on free
ports in a tmp state dir; the seed Deployment is applied and `rollout start nginx --image
nginx=nginx:1.27 --steps 1,50%,100%` runs until it pauses at step 1. `rollout dev down` afterwards.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.helpers.devstack import REPO, DevRun
from workflows.model import workflow_id_for

CHROMIUM = Path("/usr/bin/chromium")
WORKFLOW_ID = workflow_id_for("default", "nginx")
WORKFLOW_PATH = quote(WORKFLOW_ID, safe="")  # as the UI and the CLI put it in a URL


@dataclass
class PausedRollout:
    """The stack and the status of the rollout paused at step 1."""

    stack: DevRun
    status: dict[str, Any]

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a venv tool (`rollout`, `kubectl`, `temporal`) with the stack's environment."""
        return subprocess.run(
            [str(REPO / ".venv/bin" / args[0]), *args[1:]],
            env=self.stack.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )


def wait_paused_at_step_1(rollout: PausedRollout) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        out = rollout.cli("rollout", "status", "nginx", "-o", "json")
        if out.stdout.strip().startswith("{"):
            status = json.loads(out.stdout)
            if status.get("phase") == "Paused" and status.get("currentStepIndex") == 1:
                return status
        time.sleep(0.3)
    raise AssertionError(f"the rollout never paused at step 1; last status {status}")
