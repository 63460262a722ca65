"""Start kubesim for tests and demos: as a subprocess (``start_kubesim``) or in a thread of this process
(``start_kubesim_in_thread``); both return a handle with ``url``, ``kubeconfig``, ``stop()`` and the admin
helpers (audit log, fault injection)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Self

LISTENING = "kubesim listening on "
REPO_ROOT = Path(__file__).resolve().parent.parent


class KubeSimAdmin:
    """The admin endpoints (``/kubesim/audit``, ``/kubesim/faults``, ``/kubesim/watches``) of a kubesim at
    ``url``."""

    url: str

    def _admin(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    def audit(self, since: int | None = None) -> list[dict[str, Any]]:
        path = "/kubesim/audit" + (f"?since={since}" if since is not None else "")
        return list(self._admin("GET", path)["items"])

    def clear_audit(self) -> None:
        self._admin("DELETE", "/kubesim/audit")

    def watches(self) -> list[dict[str, str]]:
        """The watch streams open now: userAgent, resource, namespace, labelSelector, name."""
        return list(self._admin("GET", "/kubesim/watches")["items"])

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        return dict(self._admin("PUT", "/kubesim/faults", faults))

    def faults(self) -> dict[str, Any]:
        return dict(self._admin("GET", "/kubesim/faults"))

    def clear_faults(self) -> None:
        self._admin("DELETE", "/kubesim/faults")

    @property
    def pod_metrics_url(self) -> str:
        """The pods' simulated metrics (``kubesim/pod_metrics.py``); realk8s' fake kubelet serves the same."""
        return self.url + "/kubesim/pod-metrics"


class ServerProcess:
    """A server subprocess that writes its log to a file: ``url``, ``kubeconfig``, ``pid``, ``stop()``.

    ``realk8s.testing`` handles its apiserver the same way.
    """

    stop_timeout = 10.0  # seconds between SIGTERM and SIGKILL

    def __init__(self, proc: subprocess.Popen[bytes], url: str, kubeconfig: Path, log_path: Path) -> None:
        self.proc = proc
        self.url = url
        self.kubeconfig = str(kubeconfig)
        self.pid = proc.pid
        self.log_path = log_path

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM, wait; SIGKILL if it does not exit in ``timeout`` seconds. Returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(self.stop_timeout if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class KubeSimProcess(KubeSimAdmin, ServerProcess):
    """A running kubesim subprocess: ``url``, ``kubeconfig``, ``pid``, ``stop()`` and admin helpers."""


class KubeSimThread(KubeSimAdmin):
    """A kubesim serving from a daemon thread of this process (its own asyncio loop)."""

    def __init__(
        self, thread: threading.Thread, sim: Any, loop: asyncio.AbstractEventLoop, url: str, kubeconfig: Path
    ) -> None:
        self.thread = thread
        self.sim = sim
        self.loop = loop
        self.url = url
        self.kubeconfig = str(kubeconfig)
        self.pid = os.getpid()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to stop (on its own loop) and join the thread."""
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.sim.request_stop)
            self.thread.join(timeout)

    def __enter__(self) -> KubeSimThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_kubesim_in_thread(
    workdir: Path, *, ready_delay: float = 0.1, state: Path | None = None, startup_timeout: float = 30.0
) -> KubeSimThread:
    """Serve kubesim from a daemon thread on a free port; clients still talk to it over HTTP."""
    from kubesim.app import KubeSim

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    kubeconfig = workdir / "kubeconfig"
    sim = KubeSim(ready_delay=ready_delay, state_path=state)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    urls: list[str] = []

    def ready(url: str) -> None:
        urls.append(url)
        started.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(sim.serve(0, kubeconfig, on_ready=ready))
        finally:
            started.set()
            loop.close()

    thread = threading.Thread(target=run, name="kubesim", daemon=True)
    thread.start()
    if not started.wait(startup_timeout) or not urls:
        raise RuntimeError("kubesim did not start in its thread")
    return KubeSimThread(thread, sim, loop, urls[0], kubeconfig)


def start_kubesim(
    workdir: Path,
    *,
    ready_delay: float = 0.1,
    state: Path | None = None,
    port: int = 0,
    startup_timeout: float = 30.0,
) -> KubeSimProcess:
    """Start ``python -m kubesim serve`` (kubeconfig and log under ``workdir``); wait until it serves."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    kubeconfig = workdir / "kubeconfig"
    log_path = workdir / f"kubesim-{time.monotonic_ns()}.log"
    cmd = [
        sys.executable,
        "-m",
        "kubesim",
        "serve",
        "--port",
        str(port),
        "--kubeconfig",
        str(kubeconfig),
        "--ready-delay",
        str(ready_delay),
    ]
    if state is not None:
        cmd += ["--state", str(state)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    proc = spawn_logged(cmd, env, workdir, log_path)
    url = wait_for_line(proc, log_path, LISTENING, startup_timeout, what="kubesim", poll=0.02)
    return KubeSimProcess(proc, url, kubeconfig, log_path)


def spawn_logged(
    cmd: list[str], env: dict[str, str], workdir: Path, log_path: Path
) -> subprocess.Popen[bytes]:
    """Start a server with stdout and stderr in ``log_path``, so no pipe can fill up and block it."""
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=str(workdir)
        )


def wait_for_line(
    proc: subprocess.Popen[bytes],
    log_path: Path,
    prefix: str,
    timeout: float,
    *,
    what: str,
    poll: float,
    error: type[Exception] = RuntimeError,
    tail_lines: int | None = None,
) -> str:
    """The rest of the server's first log line that starts with ``prefix`` (its URL), once it is there.

    Raises ``error`` with the log (its last ``tail_lines``) when the server exits first or after
    ``timeout`` seconds (then the server is killed).
    """

    def shown(text: str) -> str:
        return text if tail_lines is None else "\n".join(text.splitlines()[-tail_lines:])

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        for line in text.splitlines():
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        if proc.poll() is not None:
            raise error(f"{what} exited with {proc.returncode} before serving:\n{shown(text)}")
        time.sleep(poll)
    proc.kill()
    proc.wait(5)
    raise error(f"{what} did not start within {timeout}s:\n{shown(log_path.read_text(errors='replace'))}")


def api_client_for(kubeconfig: str, user_agent: str | None = None) -> Any:
    """A ``kubernetes.client.ApiClient`` configured from a kubeconfig file (optionally with its own UA)."""
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    api = client.ApiClient(cfg)
    if user_agent:
        api.user_agent = user_agent
    return api
