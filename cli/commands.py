"""The ``rollout`` commands as importable async functions (``starter.py`` is only the argv shell).

Each command validates everything it can *before* writing anything, and raises ``CommandError``
with a one-line message for bad input. Kubernetes is only read here; all writes happen in the
workflow's activities. ``start`` lives in ``cli/start.py``, shared types in ``cli/context.py``;
both are re-exported here.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from datetime import timedelta
from typing import Any

from kubernetes.client.exceptions import ApiException
from temporalio.client import (
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from cli.analysis_view import merge_heartbeats
from cli.context import (
    DEFAULT_UI,
    CommandError,
    RolloutContext,
    StartOptions,
    current_user,
    find_rollout,
    query_status,
    read_with_retry,
    ui_link,
)
from cli.holds import OrphanedHold, orphaned_hold
from cli.runs import (
    RunRecord,
    cancel_is_undo,
    closed_status,
    failure_reason,
    last_known_status,
    read_run,
    search_attribute_position,
)
from cli.start import StartInputs, build_spec, check_start_inputs, has_search_attributes, start
from kube.names import ANN_REVISION, HASH_LABEL, LABEL_STABLE_REVISION
from kube.objects import (
    find_replica_set_for_template,
    label_selector,
    owned_replica_sets,
    template_hash,
    templates_equal,
)
from workflows.contract import Refusal
from workflows.model import (
    SA_STEP,
    SA_TARGET_KEY,
    WORKFLOW_TYPE,
    ApproveSignal,
    ControlAction,
    ControlSignal,
    Phase,
    RolloutSpec,
    RolloutStatus,
    StepSpec,
    StepState,
    UndoSignal,
    WaitingFor,
    legacy_workflow_id,
    undo_cancel_reason,
    workflow_id_for,
)

__all__ = [
    "DEFAULT_UI",
    "CommandError",
    "QueryUnanswered",
    "RolloutContext",
    "StartOptions",
    "approve",
    "control",
    "undo_to_revision",
    "build_spec",
    "check_start_inputs",
    "StartInputs",
    "cluster_view",
    "get_status",
    "history",
    "list_rollouts",
    "start",
    "status_report",
    "ui_link",
    "undo",
]


# --- approve / undo ----------------------------------------------------------------------------------

# How long approve waits for a worker to accept the update before it falls back to the signal.
_UPDATE_TIMEOUT = timedelta(seconds=8)


async def _require_running(
    ctx: RolloutContext, name: str, verb: str
) -> tuple[WorkflowHandle[Any, Any], WorkflowExecutionDescription]:
    handle, desc = await find_rollout(ctx.client, ctx.namespace, name)
    wid = handle.id
    if desc is None:
        raise CommandError(f"no rollout found for deployment {ctx.namespace}/{name} (workflow {wid})")
    if desc.status != WorkflowExecutionStatus.RUNNING:
        phase = await _closed_phase(handle, desc)
        raise CommandError(f"rollout {wid} already finished ({phase}); nothing to {verb}")
    return handle, desc


async def _closed_phase(handle: WorkflowHandle[Any, Any], desc: WorkflowExecutionDescription) -> str:
    try:
        st = await closed_status(handle, desc)
        if st is not None:
            return st.phase.value
    except Exception:  # noqa: BLE001 - fall back to the execution status
        pass
    return desc.status.name.capitalize() if desc.status else "closed"


async def approve(
    ctx: RolloutContext, name: str, *, step: int | None = None, by: str = "", comment: str = ""
) -> str:
    """Approve the paused step; refuse (non-zero) when the rollout is not paused at that step.

    One judge: when a worker answers, the workflow's ``approve_step`` update validator accepts or
    refuses (a refusal writes nothing to history). When none answers, the step-scoped ``approve``
    signal is sent for the step the server last recorded as paused (search attributes), so a second
    approve can never skip a step: the workflow ignores an approval for any step but the paused one.
    """
    handle, desc = await _require_running(ctx, name, "approve")
    try:
        st = await query_status(handle)
    except RPCError:
        return await _approve_without_worker(handle, desc, step, by or current_user(), comment)
    target = step if step is not None else st.current_step_index
    sig = ApproveSignal(step=target, by=by or current_user(), comment=comment)
    try:
        after: RolloutStatus = await handle.execute_update(
            "approve_step", sig, result_type=RolloutStatus, rpc_timeout=_UPDATE_TIMEOUT
        )
    except WorkflowUpdateFailedError as exc:
        raise CommandError(_refusal(exc)) from exc
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        # The worker went away after answering the query: the signal is durable and step-scoped.
        await handle.signal("approve", sig)
        return f"approval of step {target} sent to rollout {handle.id} (no worker answered to confirm it)"
    if after.waiting_for == WaitingFor.DRIFT:
        return f"rollout {handle.id} writes its pod template back over the outside change and goes on"
    if st.waiting_for == WaitingFor.ANALYSIS:
        return f"rollout {handle.id} goes on past the inconclusive analysis (the analysis starts over)"
    return f"approved step {target}/{after.total_steps} of rollout {handle.id}"


def _refusal(exc: WorkflowUpdateFailedError) -> str:
    """The validator's own sentence (not ``ValueError: ...``)."""
    cause = exc.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause or exc)


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


async def undo(ctx: RolloutContext, name: str, *, by: str = "", reason: str = "") -> str:
    """Ask the running rollout to roll back; refused once it has finished, unless its Deployment is
    still held (an orphaned hold): then a new run hands it back."""
    hold = await orphaned_hold(ctx, name)
    if hold is not None:
        return await _undo_orphan(ctx, hold, by or current_user(), reason)
    handle, _ = await _require_running(ctx, name, "undo")
    try:
        st = await query_status(handle)
    except RPCError:
        st = None  # no worker answers now; the signal is durable and acted on later
    if st is not None and (st.finalizing or st.step_state == StepState.COMPLETED):
        raise CommandError(Refusal.FINALIZING.format(wid=handle.id, message=st.message))
    who = by or current_user()
    if await cancel_is_undo(handle):
        # A cancellation request, as the UI's button and `temporal workflow cancel` send: Temporal
        # records it (reason, sender) and the run ends Canceled once the Deployment is handed back.
        await handle.cancel(reason=undo_cancel_reason(who, reason))
    else:  # a run begun before undo was a cancellation: the old signal (a cancel would only close it)
        await handle.signal("undo", UndoSignal(by=who, reason=reason))
    if st is None:
        return (
            f"undo accepted for rollout {handle.id}; no worker is running now, all pods go back to "
            "the stable revision when one starts"
        )
    return f"undo requested for rollout {handle.id}: all pods go back to the stable revision"


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


# --- approve --full, pause, resume, abort, retry --------------------------------------------------------

VERB_FOR = {
    ControlAction.PROMOTE_FULL: "approve --full",
    ControlAction.PAUSE: "pause",
    ControlAction.RESUME: "resume",
    ControlAction.ABORT: "abort",
    ControlAction.RETRY: "retry",
}


async def control(
    ctx: RolloutContext, name: str, action: ControlAction, *, by: str = "", reason: str = ""
) -> str:
    """Send one operator verb; the workflow judges it (update validator) or, with no worker, the
    server's last known phase does and the durable ``control`` signal carries it."""
    verb = VERB_FOR[action]
    handle, desc = await _require_running(ctx, name, verb)
    sig = ControlSignal(action=action, by=by or current_user(), reason=reason)
    try:
        await query_status(handle)
    except RPCError:
        return await _control_without_worker(handle, desc, sig)
    try:
        text: str = await handle.execute_update(
            "control_now", sig, result_type=str, rpc_timeout=_UPDATE_TIMEOUT
        )
    except WorkflowUpdateFailedError as exc:
        raise CommandError(_refusal(exc)) from exc
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        await handle.signal("control", sig)
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
        raise CommandError(Refusal.ABORTED.format(wid=handle.id))
    await handle.signal("control", sig)
    return (
        f"{verb} accepted for rollout {handle.id} ({where}); no worker is running now, "
        "it takes effect when one starts"
    )


async def undo_to_revision(
    ctx: RolloutContext, name: str, revision: int, *, steps: str | None = None, by: str = ""
) -> tuple[RolloutSpec, str]:
    """With no rollout in flight: a new rollout to the pod template of Deployment revision ``revision``."""
    found, desc = await find_rollout(ctx.client, ctx.namespace, name)
    wid = found.id
    if desc is not None and desc.status == WorkflowExecutionStatus.RUNNING:
        raise CommandError(
            f"rollout {wid} is in flight; `rollout undo {name}` rolls it back to its stable revision "
            "(--to-revision starts a new rollout once none runs)"
        )
    kube = ctx.kube
    try:
        dep = await read_with_retry(kube.get_deployment, ctx.namespace, name)
    except ApiException as exc:
        if exc.status == 404:
            raise CommandError(f'deployment "{name}" not found in namespace "{ctx.namespace}"') from exc
        raise
    rss = owned_replica_sets(dep, await read_with_retry(kube.list_deployment_replica_sets, dep))
    by_revision = {(rs["metadata"].get("annotations") or {}).get(ANN_REVISION, ""): rs for rs in rss}
    rs = by_revision.get(str(revision))
    if rs is None:
        known = ", ".join(sorted((r for r in by_revision if r), key=int)) or "none"
        raise CommandError(
            f"deployment {ctx.namespace}/{name} has no revision {revision} (revisions kept: {known})"
        )
    template = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
    labels = (template.get("metadata") or {}).get("labels") or {}
    labels.pop(HASH_LABEL, None)
    if templates_equal((dep.get("spec") or {}).get("template") or {}, template):
        raise CommandError(
            f"deployment {ctx.namespace}/{name} already runs the template of revision {revision}; "
            "nothing to undo"
        )
    opts = StartOptions(
        name=name, steps=steps or "100%", template=template, requested_by=by or current_user()
    )
    return await start(ctx, opts)


# --- status / list -----------------------------------------------------------------------------------


class QueryUnanswered(CommandError):
    """The rollout runs but no worker answered its status query (none running, or too slow)."""


async def get_status(ctx: RolloutContext, name: str) -> RolloutStatus:
    """The rollout status: the live query, or the result of a finished rollout."""
    handle, desc = await find_rollout(ctx.client, ctx.namespace, name)
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
        handle, desc = await find_rollout(ctx.client, ctx.namespace, name)
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


def _row_from_search_attributes(wf: WorkflowExecution) -> dict[str, Any]:
    phase, step = search_attribute_position(wf.typed_search_attributes)
    row: dict[str, Any] = {}
    if phase is not None:
        row["phase"] = phase.value
        row["stepState"] = StepState.STEP_PAUSED.value if phase == Phase.PAUSED else "-"
    if step is not None:
        row["currentStepIndex"] = step
    row["workerAnswered"] = False
    return row


async def _list_row(ctx: RolloutContext, wf: WorkflowExecution) -> dict[str, Any]:
    row: dict[str, Any] = {
        "workflowId": wf.id,
        "runId": wf.run_id,
        "executionStatus": wf.status.name if wf.status else "",
        "startTime": wf.start_time.isoformat() if wf.start_time else None,
        "uiUrl": ui_link(ctx, wf.id),
    }
    handle = ctx.client.get_workflow_handle(wf.id, run_id=wf.run_id, result_type=RolloutStatus)
    st: RolloutStatus | None
    try:
        if wf.status == WorkflowExecutionStatus.RUNNING:
            st = await query_status(handle)
        else:
            st = await closed_status(handle, wf)
    except Exception:  # noqa: BLE001 - a listing never fails on one unreadable rollout
        st = None
    if st is not None:
        row.update(
            namespace=st.namespace,
            name=st.name,
            phase=st.phase.value,
            currentStepIndex=st.current_step_index,
            totalSteps=st.total_steps,
            stepState=st.step_state.value,
            message=st.message,
        )
    elif wf.status == WorkflowExecutionStatus.RUNNING:
        row.update(_row_from_search_attributes(wf))
    else:
        row.update(phase="Failed" if wf.status == WorkflowExecutionStatus.FAILED else row["executionStatus"])
    return row


async def list_rollouts(ctx: RolloutContext, *, all_namespaces: bool = False) -> list[dict[str, Any]]:
    """Rollouts known to Temporal (newest first), with phase and step where they can be read.

    Running rollouts are queried concurrently; when no worker answers, a row shows the phase and
    step from the search attributes instead (so ``list`` works with every worker down).
    """
    # New IDs are rollout/<ns>/<name>; older ones rollout-<ns>-<name> (ambiguous: checked on their row).
    ns = ctx.namespace
    prefixes = ("rollout/", "rollout-") if all_namespaces else (f"rollout/{ns}/", f"rollout-{ns}-")
    found = [
        wf
        async for wf in ctx.client.list_workflows(f'WorkflowType = "{WORKFLOW_TYPE}"')
        if wf.id.startswith(prefixes)
    ]
    rows = list(await asyncio.gather(*(_list_row(ctx, wf) for wf in found)))
    await asyncio.gather(*(_mark_orphan(ctx, wf, row) for wf, row in _newest_closed(found, rows)))
    # A legacy ID shared by two targets (shop/prod-web, shop-prod/web) lists under its own namespace only.
    return [r for r in rows if all_namespaces or r.get("namespace", ctx.namespace) == ctx.namespace]


def _newest_closed(
    found: list[WorkflowExecution], rows: list[dict[str, Any]]
) -> list[tuple[WorkflowExecution, dict[str, Any]]]:
    """The newest run of each workflow ID that has no running run: the ones that may hold a Deployment."""
    newest: dict[str, tuple[WorkflowExecution, dict[str, Any]]] = {}
    running = {wf.id for wf in found if wf.status == WorkflowExecutionStatus.RUNNING}
    for wf, row in zip(found, rows, strict=True):
        if wf.id in running or row.get("phase") in (Phase.COMPLETED.value, Phase.ROLLED_BACK.value):
            continue
        seen = newest.get(wf.id)
        if seen is None or (wf.start_time and seen[0].start_time and wf.start_time > seen[0].start_time):
            newest[wf.id] = (wf, row)
    return list(newest.values())


async def _mark_orphan(ctx: RolloutContext, wf: WorkflowExecution, row: dict[str, Any]) -> None:
    """A closed run whose Deployment is still held: phase Failed, and a message that says so."""
    namespace, name = str(row.get("namespace") or ""), str(row.get("name") or "")
    if not namespace or not name:
        namespace, _, name = str(wf.typed_search_attributes.get(SA_TARGET_KEY) or "").partition("/")
    if not namespace or not name:
        return
    hold = await orphaned_hold(dataclasses.replace(ctx, namespace=namespace), name)
    if hold is not None and hold.workflow_id == wf.id:
        row.update(namespace=namespace, name=name, phase=Phase.FAILED.value, message=hold.message)
        row["orphanedHold"] = True


async def history(ctx: RolloutContext, name: str, *, limit: int = 20) -> list[RunRecord]:
    """Past and current rollouts of one Deployment from Temporal visibility, newest first.

    Each run is read from its history (input, approvals with the sender's identity, outcome), which
    the server answers without a worker.
    """
    wid, legacy = workflow_id_for(ctx.namespace, name), legacy_workflow_id(ctx.namespace, name)
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
