"""The ``rollout`` commands as importable async functions (``starter.py`` is only the argv shell).

Each command validates everything it can *before* writing anything, and raises ``CommandError``
with a one-line message for bad input. Kubernetes is only read here; all writes happen in the
workflow's activities.
"""

from __future__ import annotations

import asyncio
import getpass
import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.kube import (
    HASH_LABEL,
    Kube,
    containers_images,
    find_replica_set_for_template,
    owned_replica_sets,
    templates_equal,
)
from cli.inputs import (
    InputError,
    apply_images,
    load_single_doc,
    parse_images,
    parse_kruise_rollout,
    template_from_deployment_doc,
)
from workflows import plan
from workflows.model import (
    ANN_WORKFLOW_ID,
    SA_PHASE,
    SA_STEP,
    SA_TARGET,
    TASK_QUEUE,
    WORKFLOW_TYPE,
    ApproveSignal,
    Phase,
    Reason,
    RolloutSpec,
    RolloutStatus,
    RolloutTimings,
    StepSpec,
    StepState,
    UndoSignal,
    workflow_id_for,
)

__all__ = [
    "CommandError",
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

DEFAULT_UI = "http://localhost:8233"
_QUERY_TIMEOUT = timedelta(seconds=5)


class CommandError(Exception):
    """A failed command: ``str(err)`` is the one line printed on stderr."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class RolloutContext:
    """What every command needs: the Temporal client, the Kubernetes client, the namespace."""

    client: Client
    api_client: ApiClient
    namespace: str = "default"
    task_queue: str = TASK_QUEUE
    ui_url: str = field(default_factory=lambda: os.environ.get("ROLLOUT_UI_URL", DEFAULT_UI))

    @property
    def kube(self) -> Kube:
        """Raw JSON access to the cluster."""
        return Kube(self.api_client)


@dataclass
class StartOptions:
    """Arguments of ``rollout start``."""

    name: str | None = None
    images: list[str] = field(default_factory=list)
    steps: str | None = None
    pause_duration: int | None = None
    rollout_file: str | None = None
    deployment_file: str | None = None
    failure_threshold: int | str | None = None
    requested_by: str = ""
    timings: RolloutTimings | None = None


def ui_link(ctx: RolloutContext, workflow_id: str) -> str:
    """The Temporal UI page of a rollout."""
    return f"{ctx.ui_url.rstrip('/')}/namespaces/{ctx.client.namespace}/workflows/{workflow_id}"


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return os.environ.get("USER", "unknown")


async def _read(fn: Any, *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


# --- start -------------------------------------------------------------------------------------------


async def build_spec(ctx: RolloutContext, opts: StartOptions) -> RolloutSpec:
    """Validate everything (read-only) and return the workflow input.

    Raises:
        CommandError: for any bad input or a Deployment that cannot be rolled out now.
    """
    try:
        return await _build_spec(ctx, opts)
    except InputError as exc:
        raise CommandError(str(exc)) from exc


@dataclass
class StartInputs:
    """The pure part of ``rollout start``: parsed and validated without the cluster."""

    name: str
    steps: list[StepSpec]
    failure_threshold: int | str | None
    template: dict[str, Any] | None
    images: dict[str, str]


def check_start_inputs(opts: StartOptions, namespace: str) -> StartInputs:
    """Parse and validate the arguments and files of ``rollout start`` (no cluster, no Temporal).

    Raises:
        CommandError: with a one-line message.
    """
    try:
        return _check_start_inputs(opts, namespace)
    except InputError as exc:
        raise CommandError(str(exc)) from exc


def _check_start_inputs(opts: StartOptions, namespace: str) -> StartInputs:
    name = opts.name
    failure_threshold = opts.failure_threshold
    new_template: dict[str, Any] | None = None
    if opts.rollout_file and opts.steps:
        raise CommandError("use either --steps or -r/--rollout, not both")
    if opts.rollout_file:
        kp = parse_kruise_rollout(load_single_doc(opts.rollout_file), opts.rollout_file)
        if name and name != kp.deployment:
            raise CommandError(f"{opts.rollout_file} targets deployment {kp.deployment!r}, not {name!r}")
        name = kp.deployment
        steps: list[StepSpec] = kp.steps
        if failure_threshold is None:
            failure_threshold = kp.failure_threshold
        if opts.pause_duration is not None:
            raise CommandError("--pause-duration cannot be combined with -r/--rollout (use pause.duration)")
    else:
        if opts.pause_duration is not None and opts.pause_duration < 0:
            raise CommandError("--pause-duration must be >= 0")
        try:
            steps = plan.parse_steps(opts.steps or "100%", opts.pause_duration)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
    try:
        plan.validate_steps(steps)
        plan.validate_failure_threshold(failure_threshold)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    if opts.deployment_file:
        if opts.images:
            raise CommandError("use either --image or -f/--filename, not both")
        file_name, file_ns, new_template = template_from_deployment_doc(
            load_single_doc(opts.deployment_file), opts.deployment_file
        )
        if name and name != file_name:
            raise CommandError(f"{opts.deployment_file} is deployment {file_name!r}, not {name!r}")
        if file_ns and file_ns != namespace:
            raise CommandError(f"{opts.deployment_file} is in namespace {file_ns!r}, not {namespace!r}")
        name = file_name
    elif not opts.images:
        raise CommandError("nothing to roll out: give --image CONTAINER=IMAGE or -f deployment.yaml")
    if not name:
        raise CommandError("missing deployment name")
    images = parse_images(opts.images)

    return StartInputs(name, steps, failure_threshold, new_template, images)


async def _build_spec(ctx: RolloutContext, opts: StartOptions) -> RolloutSpec:
    namespace = ctx.namespace
    inputs = check_start_inputs(opts, namespace)
    name, steps, failure_threshold = inputs.name, inputs.steps, inputs.failure_threshold
    new_template, images = inputs.template, inputs.images

    kube = ctx.kube
    try:
        dep = await _read(kube.get_deployment, namespace, name)
    except ApiException as exc:
        if exc.status == 404:
            raise CommandError(f'deployment "{name}" not found in namespace "{namespace}"') from exc
        raise CommandError(f"cannot read deployment {namespace}/{name}: {exc.reason}") from exc
    spec = dep.get("spec") or {}
    md = dep.get("metadata") or {}
    owner = (md.get("annotations") or {}).get(ANN_WORKFLOW_ID)
    if owner:
        raise CommandError(f"deployment {namespace}/{name} is already under rollout {owner}")
    replicas = int(spec.get("replicas") or 0)
    if replicas <= 0:
        raise CommandError(f"deployment {namespace}/{name} has 0 replicas; scale it up before a rollout")
    if spec.get("paused"):
        raise CommandError(
            f"deployment {namespace}/{name} is paused; resume it first (kubectl rollout resume)"
        )
    current = spec.get("template") or {}
    if new_template is None:
        new_template = apply_images(current, images, name)
    if templates_equal(current, new_template):
        raise CommandError(
            f"deployment {namespace}/{name} already runs this pod template; nothing to roll out"
        )
    rss = await _read(kube.list_replica_sets, namespace)
    stable = find_replica_set_for_template(dep, rss, current)
    active = [
        rs for rs in owned_replica_sets(dep, rss) if int((rs.get("spec") or {}).get("replicas") or 0) > 0
    ]
    if stable is None or [rs["metadata"]["name"] for rs in active] not in ([stable["metadata"]["name"]], []):
        raise CommandError(
            f"deployment {namespace}/{name} is still rolling out ({len(active)} active ReplicaSets); "
            "wait for `kubectl rollout status` to succeed"
        )
    return RolloutSpec(
        namespace=namespace,
        name=name,
        template=new_template,
        steps=steps,
        failure_threshold=failure_threshold,
        stable_images=containers_images(current),
        canary_images=containers_images(new_template),
        requested_by=opts.requested_by or _user(),
        timings=opts.timings or RolloutTimings(),
    )


async def _has_search_attributes(client: Client) -> bool:
    from worker import has_search_attributes  # lazy: keeps `rollout --help` light

    return await has_search_attributes(client)


async def _running_description(handle: WorkflowHandle[Any, Any]) -> WorkflowExecutionDescription | None:
    try:
        desc = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return desc


async def start(ctx: RolloutContext, opts: StartOptions) -> tuple[RolloutSpec, str]:
    """Validate, then start workflow ``rollout-<ns>-<name>``; return the spec and the run ID."""
    spec = await build_spec(ctx, opts)
    wid = spec.workflow_id
    desc = await _running_description(ctx.client.get_workflow_handle(wid, result_type=RolloutStatus))
    if desc is not None and desc.status == WorkflowExecutionStatus.RUNNING:
        raise CommandError(f"rollout {wid} is already running for {spec.target}; approve or undo it first")
    spec.use_search_attributes = await _has_search_attributes(ctx.client)
    steps_text = ", ".join(str(s.replicas) for s in spec.steps)
    change = (
        ", ".join(
            f"{c}: {spec.stable_images.get(c, '-')} -> {img}"
            for c, img in spec.canary_images.items()
            if spec.stable_images.get(c) != img
        )
        or "pod template change"
    )
    details = "\n".join(
        [
            f"## Rollout of deployment `{spec.target}`",
            f"- change: {change}",
            f"- steps: {steps_text}",
            f"- requested by: {spec.requested_by}",
            f"- approve: `rollout approve {spec.name} -n {spec.namespace}`",
            f"- undo: `rollout undo {spec.name} -n {spec.namespace}`",
        ]
    )
    search_attributes = None
    if spec.use_search_attributes:
        from temporalio.common import SearchAttributeKey

        search_attributes = TypedSearchAttributes(
            [
                SearchAttributePair(SearchAttributeKey.for_keyword(SA_TARGET), spec.target),
                SearchAttributePair(SearchAttributeKey.for_keyword(SA_PHASE), Phase.PROGRESSING.value),
                SearchAttributePair(SearchAttributeKey.for_int(SA_STEP), 0),
            ]
        )
    try:
        handle = await ctx.client.start_workflow(
            WORKFLOW_TYPE,
            spec,
            id=wid,
            task_queue=ctx.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            static_summary=f"Rollout {spec.target}: {change} in steps {steps_text}",
            static_details=details,
            search_attributes=search_attributes,
        )
    except WorkflowAlreadyStartedError as exc:
        raise CommandError(
            f"rollout {wid} is already running for {spec.target}; approve or undo it first"
        ) from exc
    return spec, handle.result_run_id or ""


# --- approve / undo ----------------------------------------------------------------------------------


async def _require_running(ctx: RolloutContext, name: str, verb: str) -> WorkflowHandle[Any, Any]:
    wid = workflow_id_for(ctx.namespace, name)
    handle = ctx.client.get_workflow_handle(wid, result_type=RolloutStatus)
    desc = await _running_description(handle)
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


async def _query(handle: WorkflowHandle[Any, Any]) -> RolloutStatus:
    result: RolloutStatus = await handle.query(
        "status", result_type=RolloutStatus, rpc_timeout=_QUERY_TIMEOUT
    )
    return result


async def approve(
    ctx: RolloutContext, name: str, *, step: int | None = None, by: str = "", comment: str = ""
) -> str:
    """Approve the paused step; refuse (non-zero) when the rollout is not paused at that step."""
    handle = await _require_running(ctx, name, "approve")
    try:
        st = await _query(handle)
    except RPCError as exc:
        if step is None:
            raise CommandError(
                f"cannot query rollout {handle.id} ({exc.message}); pass --step N to send the approval anyway"
            ) from exc
        await handle.signal("approve", ApproveSignal(step=step, by=by or _user(), comment=comment))
        return f"approval of step {step} sent to rollout {handle.id} (no worker answered to confirm it)"
    where = f"step {st.current_step_index}/{st.total_steps} is {st.step_state.value}"
    if st.step_state != StepState.STEP_PAUSED:
        raise CommandError(f"rollout {handle.id} is not paused ({where}); nothing to approve")
    if step is not None and step != st.current_step_index:
        raise CommandError(f"step {step} of rollout {handle.id} is not paused ({where}); nothing to approve")
    await handle.signal(
        "approve", ApproveSignal(step=st.current_step_index, by=by or _user(), comment=comment)
    )
    return f"approved step {st.current_step_index}/{st.total_steps} of rollout {handle.id}"


async def undo(ctx: RolloutContext, name: str, *, by: str = "", reason: str = "") -> str:
    """Ask the running rollout to roll back; refused once it has finished."""
    handle = await _require_running(ctx, name, "undo")
    try:
        st = await _query(handle)
    except RPCError:
        st = None  # no worker answers now; the signal is durable and acted on later
    if st is not None and (st.message == Reason.FINALISING or st.step_state == StepState.COMPLETED):
        raise CommandError(f"rollout {handle.id} is finalizing ({st.message}); undo refused")
    await handle.signal("undo", UndoSignal(by=by or _user(), reason=reason))
    return f"undo requested for rollout {handle.id}: all pods go back to the stable revision"


# --- status / list -----------------------------------------------------------------------------------


async def get_status(ctx: RolloutContext, name: str) -> RolloutStatus:
    """The rollout status: the live query, or the result of a finished rollout."""
    wid = workflow_id_for(ctx.namespace, name)
    handle = ctx.client.get_workflow_handle(wid, result_type=RolloutStatus)
    desc = await _running_description(handle)
    if desc is None:
        raise CommandError(f"no rollout found for deployment {ctx.namespace}/{name} (workflow {wid})")
    if desc.status == WorkflowExecutionStatus.COMPLETED:
        result: RolloutStatus = await handle.result()
        return result
    try:
        return await _query(handle)
    except RPCError as exc:
        raise CommandError(f"cannot query rollout {wid}: {exc.message}") from exc


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
                st = await _query(handle)
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
        dep = await _read(kube.get_deployment, ctx.namespace, name)
    except ApiException:
        return [], []
    rss = owned_replica_sets(dep, await _read(kube.list_replica_sets, ctx.namespace))
    hashes = {(rs["metadata"].get("labels") or {}).get(HASH_LABEL) for rs in rss}
    pods = [
        p
        for p in await _read(kube.list_pods, ctx.namespace)
        if (p["metadata"].get("labels") or {}).get(HASH_LABEL) in hashes
    ]
    return rss, pods
