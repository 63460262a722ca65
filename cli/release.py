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
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TextIO

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from cli.context import CommandError, RolloutContext, current_user, read_with_retry
from cli.edge import Subparsers, Verb, add_connection_flags, new_verb_parser
from cli.hold import put_back, write_hold
from cli.inputs import apply_images
from cli.release_file import ReleaseFile, ReleaseFileError, approval_of, load_release_file
from kube.names import ANN_WORKFLOW_ID, HASH_LABEL
from kube.objects import containers_images, find_replica_set_for_template, template_hash, templates_equal
from workflows.checks import check_takeover
from workflows.errors import InputError
from workflows.model import (
    DEFAULT_PROGRESS_DEADLINE_SECONDS,
    RELEASE_WORKFLOW_TYPE,
    SA_RELEASE_ID_KEY,
    TASK_QUEUE,
    FailurePolicy,
    ReleaseAction,
    ReleaseApprove,
    ReleaseControl,
    ReleasePhase,
    ReleaseSpec,
    ReleaseStatus,
    ReleaseTarget,
    ReleaseTargetRun,
    ReleaseWaveSpec,
    RolloutSpec,
    RolloutStatus,
    RolloutTimings,
    StepSpec,
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


# --- start -------------------------------------------------------------------------------------------


@dataclass
class _Target:
    """One checked target: what to write and the child's input."""

    ctx: RolloutContext
    dep: dict[str, Any]
    template: dict[str, Any]
    stable_revision: str
    run: ReleaseTargetRun


async def _check_target(
    ctx: RolloutContext, rel: ReleaseFile, wave_index: int, target_index: int, client: Client
) -> _Target:
    wave = rel.spec.waves[wave_index]
    t = wave.targets[target_index]
    images = rel.spec.change.images
    return await _check(
        ctx,
        t,
        wave.name,
        rel.wave_steps(wave),
        rel.spec.defaults.progress_deadline,
        client,
        lambda current: apply_images(current, images, t.deployment),
    )


async def _check(
    ctx: RolloutContext,
    t: ReleaseTarget,
    wave_name: str,
    steps: list[StepSpec],
    progress_deadline: float | None,
    client: Client,
    template_of: Callable[[dict[str, Any]], dict[str, Any]],
) -> _Target:
    """One target's checks (read-only) and its child's input; ``template_of(current)`` is the new template."""
    where = f"target {t.key} (wave {wave_name})"
    try:
        dep: dict[str, Any] = await read_with_retry(ctx.kube.get_deployment, t.namespace, t.deployment)
    except ApiException as exc:
        if exc.status == 404:
            raise CommandError(f"{where}: deployment {t.namespace}/{t.deployment} not found") from exc
        raise CommandError(f"{where}: cannot read deployment: {exc.reason}") from exc
    owner = ((dep.get("metadata") or {}).get("annotations") or {}).get(ANN_WORKFLOW_ID)
    if owner:
        raise CommandError(f"{where}: deployment is already under rollout {owner}")
    try:
        desc = await client.get_workflow_handle(t.workflow_id).describe()
        if desc.status == WorkflowExecutionStatus.RUNNING:
            raise CommandError(f"{where}: rollout {t.workflow_id} is already running")
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
    current = (dep.get("spec") or {}).get("template") or {}
    try:
        template = template_of(current)
    except InputError as exc:
        raise CommandError(f"{where}: {exc}") from exc
    rss = await read_with_retry(ctx.kube.list_deployment_replica_sets, dep)
    refusal = check_takeover(dep, rss, template)
    if refusal is not None:
        raise CommandError(f"{where}: {refusal.message}")
    stable = find_replica_set_for_template(dep, rss, current)
    assert stable is not None  # check_takeover found it
    deadline = progress_deadline or int(
        (dep.get("spec") or {}).get("progressDeadlineSeconds") or DEFAULT_PROGRESS_DEADLINE_SECONDS
    )
    spec = RolloutSpec(
        namespace=t.namespace,
        name=t.deployment,
        steps=steps,
        stable_images=containers_images(current),
        canary_images=containers_images(template),
        progress_deadline_seconds=int(deadline),
        auto_rollback=True,
        timings=RolloutTimings(),
        cluster=t.cluster,
        hold_until_released=True,
    )
    run = ReleaseTargetRun(
        target=t,
        rollout=spec,
        stable_rs=stable["metadata"]["name"],
        original_strategy=(dep.get("spec") or {}).get("strategy") or {"type": "RollingUpdate"},
    )
    return _Target(ctx, dep, template, (stable["metadata"].get("labels") or {}).get(HASH_LABEL, ""), run)


async def _not_running(client: Client, rid: str) -> None:
    try:
        desc = await client.get_workflow_handle(release_workflow_id(rid)).describe()
        if desc.status == WorkflowExecutionStatus.RUNNING:
            raise CommandError(f"release {rid} is already running")
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise


def _contexts(
    client: Client, api_for: Callable[[str], ApiClient]
) -> Callable[[ReleaseTarget], RolloutContext]:
    apis: dict[str, ApiClient] = {}

    def ctx_for(t: ReleaseTarget) -> RolloutContext:
        if t.cluster not in apis:
            apis[t.cluster] = api_for(t.cluster)
        return RolloutContext(client=client, api_client=apis[t.cluster], namespace=t.namespace)

    return ctx_for


async def start_release(
    client: Client,
    rel: ReleaseFile,
    api_for: Callable[[str], ApiClient],
    *,
    release_id: str = "",
    by: str = "",
    task_queue: str = TASK_QUEUE,
    timings: RolloutTimings | None = None,
) -> ReleaseSpec:
    """Check every target, write every hold (caller's credentials), start ``release/<id>``.

    ``api_for(cluster)`` is the Kubernetes client of a kubeconfig context; ``timings`` (tests) shortens
    the children's polls. Nothing is written unless every target passes; a failed start puts back the
    holds it wrote.
    """
    rid = release_id or rel.name
    await _not_running(client, rid)
    ctx_for = _contexts(client, api_for)
    checked: list[list[_Target]] = []
    for wi, wave in enumerate(rel.spec.waves):
        checked.append(
            [await _check_target(ctx_for(t), rel, wi, ti, client) for ti, t in enumerate(wave.targets)]
        )
    waves = [
        ReleaseWaveSpec(
            name=w.name,
            targets=[],
            bake_seconds=w.bake,
            max_parallel=w.max_parallel,
            max_failures=w.max_failures,
            approval=approval_of(w),
        )
        for w in rel.spec.waves
    ]
    change = ", ".join(f"{c}={img}" for c, img in rel.spec.change.images.items())
    return await _write_and_start(
        client, rid, checked, waves, rel.spec.failure_policy, change, by, task_queue, timings
    )


async def _write_and_start(
    client: Client,
    rid: str,
    checked: list[list[_Target]],
    waves: list[ReleaseWaveSpec],
    policy: FailurePolicy,
    change: str,
    by: str,
    task_queue: str,
    timings: RolloutTimings | None,
) -> ReleaseSpec:
    """Write every checked target's hold, then start the release (holds put back if it does not start)."""
    from connect import has_search_attributes  # lazy: keeps `rollout --help` light

    use_sa = await has_search_attributes(client, release=True)
    requested = by or current_user()
    written: list[tuple[_Target, dict[str, Any]]] = []
    try:
        for row in checked:
            for tg in row:
                wrote = await write_hold(
                    tg.ctx, tg.dep, tg.template, tg.run.target.workflow_id, tg.stable_revision
                )
                written.append((tg, wrote))
                spec = tg.run.rollout
                spec.template_hash = template_hash((wrote.get("spec") or {}).get("template") or {})
                spec.generation = int((wrote.get("metadata") or {}).get("generation") or 0)
                spec.release_id, spec.requested_by = rid, requested
                spec.use_search_attributes = use_sa
                if timings is not None:
                    spec.timings = timings
        spec_out = ReleaseSpec(
            release_id=rid,
            waves=[
                w.model_copy(update={"targets": [tg.run for tg in row]})
                for w, row in zip(waves, checked, strict=True)
            ],
            failure_policy=policy,
            change=change,
            requested_by=requested,
            use_search_attributes=use_sa,
            task_queue=task_queue,
        )
        attrs = TypedSearchAttributes([SearchAttributePair(SA_RELEASE_ID_KEY, rid)]) if use_sa else None
        await client.start_workflow(
            RELEASE_WORKFLOW_TYPE,
            spec_out,
            id=release_workflow_id(rid),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            static_summary=f"Release {rid}: {change} in {len(waves)} waves",
            static_details=_details(rid, spec_out),
            search_attributes=attrs,
        )
    except WorkflowAlreadyStartedError as exc:
        await _put_back_all(written)
        raise CommandError(f"release {rid} is already running") from exc
    except BaseException:
        await _put_back_all(written)
        raise
    return spec_out


def _fixed(template: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda _current: template


async def revert_release(
    client: Client,
    rid: str,
    api_for: Callable[[str], ApiClient],
    *,
    by: str = "",
    task_queue: str = TASK_QUEUE,
    timings: RolloutTimings | None = None,
) -> ReleaseSpec:
    """After release ``rid`` ended: a new release ``<rid>-revert`` that rolls every target still on the
    release's template forward to its recorded previous one (the pre-release ReplicaSet's template),
    newest wave first, with the same steps, no bake, no approval."""
    handle = client.get_workflow_handle(release_workflow_id(rid))
    try:
        desc = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise CommandError(f"no release {rid}") from exc
        raise
    if desc.status == WorkflowExecutionStatus.RUNNING:
        raise CommandError(f"release {rid} is still running; `rollout release abort {rid}` rolls it back")
    old: ReleaseSpec | None = None
    async for event in handle.fetch_history_events(page_size=1):
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        old = client.data_converter.payload_converter.from_payloads(list(payloads), [ReleaseSpec])[0]
        break
    assert old is not None
    new_id = f"{rid}-revert"
    await _not_running(client, new_id)
    ctx_for = _contexts(client, api_for)
    checked: list[list[_Target]] = []
    waves: list[ReleaseWaveSpec] = []
    for wave in reversed(old.waves):
        row = []
        for run in wave.targets:
            ctx = ctx_for(run.target)
            try:
                previous = await read_with_retry(
                    ctx.kube.get_replica_set, run.target.namespace, run.stable_rs
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise
                raise CommandError(
                    f"target {run.target.key}: its pre-release ReplicaSet {run.stable_rs} is gone"
                ) from exc
            template = copy.deepcopy(previous["spec"]["template"])
            (template.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
            dep = await read_with_retry(ctx.kube.get_deployment, run.target.namespace, run.target.deployment)
            if templates_equal((dep.get("spec") or {}).get("template") or {}, template):
                continue  # already on its previous template (rolled back, or never started)
            row.append(
                await _check(
                    ctx,
                    run.target,
                    wave.name,
                    run.rollout.steps,
                    run.rollout.progress_deadline_seconds,
                    client,
                    _fixed(template),
                )
            )
        if row:
            checked.append(row)
            waves.append(ReleaseWaveSpec(name=wave.name, targets=[], max_parallel=wave.max_parallel))
    if not checked:
        raise CommandError(f"release {rid}: every target already runs its pre-release template")
    change = f"revert of release {rid}"
    return await _write_and_start(
        client, new_id, checked, waves, FailurePolicy(), change, by, task_queue, timings
    )


async def _put_back_all(written: list[tuple[_Target, dict[str, Any]]]) -> None:
    for tg, wrote in written:
        await put_back(tg.ctx, tg.dep, wrote, tg.run.target.workflow_id)


def _details(rid: str, spec: ReleaseSpec) -> str:
    lines = [f"## Release `{rid}`", f"- change: {spec.change}", f"- requested by: {spec.requested_by}"]
    for w in spec.waves:
        gate = ", approval" if w.approval.required else ""
        lines.append(f"- wave **{w.name}** (bake {w.bake_seconds:g} s{gate}):")
        lines.extend(f"  - `{t.target.key}`" for t in w.targets)
    lines.append(f"- status: `rollout release status {rid}`")
    return "\n".join(lines)


# --- status ------------------------------------------------------------------------------------------


async def release_status(client: Client, rid: str) -> tuple[ReleaseStatus, dict[str, RolloutStatus]]:
    """The release's status (query while it runs, the memo once it ended) and its live targets' status."""
    handle = client.get_workflow_handle(release_workflow_id(rid))
    try:
        desc = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise CommandError(f"no release {rid}") from exc
        raise
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
            lines.append(f"   - {t.cluster}/{t.namespace}/{t.deployment:<20} {t.state.value:<11} {t.message}")
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
