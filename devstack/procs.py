"""The stack's processes: start one in its own session, stop only the recorded one (PID and kernel
start time, so a recycled PID is never signalled), and the pid file that records them."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.layout import CLUSTERS, STOP_GRACE_S, Layout

__all__ = [
    "Proc",
    "free_ports",
    "http_answers",
    "is_alive",
    "listening",
    "port_in_use",
    "proc_start_time",
    "read_pids",
    "recorded_cluster",
    "recorded_clusters",
    "spawn",
    "stop_process",
    "write_pids",
]


@dataclass
class Proc:
    """One process of the stack as recorded in pids.json."""

    name: str
    pid: int
    start_time: str
    cmd: list[str] = field(default_factory=list)
    popen: subprocess.Popen[bytes] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "startTime": self.start_time, "cmd": self.cmd}


# --- process helpers ------------------------------------------------------------------------------


def proc_start_time(pid: int) -> str | None:
    """The kernel start time of `pid` (field 22 of /proc/PID/stat), None if gone or a zombie."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may hold spaces; skip past it
    if fields[0] in ("Z", "X"):  # zombies count as dead: PID 1 here may never reap them
        return None
    return fields[19]


def is_alive(proc: Proc) -> bool:
    """True if the recorded process still runs (same PID and same start time)."""
    return proc_start_time(proc.pid) == proc.start_time


def stop_process(proc: Proc, grace: float = STOP_GRACE_S) -> None:
    """SIGTERM, wait up to `grace` seconds, then SIGKILL; only ever signals the recorded process."""
    if not is_alive(proc):
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if not _wait_dead(proc, grace):
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        _wait_dead(proc, 5.0)


def _wait_dead(proc: Proc, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if proc.popen is not None:
            try:
                proc.popen.wait(timeout=0.05)  # our own child: reap it
            except subprocess.TimeoutExpired:
                pass
        if not is_alive(proc):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def port_in_use(port: int) -> bool:
    """True if something listens on 127.0.0.1:port (or on all addresses)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def free_ports(n: int) -> list[int]:
    """`n` distinct ports on 127.0.0.1 that were free a moment ago (held open together so they differ)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for sock in socks:
            sock.close()


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def http_answers(url: str) -> bool:
    """True once a server answers HTTP at `url`, whatever the status code."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def spawn(name: str, cmd: list[str], layout: Layout, env: dict[str, str] | None = None) -> Proc:
    """Start one component in its own session (so Ctrl-C reaches only us), logging to DIR/NAME.log."""
    log = layout.log(name).open("ab")
    log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {shlex.join(cmd)}\n".encode())
    log.flush()
    full_env = dict(os.environ)
    full_env["PYTHONUNBUFFERED"] = "1"
    if env:
        full_env.update(env)
    popen = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=full_env,
        start_new_session=True,
    )
    log.close()
    start = None
    deadline = time.monotonic() + 5
    while start is None and time.monotonic() < deadline:
        start = proc_start_time(popen.pid)
        if start is None and popen.poll() is not None:
            break
    return Proc(name=name, pid=popen.pid, start_time=start or "", cmd=cmd, popen=popen)


# --- pid file -------------------------------------------------------------------------------------


def read_pids(layout: Layout) -> tuple[dict[str, Proc], dict[str, int]]:
    """The recorded processes and ports, or empty dicts when there is no pid file."""
    try:
        data = json.loads(layout.pids_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}, {}
    procs = {
        name: Proc(
            name=name, pid=int(entry["pid"]), start_time=str(entry["startTime"]), cmd=entry.get("cmd", [])
        )
        for name, entry in data.get("processes", {}).items()
    }
    return procs, {k: int(v) for k, v in data.get("ports", {}).items()}


def recorded_cluster(layout: Layout) -> str:
    """Which cluster the running stack uses (`--cluster`), from pids.json; kubesim if not recorded."""
    try:
        value = json.loads(layout.pids_file.read_text()).get("cluster", "kubesim")
    except (FileNotFoundError, json.JSONDecodeError):
        return "kubesim"
    return value if value in CLUSTERS else "kubesim"


def recorded_clusters(layout: Layout) -> tuple[str, ...]:
    """The `--clusters` names of the running stack, from pids.json; () for a one-cluster stack."""
    try:
        value = json.loads(layout.pids_file.read_text()).get("clusters", [])
    except (FileNotFoundError, json.JSONDecodeError):
        return ()
    return tuple(str(c) for c in value) if isinstance(value, list) else ()


def write_pids(layout: Layout, procs: dict[str, Proc]) -> None:
    data: dict[str, Any] = {
        "processes": {name: p.to_json() for name, p in procs.items()},
        "ports": {
            "temporal": layout.temporal_port,
            "ui": layout.ui_port,
            "kube": layout.kube_port,
            **{f"kube-{c}": port for c, port in layout.cluster_ports.items()},
            **({"prometheus": layout.prometheus_port} if layout.prometheus else {}),
        },
        "cluster": layout.cluster,
        **({"clusters": list(layout.clusters)} if layout.clusters else {}),
        "stateDir": str(layout.state_dir),
    }
    tmp = layout.pids_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(layout.pids_file)
