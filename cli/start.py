"""``rollout start``: validate everything read-only, write the new template with the caller's own
Kubernetes credentials (held, see ``cli/hold.py``), then start the workflow with a reference to that
write (or retarget the running one to it).

The flags and files are parsed once, without the cluster, into ``StartInputs``
(``cli/start_inputs.py``); the workflow input is ``kruise.spec.spec_for`` of them and the Deployment
as read. ``--replace`` supersedes a running rollout (continuous release).
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TextIO

from kubernetes.client.exceptions import ApiException
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from cli.context import (
    CommandError,
    RolloutContext,
    StartOptions,
    current_user,
    find_rollout,
    query_status,
    read_with_retry,
    running_description,
)
from cli.edge import Subparsers, Verb, add_connection_flags, new_verb_parser, said_started
from cli.hold import put_back, write_hold, write_template
from cli.inputs import apply_images
from cli.start_flags import add_start_flags, start_options
from cli.start_inputs import StartInputs
from kruise.spec import spec_for
from kube.names import HASH_LABEL
from kube.objects import containers_images, find_replica_set_for_template, template_hash, templates_equal
from workflows.checks import TrafficObjects, check_takeover, check_traffic_objects, stable_by_revision
from workflows.errors import AnalysisInputError, InputError
from workflows.model import (
    ANN_WORKFLOW_ID,
    SA_PHASE_KEY,
    SA_STEP_KEY,
    SA_TARGET_KEY,
    WORKFLOW_TYPE,
    Phase,
    RolloutSpec,
    RolloutStatus,
    RolloutTimings,
    TrafficRoutingRef,
    legacy_workflow_id,
    workflow_id_for,
)

__all__ = ["Prepared", "StartInputs", "build_spec", "check_start_inputs", "has_search_attributes", "start"]


# --- start -------------------------------------------------------------------------------------------


@dataclass
class Prepared:
    """A validated start: the workflow input (``spec.template`` is the template still to be written by
    the caller; ``start`` moves it into the cluster and leaves the reference), the Deployment as read,
    the stable revision, and the workflow ID the rollout runs under."""

    spec: RolloutSpec
    dep: dict[str, Any]
    stable_revision: str
    workflow_id: str


async def build_spec(ctx: RolloutContext, opts: StartOptions, inputs: StartInputs | None = None) -> Prepared:
    """Validate everything (read-only) and return the prepared start (``inputs``: ``opts`` parsed
    already, or None to parse them here).

    Raises:
        CommandError: for any bad input or a Deployment that cannot be rolled out now.
    """
    try:
        return await _build_spec(ctx, opts, inputs or check_start_inputs(opts, ctx.namespace))
    except InputError as exc:
        raise CommandError(str(exc)) from exc


def check_start_inputs(opts: StartOptions, namespace: str) -> StartInputs:
    """``StartInputs.parse``: the arguments and files of ``rollout start`` (no cluster, no Temporal).

    Raises:
        CommandError: with a one-line message.
    """
    try:
        return StartInputs.parse(opts, namespace)
    except (InputError, AnalysisInputError) as exc:
        raise CommandError(str(exc)) from exc


async def _get(ctx: RolloutContext, path: str) -> dict[str, Any] | None:
    try:
        result: dict[str, Any] = await read_with_retry(ctx.kube.request, "GET", path)
        return result
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise CommandError(f"cannot read {path}: {exc.reason}") from exc


async def _check_traffic_objects(ctx: RolloutContext, routing: TrafficRoutingRef) -> None:
    """``checks.check_traffic_objects`` on what the routing names, so a bad object is a one-line error.

    The workflow's ``snapshot_traffic`` runs the same check before its first write (objects may change).
    """
    ns = ctx.namespace
    core = f"/api/v1/namespaces/{ns}/services/"
    objs = TrafficObjects(
        service=await _get(ctx, core + routing.service),
        canary_service=await _get(ctx, core + routing.canary_service),
    )
    if objs.service is not None and routing.ingress is not None:
        base = f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/"
        objs.ingress = await _get(ctx, base + routing.ingress.name)
        objs.canary_ingress = await _get(ctx, base + str(routing.canary_ingress))
    if objs.service is not None and routing.gateway is not None:
        routes = f"/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes/"
        objs.http_route = await _get(ctx, routes + routing.gateway.http_route_name)
    refusal = check_traffic_objects(ns, routing, objs)
    if refusal is not None:
        raise CommandError(refusal.message)


async def _build_spec(ctx: RolloutContext, opts: StartOptions, inputs: StartInputs) -> Prepared:
    namespace = ctx.namespace
    name = inputs.name
    new_template, images = inputs.template, inputs.images

    kube = ctx.kube
    try:
        dep = await read_with_retry(kube.get_deployment, namespace, name)
    except ApiException as exc:
        if exc.status == 404:
            raise CommandError(f'deployment "{name}" not found in namespace "{namespace}"') from exc
        raise CommandError(f"cannot read deployment {namespace}/{name}: {exc.reason}") from exc
    spec = dep.get("spec") or {}
    md = dep.get("metadata") or {}
    owner = (md.get("annotations") or {}).get(ANN_WORKFLOW_ID)
    if inputs.plan.routing is not None:
        await _check_traffic_objects(ctx, inputs.plan.routing)
    if opts.replace:
        return await _replacement_spec(ctx, inputs, dep, owner, opts)
    if owner and await _closed_hold(ctx, owner, workflow_id_for(namespace, name)):
        return await _orphan_spec(ctx, inputs, dep, opts, owner)
    if owner:
        raise CommandError(
            f"deployment {namespace}/{name} is already under rollout {owner}; "
            "approve or undo it, or use --replace to supersede it with this template"
        )
    current = spec.get("template") or {}
    if new_template is None:
        new_template = apply_images(current, images, name)
    rss = await read_with_retry(kube.list_deployment_replica_sets, dep)
    refusal = check_takeover(dep, rss, new_template)
    if refusal is not None:
        raise CommandError(refusal.message)
    stable = find_replica_set_for_template(dep, rss, current)
    assert stable is not None  # check_takeover found it
    stable_revision = (stable["metadata"].get("labels") or {}).get(HASH_LABEL, "")
    spec = _spec(opts, inputs, dep, new_template, current)
    return Prepared(spec, dep, stable_revision, workflow_id_for(namespace, name))


def _spec(
    opts: StartOptions,
    inputs: StartInputs,
    dep: dict[str, Any],
    new_template: dict[str, Any],
    stable_template: dict[str, Any],
) -> RolloutSpec:
    """The workflow input (``spec_for``), with the new template until ``start`` has written it."""
    spec = spec_for(
        inputs.plan,
        dep,
        template=new_template,
        stable_images=containers_images(stable_template),
        requested_by=opts.requested_by or current_user(),
        timings=opts.timings or RolloutTimings(),
        overrides=inputs.overrides,
    )
    spec.template = new_template  # `start` writes it with the caller's credentials, then keeps the reference
    spec.notify_targets = inputs.notify
    spec.analysis, spec.step_analysis = inputs.analysis.background, inputs.analysis.steps
    spec.analysis_from_step = inputs.analysis.from_step
    return spec


async def _replacement_spec(
    ctx: RolloutContext, inputs: StartInputs, dep: dict[str, Any], owner: str | None, opts: StartOptions
) -> Prepared:
    """``start --replace``: the new template is based on the Deployment's current one (the in-flight
    canary, or another writer's edit, which ``--replace`` without --image/-f adopts)."""
    namespace, name = ctx.namespace, inputs.name
    wid = workflow_id_for(namespace, name)
    if owner == legacy_workflow_id(namespace, name):
        wid = owner  # a rollout started before rollout/<ns>/<name> IDs
    if owner != wid:
        raise CommandError(
            f"deployment {namespace}/{name} is under rollout {owner}; cannot replace it from {wid}"
            if owner
            else f"deployment {namespace}/{name} is not under a rollout; start without --replace"
        )
    current = (dep.get("spec") or {}).get("template") or {}
    new_template = inputs.template
    if new_template is None:
        new_template = apply_images(current, inputs.images, name)
    rss = await read_with_retry(ctx.kube.list_deployment_replica_sets, dep)
    stable, refusal = stable_by_revision(dep, rss)
    if stable is None:
        raise CommandError(str(refusal))
    stable_hash = (stable["metadata"].get("labels") or {}).get(HASH_LABEL, "")
    stable_template = stable["spec"]["template"]
    if templates_equal(stable_template, new_template):
        raise CommandError(
            f"the new template of {namespace}/{name} is the stable revision {stable_hash}; use `rollout undo`"
        )
    return Prepared(_spec(opts, inputs, dep, new_template, stable_template), dep, stable_hash, wid)


async def _closed_hold(ctx: RolloutContext, owner: str, wid: str) -> bool:
    """The Deployment is held by a closed run of this Deployment's workflow ID (an orphaned hold)."""
    if owner != wid:
        return False
    desc = await running_description(ctx.client.get_workflow_handle(owner))
    return desc is None or desc.status != WorkflowExecutionStatus.RUNNING


async def _orphan_spec(
    ctx: RolloutContext, inputs: StartInputs, dep: dict[str, Any], opts: StartOptions, owner: str
) -> Prepared:
    """Take over an orphaned hold: the new run keeps the hold and its stable revision, supersedes the
    closed run's canary with this template (scaled down first, as ``--replace`` does) and starts at step 1.
    ``--image`` applies to the stable template."""
    namespace, name = ctx.namespace, inputs.name
    rss = await read_with_retry(ctx.kube.list_deployment_replica_sets, dep)
    stable, refusal = stable_by_revision(dep, rss)
    if stable is None:
        raise CommandError(str(refusal))
    stable_template = copy.deepcopy(stable["spec"]["template"])
    ((stable_template.get("metadata") or {}).get("labels") or {}).pop(HASH_LABEL, None)
    new_template = inputs.template or apply_images(stable_template, inputs.images, name)
    if templates_equal(stable_template, new_template):
        raise CommandError(
            f"the new template of {namespace}/{name} is its stable revision; `rollout undo {name}` hands "
            "the held Deployment back on it"
        )
    stable_hash = (stable["metadata"].get("labels") or {}).get(HASH_LABEL, "")
    return Prepared(_spec(opts, inputs, dep, new_template, stable_template), dep, stable_hash, owner)


async def has_search_attributes(client: Client) -> bool:
    from connect import has_search_attributes  # lazy: keeps `rollout --help` light

    return await has_search_attributes(client)


async def _replace(
    ctx: RolloutContext, prep: Prepared, handle: WorkflowHandle[Any, Any], run_id: str
) -> tuple[RolloutSpec, str]:
    """Write the replacement's template (caller's credentials), then send the running rollout a
    reference to it (an update: refused synchronously if impossible, then the write is put back)."""
    spec, wid = prep.spec, handle.id
    template = spec.template
    assert template is not None
    try:
        st = await query_status(handle)
    except RPCError as exc:
        raise CommandError(f"cannot query rollout {wid} ({exc.message}); is a worker running?") from exc
    # Only the running canary's revision matters here: list by its hash label, not the namespace.
    selector = f"{HASH_LABEL}={st.canary_revision}"
    rss = await read_with_retry(ctx.kube.list_replica_sets, spec.namespace, selector)
    for rs in rss:
        labels = rs["metadata"].get("labels") or {}
        if labels.get(HASH_LABEL) == st.canary_revision and templates_equal(
            (rs.get("spec") or {}).get("template") or {}, template
        ):
            raise CommandError(f"rollout {wid} is already rolling out this template ({st.canary_revision})")
    written = await write_template(ctx, prep.dep, template)
    _to_reference(spec, written)
    try:
        await handle.execute_update(
            "replace", spec, result_type=RolloutStatus, rpc_timeout=timedelta(seconds=15)
        )
    except WorkflowUpdateFailedError as exc:
        if written is not prep.dep:
            await put_back(ctx, prep.dep, written, wid)
        raise CommandError(str(exc.cause or exc)) from exc
    return spec, run_id


def _to_reference(spec: RolloutSpec, written: dict[str, Any]) -> None:
    """The workflow input names the written template (hash, generation) and carries none itself."""
    spec.template = None
    spec.template_hash = template_hash((written.get("spec") or {}).get("template") or {})
    spec.generation = int((written.get("metadata") or {}).get("generation") or 0)


def _describe(spec: RolloutSpec) -> tuple[str, str]:
    """The run's summary and details in the Temporal UI: the image change, the steps, the next verbs."""
    steps_text = ", ".join(str(s.replicas) for s in spec.steps)
    change = (
        ", ".join(
            f"{c}: {spec.stable_images.get(c, '-')} -> {img}"
            for c, img in spec.canary_images.items()
            if spec.stable_images.get(c) != img
        )
        or "pod template change"
    )
    details = [
        f"## Rollout of deployment `{spec.target}`",
        f"- change: {change}",
        f"- steps: {steps_text}",
        f"- requested by: {spec.requested_by}",
        f"- approve: `rollout approve {spec.name} -n {spec.namespace}`",
        f"- undo: `rollout undo {spec.name} -n {spec.namespace}`",
    ]
    return f"Rollout {spec.target}: {change} in steps {steps_text}", "\n".join(details)


def _search_attributes(spec: RolloutSpec) -> TypedSearchAttributes | None:
    """A new run's search attributes (None when the server has none registered)."""
    if not spec.use_search_attributes:
        return None
    return TypedSearchAttributes(
        [
            SearchAttributePair(SA_TARGET_KEY, spec.target),
            SearchAttributePair(SA_PHASE_KEY, Phase.PROGRESSING.value),
            SearchAttributePair(SA_STEP_KEY, 0),
        ]
    )


async def start(
    ctx: RolloutContext, opts: StartOptions, inputs: StartInputs | None = None
) -> tuple[RolloutSpec, str]:
    """Validate, write the template held (caller's credentials), then start workflow
    ``rollout/<ns>/<name>`` with a reference to it; return the spec and the run ID.

    ``inputs``: ``opts`` already parsed (``check_start_inputs``), so files are read once.
    With ``opts.replace`` the running rollout is retargeted to the new template instead (continuous
    release); the run ID is the running one's.
    """
    prep = await build_spec(ctx, opts, inputs)
    spec = prep.spec
    handle, desc = await find_rollout(ctx.client, spec.namespace, spec.name)
    wid = handle.id
    running = desc is not None and desc.status == WorkflowExecutionStatus.RUNNING
    if opts.replace:
        if desc is None or not running or wid != prep.workflow_id:
            raise CommandError(f"no running rollout {prep.workflow_id} to replace; start without --replace")
        return await _replace(ctx, prep, handle, desc.run_id)
    if running:
        raise CommandError(
            f"rollout {wid} is already running for {spec.target}; approve or undo it first, "
            "or use --replace to supersede it"
        )
    wid = prep.workflow_id
    spec.use_search_attributes = await has_search_attributes(ctx.client)
    summary, details = _describe(spec)
    template = spec.template
    assert template is not None
    # The caller's credentials write the template: RBAC, Pod Security and admission judge the caller.
    written = await write_hold(ctx, prep.dep, template, wid, prep.stable_revision)
    _to_reference(spec, written)
    try:
        handle = await ctx.client.start_workflow(
            WORKFLOW_TYPE,
            spec,
            id=wid,
            task_queue=ctx.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            static_summary=summary,
            static_details=details,
            search_attributes=_search_attributes(spec),
        )
    except WorkflowAlreadyStartedError as exc:
        await put_back(ctx, prep.dep, written, wid)
        raise CommandError(
            f"rollout {wid} is already running for {spec.target}; approve or undo it first, "
            "or use --replace to supersede it"
        ) from exc
    except BaseException:
        await put_back(ctx, prep.dep, written, wid)
        raise
    return spec, handle.result_run_id or ""


# --- the `rollout start` verb: its flags (cli/start_flags.py), the check before any connection, the output


def add_parser(sub: Subparsers) -> None:
    p = new_verb_parser(sub, "start", Verb(run, check=_check), help="start a canary rollout of a Deployment")
    add_start_flags(p)
    add_connection_flags(p)


def _check(args: argparse.Namespace) -> None:
    """Bad arguments and files fail before any connection is made; the files are read once."""
    args.start_inputs = check_start_inputs(start_options(args), args.namespace or "default")


async def run(args: argparse.Namespace, ctx: RolloutContext, out: TextIO, err: TextIO) -> int:
    spec, run_id = await start(ctx, start_options(args), args.start_inputs)
    what = f"{'retargeted' if args.replace else 'started'} for {spec.target}"
    return said_started(args, ctx, (spec, run_id), what, out, spec=spec.model_dump(mode="json"))
