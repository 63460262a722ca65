"""``rollout pause|resume|abort|retry NAME`` (and ``approve --full``): one operator verb, which the
workflow judges (update validator) or, with no worker, the server's last known phase does."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from temporalio.client import WorkflowExecutionDescription, WorkflowHandle
from temporalio.service import RPCError

from cli.context import CommandError, RolloutContext, current_user, query_status
from cli.edge import Subparsers, Verb, add_cluster_flag, add_connection_flags, new_verb_parser, said
from cli.running import require_running, update_or_signal
from cli.runs import search_attribute_position
from workflows.model import ControlAction, ControlSignal, Phase

__all__ = ["VERB_FOR", "add_parser", "control", "run"]

VERB_FOR = {
    ControlAction.PROMOTE_FULL: "approve --full",
    ControlAction.PAUSE: "pause",
    ControlAction.RESUME: "resume",
    ControlAction.ABORT: "abort",
    ControlAction.RETRY: "retry",
}

_HELP = {
    "pause": "hold the rollout at its current step (also through a timed pause or a running scale)",
    "resume": "release a rollout held by `rollout pause`",
    "abort": "traffic and pods back to stable; the Deployment stays held (then retry or undo)",
    "retry": "restart an aborted rollout from step 1",
}


def add_parser(sub: Subparsers) -> None:
    for verb, text in _HELP.items():
        p = new_verb_parser(sub, verb, Verb(run), help=text)
        p.add_argument("name")
        p.add_argument("--by", default="", help="who asks (default: your user name)")
        if verb == "abort":
            p.add_argument("--reason", default="", help="why (kept in the worker log)")
        add_cluster_flag(p)
        add_connection_flags(p)


async def run(args: argparse.Namespace, ctx: RolloutContext, out: TextIO, err: TextIO) -> int:
    action = ControlAction(args.command)
    text = await control(ctx, args.name, action, by=args.by, reason=getattr(args, "reason", ""))
    return said(args, ctx, text, out)


async def control(
    ctx: RolloutContext, name: str, action: ControlAction, *, by: str = "", reason: str = ""
) -> str:
    """Send one operator verb; the workflow judges it (update validator) or, with no worker, the
    server's last known phase does and the durable ``control`` signal carries it."""
    verb = VERB_FOR[action]
    handle, desc = await require_running(ctx, name, verb)
    sig = ControlSignal(action=action, by=by or current_user(), reason=reason)
    try:
        await query_status(handle)
    except RPCError:
        return await _control_without_worker(handle, desc, sig)
    text = await update_or_signal(handle, "control_now", "control", sig, str)
    if text is None:
        return f"{verb} sent to rollout {handle.id} (no worker answered to confirm it)"
    return f"rollout {handle.id}: {text}"


async def _control_without_worker(
    handle: WorkflowHandle[Any, Any], desc: WorkflowExecutionDescription, sig: ControlSignal
) -> str:
    phase, step = search_attribute_position(desc.typed_search_attributes)
    verb, where = VERB_FOR[sig.action], f"last seen {phase.value if phase else 'unknown'} at step {step}"
    if sig.action == ControlAction.RETRY and phase not in (Phase.ABORTED, None):
        raise CommandError(f"rollout {handle.id} is not aborted ({where}); retry only restarts after abort")
    if sig.action == ControlAction.ABORT and phase == Phase.ABORTED:
        return f"rollout {handle.id} is already aborted ({where})"
    if sig.action not in (ControlAction.ABORT, ControlAction.RETRY) and phase == Phase.ABORTED:
        raise CommandError(
            f"rollout {handle.id} is aborted; `rollout retry` restarts it, `rollout undo` rolls it back"
        )
    await handle.signal("control", sig)
    return (
        f"{verb} accepted for rollout {handle.id} ({where}); no worker is running now, "
        "it takes effect when one starts"
    )
