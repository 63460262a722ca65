"""Temporal history size of one rollout as the pause and the readiness wait grow: it must stay flat.

Each variant is one Deployment of ``--replicas`` pods (RollingUpdate maxSurge 100% / maxUnavailable 0, so
every step is exactly one scale-up, one readiness wait and one scale-down) rolled out with steps
``1,50%,100%`` in its own namespace; all variants run at the same time. Three groups:

- ``pause``: timed pause (``--pause-duration P``) after steps 1 and 2, fast pods; P from ``--pauses``.
- ``approve``: manual pause after steps 1 and 2, approved D seconds after the pause began; D from
  ``--approve-after``.
- ``ready``: no pause, the new pod template carries ``kubesim.io/ready-delay: R``, so every batch waits R
  seconds for readiness (the heartbeating wait activity); R from ``--ready-delays``.

For each variant: history events (and bytes) of the finished workflow, and events per step. A group is
``flat`` when its event counts spread by at most --tolerance (default 6 = 3 per pause): a pause that ends
within about a second may cancel its replica-watch activity before it starts, which saves that activity's
STARTED/CANCELED events and sometimes one workflow task; from a few seconds on, the count is the same
whether the wait lasts 10 s or 180 s (measured) because heartbeats, polls and waiting add no events.
Readiness waits longer than the progress deadline (600 s by default) end the rollout as Failed by design.
Bounded by --timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

from temporalio.api.enums.v1 import EventType

from bench.common import (
    BenchStack,
    deployment,
    emit,
    log,
    machine,
    poll,
    run_bounded,
    small_args,
)
from cli import commands
from cli.commands import StartOptions
from workflows.model import ApproveSignal, Phase, RolloutStatus, RolloutTimings, StepState

SMALL = ["--pauses", "1", "--approve-after", "0", "--ready-delays", "0.1,1"]  # BENCH_SMALL=1 (smoke run)
STEPS = "1,50%,100%"
STEPS_COUNT = 3
ONE_WAVE = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "100%", "maxUnavailable": 0}}


def _floats(text: str) -> list[float]:
    return [float(t) for t in text.split(",") if t.strip()]


async def _variant(
    stack: BenchStack, group: str, value: float, replicas: int, timings: RolloutTimings
) -> dict[str, Any]:
    ns = f"h-{group}-{str(value).replace('.', '-')}"
    name = "app"
    await stack.create_namespace(ns)
    body = deployment(ns, name, replicas=replicas)
    body["spec"]["strategy"] = ONE_WAVE
    await stack.create_deployments([body])
    await stack.wait_rolled_out(ns, {name}, "nginx:1.26", timeout=60)
    desired = deployment(
        ns,
        name,
        replicas=replicas,
        image="nginx:1.27",
        pod_annotations={"kubesim.io/ready-delay": str(value)} if group == "ready" else None,
    )
    path = stack.workdir / f"{ns}.json"  # JSON is YAML: `rollout start -f` reads it
    path.write_text(json.dumps(desired))
    pause = int(value) if group == "pause" else (0 if group == "ready" else None)
    t0 = time.monotonic()
    spec, _ = await commands.start(
        stack.ctx(ns),
        StartOptions(
            deployment_file=str(path),
            steps=STEPS,
            pause_duration=pause,
            requested_by="bench",
            timings=timings,
        ),
    )
    assert stack.client is not None
    handle = stack.client.get_workflow_handle(spec.workflow_id, result_type=RolloutStatus)
    if group == "approve":
        for step in (1, 2):

            async def paused(step: int = step) -> bool:
                st: RolloutStatus = await handle.query("status", result_type=RolloutStatus)
                return st.step_state == StepState.STEP_PAUSED and st.current_step_index == step

            await poll(paused, timeout=120, interval=0.1, what=f"{ns} paused at step {step}")
            await asyncio.sleep(value)
            await handle.signal("approve", ApproveSignal(step=step, by="bench"))
    result: RolloutStatus = await handle.result()
    wall = time.monotonic() - t0
    history = await handle.fetch_history()
    events = len(history.events)
    kinds = Counter(EventType.Name(ev.event_type).removeprefix("EVENT_TYPE_") for ev in history.events)
    activities = Counter(
        ev.activity_task_scheduled_event_attributes.activity_type.name
        for ev in history.events
        if ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    )
    log(f"{group} {value:g}s: {events} events in {wall:.1f}s ({result.phase.value})")
    return {
        "group": group,
        "wait_s": value,
        "events": events,
        "events_per_step": round(events / STEPS_COUNT, 1),
        "history_bytes": sum(ev.ByteSize() for ev in history.events),
        "wall_s": round(wall, 1),
        "phase": result.phase.value,
        "event_types": dict(sorted(kinds.items())),
        "activities": dict(sorted(activities.items())),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    timings = RolloutTimings(poll_interval_seconds=args.poll_interval)
    variants = [("pause", v) for v in _floats(args.pauses)]
    variants += [("approve", v) for v in _floats(args.approve_after)]
    variants += [("ready", v) for v in _floats(args.ready_delays)]
    async with BenchStack(ready_delay=args.ready_delay) as stack:
        rows = await asyncio.gather(*(_variant(stack, g, v, args.replicas, timings) for g, v in variants))
        worker = stack.stats()["worker"]
    groups: dict[str, Any] = {}
    for group in ("pause", "approve", "ready"):
        counts = [r["events"] for r in rows if r["group"] == group]
        if not counts:
            continue
        # Flat: the spread stays within the tolerance (one workflow task per pause may come or go with the
        # race between a pause ending and its replica-watch activity starting; it does not grow with time).
        groups[group] = {
            "waits_s": [r["wait_s"] for r in rows if r["group"] == group],
            "events": counts,
            "spread": max(counts) - min(counts),
            "flat": max(counts) - min(counts) <= args.tolerance,
        }
    per_step = max(r["events_per_step"] for r in rows)
    return {
        "benchmark": "history",
        "steps": STEPS,
        "replicas": args.replicas,
        "rows": rows,
        "groups": groups,
        "flat": all(g["flat"] for g in groups.values()),
        "all_completed": all(r["phase"] == Phase.COMPLETED.value for r in rows),
        "max_events": max(r["events"] for r in rows),
        "max_events_per_step": per_step,
        "longest_wait_s": max(r["wait_s"] for r in rows),
        "worker_cpu_s": worker.cpu_s,
        "config": {
            "poll_interval": args.poll_interval,
            "ready_delay": args.ready_delay,
            "tolerance": args.tolerance,
        },
        "machine": machine(),
        "targets": {"events_per_step": 60, "flat": True},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pauses", default="1,10,60", help="timed pause lengths to compare (s)")
    parser.add_argument("--approve-after", default="1,30", help="manual pauses approved after these (s)")
    parser.add_argument("--ready-delays", default="0.1,10,60", help="per-pod readiness delays (s)")
    parser.add_argument("--replicas", type=int, default=4, help="replicas per Deployment")
    parser.add_argument("--ready-delay", type=float, default=0.1, help="kubesim's global ready delay (s)")
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=0.5,
        help="RolloutTimings.poll_interval_seconds (the engine's default is 0.5)",
    )
    parser.add_argument(
        "--tolerance",
        type=int,
        default=6,
        help="allowed spread of event counts within a group (default: 3 per pause, see the module doc)",
    )
    parser.add_argument("--timeout", type=float, default=900, help="hard bound for the whole run (s)")
    args = parser.parse_args(small_args(SMALL, argv))
    result = run_bounded(lambda: run(args), args.timeout)
    lines = [f"history events per rollout ({STEPS}, {args.replicas} replicas):"]
    for name, g in result["groups"].items():
        pairs = ", ".join(f"{w:g}s: {e}" for w, e in zip(g["waits_s"], g["events"], strict=True))
        lines.append(f"  {name:8} {pairs}  -> {'flat' if g['flat'] else 'GROWS'} (spread {g['spread']})")
    lines.append(
        f"  max {result['max_events']} events = {result['max_events_per_step']} per step (target <= 60)"
    )
    emit(result, "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
