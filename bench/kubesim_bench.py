"""kubesim capacity benchmark: controller convergence, large lists and watch fan-out over the real HTTP API.

Starts its own kubesim subprocess (``kubesim.testing.start_kubesim``) and measures:

1. ``converge``: create D Deployments x R replicas (concurrently over HTTP) and wait until every one reports
   ``availableReplicas == R``; the time is compared with the ready delay (target: within 2x).
2. ``list``: ``GET /api/v1/pods`` of all D x R pods, timed end to end including JSON decoding (target < 1 s).
3. ``watch``: W watchers stream pods; P pods are then patched and every watcher must see every change; reports
   events delivered and delivery latency (time from sending the PATCH to the watcher reading the event).

Prints one JSON object on stdout and a human summary on stderr. Not a test: run it by hand or from CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from kubesim.testing import start_kubesim

REPO = Path(__file__).resolve().parents[1]

NAMESPACE = "bench"


def _deployment(i: int, replicas: int) -> dict[str, Any]:
    name = f"app-{i:04d}"
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [{"name": "app", "image": "nginx:1.26", "ports": [{"containerPort": 80}]}]
                },
            },
        },
    }


def _cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of a process (Linux /proc), so results stay comparable on a busy machine."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


async def _check(resp: aiohttp.ClientResponse) -> Any:
    body = await resp.read()
    if resp.status >= 400:
        raise RuntimeError(f"{resp.method} {resp.url} -> {resp.status}: {body[:300]!r}")
    return json.loads(body) if body else None


async def converge(
    session: aiohttp.ClientSession,
    url: str,
    deployments: int,
    replicas: int,
    concurrency: int,
    timeout: float,
) -> dict[str, Any]:
    """Create the Deployments and wait until all are fully available.

    Completion is observed through one watch on Deployments (not by polling lists, which would load kubesim
    with megabyte-sized responses and blur the measurement)."""
    sem = asyncio.Semaphore(concurrency)
    async with session.get(f"{url}/apis/apps/v1/namespaces/{NAMESPACE}/deployments") as resp:
        rv = (await _check(resp))["metadata"]["resourceVersion"]
    available: set[str] = set()
    all_available = asyncio.Event()
    events = 0

    async def watch() -> None:
        nonlocal events
        params = {"watch": "true", "resourceVersion": rv, "timeoutSeconds": str(int(timeout))}
        async with session.get(
            f"{url}/apis/apps/v1/namespaces/{NAMESPACE}/deployments",
            params=params,
            timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
        ) as resp:
            async for line in resp.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = event.get("object") or {}
                name = (obj.get("metadata") or {}).get("name")
                if event.get("type") not in ("ADDED", "MODIFIED") or not name:
                    continue
                events += 1
                status = obj.get("status") or {}
                if status.get("availableReplicas") == replicas and status.get("updatedReplicas") == replicas:
                    available.add(name)
                else:
                    available.discard(name)
                if len(available) == deployments:
                    all_available.set()
                    return

    async def create(i: int) -> None:
        async with sem:
            async with session.post(
                f"{url}/apis/apps/v1/namespaces/{NAMESPACE}/deployments", json=_deployment(i, replicas)
            ) as resp:
                await _check(resp)

    watcher = asyncio.create_task(watch())
    start = time.monotonic()
    await asyncio.gather(*(create(i) for i in range(deployments)))
    created = time.monotonic()
    try:
        await asyncio.wait_for(all_available.wait(), max(1.0, timeout - (created - start)))
    except TimeoutError:
        watcher.cancel()
        raise RuntimeError(
            f"only {len(available)}/{deployments} deployments available after {timeout}s"
        ) from None
    done = time.monotonic()
    await watcher
    return {
        "deployments": deployments,
        "replicasEach": replicas,
        "pods": deployments * replicas,
        "createSeconds": round(created - start, 3),
        "convergeSeconds": round(done - start, 3),
        "convergeAfterCreateSeconds": round(done - created, 3),
        "deploymentEventsWatched": events,
    }


async def list_pods(session: aiohttp.ClientSession, url: str, rounds: int) -> dict[str, Any]:
    """Time full pod lists (request, transfer and JSON decoding)."""
    times = []
    count = 0
    size = 0
    for _ in range(rounds):
        t0 = time.monotonic()
        async with session.get(f"{url}/api/v1/pods") as resp:
            raw = await resp.read()
        count = len(json.loads(raw)["items"])
        times.append((time.monotonic() - t0) * 1000)
        size = len(raw)
    return {
        "items": count,
        "bytes": size,
        "rounds": rounds,
        "minMs": round(min(times), 1),
        "medianMs": round(statistics.median(times), 1),
        "maxMs": round(max(times), 1),
    }


async def fan_out(session: aiohttp.ClientSession, url: str, watchers: int, probes: int) -> dict[str, Any]:
    """W pod watchers; patch P pods and measure how every watcher receives every change."""
    async with session.get(f"{url}/api/v1/namespaces/{NAMESPACE}/pods?limit={probes}") as resp:
        listed = await _check(resp)
    rv = listed["metadata"]["resourceVersion"]
    names = [p["metadata"]["name"] for p in listed["items"]][:probes]
    sent: dict[str, float] = {}
    received: list[dict[str, float]] = [{} for _ in range(watchers)]
    counts = [0] * watchers
    ready = asyncio.Event()
    opened = 0

    async def watcher(idx: int) -> None:
        nonlocal opened
        async with session.get(
            f"{url}/api/v1/namespaces/{NAMESPACE}/pods",
            params={"watch": "true", "resourceVersion": rv, "timeoutSeconds": "120"},
            timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
        ) as resp:
            opened += 1
            if opened == watchers:
                ready.set()
            async for line in resp.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("type") != "MODIFIED":
                    continue
                counts[idx] += 1
                seq = (event["object"]["metadata"].get("annotations") or {}).get("bench/probe")
                if seq is not None and seq not in received[idx]:
                    received[idx][seq] = time.monotonic()
                if len(received[idx]) == len(names):
                    return

    tasks = [asyncio.create_task(watcher(i)) for i in range(watchers)]
    await asyncio.wait_for(ready.wait(), 30)
    await asyncio.sleep(0.2)  # let every stream reach its live phase
    t0 = time.monotonic()
    for i, name in enumerate(names):
        sent[str(i)] = time.monotonic()
        async with session.patch(
            f"{url}/api/v1/namespaces/{NAMESPACE}/pods/{name}",
            data=json.dumps({"metadata": {"annotations": {"bench/probe": str(i)}}}),
            headers={"Content-Type": "application/merge-patch+json"},
        ) as resp:
            await _check(resp)
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
    except TimeoutError:
        for task in tasks:
            task.cancel()
    elapsed = time.monotonic() - t0
    latencies = [(at - sent[seq]) * 1000 for rec in received for seq, at in rec.items()]
    delivered = sum(len(rec) for rec in received)
    return {
        "watchers": watchers,
        "patches": len(names),
        "expected": watchers * len(names),
        "delivered": delivered,
        "modifiedEventsSeen": sum(counts),
        "eventsPerSecond": round(delivered / elapsed, 1) if elapsed else 0.0,
        "latencyMs": {
            "p50": round(_pct(latencies, 50), 1),
            "p95": round(_pct(latencies, 95), 1),
            "max": round(max(latencies, default=0.0), 1),
        },
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kubesim-bench-") as tmp:
        sim = start_kubesim(Path(tmp), ready_delay=args.ready_delay)
        try:
            conn = aiohttp.TCPConnector(limit=args.concurrency + args.watchers + 5)
            async with aiohttp.ClientSession(
                sim.url, connector=conn, timeout=aiohttp.ClientTimeout(total=300)
            ) as session:
                async with session.post(
                    "/api/v1/namespaces",
                    json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
                ) as resp:
                    await _check(resp)
                cpu0 = _cpu_seconds(sim.pid)
                conv = await converge(
                    session, "", args.deployments, args.replicas, args.concurrency, args.timeout
                )
                conv["kubesimCpuSeconds"] = round(_cpu_seconds(sim.pid) - cpu0, 2)
                conv["readyDelaySeconds"] = args.ready_delay
                conv["convergeOverReadyDelay"] = (
                    round(conv["convergeSeconds"] / args.ready_delay, 2) if args.ready_delay else None
                )
                conv["targetMet"] = bool(args.ready_delay) and conv["convergeSeconds"] <= 2 * args.ready_delay
                cpu0 = _cpu_seconds(sim.pid)
                listing = await list_pods(session, "", args.list_rounds)
                per_list = (_cpu_seconds(sim.pid) - cpu0) / args.list_rounds
                listing["kubesimCpuSecondsPerList"] = round(per_list, 3)
                listing["targetMet"] = listing["medianMs"] < 1000
                watching = await fan_out(session, "", args.watchers, args.probes)
        finally:
            sim.stop()
    return {"benchmark": "kubesim", "converge": conv, "list": listing, "watch": watching}


def summary(result: dict[str, Any]) -> str:
    c, li, w = result["converge"], result["list"], result["watch"]
    lat = w["latencyMs"]
    converge_ok = "met" if c["targetMet"] else "MISSED"
    list_ok = "met" if li["targetMet"] else "MISSED"
    return "\n".join(
        [
            f"converge: {c['deployments']} deployments x {c['replicasEach']} = {c['pods']} pods ready in "
            f"{c['convergeSeconds']}s (creates {c['createSeconds']}s; ready delay {c['readyDelaySeconds']}s, "
            f"ratio {c['convergeOverReadyDelay']}, target <= 2: {converge_ok}; kubesim CPU "
            f"{c['kubesimCpuSeconds']}s)",
            f"list:     {li['items']} pods, {li['bytes'] / 1e6:.1f} MB, median {li['medianMs']} ms "
            f"(min {li['minMs']}, max {li['maxMs']}; target < 1000 ms: {list_ok})",
            f"watch:    {w['watchers']} watchers x {w['patches']} patches: delivered "
            f"{w['delivered']}/{w['expected']}, latency p50 {lat['p50']} ms, p95 {lat['p95']} ms, "
            f"max {lat['max']} ms",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--deployments", type=int, default=500, help="number of Deployments")
    parser.add_argument("--replicas", type=int, default=10, help="replicas per Deployment")
    parser.add_argument(
        "--ready-delay",
        type=float,
        default=5.0,
        help="kubesim --ready-delay (seconds from container start to Ready)",
    )
    parser.add_argument("--watchers", type=int, default=20, help="concurrent pod watchers")
    parser.add_argument("--probes", type=int, default=200, help="pods patched during the watch fan-out")
    parser.add_argument("--list-rounds", type=int, default=5, help="timed full pod lists")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent create requests")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up converging after this")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    print(summary(result), file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
