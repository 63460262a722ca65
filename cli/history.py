"""``rollout history NAME [-o json] [--limit N]``: past rollouts of a Deployment, newest first, read from
Temporal alone (no worker, no kubeconfig)."""

from __future__ import annotations

import argparse
import asyncio
from typing import TextIO

from cli.context import CommandError, RolloutContext
from cli.edge import Subparsers, Verb, add_cluster_flag, add_connection_flags, new_verb_parser, print_json
from cli.runs import RunRecord, read_run
from workflows.model import WORKFLOW_TYPE, legacy_workflow_id, workflow_id_for

__all__ = ["add_parser", "history", "history_text", "run"]


def add_parser(sub: Subparsers) -> None:
    p = new_verb_parser(
        sub, "history", Verb(run, kube=False), help="past rollouts of a Deployment, newest first"
    )
    p.add_argument("name")
    p.add_argument("--limit", type=int, default=20, help="at most this many rollouts (default 20)")
    add_cluster_flag(p)
    add_connection_flags(p)


async def run(args: argparse.Namespace, ctx: RolloutContext, out: TextIO, err: TextIO) -> int:
    records = await history(ctx, args.name, limit=args.limit)
    if args.output == "json":
        print_json([r.as_json() for r in records], out)
    else:
        out.write(history_text(records))
    return 0


async def history(ctx: RolloutContext, name: str, *, limit: int = 20) -> list[RunRecord]:
    """Past and current rollouts of one Deployment from Temporal visibility, newest first.

    Each run is read from its history (input, approvals with the sender's identity, outcome), which
    the server answers without a worker.
    """
    wid = workflow_id_for(ctx.namespace, name, ctx.cluster)
    # A release target's ID names its cluster; the legacy form never did.
    legacy = wid if ctx.cluster else legacy_workflow_id(ctx.namespace, name)
    runs = [
        wf
        async for wf in ctx.client.list_workflows(
            f'WorkflowType = "{WORKFLOW_TYPE}" AND WorkflowId IN ("{wid}", "{legacy}")', limit=limit
        )
    ]
    if not runs:
        raise CommandError(f"no rollouts found for deployment {ctx.namespace}/{name} (workflow {wid})")
    runs.sort(key=lambda wf: wf.start_time, reverse=True)
    records = await asyncio.gather(*(read_run(ctx.client, wf.id, wf.run_id, wf.status) for wf in runs))
    # Runs under the legacy ID count only when their input names this Deployment.
    return [r for r in records if r.spec is None or (r.spec.namespace, r.spec.name) == (ctx.namespace, name)]


def history_text(records: list[RunRecord]) -> str:
    """``rollout history``: one line per rollout, newest first."""
    lines = [f"{'STARTED':<20} {'ENDED':<20} {'OUTCOME':<11} {'IMAGES':<30} APPROVED BY"]
    for r in records:
        stable = r.spec.stable_images if r.spec else {}
        canary = r.spec.canary_images if r.spec else {}
        images = ", ".join(f"{c}={stable.get(c, '-')}->{img}" for c, img in canary.items()) or "-"
        approvers = ", ".join(f"{a.by} (step {a.step})" if a.step else a.by for a in r.approvals) or "-"
        start = r.start.strftime("%Y-%m-%d %H:%M:%S") if r.start else "-"
        end = r.end.strftime("%Y-%m-%d %H:%M:%S") if r.end else "-"
        lines.append(f"{start:<20} {end:<20} {r.outcome:<11} {images:<30} {approvers}")
    return "\n".join(lines) + "\n"
