"""The ``rollout`` commands as importable async functions (``starter.py`` is only the argv shell).

Each command validates everything it can *before* writing anything, and raises ``CommandError``
with a one-line message for bad input. Kubernetes is only read here; all writes happen in the
workflow's activities. ``start`` lives in ``cli/start.py``, shared types in ``cli/context.py``;
both are re-exported here.
"""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException
from temporalio.client import WorkflowExecutionDescription, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError

from cli.context import (
    DEFAULT_UI,
    CommandError,
    RolloutContext,
    StartOptions,
    current_user,
    query_status,
    read_with_retry,
    running_description,
    ui_link,
)
from cli.start import StartInputs, build_spec, check_start_inputs, start
from kube.names import HASH_LABEL
from kube.objects import label_selector, owned_replica_sets
from workflows.model import (
    WORKFLOW_TYPE,
    ApproveSignal,
    RolloutStatus,
    StepState,
    UndoSignal,
    WaitingFor,
    workflow_id_for,
)

__all__ = [
    "DEFAULT_UI",
    "CommandError",
    "QueryUnanswered",
    "RolloutContext",
    "StartOptions",
    "approve",
    "build_spec",
    "check_start_inputs",
    "StartInputs",
    "cluster_view",
    "get_status",
    "list_rollouts",
    "start",
    "ui_link",
    "undo",
]


# --- approve / undo ----------------------------------------------------------------------------------


async def _require_running(ctx: RolloutContext, name: str, verb: str) -> WorkflowHandle[Any, Any]:
    wid = workflow_id_for(ctx.namespace, name)
    handle = ctx.client.get_workflow_handle(wid, result_type=RolloutStatus)
    desc = await running_description(handle)
    if desc is None:
        raise CommandError(f"no rollout found for deployment {ctx.namespace}/{name} (workflow {wid})")
    if desc.status != WorkflowExecutionStatus.RUNNING:
        phase = await _closed_phase(handle, desc)
        raise CommandError(f"rollout {wid} already finished ({phase}); nothing to {verb}")
    return handle


async def _closed_phase(handle: WorkflowHandle[Any, Any], desc: WorkflowExecutionDescription) -> str:
    if desc.status == WorkflowExecutionStatus.COMPLETED:
        try:
            result: RolloutStatus = await handle.result()
            return result.phase.value
        except Exception:  # noqa: BLE001 - fall back to the execution status
            pass
    return desc.status.name.capitalize() if desc.status else "closed"


async def approve(
    ctx: RolloutContext, name: str, *, step: int | None = None, by: str = "", comment: str = ""
) -> str:
    """Approve the paused step; refuse (non-zero) when the rollout is not paused at that step."""
    handle = await _require_running(ctx, name, "approve")
    try:
        st = await query_status(handle)
    except RPCError as exc:
        if step is None:
            raise CommandError(
                f"cannot query rollout {handle.id} ({exc.message}); pass --step N to send the approval anyway"
            ) from exc
        await handle.signal("approve", ApproveSignal(step=step, by=by or current_user(), comment=comment))
        return f"approval of step {step} sent to rollout {handle.id} (no worker answered to confirm it)"
    where = f"step {st.current_step_index}/{st.total_steps} is {st.step_state.value}"
    if st.step_state != StepState.STEP_PAUSED:
        raise CommandError(f"rollout {handle.id} is not paused ({where}); nothing to approve")
    if step is not None and step != st.current_step_index:
        raise CommandError(f"step {step} of rollout {handle.id} is not paused ({where}); nothing to approve")
    await handle.signal(
        "approve", ApproveSignal(step=st.current_step_index, by=by or current_user(), comment=comment)
    )
    if st.waiting_for == WaitingFor.DRIFT:
        return f"rollout {handle.id} writes its pod template back over the outside change and goes on"
    return f"approved step {st.current_step_index}/{st.total_steps} of rollout {handle.id}"


async def undo(ctx: RolloutContext, name: str, *, by: str = "", reason: str = "") -> str:
    """Ask the running rollout to roll back; refused once it has finished."""
    handle = await _require_running(ctx, name, "undo")
    try:
        st = await query_status(handle)
    except RPCError:
        st = None  # no worker answers now; the signal is durable and acted on later
    if st is not None and (st.finalizing or st.step_state == StepState.COMPLETED):
        raise CommandError(f"rollout {handle.id} is finalizing ({st.message}); undo refused")
    await handle.signal("undo", UndoSignal(by=by or current_user(), reason=reason))
    return f"undo requested for rollout {handle.id}: all pods go back to the stable revision"


# --- status / list -----------------------------------------------------------------------------------


class QueryUnanswered(CommandError):
    """The rollout runs but no worker answered its status query (none running, or too slow)."""


async def get_status(ctx: RolloutContext, name: str) -> RolloutStatus:
    """The rollout status: the live query, or the result of a finished rollout."""
    wid = workflow_id_for(ctx.namespace, name)
    handle = ctx.client.get_workflow_handle(wid, result_type=RolloutStatus)
    desc = await running_description(handle)
    if desc is None:
        raise CommandError(f"no rollout found for deployment {ctx.namespace}/{name} (workflow {wid})")
    if desc.status == WorkflowExecutionStatus.COMPLETED:
        result: RolloutStatus = await handle.result()
        return result
    try:
        return await query_status(handle)
    except RPCError as exc:
        raise QueryUnanswered(f"cannot query rollout {wid}: {exc.message}") from exc


async def list_rollouts(ctx: RolloutContext, *, all_namespaces: bool = False) -> list[dict[str, Any]]:
    """Rollouts known to Temporal (newest first), with phase and step where they can be read."""
    prefix = "rollout-" if all_namespaces else f"rollout-{ctx.namespace}-"
    rows: list[dict[str, Any]] = []
    async for wf in ctx.client.list_workflows(f'WorkflowType = "{WORKFLOW_TYPE}"'):
        if not wf.id.startswith(prefix):
            continue
        row: dict[str, Any] = {
            "workflowId": wf.id,
            "runId": wf.run_id,
            "executionStatus": wf.status.name if wf.status else "",
            "startTime": wf.start_time.isoformat() if wf.start_time else None,
            "uiUrl": ui_link(ctx, wf.id),
        }
        handle = ctx.client.get_workflow_handle(wf.id, run_id=wf.run_id, result_type=RolloutStatus)
        try:
            if wf.status == WorkflowExecutionStatus.RUNNING:
                st = await query_status(handle)
            elif wf.status == WorkflowExecutionStatus.COMPLETED:
                st = await handle.result()
            else:
                st = None
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
        else:
            row.update(
                phase="Failed" if wf.status == WorkflowExecutionStatus.FAILED else row["executionStatus"]
            )
        rows.append(row)
    return rows


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
