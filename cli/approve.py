"""``rollout approve NAME [--step N] [--comment TEXT] | --full``: let the paused step go on."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from temporalio.client import WorkflowExecutionDescription, WorkflowHandle
from temporalio.service import RPCError

from cli.context import CommandError, RolloutContext, current_user, query_status
from cli.control import control
from cli.edge import Subparsers, Verb, add_cluster_flag, add_connection_flags, new_verb_parser, said
from cli.release_member import target_membership
from cli.rollout_objects import deployment_for
from cli.running import require_running, update_or_signal
from cli.runs import search_attribute_position
from workflows.model import SA_STEP, ApproveSignal, ControlAction, Phase, RolloutStatus, WaitingFor

__all__ = ["add_parser", "approve", "run"]


def add_parser(sub: Subparsers) -> None:
    p = new_verb_parser(sub, "approve", Verb(run), help="approve the paused step")
    p.add_argument("name")
    p.add_argument("--step", type=int, default=None, help="the step to approve (default: the paused one)")
    p.add_argument("--comment", default="", help="kept with the approval in status.approvals")
    p.add_argument(
        "--full",
        action="store_true",
        help="skip the remaining steps and pauses and go to 100%% (promote --full)",
    )
    p.add_argument("--by", default="", help="who approves (default: your user name)")
    add_cluster_flag(p)
    add_connection_flags(p)


async def run(args: argparse.Namespace, ctx: RolloutContext, out: TextIO, err: TextIO) -> int:
    args.name = await deployment_for(ctx, args.name)
    if args.full:
        if args.step is not None:
            raise CommandError("--full approves every remaining step; drop --step")
        text = await control(ctx, args.name, ControlAction.PROMOTE_FULL, by=args.by)
    else:
        text = await approve(ctx, args.name, step=args.step, by=args.by, comment=args.comment)
    member = await target_membership(ctx, args.name)
    if member is not None:
        text += f" ({member.text})"
    return said(args, ctx, text, out)


async def approve(
    ctx: RolloutContext, name: str, *, step: int | None = None, by: str = "", comment: str = ""
) -> str:
    """Approve the paused step; refuse (non-zero) when the rollout is not paused at that step.

    One judge: when a worker answers, the workflow's ``approve_step`` update validator accepts or
    refuses (a refusal writes nothing to history). When none answers, the step-scoped ``approve``
    signal is sent for the step the server last recorded as paused (search attributes), so a second
    approve can never skip a step: the workflow ignores an approval for any step but the paused one.
    """
    handle, desc = await require_running(ctx, name, "approve")
    try:
        st = await query_status(handle)
    except RPCError:
        return await _approve_without_worker(handle, desc, step, by or current_user(), comment)
    target = step if step is not None else st.current_step_index
    sig = ApproveSignal(step=target, by=by or current_user(), comment=comment)
    after = await update_or_signal(handle, "approve_step", "approve", sig, RolloutStatus)
    if after is None:  # the signal is durable and step-scoped
        return f"approval of step {target} sent to rollout {handle.id} (no worker answered to confirm it)"
    if after.waiting_for == WaitingFor.DRIFT:
        return f"rollout {handle.id} writes its pod template back over the outside change and goes on"
    if st.waiting_for == WaitingFor.ANALYSIS:
        return f"rollout {handle.id} goes on past the inconclusive analysis (the analysis starts over)"
    return f"approved step {target}/{after.total_steps} of rollout {handle.id}"


async def _approve_without_worker(
    handle: WorkflowHandle[Any, Any],
    desc: WorkflowExecutionDescription,
    step: int | None,
    by: str,
    comment: str,
) -> str:
    phase, seen_step = search_attribute_position(desc.typed_search_attributes)
    if step is None:
        if seen_step is None or phase is None:
            raise CommandError(
                f"no worker answers for rollout {handle.id} and the server has no {SA_STEP} search "
                "attribute to say which step is paused; pass --step N to send the approval anyway"
            )
        if phase != Phase.PAUSED:
            raise CommandError(
                f"rollout {handle.id} was last seen {phase.value} at step {seen_step}, not paused; "
                "nothing to approve (no worker is running now)"
            )
        step = seen_step
    elif phase == Phase.PAUSED and seen_step is not None and seen_step != step:
        raise CommandError(
            f"step {step} of rollout {handle.id} is not paused (step {seen_step} is, as last seen); "
            "nothing to approve"
        )
    await handle.signal("approve", ApproveSignal(step=step, by=by, comment=comment))
    return (
        f"approval of step {step} accepted for rollout {handle.id}; no worker is running now, "
        "it takes effect when one starts"
    )
