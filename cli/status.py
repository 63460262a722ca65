"""``rollout status NAME [-o json] [-w]``: the status (the live query, the result of a finished run, the
last known position when no worker answers, or an orphaned hold), the one-screen text, and the live
view (``-w``) until the rollout ends."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
from typing import Any, TextIO

from kubernetes.client.exceptions import ApiException
from temporalio.client import WorkflowExecutionDescription, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError

from cli.analysis_view import analysis_lines, merge_heartbeats
from cli.context import CommandError, RolloutContext, find_rollout, query_status, read_with_retry, ui_link
from cli.edge import Subparsers, Verb, add_cluster_flag, add_connection_flags, new_verb_parser, print_json
from cli.holds import OrphanedHold, orphaned_hold
from cli.release_member import target_membership
from cli.rollout_objects import deployment_for
from cli.runs import closed_status, failure_reason, last_known_status
from cli.view import FramePrinter, redraw_in_place, render_status, use_color, watch_exit_code
from kube.names import HASH_LABEL, LABEL_STABLE_REVISION
from kube.objects import find_replica_set_for_template, label_selector, owned_replica_sets
from workflows.model import Phase, RolloutStatus

__all__ = [
    "WATCH_INTERVAL_SECONDS",
    "QueryUnanswered",
    "add_parser",
    "cluster_view",
    "get_status",
    "run",
    "status_report",
    "status_text",
    "watch",
]


def add_parser(sub: Subparsers) -> None:
    p = new_verb_parser(sub, "status", Verb(run), help="show a rollout")
    p.add_argument("name")
    p.add_argument(
        "-w",
        "--watch",
        action="store_true",
        help="live view until the rollout ends; exit 0 Completed, 3 RolledBack, 4 Failed, 5 Aborted",
    )
    p.add_argument(
        "--no-color", action="store_true", help="no colour in the live view (also: NO_COLOR, TERM=dumb)"
    )
    add_cluster_flag(p)
    add_connection_flags(p)


async def run(args: argparse.Namespace, ctx: RolloutContext, out: TextIO, err: TextIO) -> int:
    args.name = await deployment_for(ctx, args.name)
    if args.watch and args.output != "json":
        return await watch(ctx, args.name, out, err, no_color=args.no_color)
    st, note = await status_report(ctx, args.name)
    link = ui_link(ctx, st.workflow_id)
    member = await target_membership(ctx, args.name)
    if args.output == "json":
        extra: dict[str, Any] = {"workerAnswered": not note}
        if note:
            extra["note"] = note
        if member is not None:
            extra["release"] = member.as_json()
        print_json({**st.model_dump(mode="json"), "uiUrl": link, **extra}, out)
    else:
        out.write(status_text(st, link))
        if member is not None:
            out.write(f"Release:   {member.text} (`rollout release status {member.release_id}`)\n")
        if note:
            out.write(f"Worker:    {note}\n")
    return 0


class QueryUnanswered(CommandError):
    """The rollout runs but no worker answered its status query (none running, or too slow)."""


async def get_status(ctx: RolloutContext, name: str) -> RolloutStatus:
    """The rollout status: the live query, or the result of a finished rollout."""
    handle, desc = await find_rollout(ctx.client, ctx.namespace, name, ctx.cluster)
    wid = handle.id
    if desc is None or desc.status != WorkflowExecutionStatus.RUNNING:
        hold = await orphaned_hold(ctx, name)
        if hold is not None:
            return await _orphan_status(ctx, hold, handle, desc)
    if desc is None:
        raise CommandError(f"no rollout found for deployment {ctx.namespace}/{name} (workflow {wid})")
    if desc.status != WorkflowExecutionStatus.RUNNING:
        closed = await closed_status(handle, desc)
        if closed is not None:
            return closed
    try:
        status = await query_status(handle)
    except RPCError as exc:
        raise QueryUnanswered(f"cannot query rollout {wid}: {exc.message}") from exc
    return await merge_heartbeats(ctx.client, desc, status)


async def _orphan_status(
    ctx: RolloutContext,
    hold: OrphanedHold,
    handle: WorkflowHandle[Any, Any],
    desc: WorkflowExecutionDescription | None,
) -> RolloutStatus:
    """An orphaned hold reads as phase Failed whose message says what holds it and the ways out."""
    if desc is not None:
        st = await last_known_status(ctx.client, handle, desc)
    else:
        st = RolloutStatus(namespace=hold.namespace, name=hold.name, workflow_id=hold.workflow_id)
    await _fill_counts_from_cluster(ctx, hold.name, st)
    reason = await failure_reason(handle, desc) if desc is not None else ""
    message = f"{hold.message}. It failed with: {reason}" if reason else hold.message
    st.phase, st.waiting_for, st.message = Phase.FAILED, None, message
    return st


async def status_report(ctx: RolloutContext, name: str) -> tuple[RolloutStatus, str]:
    """The status and, when no worker answered, a note saying so (the status is then the last known)."""
    try:
        return await get_status(ctx, name), ""
    except QueryUnanswered as exc:
        handle, desc = await find_rollout(ctx.client, ctx.namespace, name, ctx.cluster)
        if desc is None:  # pragma: no cover - deleted between two calls
            raise
        st = await last_known_status(ctx.client, handle, desc)
        await _fill_counts_from_cluster(ctx, name, st)
        note = (
            f"no worker is polling task queue {desc.task_queue or ctx.task_queue} ({exc}); "
            "showing the last known position; approve and undo are still accepted"
        )
        return st, note


async def _fill_counts_from_cluster(ctx: RolloutContext, name: str, st: RolloutStatus) -> None:
    """Replica counts and revisions read from the cluster (the worker is not there to report them)."""
    try:
        dep = await read_with_retry(ctx.kube.get_deployment, ctx.namespace, name)
        rss = owned_replica_sets(dep, await read_with_retry(ctx.kube.list_deployment_replica_sets, dep))
    except ApiException:
        return
    spec = dep.get("spec") or {}
    canary = find_replica_set_for_template(dep, rss, spec.get("template") or {})
    stable_hash = ((dep.get("metadata") or {}).get("labels") or {}).get(LABEL_STABLE_REVISION, "")
    stable = next(
        (rs for rs in rss if (rs["metadata"].get("labels") or {}).get(HASH_LABEL) == stable_hash), None
    )
    st.replicas = int(spec.get("replicas") or 0)
    for rs, side in ((canary, "canary"), (stable, "stable")):
        if rs is None or (side == "canary" and rs is stable):
            continue
        counts = (
            int((rs.get("spec") or {}).get("replicas") or 0),
            int((rs.get("status") or {}).get("readyReplicas") or 0),
        )
        revision = (rs["metadata"].get("labels") or {}).get(HASH_LABEL, "")
        if side == "canary":
            st.canary_replicas, st.canary_ready_replicas, st.canary_revision = *counts, revision
        else:
            st.stable_replicas, st.stable_ready_replicas, st.stable_revision = *counts, revision
    st.message = "last known position (no worker answered); replica counts read from the cluster"


async def cluster_view(ctx: RolloutContext, name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The Deployment's ReplicaSets and their pods, as raw dicts (for ``status -w``)."""
    kube = ctx.kube
    try:
        dep = await read_with_retry(kube.get_deployment, ctx.namespace, name)
    except ApiException:
        return [], []
    rss = owned_replica_sets(dep, await read_with_retry(kube.list_deployment_replica_sets, dep))
    hashes = {(rs["metadata"].get("labels") or {}).get(HASH_LABEL) for rs in rss}
    selector = label_selector((dep.get("spec") or {}).get("selector"))
    pods = [
        p
        for p in await read_with_retry(kube.list_pods, ctx.namespace, selector)
        if (p["metadata"].get("labels") or {}).get(HASH_LABEL) in hashes
    ]
    return rss, pods


# Provider text, approvers' names and comments reach this output: no escape sequence reaches the terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def status_text(st: RolloutStatus, link: str) -> str:
    lines = [
        f"Rollout:   {st.workflow_id} ({st.namespace}/{st.name})",
        f"Phase:     {st.phase.value}",
        f"Step:      {st.current_step_index}/{st.total_steps} {st.step_state.value}",
        f"Canary:    {st.canary_revision or '-'} {st.canary_replicas} pods, {st.canary_ready_replicas} ready",
        f"Stable:    {st.stable_revision or '-'} {st.stable_replicas} pods, {st.stable_ready_replicas} ready",
        f"Message:   {st.message}",
    ]
    if st.traffic:
        lines.append(f"Traffic:   {st.traffic}")
    if st.superseded_revisions:
        lines.append(f"Superseded: {', '.join(st.superseded_revisions)}")
    if st.held_by:
        lines.append(f"Held by:   {st.held_by} (`rollout resume` releases it)")
    if st.promote_full:
        lines.append("Promotion: full (remaining steps and pauses skipped)")
    analysis = analysis_lines(st.analysis)
    if analysis:
        lines.append("Analysis:")
        lines.extend(f"  {line}" for line in analysis)
    for a in st.approvals:
        lines.append(
            f"Approved:  step {a.step} by {a.by} at {a.at.isoformat()}"
            + (f": {a.comment}" if a.comment else "")
        )
    lines.append(f"Temporal UI: {link}")
    return "\n".join(_CONTROL.sub(" ", line) for line in lines) + "\n"


WATCH_INTERVAL_SECONDS = 1.0


async def watch(ctx: RolloutContext, name: str, out: TextIO, err: TextIO, *, no_color: bool) -> int:
    """The live view until the rollout is Completed, RolledBack or Failed; the exit code says which.

    On a terminal each poll redraws in place; into a pipe or a file a frame is printed only when
    the rollout or its pods changed (see ``cli.view.FramePrinter``).
    """
    isatty = out.isatty()
    color = use_color(isatty=isatty, no_color=no_color, env=os.environ)
    printer = FramePrinter(redraw=redraw_in_place(isatty=isatty, env=os.environ))
    told_waiting = False
    while True:
        try:
            st = await get_status(ctx, name)
        except QueryUnanswered as exc:
            # A worker restart must not end the watch: say so once and keep asking.
            if not told_waiting:
                err.write(f"rollout: {exc}; waiting for a worker to answer (Ctrl-C to stop)\n")
                err.flush()
                told_waiting = True
            await asyncio.sleep(WATCH_INTERVAL_SECONDS)
            continue
        link = ui_link(ctx, st.workflow_id)
        rss, pods = await cluster_view(ctx, name)
        frame = render_status(st, rss, pods, color=color, ui_url=link)
        key = render_status(st, rss, pods, color=False, ui_url=link, ages=False)
        text = printer.write(frame, key)
        if text:
            out.write(text)
            out.flush()
        code = watch_exit_code(st.phase)
        if code is not None:
            if code:
                err.write(f"rollout: {st.workflow_id} is {st.phase.value}: {st.message}\n")
            return code
        await asyncio.sleep(WATCH_INTERVAL_SECONDS)
