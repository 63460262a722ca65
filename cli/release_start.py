"""``rollout release start`` and ``revert``: check every target on its own cluster, write every hold with the
caller's credentials (as ``rollout start`` does), then start the release workflow; put the holds back
if the start fails."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from cli.context import CommandError, RolloutContext, current_user, read_with_retry
from cli.hold import put_back, write_hold
from cli.inputs import apply_images
from cli.release_file import ReleaseFile, approval_of, wave_analysis
from kube.names import ANN_WORKFLOW_ID, HASH_LABEL
from kube.objects import containers_images, find_replica_set_for_template, template_hash, templates_equal
from workflows.checks import check_takeover
from workflows.errors import AnalysisInputError, InputError
from workflows.model import (
    DEFAULT_PROGRESS_DEADLINE_SECONDS,
    RELEASE_WORKFLOW_TYPE,
    SA_RELEASE_ID_KEY,
    TASK_QUEUE,
    AnalysisSpec,
    FailurePolicy,
    ReleaseInput,
    ReleaseTarget,
    ReleaseTargetRun,
    ReleaseWaveSpec,
    RolloutSpec,
    RolloutTimings,
    StepSpec,
    release_workflow_id,
)

__all__ = ["revert_release", "start_release"]

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
    ctx: RolloutContext,
    rel: ReleaseFile,
    wave_index: int,
    target_index: int,
    client: Client,
    analysis: list[AnalysisSpec],
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
        analysis,
    )


async def _check(
    ctx: RolloutContext,
    t: ReleaseTarget,
    wave_name: str,
    steps: list[StepSpec],
    progress_deadline: float | None,
    client: Client,
    template_of: Callable[[dict[str, Any]], dict[str, Any]],
    analysis: list[AnalysisSpec] | None = None,
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
        analysis=analysis or [],
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
    continue_as_new_after: int = 0,
) -> ReleaseInput:
    """Check every target, write every hold (caller's credentials), start ``release/<id>``.

    ``api_for(cluster)`` is the Kubernetes client of a kubeconfig context; ``timings`` (tests) shortens
    the children's polls; ``continue_as_new_after`` (tests) lowers the history length at which the
    release continues as new between waves. Nothing is written unless every target passes; a failed
    start puts back the holds it wrote.
    """
    rid = release_id or rel.name
    analyses: list[list[AnalysisSpec]] = []
    for wave in rel.spec.waves:
        try:
            analyses.append(wave_analysis(wave))
        except AnalysisInputError as exc:
            raise CommandError(f"wave {wave.name}: analysis: {exc}") from exc
    await _not_running(client, rid)
    ctx_for = _contexts(client, api_for)
    checked: list[list[_Target]] = []
    for wi, wave in enumerate(rel.spec.waves):
        checked.append(
            [
                await _check_target(ctx_for(t), rel, wi, ti, client, analyses[wi])
                for ti, t in enumerate(wave.targets)
            ]
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
        client,
        rid,
        checked,
        waves,
        rel.spec.failure_policy,
        change,
        by,
        task_queue,
        timings,
        rel.spec.notify,
        continue_as_new_after=continue_as_new_after,
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
    notify: list[str],
    *,
    continue_as_new_after: int = 0,
) -> ReleaseInput:
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
        spec_out = ReleaseInput(
            release_id=rid,
            notify=notify,
            waves=[
                w.model_copy(update={"targets": [tg.run for tg in row]})
                for w, row in zip(waves, checked, strict=True)
            ],
            failure_policy=policy,
            change=change,
            requested_by=requested,
            use_search_attributes=use_sa,
            task_queue=task_queue,
            continue_as_new_after=continue_as_new_after,
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


async def describe_release(
    client: Client, rid: str
) -> tuple[WorkflowHandle[Any, Any], WorkflowExecutionDescription]:
    """Release ``rid``'s workflow handle and description; "no release <rid>" when there is none."""
    handle = client.get_workflow_handle(release_workflow_id(rid))
    try:
        return handle, await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise CommandError(f"no release {rid}") from exc
        raise


async def revert_release(
    client: Client,
    rid: str,
    api_for: Callable[[str], ApiClient],
    *,
    by: str = "",
    task_queue: str = TASK_QUEUE,
    timings: RolloutTimings | None = None,
) -> ReleaseInput:
    """After release ``rid`` ended: a new release ``<rid>-revert`` that rolls every target still on the
    release's template forward to its recorded previous one (the pre-release ReplicaSet's template),
    newest wave first, with the same steps, no bake, no approval."""
    handle, desc = await describe_release(client, rid)
    if desc.status == WorkflowExecutionStatus.RUNNING:
        raise CommandError(f"release {rid} is still running; `rollout release abort {rid}` rolls it back")
    old: ReleaseInput | None = None
    async for event in handle.fetch_history_events(page_size=1):
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        old = client.data_converter.payload_converter.from_payloads(list(payloads), [ReleaseInput])[0]
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
        client, new_id, checked, waves, FailurePolicy(), change, by, task_queue, timings, old.notify
    )


async def _put_back_all(written: list[tuple[_Target, dict[str, Any]]]) -> None:
    for tg, wrote in written:
        await put_back(tg.ctx, tg.dep, wrote, tg.run.target.workflow_id)


def _details(rid: str, spec: ReleaseInput) -> str:
    lines = [f"## Release `{rid}`", f"- change: {spec.change}", f"- requested by: {spec.requested_by}"]
    for w in spec.waves:
        gate = ", approval" if w.approval.required else ""
        lines.append(f"- wave **{w.name}** (bake {w.bake_seconds:g} s{gate}):")
        lines.extend(f"  - `{t.target.key}`" for t in w.targets)
    lines.append(f"- status: `rollout release status {rid}`")
    return "\n".join(lines)
