"""When a component of the stack counts as up: Temporal serving, each cluster answering, each worker
polling its own task queue, the controller's ready file, Prometheus scraping."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

from devstack.components import temporal_binary
from devstack.layout import (
    NAMESPACE,
    REALK8S_POD_METRICS,
    REALK8S_READY,
    START_DEADLINE_S,
    DevError,
    Layout,
    kind,
)
from devstack.procs import Proc, http_answers, is_alive, listening
from devstack.prometheus import prometheus_ready, prometheus_scraping

__all__ = ["pod_metrics_target", "wait_healthy"]


# --- health ---------------------------------------------------------------------------------------


def _temporal_cli(layout: Layout, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the `temporal` CLI against the stack's server.

    Health checks go through the CLI rather than the Python SDK on purpose: the SDK's native runtime
    threads can abort this short-lived process at interpreter exit.
    """
    return subprocess.run(
        [temporal_binary(), *args, "--address", layout.temporal_address, "--namespace", NAMESPACE],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _temporal_healthy(layout: Layout) -> bool:
    try:
        out = _temporal_cli(layout, "operator", "cluster", "health")
    except subprocess.TimeoutExpired:
        return False
    return out.returncode == 0 and "SERVING" in out.stdout


def _worker_polling(layout: Layout, worker_pid: int, task_queue: str) -> bool:
    """True once *this* worker (SDK identity `PID@host`) polls its task queue."""
    try:
        out = _temporal_cli(layout, "task-queue", "describe", "--task-queue", task_queue, "-o", "json")
        pollers = (json.loads(out.stdout).get("pollers") or []) if out.returncode == 0 else []
    except (subprocess.TimeoutExpired, json.JSONDecodeError, AttributeError):
        return False
    return any(str(p.get("identity", "")).startswith(f"{worker_pid}@") for p in pollers)


def _log_tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return ""
    return "\n".join("    " + line for line in text[-lines:])


def wait_healthy(name: str, proc: Proc, layout: Layout) -> None:
    """Poll until `name` answers, or raise DevError (process died / deadline passed) with its log tail."""
    limit = START_DEADLINE_S[kind(name)]
    deadline = time.monotonic() + limit
    while True:
        if not is_alive(proc):
            raise DevError(
                f"{name} exited during start-up; see {layout.log(name)}:\n{_log_tail(layout.log(name))}"
            )
        if _component_healthy(name, layout, proc.pid):
            return
        if time.monotonic() >= deadline:
            raise DevError(
                f"{name} not healthy after {limit:.0f}s; see {layout.log(name)}:\n"
                f"{_log_tail(layout.log(name))}"
            )
        time.sleep(0.2)


def _component_healthy(name: str, layout: Layout, pid: int) -> bool:
    if name == "temporal":
        return (
            listening(layout.temporal_port)
            and _temporal_healthy(layout)
            and http_answers(layout.ui_url + "/")
        )
    if name == "controller":
        return layout.controller_ready.exists()
    if name == "prometheus":
        return prometheus_ready(layout.prometheus_url) and prometheus_scraping(layout.prometheus_url)
    server = next((s for s in layout.kube_servers() if s.component == name), None)
    if server is not None and server.real:
        return _realk8s_ready(layout, name)
    if server is not None:
        return server.kubeconfig.exists() and http_answers(server.url + "/version")
    return _worker_polling(layout, pid, layout.workers()[name])


def _this_start(layout: Layout, name: str) -> str:
    """The component's log since its last spawn marker ("" before it wrote anything)."""
    try:
        text = layout.log(name).read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return text[text.rfind("\n--- ") + 1 :]  # 0: the first start


def _realk8s_ready(layout: Layout, name: str) -> bool:
    """realk8s prints its ready line once /readyz passes and the default ServiceAccount exists."""
    return REALK8S_READY in _this_start(layout, name)


def pod_metrics_target(layout: Layout) -> str:
    """``host:port`` serving the default cluster's ``/kubesim/pod-metrics``: kubesim's own port, or the
    address realk8s' fake kubelet printed before its ready line."""
    server = layout.kube_servers()[0]
    if not server.real:
        return f"127.0.0.1:{layout.kube_port}"
    for line in _this_start(layout, server.component).splitlines():
        if line.startswith(REALK8S_POD_METRICS):
            return urlparse(line[len(REALK8S_POD_METRICS) :].strip()).netloc
    raise DevError(f"{server.component} printed no pod metrics address (see {layout.log(server.component)})")
