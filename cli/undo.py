"""``rollout undo NAME [--reason TEXT]``: roll the running rollout back to its stable revision (or hand
back a Deployment a closed rollout left held); ``--to-revision N``: with none in flight, a new rollout
to the pod template of Deployment revision N."""

from __future__ import annotations

import argparse
import copy
from typing import Any, TextIO

from kubernetes.client.exceptions import ApiException
from temporalio.client import WorkflowExecutionStatus
from temporalio.common import WorkflowIDReusePolicy
from temporalio.service import RPCError

from cli.context import (
    CommandError,
    RolloutContext,
    StartOptions,
    current_user,
    find_rollout,
    query_status,
    read_with_retry,
)
from cli.edge import (
    Subparsers,
    Verb,
    add_cluster_flag,
    add_connection_flags,
    new_verb_parser,
    said,
    said_started,
)
from cli.holds import OrphanedHold, orphaned_hold
from cli.release_member import release_membership
from cli.rollout_objects import deployment_for
from cli.running import require_running
from cli.runs import cancel_is_undo, read_run
from cli.start import has_search_attributes, start
from kube.names import ANN_REVISION, HASH_LABEL
from kube.objects import owned_replica_sets, template_hash, templates_equal
from workflows.model import (
    WORKFLOW_TYPE,
    RolloutSpec,
    StepSpec,
    StepState,
    UndoSignal,
    undo_cancel_reason,
)

__all__ = ["add_parser", "run", "undo", "undo_to_revision"]


def add_parser(sub: Subparsers) -> None:
    p = new_verb_parser(
        sub,
        "undo",
        Verb(run),
        help="roll back to the stable revision, or (--to-revision N) roll out an earlier template",
    )
    p.add_argument("name")
    p.add_argument("--reason", default="", help="why (the worker logs it with the undo)")
    p.add_argument("--by", default="", help="who asks (default: your user name)")
    p.add_argument(
        "--to-revision",
        type=int,
        default=None,
        metavar="N",
        help="with no rollout in flight: a new rollout to the pod template of Deployment revision N",
    )
    p.add_argument("--steps", default=None, help="steps of the --to-revision rollout (default 100%%)")
    add_cluster_flag(p)
    add_connection_flags(p)


async def run(args: argparse.Namespace, ctx: RolloutContext, out: TextIO, err: TextIO) -> int:
    args.name = await deployment_for(ctx, args.name)
    if args.to_revision is not None:
        if ctx.cluster:
            raise CommandError(
                "--to-revision starts a new plain rollout, not a release target's: "
                "drop --cluster (--context NAME picks the cluster)"
            )
        started = await undo_to_revision(ctx, args.name, args.to_revision, steps=args.steps, by=args.by)
        what = f"started for {started[0].target}: back to the template of revision {args.to_revision}"
        return said_started(args, ctx, started, what, out, revision=args.to_revision)
    if args.steps is not None:
        raise CommandError("--steps goes with --to-revision")
    return said(args, ctx, await undo(ctx, args.name, by=args.by, reason=args.reason), out)


async def undo(ctx: RolloutContext, name: str, *, by: str = "", reason: str = "") -> str:
    """Ask the running rollout to roll back; refused once it has finished, unless its Deployment is
    still held (an orphaned hold): then a new run hands it back."""
    hold = await orphaned_hold(ctx, name)
    if hold is not None:
        return await _undo_orphan(ctx, hold, by or current_user(), reason)
    handle, desc = await require_running(ctx, name, "undo")
    try:
        st = await query_status(handle)
    except RPCError:
        st = None  # no worker answers now; the signal is durable and acted on later
    if st is not None and (st.finalizing or st.step_state == StepState.COMPLETED):
        raise CommandError(f"rollout {handle.id} is finalizing ({st.message}); undo refused")
    who = by or current_user()
    if await cancel_is_undo(handle):
        # A cancellation request, as the UI's button and `temporal workflow cancel` send: Temporal
        # records it (reason, sender) and the run ends Canceled once the Deployment is handed back.
        await handle.cancel(reason=undo_cancel_reason(who, reason))
    else:  # a run begun before undo was a cancellation: the old signal (a cancel would only close it)
        await handle.signal("undo", UndoSignal(by=who, reason=reason))
    member = await release_membership(ctx.client, handle, desc)
    # One target of a release goes back alone; its release counts it as a failed target.
    of_release = (
        f" ({member.text}: the release counts it as a failed target and its failurePolicy applies; "
        f"`rollout release abort {member.release_id}` rolls back the whole release)"
        if member is not None
        else ""
    )
    if st is None:
        return (
            f"undo accepted for rollout {handle.id}; no worker is running now, all pods go back to "
            f"the stable revision when one starts{of_release}"
        )
    return f"undo requested for rollout {handle.id}: all pods go back to the stable revision{of_release}"


async def _undo_orphan(ctx: RolloutContext, hold: OrphanedHold, by: str, reason: str) -> str:
    """A new run under the holder's workflow ID that is undone from its first task: it takes the hold
    over as its own (no write), makes no step move, and hands the Deployment back on the stable template.

    The undo arrives with the start (a start signal), and the cancellation request records who asked, so
    the new run ends Canceled like any undo. The closed run's traffic routing is not restored.
    """
    wid = hold.workflow_id
    old = await read_run(ctx.client, wid, "", None)
    # A reference to the template the hold carries (new runs take no template in their input).
    template = (hold.deployment.get("spec") or {}).get("template") or {}
    base = old.spec or RolloutSpec(
        namespace=hold.namespace, name=hold.name, steps=[StepSpec(replicas="100%")]
    )
    spec = base.model_copy(
        update={
            "template": None,
            "template_hash": template_hash(template),
            "generation": int((hold.deployment.get("metadata") or {}).get("generation") or 0),
            "requested_by": by,
            "traffic_routing": None,
            "analysis": [],
            "step_analysis": [],
            "rollout_object": "",
            "use_search_attributes": await has_search_attributes(ctx.client),
        }
    )
    target = f"{hold.namespace}/{hold.name}"
    why = reason or f"hand back deployment {target}, held by a rollout that {hold.closed_as_text}"
    handle = await ctx.client.start_workflow(
        WORKFLOW_TYPE,
        spec,
        id=wid,
        task_queue=ctx.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,  # (signal-with-start: no FAIL conflict policy)
        static_summary=f"Undo {hold.namespace}/{hold.name}: hand back the Deployment its closed rollout held",
        start_signal="undo",
        start_signal_args=[UndoSignal(by=by, reason=why)],
    )
    await handle.cancel(reason=undo_cancel_reason(by, why))
    return (
        f"rollout {wid} {hold.closed_as_text} and left deployment {hold.namespace}/{hold.name} held; "
        f"a new run ({handle.result_run_id}) hands it back on the stable template"
    )


async def undo_to_revision(
    ctx: RolloutContext, name: str, revision: int, *, steps: str | None = None, by: str = ""
) -> tuple[RolloutSpec, str]:
    """With no rollout in flight: a new rollout to the pod template of Deployment revision ``revision``."""
    found, desc = await find_rollout(ctx.client, ctx.namespace, name, ctx.cluster)
    if desc is not None and desc.status == WorkflowExecutionStatus.RUNNING:
        raise CommandError(
            f"rollout {found.id} is in flight; `rollout undo {name}` rolls it back to its stable revision "
            "(--to-revision starts a new rollout once none runs)"
        )
    try:
        dep = await read_with_retry(ctx.kube.get_deployment, ctx.namespace, name)
    except ApiException as exc:
        if exc.status == 404:
            raise CommandError(f'deployment "{name}" not found in namespace "{ctx.namespace}"') from exc
        raise
    template = await _revision_template(ctx, dep, name, revision)
    if templates_equal((dep.get("spec") or {}).get("template") or {}, template):
        raise CommandError(
            f"deployment {ctx.namespace}/{name} already runs the template of revision {revision}; "
            "nothing to undo"
        )
    opts = StartOptions(
        name=name, steps=steps or "100%", template=template, requested_by=by or current_user()
    )
    return await start(ctx, opts)


async def _revision_template(
    ctx: RolloutContext, dep: dict[str, Any], name: str, revision: int
) -> dict[str, Any]:
    """The pod template of the Deployment's ReplicaSet of ``revision``, without its hash label."""
    rss = owned_replica_sets(dep, await read_with_retry(ctx.kube.list_deployment_replica_sets, dep))
    by_revision = {(rs["metadata"].get("annotations") or {}).get(ANN_REVISION, ""): rs for rs in rss}
    rs = by_revision.get(str(revision))
    if rs is None:
        known = ", ".join(sorted((r for r in by_revision if r), key=int)) or "none"
        raise CommandError(
            f"deployment {ctx.namespace}/{name} has no revision {revision} (revisions kept: {known})"
        )
    template: dict[str, Any] = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
    labels = (template.get("metadata") or {}).get("labels") or {}
    labels.pop(HASH_LABEL, None)
    return template
