"""Concurrent rollouts on one worker versus kubesim's native Deployment controller, in the same run.

N Deployments x ``--replicas`` (10) replicas of ``app=nginx:1.26``, RollingUpdate 25%/25%, are created and
become ready. Then, on the same kubesim:

1. **native**: every Deployment's image is patched to ``nginx:1.27`` at once (what ``kubectl set image``
   sends); done when all of them pass ``kubectl rollout status`` (polled with one LIST).
2. **ours**: ``rollout start`` (the command function) for every Deployment at once to ``nginx:1.28`` with
   steps ``1,50%,100%`` and zero-length pauses (``--pause-duration 0``), one worker process; done when every
   workflow has returned. Every rollout must end ``Completed`` and every Deployment must then pass
   ``kubectl rollout status`` on ``nginx:1.28``, unpaused.

Reported: wall times and their ratio (ours / native), ``floor_s`` (the plan's readiness waves x the pod
ready delay, ``bench/floor.py``: the least any batch rollout can take) and ``ours_s / floor_s``,
per-rollout durations, worker CPU seconds and peak RSS (``/proc``), Temporal server and kubesim CPU,
Temporal history events per rollout (every history is fetched), kubesim API requests per rollout (audit
log, by user agent). Bounded by --timeout.

``--workers 3 --kill-one``: three worker processes on the task queue; once half of the rollouts have
finished, the last one is SIGKILLed. Reported per worker: the activities it ran (``ActivityTaskStarted``
events by worker identity, ``<pid>@<host>``) and its share, plus ``all_correct`` over all rollouts.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import (
    CLI_AGENT,
    DRIVER_AGENT,
    WRITE_VERBS,
    BenchStack,
    Kube,
    ProcStats,
    deployment,
    emit,
    log,
    machine,
    pct,
    run_bounded,
    small_args,
)
from bench.floor import native_waves, readiness_waves
from cli import commands
from cli.commands import StartOptions
from workflows.model import Phase, RolloutStatus, RolloutTimings

NS = "bench-concurrent"
Target = tuple[str, str]  # (namespace, deployment)
SMALL = ["--rollouts", "2", "--ready-delay", "0.05"]  # BENCH_SMALL=1 (smoke run)
STEPS = "1,50%,100%"


def _audit_summary(entries: list[dict[str, Any]], since: int, rollouts: int) -> dict[str, Any]:
    """Requests of one phase by origin; ``truncated`` if kubesim's audit ring dropped some."""
    ours = [e for e in entries if e["userAgent"] != DRIVER_AGENT]
    by_agent = Counter("cli" if e["userAgent"] == CLI_AGENT else "worker" for e in ours)
    by_verb = Counter(e["verb"] for e in ours)
    return {
        "requests": len(ours),
        "requests_per_rollout": round(len(ours) / rollouts, 1),
        "writes_per_rollout": round(sum(1 for e in ours if e["verb"] in WRITE_VERBS) / rollouts, 1),
        "by_origin": dict(by_agent),
        "by_verb": dict(by_verb),
        "driver_requests": len(entries) - len(ours),
        "truncated": bool(entries) and min(e["seq"] for e in entries) > since + 1,
    }


def _time_split(events: Any) -> dict[str, float]:
    """Where one rollout's time went, from its history's event times: activities by type
    (scheduled -> completed, so dispatch is included), the rest (workflow tasks, and the gaps
    between them), and the whole run."""
    t = [e.event_time.ToMicroseconds() / 1e6 for e in events]
    scheduled: dict[int, tuple[str, float]] = {}
    out: dict[str, float] = {}
    for e, ts in zip(events, t, strict=True):
        if e.HasField("activity_task_scheduled_event_attributes"):
            scheduled[e.event_id] = (e.activity_task_scheduled_event_attributes.activity_type.name, ts)
        for field in ("activity_task_completed_event_attributes", "activity_task_failed_event_attributes"):
            if e.HasField(field):
                name, since = scheduled.pop(getattr(e, field).scheduled_event_id, ("?", ts))
                out[f"activity:{name}"] = out.get(f"activity:{name}", 0.0) + ts - since
    total = t[-1] - t[0] if t else 0.0
    out["total"] = total
    out["outside_activities"] = total - sum(v for k, v in out.items() if k.startswith("activity:"))
    return out


def _shared_namespace(targets: list[Target]) -> str | None:
    """The one namespace of all targets, or ``None`` (cluster-wide) when they are spread out."""
    namespaces = {ns for ns, _ in targets}
    return namespaces.pop() if len(namespaces) == 1 else None


async def _wait_all(
    stack: BenchStack, targets: list[Target], image: str, timeout: float, interval: float
) -> float:
    namespace = _shared_namespace(targets)
    keys = {name if namespace else f"{ns}/{name}" for ns, name in targets}
    return await stack.wait_rolled_out(namespace, keys, image, timeout=timeout, interval=interval)


async def _native(
    stack: BenchStack, targets: list[Target], timeout: float, interval: float
) -> dict[str, Any]:
    kube = stack.kube
    sem = asyncio.Semaphore(16)
    cursor = stack.audit_seq()
    before = stack.stats()
    driver_cpu = time.process_time()

    async def patch(target: Target) -> None:
        async with sem:
            await asyncio.to_thread(
                kube.request,
                "PATCH",
                Kube.deployment_path(*target),
                {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}}},
                content_type="application/strategic-merge-patch+json",
            )

    t0 = time.monotonic()
    await asyncio.gather(*(patch(t) for t in targets))
    done = await _wait_all(stack, targets, "nginx:1.27", timeout, interval)
    wall = done - t0
    after = stack.stats()
    driver_cpu_end = time.process_time()
    entries = stack.audit(cursor)
    audit = _audit_summary(entries, cursor, len(targets))
    # Natively the client's whole part is one PATCH per Deployment; the rest is in-process controllers.
    patches = sum(1 for e in entries if e["userAgent"] == DRIVER_AGENT and e["verb"] in WRITE_VERBS)
    audit["requests_per_rollout"] = round(patches / len(targets), 1)
    return {
        "wall_s": round(wall, 2),
        "poll_interval_s": interval,
        "kubesim_cpu_s": after["kubesim"].minus(before["kubesim"]).cpu_s,
        "driver_cpu_s": round(driver_cpu_end - driver_cpu, 2),
        "audit": audit,
    }


async def _ours(
    stack: BenchStack,
    targets: list[Target],
    timeout: float,
    interval: float,
    timings: RolloutTimings,
    steps: str,
    kill_one: bool = False,
    start_concurrency: int = 64,
) -> dict[str, Any]:
    assert stack.client is not None
    cursor = stack.audit_seq()
    before = stack.stats()
    driver_cpu = time.process_time()
    sem = asyncio.Semaphore(start_concurrency)
    durations: list[float] = []
    phases: Counter[str] = Counter()
    workflow_ids: list[str] = []

    async def one(target: Target) -> None:
        namespace, name = target
        async with sem:
            start = time.monotonic()
            opts = StartOptions(
                name=name,
                images=["app=nginx:1.28"],
                steps=steps,
                pause_duration=0,
                requested_by="bench",
                timings=timings,
            )
            wid = f"rollout/{namespace}/{name}"
            for attempt in range(4):
                try:
                    spec, _ = await commands.start(stack.ctx(namespace), opts)
                    wid = spec.workflow_id
                    break
                except commands.CommandError as exc:
                    if "under rollout" not in str(exc) and "already" not in str(exc):
                        raise
                    break  # an earlier attempt started it
                except Exception as exc:  # noqa: BLE001 - an overloaded API server times out; try again
                    start_retries.append(name)
                    log(f"start of {namespace}/{name} failed ({type(exc).__name__}); attempt {attempt + 2}")
                    await asyncio.sleep(2.0)
            workflow_ids.append(wid)
        handle = stack.client.get_workflow_handle(wid, result_type=RolloutStatus)  # type: ignore[union-attr]
        result: RolloutStatus = await handle.result()
        durations.append(time.monotonic() - start)
        phases[result.phase.value] += 1

    killed: dict[str, Any] = {}
    start_retries: list[str] = []

    async def kill_in_the_middle() -> None:
        """SIGKILL the last worker once half of the rollouts have finished."""
        while len(durations) < len(targets) // 2:
            await asyncio.sleep(0.05)
        victim = stack.workers[-1]
        last = ProcStats.read(victim.pid)
        victim.kill()
        killed.update(
            pid=victim.pid,
            at_s=round(time.monotonic() - t0, 2),
            done_before=len(durations),
            cpu_s=last.minus(before_workers[-1]).cpu_s if before_workers[-1] else None,
        )
        log(f"SIGKILLed worker {victim.pid} after {len(durations)} of {len(targets)} rollouts finished")

    before_workers = stack.worker_stats()
    t0 = time.monotonic()
    killer = asyncio.ensure_future(kill_in_the_middle()) if kill_one else None
    await asyncio.wait_for(asyncio.gather(*(one(t) for t in targets)), timeout)
    wall = time.monotonic() - t0
    if killer is not None:
        # Tiny runs can finish between two polls of the killer: it still kills (its condition holds now),
        # so a --kill-one run always reports the killed worker.
        await killer
    after_workers = stack.worker_stats()
    after = stack.stats()
    driver_cpu_end = time.process_time()
    # Correctness: every Deployment handed back and rolled out on the new image.
    settled = await _wait_all(stack, targets, "nginx:1.28", 120, interval)
    leftovers = [
        d["metadata"]["name"]
        for d in await stack.list_deployments(_shared_namespace(targets))
        if any(
            k.startswith("rollouts.temporal.io/")
            for k in {**(d["metadata"].get("annotations") or {}), **(d["metadata"].get("labels") or {})}
        )
    ]
    entries = stack.audit(cursor)
    hsem = asyncio.Semaphore(32)

    async def events(wid: str) -> tuple[int, Counter[str]]:
        async with hsem:
            history = await stack.client.get_workflow_handle(wid).fetch_history()  # type: ignore[union-attr]
        by: Counter[str] = Counter(
            e.activity_task_started_event_attributes.identity
            for e in history.events
            if e.HasField("activity_task_started_event_attributes")
        )
        spans.append(_time_split(history.events))
        return len(history.events), by

    spans: list[dict[str, float]] = []
    histories = await asyncio.gather(*(events(w) for w in workflow_ids))
    counts = [n for n, _ in histories]
    started_by: Counter[str] = Counter()
    for _, by_identity in histories:
        started_by.update(by_identity)
    worker = after["worker"].minus(before["worker"])
    if len(stack.workers) > 1:
        # The sum over the workers alive at the end plus what the killed one used before it died.
        worker.cpu_s = round(
            sum(
                a.minus(b).cpu_s
                for a, b in zip(after_workers, before_workers, strict=True)
                if a is not None and b is not None
            )
            + (killed.get("cpu_s") or 0),
            2,
        )
    per_worker = []
    total_started = sum(started_by.values()) or 1
    for proc, a, b in zip(stack.workers, after_workers, before_workers, strict=True):
        ran = sum(v for k, v in started_by.items() if k.split("@", 1)[0] == str(proc.pid))
        per_worker.append(
            {
                "pid": proc.pid,
                "killed": proc.pid == killed.get("pid"),
                "activities": ran,
                "activity_share": round(ran / total_started, 3),
                "cpu_s": a.minus(b).cpu_s if a is not None and b is not None else killed.get("cpu_s"),
                "peak_rss_mb": a.peak_rss_mb if a is not None else None,
            }
        )
    return {
        "wall_s": round(wall, 2),
        "settled_s": round(settled - t0, 2),
        "rollout_p50_s": round(pct(durations, 50), 2),
        "rollout_max_s": round(max(durations), 2),
        "phases": dict(phases),
        "all_correct": phases.get(Phase.COMPLETED.value, 0) == len(targets) and not leftovers,
        "leftover_metadata": leftovers[:10],
        "worker_cpu_s": worker.cpu_s,
        "worker_cpu_ms_per_rollout": round(worker.cpu_s * 1000 / len(targets), 1),
        "worker_peak_rss_mb": after["worker"].peak_rss_mb,
        "temporal_cpu_s": after["temporal"].minus(before["temporal"]).cpu_s,
        "temporal_peak_rss_mb": after["temporal"].peak_rss_mb,
        "kubesim_cpu_s": after["kubesim"].minus(before["kubesim"]).cpu_s,
        "driver_cpu_s": round(driver_cpu_end - driver_cpu, 2),
        "history_events_per_rollout": {
            "mean": round(statistics.mean(counts), 1),
            "min": min(counts),
            "max": max(counts),
        },
        "audit": _audit_summary(entries, cursor, len(targets)),
        "time_split_s": {
            k: round(statistics.mean(sp.get(k, 0.0) for sp in spans), 3) for k in sorted({*spans[0]})
        }
        if spans
        else {},
        "workers": per_worker,
        "killed": killed or None,
        "start_retries": len(start_retries),
        "activities_by_identity": dict(started_by),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    n = args.rollouts
    if args.namespaces == "shared":
        targets = [(NS, f"app-{i:04d}") for i in range(n)]
    else:
        targets = [(f"{NS}-{i:04d}", "app") for i in range(n)]
    interval = args.poll or max(0.05, min(1.0, n / 1000))
    timings = RolloutTimings(poll_interval_seconds=args.poll_interval)
    async with BenchStack(
        ready_delay=args.ready_delay,
        profile_worker=args.profile_worker,
        runner=args.runner,
        worker_threads=args.worker_threads,
        wal=not args.no_wal,
        cluster=args.cluster,
        workers=args.workers,
    ) as stack:
        for namespace in sorted({ns for ns, _ in targets}):
            await stack.create_namespace(namespace)
        t = time.monotonic()
        await stack.create_deployments([deployment(ns, name, replicas=args.replicas) for ns, name in targets])
        await _wait_all(stack, targets, "nginx:1.26", args.timeout, interval)
        log(f"{n} deployments x {args.replicas} ready in {time.monotonic() - t:.1f}s")
        native = await _native(stack, targets, args.timeout, interval)
        log(f"native rolling update of {n}: {native['wall_s']} s")
        ours = await _ours(
            stack, targets, args.timeout, interval, timings, args.steps, args.kill_one, args.start_concurrency
        )
        log(f"our rollouts of {n}: {ours['wall_s']} s, phases {ours['phases']}")
    waves = readiness_waves(args.steps, args.replicas)
    floor_s = round(waves * args.ready_delay, 2)
    return {
        "benchmark": "concurrent",
        "ours_s": ours["wall_s"],
        "native_s": native["wall_s"],
        "floor_s": floor_s,
        "readiness_waves": {"ours": waves, "native": native_waves(args.replicas)},
        "ours_over_floor": round(ours["wall_s"] / floor_s, 2) if floor_s else None,
        "events_per_rollout": ours["history_events_per_rollout"]["mean"],
        "api_requests_per_rollout": ours["audit"]["requests_per_rollout"],
        "worker_cpu_s_per_rollout": round(ours["worker_cpu_s"] / n, 4),
        "temporal_cpu_s_per_rollout": round(ours["temporal_cpu_s"] / n, 4),
        "kubesim_cpu_s_per_rollout": round(ours["kubesim_cpu_s"] / n, 4),
        "workers": ours["workers"],
        "killed_worker": ours["killed"],
        "rollouts": n,
        "replicas": args.replicas,
        "steps": args.steps,
        "wall_s": ours["wall_s"],
        "native_wall_s": native["wall_s"],
        "ratio": round(ours["wall_s"] / native["wall_s"], 2) if native["wall_s"] else None,
        "all_correct": ours["all_correct"],
        "worker_cpu_s": ours["worker_cpu_s"],
        "worker_peak_rss_mb": ours["worker_peak_rss_mb"],
        "history_events_per_rollout": ours["history_events_per_rollout"]["mean"],
        "native_api_requests_per_rollout": native["audit"]["requests_per_rollout"],
        "ours": ours,
        "native": native,
        "config": {
            "cluster": args.cluster,
            "namespaces": args.namespaces,
            "sqlite_wal": not args.no_wal,
            "runner": args.runner or "worker.py",
            "worker_threads": args.worker_threads or "default",
            "ready_delay": args.ready_delay,
            "poll_interval": args.poll_interval,
            "completion_poll_s": interval,
            "workers": args.workers,
            "kill_one": args.kill_one,
            "start_concurrency": args.start_concurrency,
        },
        "machine": machine(),
        "targets": {
            "ours_over_floor": 1.15,
            "events_per_rollout": 70,
            "api_requests_per_rollout": 30,
            "worker_peak_rss_mb": 500,
            "surviving_worker_activity_share": 0.25,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.concurrent", description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=10, help="number of Deployments / rollouts (N)")
    parser.add_argument("--replicas", type=int, default=10, help="replicas per Deployment")
    parser.add_argument("--steps", default=STEPS, help="canary steps of our rollouts (pauses are zero)")
    parser.add_argument("--ready-delay", type=float, default=1.0, help="kubesim pod ready delay (s)")
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=0.5,
        help="RolloutTimings.poll_interval_seconds (the engine's default is 0.5)",
    )
    parser.add_argument(
        "--poll",
        type=float,
        default=None,
        help="the benchmark's completion poll interval (default scales with N)",
    )
    parser.add_argument(
        "--namespaces",
        choices=["shared", "per-rollout"],
        default="shared",
        help="all Deployments in one namespace, or each in its own",
    )
    parser.add_argument(
        "--runner",
        choices=["sandboxed", "passthrough", "unsandboxed"],
        default=None,
        help="run the worker through bench/worker_variant.py with this workflow runner",
    )
    parser.add_argument(
        "--no-wal",
        action="store_true",
        help="run the dev server without the SQLite WAL pragmas (for the before/after figure)",
    )
    parser.add_argument(
        "--worker-threads",
        type=int,
        default=0,
        help="run the worker through bench/worker_variant.py with this many activity threads",
    )
    parser.add_argument(
        "--profile-worker",
        type=Path,
        default=None,
        help="run the worker under pyinstrument and write its text report here",
    )
    parser.add_argument(
        "--start-concurrency", type=int, default=64, help="`rollout start` commands in flight at once"
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes on the task queue")
    parser.add_argument(
        "--kill-one",
        action="store_true",
        help="SIGKILL the last worker once half of the rollouts have finished (needs --workers >= 2)",
    )
    parser.add_argument("--timeout", type=float, default=1200, help="hard bound for the whole run (s)")
    parser.add_argument(
        "--cluster",
        choices=["kubesim", "real"],
        default="kubesim",
        help="kubesim, or real: realk8s/bin/realk8s (build it with `make realk8s`)",
    )
    args = parser.parse_args(small_args(SMALL, argv))
    if args.kill_one and args.workers < 2:
        parser.error("--kill-one needs --workers 2 or more")
    result = run_bounded(lambda: run(args), args.timeout + 300)
    r = result
    summary = (
        f"{r['rollouts']} rollouts x {r['replicas']} replicas ({r['steps']}, zero pauses): "
        f"ours {r['wall_s']} s "
        f"vs native {r['native_wall_s']} s (ratio {r['ratio']}x), floor {r['floor_s']} s "
        f"(ours/floor {r['ours_over_floor']}); all correct: {r['all_correct']}; "
        f"worker {r['worker_cpu_s']} CPU s, peak RSS {r['worker_peak_rss_mb']} MB; "
        f"{r['history_events_per_rollout']} history events and {r['api_requests_per_rollout']} API "
        f"requests per rollout (native {r['native_api_requests_per_rollout']}); "
        f"per rollout worker {r['worker_cpu_s_per_rollout']} / "
        f"Temporal {r['temporal_cpu_s_per_rollout']} CPU s"
    )
    if len(r["workers"]) > 1:
        summary += "; activity shares " + ", ".join(
            f"{w['pid']}{' (killed)' if w['killed'] else ''} {w['activity_share']:.0%}" for w in r["workers"]
        )
    emit(result, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
