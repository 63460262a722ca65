"""``rollout release ...``: one durable release across Deployments and clusters (``workflows/release.py``).

    rollout release start -f release.yaml [--id ID]
    rollout release status ID [-w] [-o json]      (a tree: wave > target > step; -w exits 0/3/4/5)
    rollout release approve ID --wave W
    rollout release halt|resume ID
    rollout release abort ID [--rollback previous-waves|none]
    rollout release list [-o json]

``start`` checks every target in its cluster (the kubeconfig context named by ``cluster:``) before it
writes anything: a bad file, an unknown context, a missing Deployment, a target listed twice or one
already under a rollout is one line and nothing is written. Then it writes each target's hold with the
caller's own credentials (as ``rollout start`` does) and starts the release with references to them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import timedelta
from typing import Any, TextIO

from kubernetes.client import ApiClient
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from cli.context import CommandError, RolloutContext, current_user
from cli.edge import Subparsers, Verb, add_connection_flags, new_verb_parser
from cli.release_file import ReleaseFile, ReleaseFileError, load_release_file
from cli.release_start import describe_release, revert_release, start_release
from workflows.model import (
    RELEASE_WORKFLOW_TYPE,
    ReleaseAction,
    ReleaseApprove,
    ReleaseControl,
    ReleasePhase,
    ReleaseStatus,
    RolloutStatus,
    TargetState,
    release_workflow_id,
)

__all__ = [
    "EXIT_CODES",
    "add_parser",
    "release_status",
    "revert_release",
    "run_release",
    "start_release",
    "status_tree",
]

EXIT_CODES = {
    ReleasePhase.COMPLETED: 0,
    ReleasePhase.ROLLED_BACK: 3,
    ReleasePhase.FAILED: 4,
    ReleasePhase.ABORTED: 5,
}
MEMO_RELEASE_STATUS = (
    "releaseStatus"  # workflows.release.MEMO_RELEASE_STATUS (the CLI does not import workflows)
)
_TIMEOUT = timedelta(seconds=10)


def add_parser(sub: Subparsers) -> None:
    """Register ``rollout release`` and its verbs. It reads Temporal, and each target's cluster by its
    own kubeconfig context, so the verb itself needs no default cluster."""
    rel = new_verb_parser(
        sub,
        "release",
        Verb(run=run, kube=False, check=_check_file),
        help="a release: waves of rollouts across Deployments and clusters",
    )
    verbs = rel.add_subparsers(dest="release_verb", required=True, parser_class=type(rel))
    p = verbs.add_parser("start", help="check every target, hold them, start the release")
    p.add_argument("-f", "--filename", required=True, help="the Release YAML")
    p.add_argument("--id", default=None, help="release ID (default: metadata.name)")
    p.add_argument("--by", default="", help="who releases (default: your user name)")
    add_connection_flags(p, output=True)
    p = verbs.add_parser("status", help="a release as a tree: wave > target > step")
    p.add_argument("name")
    p.add_argument("-w", "--watch", action="store_true", help="follow until the release ends (exit 0/3/4/5)")
    add_connection_flags(p, output=True)
    p = verbs.add_parser("approve", help="open the approval gate of a wave")
    p.add_argument("name")
    p.add_argument("--wave", required=True)
    p.add_argument("--by", default="")
    add_connection_flags(p, output=True)
    for name, text in (
        ("halt", "start no new target; running targets pause at their step"),
        ("resume", "continue a halted release"),
        ("abort", "stop the release and roll back (default: every released target)"),
    ):
        p = verbs.add_parser(name, help=text)
        p.add_argument("name")
        p.add_argument("--by", default="")
        if name == "abort":
            p.add_argument("--rollback", choices=["previous-waves", "none"], default="previous-waves")
        add_connection_flags(p, output=True)
    p = verbs.add_parser(
        "revert", help="after a release ended: every target forward to its previous template"
    )
    p.add_argument("name")
    p.add_argument("--by", default="")
    add_connection_flags(p, output=True)
    p = verbs.add_parser("list", help="releases, newest first")
    add_connection_flags(p, output=True)


# --- status ------------------------------------------------------------------------------------------


async def release_status(client: Client, rid: str) -> tuple[ReleaseStatus, dict[str, RolloutStatus]]:
    """The release's status (query while it runs, the memo once it ended) and its live targets' status."""
    handle, desc = await describe_release(client, rid)
    st: ReleaseStatus | None = None
    if desc.status != WorkflowExecutionStatus.RUNNING:
        memo = await desc.memo()
        if MEMO_RELEASE_STATUS in memo:
            st = ReleaseStatus.model_validate(memo[MEMO_RELEASE_STATUS])
    if st is None:
        try:
            st = await handle.query("status", result_type=ReleaseStatus, rpc_timeout=_TIMEOUT)
        except RPCError as exc:
            raise CommandError(f"release {rid}: no worker answered ({exc.message})") from exc
    steps: dict[str, RolloutStatus] = {}
    live = (TargetState.RUNNING, TargetState.HELD)
    for w in st.waves:
        for t in w.targets:
            if t.state in live:
                try:
                    steps[t.workflow_id] = await client.get_workflow_handle(t.workflow_id).query(
                        "status", result_type=RolloutStatus, rpc_timeout=_TIMEOUT
                    )
                except RPCError:
                    pass
    return st, steps


def status_tree(st: ReleaseStatus, steps: dict[str, RolloutStatus]) -> str:
    """The tree ``rollout release status`` prints: wave > target > step."""
    lines = [
        f"Release:  {st.release_id}   {st.phase.value}   wave {st.current_wave}/{st.total_waves}",
        f"Change:   {st.change}",
        f"Message:  {st.message}",
    ]
    # One column for every target's name, so their states line up across waves.
    width = max(
        [30, *(len(f"{t.cluster}/{t.namespace}/{t.deployment}") for w in st.waves for t in w.targets)]
    )
    for i, w in enumerate(st.waves, start=1):
        extra = [f"{w.failures}/{w.max_failures} failures"]
        if w.max_parallel:
            extra.append(f"maxParallel {w.max_parallel}")
        if w.approval_required:
            extra.append(f"approved by {w.approved_by}" if w.approved_by else "approval required")
        if w.bake_seconds:
            extra.append(f"bake {w.bake_seconds:g} s")
        lines.append(f"{i}. wave {w.name:<12} {w.state.value:<16} ({', '.join(extra)})")
        for t in w.targets:
            name = f"{t.cluster}/{t.namespace}/{t.deployment}"
            lines.append(f"   - {name:<{width}} {t.state.value:<11} {t.message}")
            rs = steps.get(t.workflow_id)
            if rs is not None:
                lines.append(
                    f"       step {rs.current_step_index}/{rs.total_steps} {rs.step_state.value}: "
                    f"canary {rs.canary_ready_replicas}/{rs.canary_replicas}, "
                    f"stable {rs.stable_ready_replicas}/{rs.stable_replicas}"
                )
    return "\n".join(lines) + "\n"


def _status_json(st: ReleaseStatus, steps: dict[str, RolloutStatus]) -> dict[str, Any]:
    data = st.model_dump(mode="json")
    for w in data["waves"]:
        for t in w["targets"]:
            rs = steps.get(t["workflowId"])
            if rs is not None:
                t["rollout"] = {
                    "phase": rs.phase.value,
                    "currentStepIndex": rs.current_step_index,
                    "totalSteps": rs.total_steps,
                    "stepState": rs.step_state.value,
                }
    return data


async def _watch(client: Client, rid: str, out: TextIO, err: TextIO, json_out: bool) -> int:
    last = ""
    while True:
        st, steps = await release_status(client, rid)
        text = json.dumps(_status_json(st, steps)) + "\n" if json_out else status_tree(st, steps)
        if text != last:
            out.write(text if json_out else text + "\n")
            out.flush()
            last = text
        code = EXIT_CODES.get(st.phase)
        if code is not None:
            if code:
                err.write(f"rollout: release {rid} ended {st.phase.value}: {st.message}\n")
            return code
        await asyncio.sleep(1.0)


# --- dispatch ----------------------------------------------------------------------------------------


async def _update(client: Client, rid: str, name: str, arg: Any, result_type: type) -> Any:
    handle = client.get_workflow_handle(release_workflow_id(rid))
    try:
        return await handle.execute_update(name, arg, result_type=result_type, rpc_timeout=_TIMEOUT)
    except WorkflowUpdateFailedError as exc:
        raise CommandError(str(exc.cause or exc)) from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise CommandError(f"no running release {rid}") from exc
        raise CommandError(f"release {rid}: {exc.message}") from exc


def _check_file(args: argparse.Namespace) -> None:
    """``release start``: the Release file is read and checked before any connection is made."""
    args.release_file = None
    if args.release_verb == "start":
        try:
            args.release_file = load_release_file(args.filename)
        except ReleaseFileError as exc:
            raise CommandError(str(exc)) from exc


async def run(args: argparse.Namespace, ctx: RolloutContext, out: TextIO, err: TextIO) -> int:
    """``rollout release VERB``, connected to Temporal (start and revert also reach each cluster)."""
    return await run_release(args, ctx.client, out, err)


async def run_release(args: argparse.Namespace, client: Client, out: TextIO, err: TextIO) -> int:
    """``rollout release VERB`` on a Temporal client; the file was checked by ``_check_file``."""
    rel = args.release_file
    verb, json_out = args.release_verb, getattr(args, "output", "text") == "json"
    if verb in ("start", "revert"):
        return await _start(args, client, rel, out)
    if verb == "status":
        if args.watch:
            return await _watch(client, args.name, out, err, json_out)
        st, steps = await release_status(client, args.name)
        out.write(
            json.dumps(_status_json(st, steps), indent=2) + "\n" if json_out else status_tree(st, steps)
        )
        return 0
    if verb == "approve":
        by = args.by or current_user()
        await _update(client, args.name, "approve", ReleaseApprove(wave=args.wave, by=by), ReleaseStatus)
        text = f"wave {args.wave} of release {args.name} approved by {by}"
    elif verb in ("halt", "resume", "abort"):
        req = ReleaseControl(action=ReleaseAction(verb), by=args.by or current_user())
        if getattr(args, "rollback", "") == "none":
            req.rollback = "none"
        text = str(await _update(client, args.name, "control", req, str))
    else:
        return await _list(client, out, json_out)
    out.write(json.dumps({"release": args.name, "message": text}) + "\n" if json_out else text + "\n")
    return 0


async def _start(args: argparse.Namespace, client: Client, rel: ReleaseFile | None, out: TextIO) -> int:
    from connect import CLI_USER_AGENT, load_api_client

    apis: dict[str, ApiClient] = {}

    def api_for(cluster: str) -> ApiClient:
        if cluster not in apis:
            apis[cluster] = load_api_client(args.kubeconfig, cluster, user_agent=CLI_USER_AGENT)
        return apis[cluster]

    try:
        if rel is None:
            spec = await revert_release(client, args.name, api_for, by=args.by, task_queue=args.task_queue)
        else:
            spec = await start_release(
                client, rel, api_for, release_id=args.id or "", by=args.by, task_queue=args.task_queue
            )
    finally:
        for api in apis.values():
            api.close()
    targets = sum(len(w.targets) for w in spec.waves)
    text = (
        f"release {spec.release_id} started: {len(spec.waves)} waves, {targets} targets "
        f"(`rollout release status {spec.release_id} -w`)"
    )
    out.write(
        json.dumps({"release": spec.release_id, "message": text}) + "\n"
        if args.output == "json"
        else text + "\n"
    )
    return 0


async def _list(client: Client, out: TextIO, json_out: bool) -> int:
    rows = []
    async for wf in client.list_workflows(f'WorkflowType="{RELEASE_WORKFLOW_TYPE}"'):
        rid = wf.id.split("/", 1)[-1]
        rows.append({"release": rid, "workflowId": wf.id, "status": wf.status.name if wf.status else ""})
    if json_out:
        out.write(json.dumps(rows, indent=2) + "\n")
        return 0
    out.write(f"{'RELEASE':<30} {'TEMPORAL STATUS':<16} WORKFLOW ID\n")
    for r in rows:
        out.write(f"{r['release']:<30} {r['status']:<16} {r['workflowId']}\n")
    return 0
