"""The same canary run by Argo Rollouts (its real controller and kubectl plugin) and by us, on one realk8s.

``python -m bench.peers``: one realk8s (the real kube-apiserver and controllers, fake kubelet with
``--ready-delay``), one Temporal dev server, our worker and Argo Rollouts' ``rollouts-controller`` (built by
``make argo``; all its controllers, namespaced) side by side. Each peer rolls ``--rollouts`` N workloads of
``--replicas`` (10) pods from ``nginx:1.26`` to ``nginx:1.27`` through the same steps (``1,50%,100%``;
maxSurge and maxUnavailable 25 %), twice:

- **zero pauses**: ours ``rollout start --pause-duration 0``; Argo a ``Rollout`` whose canary steps are
  ``setWeight`` only (10 / 50 / 100), its template patched as ``kubectl argo rollouts set image`` does;
- **manual pauses**: ours pauses for ``rollout approve`` after steps 1 and 2; Argo has ``pause: {}`` after
  its first two ``setWeight`` steps and is promoted with ``kubectl argo rollouts promote``. Both approvals
  run the real command as a subprocess, once the peer says it is paused (Argo: ``status.pauseConditions``;
  ours: the ``RolloutPhase`` search attribute, read from the server so no query touches the worker).

The peers run one after the other (Argo first), so each phase's CPU and requests are its own. Reported
per peer and scenario:

- wall time of each step (from its start: the trigger, the previous step, or the approval command, to the
  first poll that sees the canary ReplicaSet ready at the step's target and the stable one down to its
  own) and in total (trigger to the peer reporting done: Argo ``Healthy`` on the new revision, ours the
  workflow's result), against the batch floor (``bench/floor.py``);
- approve/promote latency: the command's start, and the server's acceptance (Argo: the plugin's PATCH in
  the audit log; ours: the approve update's acceptance event in the workflow history) to the peer's first
  ReplicaSet write (audit log);
- API requests by verb and by client, from the apiserver's audit log (realk8s logs every request but
  watches); watches come from the apiserver's ``apiserver_longrunning_requests`` gauge: the open watch
  streams each idle peer added;
- CPU seconds (``/proc``) of the Argo controller, our worker and Temporal server, and of realk8s; peak RSS;
- ours: Temporal history events per rollout.

``--paused N`` then holds N workloads x 2 replicas paused at their first step under each peer and measures
a quiet ``--window``: the peer's requests and CPU per second, and its RSS.

One JSON on stdout, the summary on stderr. Bounded by ``--timeout``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.common import (
    DRIVER_AGENT,
    WRITE_VERBS,
    BenchStack,
    Kube,
    ProcStats,
    apiserver_open_watches,
    deployment,
    emit,
    log,
    machine,
    pct,
    poll,
    run_bounded,
    small_args,
    stop_pid,
    watch_delta,
)
from bench.floor import parse_steps, readiness_waves
from cli import commands
from cli.commands import StartOptions
from tests.helpers.argo import VERSION as ARGO_VERSION
from tests.helpers.argo import argo_binary, install_argo
from workflows import plan

NS_ARGO = "bench-argo"
NS_OURS = "bench-ours"
OLD, NEW = "nginx:1.26", "nginx:1.27"
STEPS = "1,50%,100%"
SMALL = ["--ready-delay", "0.2", "--scenarios", "manual"]  # BENCH_SMALL=1 (smoke run)
ROLLOUTS_API = "/apis/argoproj.io/v1alpha1/namespaces/{ns}/rollouts"
WORKER_AGENTS = ("rollout-worker", "OpenAPI-Generator")
BIN = Path(sys.executable).parent


# --- objects --------------------------------------------------------------------------------------


def _spread(values: Sequence[float], digits: int) -> dict[str, float | None]:
    """p50, p95 and max of ``values`` (``None`` each when there are none)."""
    if not values:
        return {"p50": None, "p95": None, "max": None}
    return {
        "p50": round(pct(values, 50), digits),
        "p95": round(pct(values, 95), digits),
        "max": round(max(values), digits),
    }


def argo_steps(steps: str, replicas: int, pauses: bool) -> list[dict[str, Any]]:
    """Our ``--steps`` as Argo canary steps: ``setWeight`` of the same pods, ``pause: {}`` between steps."""
    out: list[dict[str, Any]] = []
    specs = parse_steps(steps)
    for i, spec in enumerate(specs):
        canary, _ = plan.step_targets(spec, replicas)
        out.append({"setWeight": round(canary * 100 / replicas)})
        if pauses and i < len(specs) - 1:
            out.append({"pause": {}})
    return out


def argo_rollout(name: str, replicas: int, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """An Argo ``Rollout`` with the pod template and surge bounds of ``bench.common.deployment``."""
    dep = deployment(NS_ARGO, name, replicas=replicas, image=OLD)
    ru = dep["spec"]["strategy"]["rollingUpdate"]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": NS_ARGO, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": dep["spec"]["selector"],
            "template": dep["spec"]["template"],
            "strategy": {
                "canary": {"maxSurge": ru["maxSurge"], "maxUnavailable": ru["maxUnavailable"], "steps": steps}
            },
        },
    }


def image_of(obj: dict[str, Any]) -> str:
    containers = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or [{}]
    return str(containers[0].get("image", ""))


def argo_done(ro: dict[str, Any]) -> bool:
    """Argo's own "rolled out": Healthy, on the new revision, the status up to date with the spec."""
    st, md = ro.get("status") or {}, ro.get("metadata") or {}
    return (
        st.get("phase") == "Healthy"
        and bool(st.get("stableRS"))
        and st.get("stableRS") == st.get("currentPodHash")
        and int(st.get("observedGeneration") or 0) >= int(md.get("generation") or 0)
        and image_of(ro) == NEW
    )


def argo_paused(ro: dict[str, Any]) -> bool:
    return bool((ro.get("status") or {}).get("pauseConditions"))


# --- the Argo controller --------------------------------------------------------------------------


def start_argo_controller(kubeconfig: str, workdir: Path) -> subprocess.Popen[bytes]:
    """``rollouts-controller`` with all its controllers, namespaced to ``NS_ARGO``, no leader election."""
    cmd = [
        str(argo_binary("rollouts-controller")),
        "--kubeconfig",
        kubeconfig,
        "--namespaced",
        "--namespace",
        NS_ARGO,
        "--leader-elect=false",
        "--healthzPort",
        "0",
        "--metricsport",
        "0",
        "--loglevel",
        "warn",
    ]
    with open(workdir / "argo-controller.log", "wb") as out:
        return subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=str(workdir)
        )


# --- observation ----------------------------------------------------------------------------------


class Observer:
    """One driver LIST of the ReplicaSets (and Argo Rollouts) of a namespace every ``interval`` seconds;
    per workload, the first time each step's target was seen."""

    def __init__(self, stack: BenchStack, namespace: str, interval: float) -> None:
        self.stack = stack
        self.namespace = namespace
        self.interval = interval
        self.replica_sets: list[dict[str, Any]] = []
        self.rollouts: dict[str, dict[str, Any]] = {}
        self.seen_at = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        kube = self.stack.kube
        while True:
            rs = await asyncio.to_thread(kube.request, "GET", Kube.replica_set_path(self.namespace))
            ros: dict[str, Any] = {}
            if self.namespace == NS_ARGO:
                data = await asyncio.to_thread(kube.request, "GET", ROLLOUTS_API.format(ns=NS_ARGO))
                ros = {r["metadata"]["name"]: r for r in data.get("items") or []}
            self.replica_sets, self.rollouts, self.seen_at = list(rs.get("items") or []), ros, time.time()
            await asyncio.sleep(self.interval)

    def __enter__(self) -> Observer:
        self._task = asyncio.ensure_future(self._loop())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()

    def counts(self, app: str) -> tuple[int, int]:
        """(canary ready, stable pods) of workload ``app``: ReplicaSets told apart by their image."""
        canary_ready = stable = 0
        for rs in self.replica_sets:
            if ((rs["metadata"].get("labels") or {}).get("app")) != app:
                continue
            st = rs.get("status") or {}
            if image_of(rs) == NEW:
                canary_ready += int(st.get("readyReplicas") or 0)
            else:
                stable += max(int(st.get("replicas") or 0), int((rs.get("spec") or {}).get("replicas") or 0))
        return canary_ready, stable

    async def reached(self, app: str, canary: int, stable: int, timeout: float) -> float:
        """Wall clock of the first observation with ``canary`` ready new pods and at most ``stable`` old."""

        async def check() -> float | None:
            c, s = self.counts(app)
            return self.seen_at if c >= canary and s <= stable and self.seen_at else None

        return await poll(
            check, timeout=timeout, interval=self.interval / 2, what=f"{app} at {canary}/{stable}"
        )


def peer_write_after(
    entries: list[dict[str, Any]], agents: tuple[str, ...], app: str, t0: float
) -> float | None:
    """``ts`` of the first ReplicaSet write of workload ``app`` by ``agents`` at or after ``t0``."""
    for e in entries:
        if (
            e["resource"] == "replicasets"
            and e["verb"] in ("update", "patch", "create")
            and e["name"].startswith(app + "-")
            and e["userAgent"].startswith(agents)
            and e["ts"] >= t0
        ):
            return float(e["ts"])
    return None


# --- one peer, one scenario -----------------------------------------------------------------------


async def set_argo_image(kube: Kube, ns: str, name: str) -> None:
    """What `kubectl argo rollouts set image` sends: a merge patch of the Rollout's pod template image."""
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": NEW}]}}}}
    await asyncio.to_thread(
        kube.request,
        "PATCH",
        f"{ROLLOUTS_API.format(ns=ns)}/{name}",
        patch,
        content_type="application/merge-patch+json",
    )


async def _run_command(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """(start wall clock, seconds to exit, exit code, output) of one approval command."""
    t0 = time.time()
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
        env=env,
    )
    out, _ = await proc.communicate()
    return t0, time.time() - t0, int(proc.returncode or 0), out.decode(errors="replace").strip()


async def run_peer(
    stack: BenchStack,
    peer: str,
    scenario: str,
    args: argparse.Namespace,
    argo: subprocess.Popen[bytes] | None,
) -> dict[str, Any]:
    """Roll every workload of ``peer`` from OLD to NEW once; per-step times, approvals, costs."""
    assert stack.client is not None and stack.sim is not None
    pauses = scenario == "manual"
    ns = NS_ARGO if peer == "argo" else NS_OURS
    names = [f"{scenario}-{i:03d}" for i in range(args.rollouts)]
    kube = stack.kube
    steps = [plan.step_targets(s, args.replicas) for s in parse_steps(args.steps)]

    # Setup, not measured: the workloads on OLD, ready.
    if peer == "argo":
        body = argo_steps(args.steps, args.replicas, pauses)
        for name in names:
            await asyncio.to_thread(
                kube.request, "POST", ROLLOUTS_API.format(ns=ns), argo_rollout(name, args.replicas, body)
            )

        async def healthy() -> bool:
            data = await asyncio.to_thread(kube.request, "GET", ROLLOUTS_API.format(ns=ns))
            ok = {
                r["metadata"]["name"]
                for r in data.get("items") or []
                if (r.get("status") or {}).get("phase") == "Healthy"
                and int((r.get("status") or {}).get("availableReplicas") or 0) == args.replicas
            }
            return set(names) <= ok

        await poll(healthy, timeout=300, interval=0.5, what="Argo rollouts healthy on the old image")
    else:
        await stack.create_deployments([deployment(ns, n, replicas=args.replicas, image=OLD) for n in names])
        await stack.wait_rolled_out(ns, set(names), OLD, timeout=300, interval=0.5)
    await asyncio.sleep(args.settle)

    kubeconfig = stack.sim.kubeconfig
    env = {**os.environ, "KUBECONFIG": kubeconfig, "TEMPORAL_ADDRESS": stack.address}
    cursor = stack.audit_seq()
    before = stack.stats()
    argo_before = ProcStats.read(argo.pid) if argo is not None else None
    per_rollout: list[dict[str, Any]] = []
    with Observer(stack, ns, args.observe_interval) as obs:
        await poll(lambda: asyncio.sleep(0, result=obs.seen_at), timeout=30, what="first observation")

        async def one(name: str) -> None:
            rec: dict[str, Any] = {"name": name, "steps_s": [], "approvals": []}
            t0 = time.time()
            if peer == "argo":
                await set_argo_image(kube, ns, name)
            else:
                opts = StartOptions(
                    name=name,
                    images=[f"app={NEW}"],
                    steps=args.steps,
                    pause_duration=None if pauses else 0,
                    requested_by="bench",
                )
                await commands.start(stack.ctx(ns), opts)
            start = t0
            for k, (canary, stable) in enumerate(steps):
                at = await obs.reached(name, canary, stable, args.timeout)
                rec["steps_s"].append(round(at - start, 3))
                start = at
                if not pauses or k == len(steps) - 1:
                    continue
                rec["approvals"].append(await approve(name, k + 1))
                start = rec["approvals"][-1]["command_start"]
            # Done as the peer itself says it.
            if peer == "argo":
                done = await poll(
                    lambda: asyncio.sleep(0, result=argo_done(obs.rollouts.get(name) or {}) and obs.seen_at),
                    timeout=args.timeout,
                    interval=args.observe_interval / 2,
                    what=f"{name} Healthy",
                )
                rec["phase"] = "Healthy"
            else:
                handle = stack.client.get_workflow_handle(f"rollout/{ns}/{name}")  # type: ignore[union-attr]
                result = await handle.result()
                done = time.time()
                rec["phase"] = str(
                    result.get("phase") if isinstance(result, dict) else getattr(result, "phase", "")
                )
            rec["total_s"] = round(done - t0, 3)
            rec["t0"] = t0
            per_rollout.append(rec)

        async def approve(name: str, step: int) -> dict[str, Any]:
            """Wait until the peer says it is paused, then run its approval command."""
            if peer == "argo":
                await poll(
                    lambda: asyncio.sleep(0, result=argo_paused(obs.rollouts.get(name) or {})),
                    timeout=args.timeout,
                    interval=args.observe_interval / 2,
                    what=f"{name} paused",
                )
                cmd = [
                    str(argo_binary("kubectl-argo-rollouts")),
                    "promote",
                    name,
                    "-n",
                    ns,
                    "--kubeconfig",
                    kubeconfig,
                ]
            else:
                wid = f"rollout/{ns}/{name}"

                async def paused() -> bool:
                    desc = await stack.client.get_workflow_handle(wid).describe()  # type: ignore[union-attr]
                    phase = desc.typed_search_attributes
                    return any(p.key.name == "RolloutPhase" and p.value == "Paused" for p in phase)

                await poll(
                    paused, timeout=args.timeout, interval=args.observe_interval, what=f"{name} paused"
                )
                cmd = [str(BIN / "rollout"), "approve", name, "-n", ns, "--address", stack.address]
            await asyncio.sleep(args.approve_after)
            t_cmd, took, code, out = await _run_command(cmd, env)
            if code != 0:
                raise RuntimeError(f"{cmd[0]} exited {code}: {out}")
            return {"step": step, "command_start": t_cmd, "command_s": round(took, 3), "output": out[-200:]}

        t_all = time.time()
        await asyncio.wait_for(asyncio.gather(*(one(n) for n in names)), args.timeout)
        wall = time.time() - t_all
    after = stack.stats()
    argo_after = ProcStats.read(argo.pid) if argo is not None else None
    await asyncio.sleep(1.0)  # the audit log's last lines reach the file
    entries = [e for e in stack.audit(cursor) if e["userAgent"] != DRIVER_AGENT]
    if peer == "argo":
        mine = [e for e in entries if not e["userAgent"].startswith(("rollout-", *WORKER_AGENTS))]
        controller_agents: tuple[str, ...] = tuple(
            {e["userAgent"] for e in mine if not e["userAgent"].startswith("kubectl-argo-rollouts")}
        ) or ("argo-rollouts",)
    else:
        mine = [e for e in entries if e["userAgent"].startswith(("rollout-", *WORKER_AGENTS))]
        controller_agents = WORKER_AGENTS
    # Approval latencies from the audit log (and, for ours, the update's acceptance in the history).
    events: list[int] = []
    for rec in per_rollout:
        accepted: list[float] = []
        if peer == "ours":
            history = await stack.client.get_workflow_handle(f"rollout/{ns}/{rec['name']}").fetch_history()
            events.append(len(history.events))
            accepted = [
                e.event_time.ToMicroseconds() / 1e6
                for e in history.events
                if e.HasField("workflow_execution_update_accepted_event_attributes")
            ]
        for i, ap in enumerate(rec["approvals"]):
            t_cmd = ap["command_start"]
            if peer == "argo":
                promote = [
                    e["ts"]
                    for e in mine
                    if e["userAgent"].startswith("kubectl-argo-rollouts")
                    and e["resource"] == "rollouts"
                    and e["verb"] in ("patch", "update")
                    and e["name"] == rec["name"]
                    and e["ts"] >= t_cmd
                ]
                acc = promote[0] if promote else None
            else:
                acc = next((a for a in accepted if a >= t_cmd), accepted[i] if i < len(accepted) else None)
            write = peer_write_after(mine, controller_agents, rec["name"], t_cmd)
            ap["command_to_write_ms"] = round((write - t_cmd) * 1000, 1) if write else None
            ap["command_to_accepted_ms"] = round((acc - t_cmd) * 1000, 1) if acc else None
            ap["accepted_to_write_ms"] = round((write - acc) * 1000, 1) if write and acc else None
    n = len(names)
    verbs = Counter(e["verb"] for e in mine)
    resources = Counter(f"{e['verb']} {e['resource']}" for e in mine)
    agents = Counter(e["userAgent"].split(" ")[0] for e in mine)
    writes = sum(1 for e in mine if e["verb"] in WRITE_VERBS)
    step_lists = list(zip(*(r["steps_s"] for r in per_rollout), strict=True))
    cmd_lat = [
        a["command_to_write_ms"] for r in per_rollout for a in r["approvals"] if a["command_to_write_ms"]
    ]
    acc_lat = [
        a["accepted_to_write_ms"] for r in per_rollout for a in r["approvals"] if a["accepted_to_write_ms"]
    ]
    cmd_s = [a["command_s"] for r in per_rollout for a in r["approvals"]]
    cmd_acc = [
        a["command_to_accepted_ms"]
        for r in per_rollout
        for a in r["approvals"]
        if a["command_to_accepted_ms"]
    ]
    cpu: dict[str, float] = {"realk8s": after["kubesim"].minus(before["kubesim"]).cpu_s}
    rss: dict[str, float] = {}
    if peer == "argo" and argo_after is not None and argo_before is not None:
        cpu["controller"] = argo_after.minus(argo_before).cpu_s
        rss["controller"] = argo_after.peak_rss_mb
    else:
        cpu["worker"] = after["worker"].minus(before["worker"]).cpu_s
        cpu["temporal"] = after["temporal"].minus(before["temporal"]).cpu_s
        rss["worker"] = after["worker"].peak_rss_mb
        rss["temporal"] = after["temporal"].peak_rss_mb
    out: dict[str, Any] = {
        "wall_s": round(wall, 2),
        "total_s": _spread([r["total_s"] for r in per_rollout], 2),
        "step_s": [_spread(s, 2) for s in step_lists],
        "phases": dict(Counter(r["phase"] for r in per_rollout)),
        "api_requests_per_rollout": round(len(mine) / n, 1),
        "api_writes_per_rollout": round(writes / n, 1),
        "api_requests_by_verb": dict(verbs),
        "api_requests_by_agent": dict(agents),
        "api_requests_by_verb_resource": dict(resources),
        "cpu_s": cpu,
        "cpu_s_per_rollout": {k: round(v / n, 3) for k, v in cpu.items()},
        "peak_rss_mb": rss,
        "rollouts": per_rollout,
    }
    if pauses:
        out["approve"] = {
            "command": "kubectl argo rollouts promote" if peer == "argo" else "rollout approve",
            "command_exit_s_p50": round(pct(cmd_s, 50), 3) if cmd_s else None,
            "command_to_write_ms": _spread(cmd_lat, 1),
            "command_to_accepted_ms": _spread(cmd_acc, 1),
            "accepted_to_write_ms": _spread(acc_lat, 1),
        }
    if events:
        out["history_events_per_rollout"] = round(statistics.mean(events), 1)
    return out


async def run_paused(
    stack: BenchStack, peer: str, args: argparse.Namespace, argo: subprocess.Popen[bytes] | None
) -> dict[str, Any]:
    """``--paused N``: N workloads x 2 replicas held at step 1 (1 new pod, 1 old) by ``peer``; then a quiet
    window of ``--window`` seconds: the peer's requests per second, CPU per second, RSS."""
    assert stack.client is not None
    ns = NS_ARGO if peer == "argo" else NS_OURS
    names = [f"held-{i:03d}" for i in range(args.paused)]
    kube = stack.kube
    if peer == "argo":
        body: list[dict[str, Any]] = [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]
        for name in names:
            await asyncio.to_thread(
                kube.request, "POST", ROLLOUTS_API.format(ns=ns), argo_rollout(name, 2, body)
            )
    else:
        await stack.create_deployments([deployment(ns, n, replicas=2, image=OLD) for n in names])
    t0 = time.monotonic()

    async def all_ready() -> bool:
        rs = await asyncio.to_thread(kube.request, "GET", Kube.replica_set_path(ns))
        ready = {
            (r["metadata"].get("labels") or {}).get("app")
            for r in rs.get("items") or []
            if int((r.get("status") or {}).get("readyReplicas") or 0) == 2 and image_of(r) == OLD
        }
        return set(names) <= ready

    await poll(all_ready, timeout=args.timeout, interval=1.0, what=f"{peer}: {len(names)} workloads ready")
    sem = asyncio.Semaphore(16)

    async def trigger(name: str) -> None:
        async with sem:
            if peer == "argo":
                await set_argo_image(kube, ns, name)
            else:
                opts = StartOptions(name=name, images=[f"app={NEW}"], steps="1,100%", requested_by="bench")
                await commands.start(stack.ctx(ns), opts)

    await asyncio.gather(*(trigger(n) for n in names))

    async def all_paused() -> bool:
        if peer == "argo":
            data = await asyncio.to_thread(kube.request, "GET", ROLLOUTS_API.format(ns=ns))
            return sum(argo_paused(r) for r in data.get("items") or []) >= len(names)
        # The earlier scenarios' runs have all ended: every paused rollout now is one of these.
        query = 'ExecutionStatus = "Running" AND RolloutPhase = "Paused"'
        return (await stack.client.count_workflows(query)).count >= len(names)  # type: ignore[union-attr]

    await poll(all_paused, timeout=args.timeout, interval=1.0, what=f"{peer}: {len(names)} paused")
    to_pause_s = round(time.monotonic() - t0, 1)
    await asyncio.sleep(args.settle)
    cursor = stack.audit_seq()
    before = stack.stats()
    argo_before = ProcStats.read(argo.pid) if argo is not None else None
    w0 = time.monotonic()
    await asyncio.sleep(args.window)
    window = time.monotonic() - w0
    after = stack.stats()
    argo_after = ProcStats.read(argo.pid) if argo is not None else None
    entries = [e for e in stack.audit(cursor) if e["userAgent"] != DRIVER_AGENT]
    if peer == "argo":
        mine = [e for e in entries if not e["userAgent"].startswith(("rollout-", *WORKER_AGENTS))]
    else:
        mine = [e for e in entries if e["userAgent"].startswith(("rollout-", *WORKER_AGENTS))]

    def per_s(a: ProcStats, b: ProcStats) -> float:
        return round((a.cpu_s - b.cpu_s) / window, 3)

    cpu = {"realk8s": per_s(after["kubesim"], before["kubesim"])}
    rss: dict[str, float] = {}
    if argo_after is not None and argo_before is not None:
        cpu["controller"] = per_s(argo_after, argo_before)
        rss["controller"] = argo_after.rss_mb
    else:
        cpu["worker"] = per_s(after["worker"], before["worker"])
        cpu["temporal"] = per_s(after["temporal"], before["temporal"])
        rss["worker"], rss["temporal"] = after["worker"].rss_mb, after["temporal"].rss_mb
    return {
        "paused": len(names),
        "to_pause_s": to_pause_s,
        "window_s": round(window, 1),
        "requests_per_s": round(len(mine) / window, 2),
        "requests_by_verb_resource": dict(Counter(f"{e['verb']} {e['resource']}" for e in mine)),
        "cpu_s_per_s": cpu,
        "rss_mb": rss,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    result: dict[str, Any] = {"benchmark": "peers", "cluster": "real", "argo_version": ARGO_VERSION}
    async with BenchStack(ready_delay=args.ready_delay, cluster="real", workers=0) as stack:
        assert stack.sim is not None and stack.driver_api is not None
        install_argo(stack.driver_api, NS_ARGO)
        await stack.create_namespace(NS_OURS)
        await asyncio.sleep(args.settle)
        w0 = apiserver_open_watches(stack)
        stack.start_worker()
        await asyncio.sleep(args.settle + 2)
        w1 = apiserver_open_watches(stack)
        argo = start_argo_controller(stack.sim.kubeconfig, stack.workdir)
        try:
            await asyncio.sleep(args.settle + 5)  # its informers list and watch
            if argo.poll() is not None:
                raise RuntimeError(
                    "rollouts-controller exited:\n"
                    + (stack.workdir / "argo-controller.log").read_text()[-2000:]
                )
            w2 = apiserver_open_watches(stack)
            idle = {
                "argo": asdict(ProcStats.read(argo.pid)),
                "ours_worker": asdict(stack.stats()["worker"]),
            }
            result["open_watches_idle"] = {
                "ours_worker": watch_delta(w1, w0),
                "argo_controller": watch_delta(w2, w1),
            }
            for scenario in scenarios:
                for peer in ("argo", "ours"):
                    log(f"{peer}, {scenario} pauses: {args.rollouts} x {args.replicas} replicas")
                    r = await run_peer(stack, peer, scenario, args, argo if peer == "argo" else None)
                    log(
                        f"{peer}, {scenario}: total p50 {r['total_s']['p50']} s, steps {r['step_s']}, "
                        f"{r['api_requests_per_rollout']} requests/rollout, CPU {r['cpu_s']}"
                    )
                    result.setdefault(scenario, {})[peer] = r
            if args.paused:
                for peer in ("argo", "ours"):
                    log(f"{peer}: {args.paused} rollouts held paused, {args.window} s window")
                    r = await run_paused(stack, peer, args, argo if peer == "argo" else None)
                    log(f"{peer} paused: {r}")
                    result.setdefault("paused", {})[peer] = r
                w3 = apiserver_open_watches(stack)
                result["open_watches_paused_vs_start"] = watch_delta(w3, w0)
            result["idle_after_start"] = idle
            result["argo_controller_peak_rss_mb"] = ProcStats.read(argo.pid).peak_rss_mb
        finally:
            stop_pid(argo)
    waves = readiness_waves(args.steps, args.replicas)
    result.update(
        rollouts=args.rollouts,
        replicas=args.replicas,
        steps=args.steps,
        argo_steps={
            "zero": argo_steps(args.steps, args.replicas, False),
            "manual": argo_steps(args.steps, args.replicas, True),
        },
        floor_s=round(waves * args.ready_delay, 2),
        readiness_waves=waves,
        config={
            "ready_delay": args.ready_delay,
            "observe_interval_s": args.observe_interval,
            "approve_after_s": args.approve_after,
            "settle_s": args.settle,
            "scenarios": scenarios,
        },
        machine=machine(),
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cluster",
        choices=["real"],
        default="real",
        help="the control plane (Argo's controller needs the real one: realk8s)",
    )
    parser.add_argument("--rollouts", type=int, default=1, help="workloads per peer, rolled out at once (N)")
    parser.add_argument("--replicas", type=int, default=10, help="replicas per workload")
    parser.add_argument("--steps", default=STEPS, help="canary steps (ours; Argo gets the same setWeights)")
    parser.add_argument("--ready-delay", type=float, default=1.0, help="realk8s pod ready delay (s)")
    parser.add_argument("--scenarios", default="zero,manual", help="zero, manual, or both (comma-separated)")
    parser.add_argument(
        "--approve-after",
        type=float,
        default=0.5,
        help="seconds between the peer saying it is paused and the approval command",
    )
    parser.add_argument(
        "--paused", type=int, default=0, help="then N workloads x 2 replicas held paused per peer (0: none)"
    )
    parser.add_argument("--window", type=float, default=20.0, help="quiet window with --paused (s)")
    parser.add_argument("--observe-interval", type=float, default=0.1, help="driver LIST interval (s)")
    parser.add_argument("--settle", type=float, default=2.0, help="quiet seconds between phases")
    parser.add_argument("--timeout", type=float, default=600, help="hard bound for the whole run (s)")
    args = parser.parse_args(small_args(SMALL, argv))
    r = run_bounded(lambda: run(args), args.timeout + 300)
    lines = [
        f"Argo Rollouts {r['argo_version']} vs ours, {r['rollouts']} x {r['replicas']} replicas, "
        f"steps {r['steps']}, floor {r['floor_s']} s, on realk8s"
    ]
    for peer, p in (r.get("paused") or {}).items():
        lines.append(f"  paused {peer}: {p}")
    for scenario in r["config"]["scenarios"]:
        for peer in ("argo", "ours"):
            p = r[scenario][peer]
            line = (
                f"  {scenario:6} {peer:4}: total {p['total_s']['p50']} s, steps "
                f"{[s['p50'] for s in p['step_s']]}, {p['api_requests_per_rollout']} requests/rollout "
                f"{p['api_requests_by_verb']}, CPU {p['cpu_s']}"
            )
            if "approve" in p:
                a = p["approve"]
                line += (
                    f", approve->write p50 {a['command_to_write_ms']['p50']} ms (accepted->write "
                    f"{a['accepted_to_write_ms']['p50']} ms)"
                )
            lines.append(line)
    lines.append(f"  idle open watches: {r['open_watches_idle']}")
    emit(r, "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
