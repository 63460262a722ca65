"""Approve-to-scale latency: from sending ``approve`` to kubesim receiving the canary scale write.

One Deployment of ``approvals + command_approvals + 2`` replicas is rolled out with steps ``1,2,...``
(each a manual pause), so every approval makes exactly one canary scale write (the last one is
finalize's scale to full).
For each approval the benchmark waits until the rollout is paused with the batch ready, notes the wall clock,
sends the ``approve`` signal (``WorkflowHandle.signal``, what ``rollout approve`` ends with), and reads the
kubesim audit log for the first ``update``/``patch`` of the canary ReplicaSet after it; the latency is that
entry's arrival ``ts`` minus the send time (same machine, same clock).

Baseline in the same run: the same ``kubernetes`` client patching a standalone ReplicaSet's ``spec.replicas``
directly (request sent -> audit ``ts``), ``--baseline`` times.

Also reported: the full ``rollout approve`` command function (describe + status query + the
``approve_step`` update, whose validator judges the approval) as
``command_p50_ms`` (and ``command_to_scale_p50_ms``), over ``--command-approvals`` further steps, kept out of
the signal samples.

JSON keys: p50_ms, p95_ms, max_ms, baseline_p50_ms, ratio_p50, samples (plus details). Bounded by --timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from bench.common import (
    BenchStack,
    Kube,
    deployment,
    emit,
    log,
    machine,
    pct,
    poll,
    run_bounded,
    small_args,
)
from cli import commands
from cli.commands import StartOptions
from workflows.model import ApproveSignal, Phase, RolloutStatus, RolloutTimings, StepState

NS = "bench-approve"
# BENCH_SMALL=1 (smoke run)
SMALL = ["--approvals", "3", "--command-approvals", "1", "--baseline", "3", "--settle", "0.05"]
NAME = "app"


def _scale_write_after(entries: list[dict[str, Any]], rs_name: str, t0: float) -> dict[str, Any] | None:
    for e in entries:
        if (
            e["resource"] == "replicasets"
            and e["name"] == rs_name
            and e["verb"] in ("update", "patch")
            and e["ts"] >= t0
        ):
            return e
    return None


async def _wait_paused(handle: Any, step: int, timeout: float) -> RolloutStatus:
    async def check() -> RolloutStatus | None:
        st: RolloutStatus = await handle.query("status", result_type=RolloutStatus)
        if (
            st.phase == Phase.PAUSED
            and st.step_state == StepState.STEP_PAUSED
            and st.current_step_index == step
        ):
            return st
        return None

    return await poll(check, timeout=timeout, interval=0.05, what=f"pause at step {step}")


async def _baseline(stack: BenchStack, count: int) -> list[float]:
    """The same client writing a standalone ReplicaSet's replicas directly: request -> audit ts (ms)."""
    kube = stack.kube
    body = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "baseline", "namespace": NS},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "baseline"}},
            "template": {
                "metadata": {"labels": {"app": "baseline"}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.26"}]},
            },
        },
    }
    await asyncio.to_thread(kube.create_replica_set, NS, body)
    cursor = stack.audit_seq()
    out: list[float] = []
    for i in range(count):
        t0 = time.time()
        await asyncio.to_thread(
            kube.request,
            "PATCH",
            Kube.replica_set_path(NS, "baseline"),
            {"spec": {"replicas": (i + 1) % 2}},
            content_type="application/merge-patch+json",
        )
        entries = stack.audit(cursor)
        cursor = max((e["seq"] for e in entries), default=cursor)
        hit = _scale_write_after(entries, "baseline", t0)
        if hit is not None:
            out.append((hit["ts"] - t0) * 1000)
        await asyncio.sleep(0.02)
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    approvals = args.approvals
    total = approvals + args.command_approvals
    async with BenchStack(ready_delay=args.ready_delay, cluster=args.cluster) as stack:
        await stack.create_namespace(NS)
        await stack.create_deployments([deployment(NS, NAME, replicas=total + 2)])
        await stack.wait_rolled_out(NS, {NAME}, "nginx:1.26", timeout=60)
        ctx = stack.ctx(NS)
        steps = ",".join(str(i) for i in range(1, total + 1))
        timings = RolloutTimings(poll_interval_seconds=args.poll_interval)
        spec, _ = await commands.start(
            ctx,
            StartOptions(
                name=NAME, images=["app=nginx:1.27"], steps=steps, requested_by="bench", timings=timings
            ),
        )
        assert stack.client is not None
        handle = stack.client.get_workflow_handle(spec.workflow_id, result_type=RolloutStatus)
        samples: list[float] = []
        command_ms: list[float] = []
        command_to_scale_ms: list[float] = []
        canary_rs = ""
        cursor = stack.audit_seq()
        for step in range(1, total + 1):
            st = await _wait_paused(handle, step, timeout=60)
            canary_rs = canary_rs or f"{NAME}-{st.canary_revision}"
            # Let the pause settle (watch activity started, no write in flight) before the clock starts.
            await asyncio.sleep(args.settle)
            entries = stack.audit(cursor)
            cursor = max((e["seq"] for e in entries), default=cursor)
            via_command = step > approvals
            t0 = time.time()
            if via_command:
                # The whole `rollout approve` command function: describe + status query + update.
                await commands.approve(ctx, NAME, step=step, by="bench")
                command_ms.append((time.time() - t0) * 1000)
            else:
                await handle.signal("approve", ApproveSignal(step=step, by="bench"))

            async def scale_seen(
                t0: float = t0, cursor: int = cursor, rs: str = canary_rs
            ) -> dict[str, Any] | None:
                return _scale_write_after(stack.audit(cursor), rs, t0)

            hit = await poll(scale_seen, timeout=30, interval=0.02, what=f"canary scale after approve {step}")
            latency = (hit["ts"] - t0) * 1000
            (command_to_scale_ms if via_command else samples).append(latency)
            log(f"approve {step}/{total}{' (command)' if via_command else ''}: {latency:.1f} ms")
        result: RolloutStatus = await asyncio.wait_for(handle.result(), 120)
        events = await stack.history_events(spec.workflow_id)
        baseline = await _baseline(stack, args.baseline)
        worker = stack.stats()["worker"]
    p50 = pct(samples, 50)
    base50 = pct(baseline, 50)
    return {
        "benchmark": "approve_latency",
        "samples": len(samples),
        "p50_ms": round(p50, 1),
        "p95_ms": round(pct(samples, 95), 1),
        "max_ms": round(max(samples), 1),
        "min_ms": round(min(samples), 1),
        "baseline_p50_ms": round(base50, 2),
        "baseline_p95_ms": round(pct(baseline, 95), 2),
        "baseline_samples": len(baseline),
        "ratio_p50": round(p50 / base50, 1) if base50 > 0 else None,
        "command_p50_ms": round(pct(command_ms, 50), 1) if command_ms else None,
        "command_samples": len(command_ms),
        "command_to_scale_p50_ms": round(pct(command_to_scale_ms, 50), 1) if command_to_scale_ms else None,
        "samples_ms": [round(s, 1) for s in samples],
        "final_phase": result.phase.value,
        "history_events": events,
        "worker_cpu_s": worker.cpu_s,
        "worker_peak_rss_mb": worker.peak_rss_mb,
        "config": {
            "cluster": args.cluster,
            "approvals": approvals,
            "ready_delay": args.ready_delay,
            "poll_interval": args.poll_interval,
            "command_approvals": args.command_approvals,
        },
        "machine": machine(),
        "targets": {"p50_ms": 50, "p95_ms": 150},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--approvals", type=int, default=30, help="approvals to time (steps 1..N; max 50)")
    parser.add_argument("--baseline", type=int, default=30, help="direct ReplicaSet writes for the baseline")
    parser.add_argument("--ready-delay", type=float, default=0.05, help="kubesim pod ready delay (s)")
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=0.5,
        help="RolloutTimings.poll_interval_seconds (the engine's default is 0.5)",
    )
    parser.add_argument("--settle", type=float, default=0.3, help="quiet time before each approve (s)")
    parser.add_argument(
        "--command-approvals",
        type=int,
        default=10,
        help="extra approvals sent through the `rollout approve` command function (timed apart)",
    )
    parser.add_argument("--timeout", type=float, default=600, help="hard bound for the whole run (s)")
    parser.add_argument(
        "--cluster",
        choices=["kubesim", "real"],
        default="kubesim",
        help="kubesim, or real: realk8s/bin/realk8s (build it with `make realk8s`)",
    )
    args = parser.parse_args(small_args(SMALL, argv))
    if not 1 <= args.approvals + args.command_approvals <= 50 or args.approvals < 1:
        parser.error("--approvals + --command-approvals must be 1..50 (Kruise allows at most 50 steps)")
    result = run_bounded(lambda: run(args), args.timeout)
    summary = (
        f"approve -> canary scale write: p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, "
        f"max {result['max_ms']} ms over {result['samples']} approvals; direct client write p50 "
        f"{result['baseline_p50_ms']} ms (ratio {result['ratio_p50']}x); "
        f"history {result['history_events']} events"
    )
    emit(result, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
