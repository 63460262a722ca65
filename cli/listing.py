"""``rollout list [-o json] [-A]``: the rollouts Temporal knows (newest first), with phase and step where
they can be read; rows for closed runs that still hold their Deployment say so."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from typing import Any, TextIO

from temporalio.client import WorkflowExecution, WorkflowExecutionStatus

from cli.context import RolloutContext, query_status, ui_link
from cli.edge import Subparsers, Verb, add_connection_flags, new_verb_parser, print_json
from cli.holds import orphaned_hold
from cli.runs import closed_status, search_attribute_position
from workflows.model import SA_TARGET_KEY, WORKFLOW_TYPE, Phase, RolloutStatus, StepState

__all__ = ["add_parser", "list_rollouts", "run"]


def add_parser(sub: Subparsers) -> None:
    p = new_verb_parser(sub, "list", Verb(run, kube=False), help="list rollouts")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="rollouts of every namespace")
    add_connection_flags(p)


async def run(args: argparse.Namespace, ctx: RolloutContext, out: TextIO, err: TextIO) -> int:
    rows = await list_rollouts(ctx, all_namespaces=args.all_namespaces)
    if args.output == "json":
        print_json(rows, out)
        return 0
    out.write(f"{'WORKFLOW ID':<40} {'PHASE':<12} {'STEP':<6} {'STATE':<12} TEMPORAL UI\n")
    for r in rows:
        step = f"{r.get('currentStepIndex', '-')}/{r.get('totalSteps', '-')}"
        out.write(
            f"{r['workflowId']:<40} {r.get('phase', ''):<12} {step:<6} {r.get('stepState', '-'):<12} "
            f"{r['uiUrl']}\n"
        )
        if r.get("orphanedHold"):
            out.write(f"  ! {r['message']}\n")
    return 0


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
