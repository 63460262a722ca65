"""A release in waves across three clusters versus the same rollouts run one after another by a script.

Three kubesim clusters (``c1``, ``c2``, ``c3``), one worker process per cluster on its own task queue
(``rollout-worker --cluster NAME``'s queue) plus one on the release's queue, as ``rollout dev up
--clusters`` runs them. ``--targets`` Deployments x ``--replicas`` (10) replicas of ``app=nginx:1.26``,
RollingUpdate 25%/25%, spread evenly over the clusters. Then, in the same run:

1. **release**: one Release of every target (``rollout release start``'s function) to ``nginx:1.27`` in
   waves of ``--waves`` targets (3,9,18: each wave spread over the three clusters), steps ``1,50%,100%``,
   zero pauses, ``--bake`` seconds of bake (0 by default), no approval; done when the release workflow
   returned. Every target must end Completed and every Deployment handed back on ``nginx:1.27``.
2. **script**: for each target in turn, ``rollout start`` (the command function) to ``nginx:1.28`` with the
   same steps and zero pauses on its cluster's queue, then wait for that workflow's result before the next
   (what a CI script does with ``rollout start`` + ``rollout status -w``).

Reported for each: wall time and its floor (readiness waves x the pod ready delay, ``bench/floor.py``:
a wave's targets in parallel, waves and script steps one after another), Temporal history events
(the release's parent and children; the script's sum), API requests per cluster (kubesim's audit log,
the benchmark's own setup and polling left out), CPU seconds of the worker processes (summed), of the
Temporal server and of the kubesims. Bounded by --timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from typing import Any

from kubernetes.client import ApiClient

from bench.common import (
    CLI_AGENT,
    DRIVER_AGENT,
    WRITE_VERBS,
    BenchStack,
    ProcStats,
    api_client_for,
    deployment,
    emit,
    log,
    machine,
    poll,
    rolled_out,
    run_bounded,
    small_args,
)
from bench.floor import readiness_waves
from cli import commands
from cli.commands import RolloutContext, StartOptions
from cli.release_file import parse_release
from cli.release_start import start_release
from kube.client import Kube
from kubesim.testing import KubeSimProcess, start_kubesim
from workflows.contract import SIGNAL_TARGET_HELD
from workflows.model import (
    Phase,
    ReleaseStatus,
    RolloutStatus,
    RolloutTimings,
    TargetHeld,
    TargetState,
    release_workflow_id,
    task_queue_for,
)

CLUSTERS = ("c1", "c2", "c3")
BASE_QUEUE = "rollouts-bench"
STEPS = "1,50%,100%"
SMALL = ["--waves", "1,1,1", "--replicas", "2", "--ready-delay", "0.05"]  # BENCH_SMALL=1 (smoke run)
Target = tuple[str, str, str]  # (cluster, namespace, deployment)


class Fleet:
    """The bench stack (Temporal, cluster ``c1``, the release queue's worker) plus the other clusters."""

    def __init__(self, stack: BenchStack) -> None:
        self.stack = stack
        self.sims: dict[str, Any] = {}
        self.extra: list[KubeSimProcess] = []
        self.cli: dict[str, ApiClient] = {}
        self.driver: dict[str, ApiClient] = {}

    def start(self) -> None:
        stack = self.stack
        assert stack.sim is not None
        self.sims[CLUSTERS[0]] = stack.sim
        for name in CLUSTERS[1:]:
            sim = start_kubesim(stack.workdir / f"kubesim-{name}", ready_delay=stack.ready_delay)
            self.extra.append(sim)
            self.sims[name] = sim
        for name, sim in self.sims.items():
            self.cli[name] = api_client_for(sim.kubeconfig, CLI_AGENT)
            self.driver[name] = api_client_for(sim.kubeconfig, DRIVER_AGENT)
            stack.start_worker(sim.kubeconfig, task_queue_for(name, BASE_QUEUE))

    def stop(self) -> None:
        for api in [*self.cli.values(), *self.driver.values()]:
            api.close()
        for sim in self.extra:
            sim.stop()

    def cpu(self) -> dict[str, float]:
        """CPU seconds now: the worker processes (summed), Temporal, the kubesims (summed)."""
        stats = self.stack.stats()
        return {
            "worker": stats["worker"].cpu_s,
            "temporal": stats["temporal"].cpu_s,
            "kubesim": round(sum(ProcStats.read(s.pid).cpu_s for s in self.sims.values()), 2),
        }

    def audit_seq(self) -> dict[str, int]:
        return {n: max((e["seq"] for e in s.audit()), default=0) for n, s in self.sims.items()}

    def requests(self, since: dict[str, int]) -> dict[str, Any]:
        """API requests per cluster since ``since`` by origin (the benchmark's own left out)."""
        per: dict[str, Any] = {}
        for name, sim in self.sims.items():
            ours = [e for e in sim.audit(since=since[name]) if e["userAgent"] != DRIVER_AGENT]
            per[name] = {
                "requests": len(ours),
                "writes": sum(1 for e in ours if e["verb"] in WRITE_VERBS),
                "by_origin": dict(Counter("cli" if e["userAgent"] == CLI_AGENT else "worker" for e in ours)),
            }
        return {"total": sum(p["requests"] for p in per.values()), "per_cluster": per}

    async def wait_rolled_out(self, targets: list[Target], image: str, timeout: float) -> float:
        """Poll one LIST per cluster until every target is rolled out on ``image``; the time it was seen."""

        async def check() -> float | None:
            now = time.monotonic()
            for name, api in self.driver.items():
                want = {(ns, d) for c, ns, d in targets if c == name}
                if not want:
                    continue
                items = (await asyncio.to_thread(Kube(api).request, "GET", "/apis/apps/v1/deployments"))[
                    "items"
                ]
                done = {
                    (i["metadata"]["namespace"], i["metadata"]["name"]) for i in items if rolled_out(i, image)
                }
                if not want <= done:
                    return None
            return now

        return await poll(check, timeout=timeout, interval=0.2, what=f"{len(targets)} deployments on {image}")


def _layout(sizes: list[int]) -> list[list[Target]]:
    """Each wave's targets, spread round-robin over the clusters (one namespace per cluster)."""
    waves: list[list[Target]] = []
    n = 0
    for size in sizes:
        row = []
        for _ in range(size):
            cluster = CLUSTERS[n % len(CLUSTERS)]
            row.append((cluster, f"bench-release-{cluster}", f"app-{n:03d}"))
            n += 1
        waves.append(row)
    return waves


def _wave_times(stack: BenchStack, events: Any, waves: list[list[str]]) -> dict[str, Any]:
    """Where the release's time went, from the parent's history: each wave from its first child started
    to its last target held, the gaps between waves, and the end (every target handed back)."""
    assert stack.client is not None
    converter = stack.client.data_converter.payload_converter
    started: dict[str, float] = {}
    held: dict[str, float] = {}
    for e in events:
        ts = e.event_time.ToMicroseconds() / 1e6
        if e.HasField("start_child_workflow_execution_initiated_event_attributes"):
            started[e.start_child_workflow_execution_initiated_event_attributes.workflow_id] = ts
        attrs = e.workflow_execution_signaled_event_attributes
        if (
            e.HasField("workflow_execution_signaled_event_attributes")
            and attrs.signal_name == SIGNAL_TARGET_HELD
        ):
            sig = converter.from_payloads(list(attrs.input.payloads), [TargetHeld])[0]
            held[sig.workflow_id] = ts
    spans = [(min(started[w] for w in row), max(held[w] for w in row)) for row in waves]
    end = events[-1].event_time.ToMicroseconds() / 1e6
    return {
        "wave_s": [round(b - a, 2) for a, b in spans],
        "between_waves_s": [round(nxt[0] - prev[1], 2) for prev, nxt in zip(spans, spans[1:], strict=False)],
        "hand_back_s": round(end - spans[-1][1], 2),
    }


async def _events(stack: BenchStack, workflow_id: str) -> int:
    assert stack.client is not None
    history = await stack.client.get_workflow_handle(workflow_id).fetch_history()
    return len(history.events)


async def _release(fleet: Fleet, waves: list[list[Target]], args: argparse.Namespace) -> dict[str, Any]:
    stack = fleet.stack
    assert stack.client is not None
    doc = {
        "apiVersion": "rollouts.temporal.io/v1alpha1",
        "kind": "Release",
        "metadata": {"name": "bench"},
        "spec": {
            "change": {"images": {"app": "nginx:1.27"}},
            "defaults": {"steps": args.steps, "pause": 0, "autoRollback": True},
            "waves": [
                {
                    "name": f"wave-{i + 1}",
                    "bake": f"{args.bake:g}s",
                    "targets": [{"cluster": c, "namespace": ns, "deployment": d} for c, ns, d in row],
                }
                for i, row in enumerate(waves)
            ],
        },
    }
    rel = parse_release(doc, "bench")
    targets = [t for row in waves for t in row]
    cursor, before = fleet.audit_seq(), fleet.cpu()
    t0 = time.monotonic()
    spec = await start_release(
        stack.client,
        rel,
        fleet.cli.__getitem__,
        release_id="bench",
        by="bench",
        task_queue=BASE_QUEUE,
        timings=RolloutTimings(poll_interval_seconds=args.poll_interval),
    )
    started = time.monotonic() - t0
    handle = stack.client.get_workflow_handle(release_workflow_id(spec.release_id), result_type=ReleaseStatus)
    result: ReleaseStatus = await handle.result()
    wall = time.monotonic() - t0
    after = fleet.cpu()
    settled = await fleet.wait_rolled_out(targets, "nginx:1.27", 120)
    requests = fleet.requests(cursor)
    children = [t.workflow_id for w in result.waves for t in w.targets]
    parent = await stack.client.get_workflow_handle(release_workflow_id(spec.release_id)).fetch_history()
    parent_events = len(parent.events)
    times = _wave_times(stack, parent.events, [[t.workflow_id for t in w.targets] for w in result.waves])
    child_events = await asyncio.gather(*(_events(stack, w) for w in children))
    states = Counter(t.state.value for w in result.waves for t in w.targets)
    return {
        "wall_s": round(wall, 2),
        "start_command_s": round(started, 2),
        "settled_s": round(settled - t0, 2),
        "phase": result.phase.value,
        "target_states": dict(states),
        "time_split": times,
        "all_correct": result.phase.value == "Completed"
        and states == {TargetState.COMPLETED.value: len(targets)},
        "history_events": {
            "parent": parent_events,
            "children": sum(child_events),
            "total": parent_events + sum(child_events),
            "per_target": round((parent_events + sum(child_events)) / len(targets), 1),
            "child_mean": round(sum(child_events) / len(child_events), 1),
        },
        "api": requests,
        "cpu_s": {k: round(after[k] - before[k], 2) for k in after},
    }


async def _script(fleet: Fleet, targets: list[Target], args: argparse.Namespace) -> dict[str, Any]:
    stack = fleet.stack
    assert stack.client is not None
    cursor, before = fleet.audit_seq(), fleet.cpu()
    durations: list[float] = []
    phases: Counter[str] = Counter()
    ids: list[str] = []
    timings = RolloutTimings(poll_interval_seconds=args.poll_interval)
    t0 = time.monotonic()
    for cluster, namespace, name in targets:
        start = time.monotonic()
        ctx = RolloutContext(
            client=stack.client,
            api_client=fleet.cli[cluster],
            namespace=namespace,
            task_queue=task_queue_for(cluster, BASE_QUEUE),
        )
        opts = StartOptions(
            name=name,
            images=["app=nginx:1.28"],
            steps=args.steps,
            pause_duration=0,
            requested_by="bench",
            timings=timings,
        )
        spec, _ = await commands.start(ctx, opts)
        result: RolloutStatus = await stack.client.get_workflow_handle(
            spec.workflow_id, result_type=RolloutStatus
        ).result()
        ids.append(spec.workflow_id)
        phases[result.phase.value] += 1
        durations.append(time.monotonic() - start)
    wall = time.monotonic() - t0
    after = fleet.cpu()
    settled = await fleet.wait_rolled_out(targets, "nginx:1.28", 120)
    requests = fleet.requests(cursor)
    events = [await _events(stack, w) for w in ids]
    return {
        "wall_s": round(wall, 2),
        "settled_s": round(settled - t0, 2),
        "rollout_mean_s": round(sum(durations) / len(durations), 2),
        "phases": dict(phases),
        "all_correct": phases.get(Phase.COMPLETED.value, 0) == len(targets),
        "history_events": {
            "total": sum(events),
            "per_target": round(sum(events) / len(events), 1),
        },
        "api": requests,
        "cpu_s": {k: round(after[k] - before[k], 2) for k in after},
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [int(x) for x in args.waves.split(",")]
    waves = _layout(sizes)
    targets = [t for row in waves for t in row]
    async with BenchStack(ready_delay=args.ready_delay, task_queue=BASE_QUEUE) as stack:
        fleet = Fleet(stack)
        try:
            fleet.start()
            for name, api in fleet.driver.items():
                await asyncio.to_thread(
                    Kube(api).request,
                    "POST",
                    "/api/v1/namespaces",
                    {"metadata": {"name": f"bench-release-{name}"}},
                )
            for c, ns, d in targets:
                body = deployment(ns, d, replicas=args.replicas)
                await asyncio.to_thread(Kube(fleet.driver[c]).request, "POST", Kube.deployment_path(ns), body)
            await fleet.wait_rolled_out(targets, "nginx:1.26", args.timeout)
            log(f"{len(targets)} deployments x {args.replicas} ready on {len(CLUSTERS)} clusters")
            release = await _release(fleet, waves, args)
            log(
                f"release of {len(targets)} in waves {args.waves}: {release['wall_s']} s ({release['phase']})"
            )
            script = await _script(fleet, targets, args)
            log(f"script of {len(targets)} one after another: {script['wall_s']} s")
        finally:
            fleet.stop()
    per_rollout = readiness_waves(args.steps, args.replicas)
    floor_release = round((per_rollout * len(sizes)) * args.ready_delay + args.bake * len(sizes), 2)
    floor_script = round(per_rollout * len(targets) * args.ready_delay, 2)
    return {
        "benchmark": "release",
        "targets": len(targets),
        "waves": sizes,
        "clusters": len(CLUSTERS),
        "replicas": args.replicas,
        "steps": args.steps,
        "bake_s": args.bake,
        "release_s": release["wall_s"],
        "script_s": script["wall_s"],
        "release_floor_s": floor_release,
        "script_floor_s": floor_script,
        "release_events": release["history_events"]["total"],
        "script_events": script["history_events"]["total"],
        "release_api_requests": release["api"]["total"],
        "script_api_requests": script["api"]["total"],
        "release_worker_cpu_s": release["cpu_s"]["worker"],
        "script_worker_cpu_s": script["cpu_s"]["worker"],
        "all_correct": release["all_correct"] and script["all_correct"],
        "release": release,
        "script": script,
        "config": {
            "ready_delay": args.ready_delay,
            "poll_interval": args.poll_interval,
            "workers": len(stack.workers),
        },
        "machine": machine(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.release", description=__doc__.splitlines()[0])
    parser.add_argument("--waves", default="3,9,18", help="targets per wave, comma-separated")
    parser.add_argument("--replicas", type=int, default=10, help="replicas per Deployment")
    parser.add_argument("--steps", default=STEPS, help="canary steps of every target (pauses are zero)")
    parser.add_argument("--bake", type=float, default=0.0, help="bake after each wave (s)")
    parser.add_argument("--ready-delay", type=float, default=1.0, help="kubesim pod ready delay (s)")
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=0.5,
        help="RolloutTimings.poll_interval_seconds of every rollout",
    )
    parser.add_argument("--timeout", type=float, default=1500, help="hard bound for the whole run (s)")
    args = parser.parse_args(small_args(SMALL, argv))
    r = run_bounded(lambda: run(args), args.timeout + 300)
    summary = (
        f"{r['targets']} targets x {r['replicas']} replicas on {r['clusters']} clusters ({r['steps']}, "
        f"zero pauses): release in waves {r['waves']} {r['release_s']} s (floor {r['release_floor_s']} s) vs "
        f"script one after another {r['script_s']} s (floor {r['script_floor_s']} s); history events "
        f"{r['release_events']} vs {r['script_events']}; API requests {r['release_api_requests']} vs "
        f"{r['script_api_requests']}; worker CPU {r['release_worker_cpu_s']} vs "
        f"{r['script_worker_cpu_s']} s; "
        f"all correct: {r['all_correct']}"
    )
    emit(r, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
