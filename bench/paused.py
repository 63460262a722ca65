"""What paused rollouts cost the worker and the API server, and how fast an approval still acts.

``bench/paused.py --rollouts N``: N Deployments x 2 replicas, each rolled out with steps ``1,100%`` and a
manual pause, so every rollout sits paused at step 1 (1 canary + 1 stable pod). One worker process
with the SDK's Prometheus metrics on. Once all N are paused (counted through the ``RolloutPhase``
search attribute) the benchmark watches a quiet window of ``--window`` seconds and reports:

- worker RSS (now and peak), worker / Temporal / kubesim CPU seconds per second of the window;
- **open watches**: the watch streams kubesim holds open at the end of the window (``GET
  /kubesim/watches``), by user agent, and the worker's by resource; watch and other requests per second
  the worker made during the window;
- **activity slots in use** (``temporal_worker_task_slots_used{worker_type="ActivityWorker"}``);
- **approve -> scale latency** while the others stay paused: ``--approvals`` of the rollouts are
  approved one by one (signal), latency = audit ``ts`` of the first canary ReplicaSet write after the
  signal - send time.

If not all N rollouts pause within ``--pause-timeout`` the figures are taken with those that did
(``paused`` says how many). Bounded by ``--timeout``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from typing import Any

from bench.common import (
    BenchStack,
    apiserver_open_watches,
    deployment,
    emit,
    log,
    machine,
    pct,
    poll,
    run_bounded,
    small_args,
    watch_delta,
)
from cli import commands
from cli.commands import StartOptions
from workflows.model import ApproveSignal, RolloutStatus, workflow_id_for

NS = "bench-paused"
SMALL = ["--rollouts", "3", "--approvals", "1", "--window", "3", "--ready-delay", "0.05"]
PAUSED_QUERY = 'ExecutionStatus = "Running" AND RolloutPhase = "Paused"'
WORKER_AGENTS = ("rollout-worker", "OpenAPI-Generator")


def _is_worker(entry: dict[str, Any]) -> bool:
    return entry["userAgent"].startswith(WORKER_AGENTS)


def _slots(metrics: dict[str, float], worker_type: str, name: str) -> float | None:
    found = [
        v for k, v in metrics.items() if k.startswith(name + "{") and f'worker_type="{worker_type}"' in k
    ]
    return sum(found) if found else None


async def _start_all(stack: BenchStack, names: list[str], concurrency: int) -> list[str]:
    sem = asyncio.Semaphore(concurrency)
    ids: list[str] = []

    async def one(name: str) -> None:
        async with sem:
            for attempt in range(4):
                try:
                    opts = StartOptions(
                        name=name, images=["app=nginx:1.27"], steps="1,100%", requested_by="bench"
                    )
                    spec, _ = await commands.start(stack.ctx(NS), opts)
                    ids.append(spec.workflow_id)
                    return
                except commands.CommandError as exc:
                    if "already" in str(exc) or "under rollout" in str(exc):  # an earlier attempt started it
                        ids.append(workflow_id_for(NS, name))
                        return
                    raise
                except Exception as exc:  # noqa: BLE001 - an overloaded API server times out; try again
                    log(f"start of {name} failed ({type(exc).__name__}); attempt {attempt + 2}")
                    await asyncio.sleep(2.0)
            failures.append(name)

    failures: list[str] = []
    await asyncio.gather(*(one(n) for n in names))
    if failures:
        log(f"{len(failures)} rollouts could not be started")
    return ids


async def _count_paused(stack: BenchStack) -> int:
    assert stack.client is not None
    return (await stack.client.count_workflows(PAUSED_QUERY)).count


async def _approve_latency(stack: BenchStack, ids: list[str], count: int) -> list[float]:
    """Approve ``count`` paused rollouts one at a time; signal -> first canary ReplicaSet write (ms)."""
    assert stack.client is not None
    out: list[float] = []
    for wid in ids[:count]:
        handle = stack.client.get_workflow_handle(wid, result_type=RolloutStatus)
        st: RolloutStatus = await handle.query("status", result_type=RolloutStatus)
        canary = f"{st.name}-{st.canary_revision}"
        await asyncio.sleep(0.3)  # nothing of this rollout in flight when the clock starts
        cursor = stack.audit_seq()
        t0 = time.time()
        await handle.signal("approve", ApproveSignal(step=1, by="bench"))

        async def seen(cursor: int = cursor, canary: str = canary, t0: float = t0) -> dict[str, Any] | None:
            for e in stack.audit(cursor):
                if (
                    e["resource"] == "replicasets"
                    and e["name"] == canary
                    and e["verb"] in ("update", "patch")
                    and e["ts"] >= t0
                ):
                    return e
            return None

        hit = await poll(seen, timeout=60, interval=0.02, what=f"canary scale of {wid} after approve")
        out.append((hit["ts"] - t0) * 1000)
        log(f"approve {wid}: {out[-1]:.1f} ms")
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    n = args.rollouts
    names = [f"app-{i:05d}" for i in range(n)]
    real = args.cluster == "real"
    cluster = "realk8s" if real else "kubesim"
    # On the real apiserver, open watches come from its gauge, which has no client label: it is read
    # before the worker starts, and the worker's watches are the difference at the end of the window.
    async with BenchStack(
        ready_delay=args.ready_delay, metrics=True, cluster=args.cluster, workers=0 if real else 1
    ) as stack:
        if real:
            await asyncio.sleep(args.settle)
            watches_before = apiserver_open_watches(stack)
            stack.start_worker()
        await stack.create_namespace(NS)
        t = time.monotonic()
        await stack.create_deployments([deployment(NS, name, replicas=2) for name in names])
        await stack.wait_rolled_out(NS, set(names), "nginx:1.26", timeout=args.timeout, interval=1.0)
        log(f"{n} deployments x 2 ready in {time.monotonic() - t:.1f}s")
        t = time.monotonic()
        ids = await _start_all(stack, names, args.concurrency)
        log(f"{n} rollouts started in {time.monotonic() - t:.1f}s")
        deadline = time.monotonic() + args.pause_timeout
        paused = 0
        while time.monotonic() < deadline:
            paused = await _count_paused(stack)
            if paused >= n:
                break
            await asyncio.sleep(1.0)
        to_pause_s = round(time.monotonic() - t, 1)
        log(f"{paused}/{n} paused at step 1 after {to_pause_s}s")
        await asyncio.sleep(args.settle)

        # The quiet window: every rollout paused, nobody acting.
        cursor = stack.audit_seq()
        before = stack.stats()
        w0 = time.monotonic()
        await asyncio.sleep(args.window)
        after = stack.stats()
        window = time.monotonic() - w0
        in_window = [e for e in stack.audit(cursor) if _is_worker(e)]
        try:
            metrics = stack.worker_metrics(0)
        except OSError as exc:  # an overloaded worker may not answer within the timeout
            log(f"worker metrics unavailable: {exc}")
            metrics = {}
        slots_used = _slots(metrics, "ActivityWorker", "temporal_worker_task_slots_used")
        slots_available = _slots(metrics, "ActivityWorker", "temporal_worker_task_slots_available")
        # Watches the worker holds while the rollouts are paused, as kubesim counts its open streams at
        # the end of the window (the audit cannot tell: a stream the client closed stays unanswered there).
        if real:
            open_by_resource = Counter(watch_delta(apiserver_open_watches(stack), watches_before))
            worker_open_watches = sum(open_by_resource.values())
            open_watches = Counter({"rollout-worker (apiserver gauge, since its start)": worker_open_watches})
        else:
            open_now = stack.watches()
            open_watches = Counter(w["userAgent"].split(" ")[0] for w in open_now)
            worker_watches = [w for w in open_now if w["userAgent"].startswith("rollout-worker")]
            worker_open_watches = len(worker_watches)
            open_by_resource = Counter(w["resource"] for w in worker_watches)
        log(
            f"window {window:.1f}s: worker RSS {after['worker'].rss_mb} MB, "
            f"open watches {dict(open_watches)}, activity slots used {slots_used}, "
            f"worker requests {len(in_window)}"
        )

        latencies = await _approve_latency(stack, ids, min(args.approvals, paused))
        final = stack.stats()

    def per_s(name: str) -> float:
        return round((after[name].cpu_s - before[name].cpu_s) / window, 3)

    verbs = Counter(e["verb"] for e in in_window)
    watch_per_s = round(verbs.get("watch", 0) / window, 1) if not real else None
    return {
        "benchmark": "paused",
        "rollouts": n,
        "paused": paused,
        "all_paused": paused >= n,
        "to_pause_s": to_pause_s,
        "worker_rss_mb": after["worker"].rss_mb,
        "worker_peak_rss_mb": final["worker"].peak_rss_mb,
        "open_watches": worker_open_watches,
        "open_watches_by_agent": dict(open_watches),
        "worker_open_watches_by_resource": dict(open_by_resource),
        "activity_slots_used": slots_used,
        "activity_slots_available": slots_available,
        "worker_requests_per_s": round(len(in_window) / window, 1),
        # realk8s' audit log leaves watches out: not counted there.
        "worker_watch_requests_per_s": watch_per_s,
        "worker_requests_by_verb": dict(verbs),
        "cpu_s_per_s": {
            "worker": per_s("worker"),
            "temporal": per_s("temporal"),
            cluster: per_s("kubesim"),  # the cluster process, kubesim or realk8s
        },
        "approve_to_scale_ms": {
            "p50": round(pct(latencies, 50), 1) if latencies else None,
            "max": round(max(latencies), 1) if latencies else None,
            "samples": [round(x, 1) for x in latencies],
        },
        "config": {
            "cluster": args.cluster,
            "window_s": args.window,
            "settle_s": args.settle,
            "ready_delay": args.ready_delay,
            "start_concurrency": args.concurrency,
        },
        "machine": machine(),
        "targets": {"open_watches": 5, "activity_slots_used": 0, "worker_rss_mb": 400},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/paused.py", description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=100, help="number of paused rollouts (N)")
    parser.add_argument("--approvals", type=int, default=10, help="rollouts approved for the latency figure")
    parser.add_argument("--window", type=float, default=20.0, help="quiet window measured while paused (s)")
    parser.add_argument("--settle", type=float, default=5.0, help="wait after the last pause (s)")
    parser.add_argument("--ready-delay", type=float, default=0.2, help="kubesim pod ready delay (s)")
    parser.add_argument("--concurrency", type=int, default=16, help="rollout starts in flight")
    parser.add_argument("--pause-timeout", type=float, default=900, help="give up waiting for pauses (s)")
    parser.add_argument("--timeout", type=float, default=2400, help="hard bound for the whole run (s)")
    parser.add_argument(
        "--cluster",
        choices=["kubesim", "real"],
        default="kubesim",
        help="kubesim, or real: realk8s/bin/realk8s (build it with `make realk8s`)",
    )
    args = parser.parse_args(small_args(SMALL, argv))
    result = run_bounded(lambda: run(args), args.timeout)
    r = result
    summary = (
        f"{r['paused']}/{r['rollouts']} paused rollouts on {r['config']['cluster']}: "
        f"worker RSS {r['worker_rss_mb']} MB (peak {r['worker_peak_rss_mb']}), "
        f"{r['open_watches']} open worker watches, "
        f"{r['activity_slots_used']} activity slots in use, {r['worker_requests_per_s']} worker requests/s, "
        f"CPU/s {r['cpu_s_per_s']}; approve -> scale p50 {r['approve_to_scale_ms']['p50']} ms"
    )
    emit(result, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
