"""Temporal history size of a rollout with canary analysis: flat in the number of measurements.

Two groups, all variants at once on one stack (worker as a subprocess), one local web metric endpoint:

- ``healthy``: steps ``1,100%`` with a timed pause of P seconds after step 1 and background analysis
  measuring every ``--interval`` seconds (value 0.01 < 0.05): P/interval successful measurements. The
  metric's activity heartbeats them and returns only for the first value, so the history is the same
  size for 10 or 1,000 measurements.
- ``failing``: the endpoint answers 0.5 and the metric's failureLimit is L: the rollout rolls back after
  L+1 failed measurements, each one activity result in the history (so the history alone explains the
  rollback); the history grows with L, not with time.

Prints JSON (``events``, ``history_bytes``, ``measurements`` per variant; ``flat`` for the healthy group).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402
from aiohttp import web  # noqa: E402
from temporalio.api.enums.v1 import EventType  # noqa: E402

from bench.common import BenchStack, deployment, emit, log, machine, run_bounded, small_args  # noqa: E402
from cli import commands  # noqa: E402
from cli.commands import StartOptions  # noqa: E402
from cli.runs import final_status
from workflows.model import RolloutStatus  # noqa: E402

SMALL = ["--pauses", "2,6", "--failure-limits", "0,2"]


class Endpoint:
    """``GET /<name>`` answers ``{"rate": value}``; counts hits per name."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        self.hits: dict[str, int] = {}
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _get(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.hits[name] = self.hits.get(name, 0) + 1
        return web.json_response({"rate": self.values.get(name, 0.0)})

    async def __aenter__(self) -> Endpoint:
        app = web.Application()
        app.router.add_get("/{name}", self._get)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def _template(path: Path, url: str, interval: float, failure_limit: int) -> str:
    doc = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "rate"},
        "spec": {
            "metrics": [
                {
                    "name": "rate",
                    "interval": f"{interval:g}s",
                    "failureLimit": failure_limit,
                    "successCondition": "result < 0.05",
                    "provider": {"web": {"url": url, "jsonPath": "{$.rate}"}},
                }
            ]
        },
    }
    path.write_text(yaml.safe_dump(doc))
    return str(path)


async def _variant(
    stack: BenchStack, ep: Endpoint, group: str, value: int, interval: float
) -> dict[str, Any]:
    ns = f"ah-{group}-{value}"
    await stack.create_namespace(ns)
    await stack.create_deployments([deployment(ns, "app", replicas=4)])
    await stack.wait_rolled_out(ns, {"app"}, "nginx:1.26", timeout=60)  # container "app"
    ep.values[ns] = 0.01 if group == "healthy" else 0.5
    template = _template(
        stack.workdir / f"{ns}.yaml", f"{ep.url}/{ns}", interval, value if group == "failing" else 0
    )
    t0 = time.monotonic()
    spec, _ = await commands.start(
        stack.ctx(ns),
        StartOptions(
            name="app",
            images=["app=nginx:1.27"],
            steps="1,100%",
            pause_duration=value if group == "healthy" else None,
            requested_by="bench",
            analysis_files=[template],
        ),
    )
    assert stack.client is not None
    handle = stack.client.get_workflow_handle(spec.workflow_id, result_type=RolloutStatus)
    result: RolloutStatus = await final_status(handle)
    history = await handle.fetch_history()
    events = len(history.events)
    log(f"{group} {value}: {events} events, {ep.hits.get(ns, 0)} measurements, {result.phase.value}")
    return {
        "group": group,
        "pause_s" if group == "healthy" else "failure_limit": value,
        "measurements": ep.hits.get(ns, 0),
        "events": events,
        "history_bytes": sum(ev.ByteSize() for ev in history.events),
        "phase": result.phase.value,
        "event_types": dict(
            sorted(
                Counter(
                    EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in history.events
                ).items()
            )
        ),
        "wall_s": round(time.monotonic() - t0, 1),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    pauses = [int(v) for v in args.pauses.split(",")]
    limits = [int(v) for v in args.failure_limits.split(",")]
    # The endpoint listens on loopback, and the bench measures faster than the worker's 1 s default
    # minimum interval: both are the stack's worker configuration (docs/operations.md).
    worker_env = {"ROLLOUT_EGRESS_ALLOW": "127.0.0.0/8", "ROLLOUT_ANALYSIS_MIN_INTERVAL_SECONDS": "0"}
    async with BenchStack(worker_env=worker_env) as stack, Endpoint() as ep:
        rows = await asyncio.gather(
            *(_variant(stack, ep, "healthy", p, args.interval) for p in pauses),
            *(_variant(stack, ep, "failing", n, args.interval) for n in limits),
        )
    healthy_rows = sorted((r for r in rows if r["group"] == "healthy"), key=lambda r: r["measurements"])
    healthy = [r["events"] for r in healthy_rows]
    return {
        "benchmark": "analysis_history",
        "interval_s": args.interval,
        "variants": rows,
        "healthy_events_spread": max(healthy) - min(healthy),
        # Flat = no growth with the number of measurements. The tolerance is bench/history.py's: how
        # many workflow tasks a rollout takes and whether a pause's watch activity is cancelled before
        # it starts vary from run to run (a loaded machine batches fewer events per task).
        "flat": healthy[-1] <= healthy[0] + 6,
        "machine": machine(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pauses", default="5,30,120", help="healthy group: pause seconds (comma list)")
    parser.add_argument("--failure-limits", default="0,3,10", help="failing group: failureLimit values")
    parser.add_argument("--interval", type=float, default=1.0, help="measurement interval seconds (>= 1)")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(small_args(SMALL, argv))
    result = run_bounded(lambda: run(args), args.timeout)
    rows = result["variants"]
    summary = ", ".join(
        f"{r['group']} {r.get('pause_s', r.get('failure_limit'))}: {r['measurements']} meas/{r['events']} ev"
        for r in rows
    )
    emit(result, f"analysis history: {summary}; healthy flat={result['flat']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
