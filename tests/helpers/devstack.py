"""Test helpers for the local stack: free ports and `rollout dev` runs by subprocess in a tmp state dir.

Used by tests/devstack and tests/ui; like `kubesim.testing`, it drives the real command line.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from devstack import Layout, Proc, is_alive, read_pids, stop_process

REPO = Path(__file__).resolve().parents[2]


def free_ports(n: int) -> list[int]:
    """`n` distinct ports that were free a moment ago (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class DevRun:
    """A `rollout dev` invocation bound to one state dir and one set of ports."""

    state_dir: Path
    temporal_port: int
    ui_port: int
    kube_port: int
    prometheus_port: int = 0

    def port_args(self) -> list[str]:
        return [
            "--temporal-port",
            str(self.temporal_port),
            "--ui-port",
            str(self.ui_port),
            "--kube-port",
            str(self.kube_port),
            *(["--prometheus-port", str(self.prometheus_port)] if self.prometheus_port else []),
        ]

    def cmd(self, *args: str) -> list[str]:
        # The `rollout` console script, exactly as a user runs it (`rollout dev ...`).
        return [
            str(Path(sys.executable).parent / "rollout"),
            "dev",
            *args,
            "--state-dir",
            str(self.state_dir),
        ]

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.cmd(*args),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def up(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.run("up", "--detach", *self.port_args(), "--ready-delay", "0.1", *extra)

    def procs(self) -> dict[str, Proc]:
        return read_pids(Layout(state_dir=self.state_dir))[0]

    def env(self) -> dict[str, str]:
        """The process environment plus the exports from DIR/env."""
        env = dict(os.environ)
        for line in (self.state_dir / "env").read_text().splitlines():
            if line.startswith("export "):
                key, _, value = line[len("export ") :].partition("=")
                env[key] = value.strip("'")
        return env

    def pids_json(self) -> dict:
        return json.loads((self.state_dir / "pids.json").read_text())


def stop_leftovers(procs: dict[str, Proc]) -> None:
    """Last-resort cleanup by recorded PID and start time (never by name)."""
    for proc in procs.values():
        if is_alive(proc):
            stop_process(proc, grace=5)
