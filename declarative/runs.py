"""The declarative controller's Temporal side: start a Rollout's workflow, follow a running one (undo,
replace, approve, spec.strategy.paused as its hold), and what this process already asked of each run."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError

from connect import cancel_is_undo
from declarative.decisions import (
    HELD_BY_SPEC,
    approval_due,
    hold_action,
    jump_request,
    pause_answered,
    plan_edit,
    template_action,
)
from declarative.objects import Obj, by_hash, status_writer, without_hash, writer
from declarative.webhook import stable_hash_from
from declarative.writes import KubeWrites
from kruise.rollout_object import RolloutRef
from kruise.spec import NO_OVERRIDES, Overrides, spec_for
from kube.names import HASH_LABEL
from kube.objects import containers_images
from workflows.model import (
    LABEL_STABLE_REVISION,
    WORKFLOW_TYPE,
    ApproveSignal,
    ControlAction,
    ControlSignal,
    Phase,
    Replan,
    RolloutSpec,
    RolloutStatus,
    RolloutTimings,
    StepJump,
    UndoSignal,
    undo_cancel_reason,
)

__all__ = ["Memo", "RunSide", "undo"]

log = logging.getLogger("rollout-controller")


@dataclass
class Memo:
    """What this process already asked of a run, so a pass never repeats a signal or an update."""

    approved: set[tuple[str, str, int, int]] = field(default_factory=set)  # (run, canary, step, approvals)
    moved: set[tuple[str, str]] = field(default_factory=set)  # (run, the jump or plan edit) sent once
    undone: set[str] = field(default_factory=set)
    replaced: set[tuple[str, str]] = field(default_factory=set)
    paused: dict[str, tuple[bool, str]] = field(default_factory=dict)  # run -> (spec paused, held_by seen)
    # workflow ID -> the template this process started it with: a run that ended (failed) on a held
    # Deployment is not started again for the same template (no start/fail loop); a new one is.
    started: dict[str, str] = field(default_factory=dict)


class RunSide(KubeWrites):
    """Starting and following workflows (the client, queue and timings are set by ``Controller``)."""

    client: Client
    task_queue: str
    timings: RolloutTimings
    use_search_attributes: bool
    memo: Memo

    async def _start(
        self, ref: RolloutRef, dep: Obj, handle: WorkflowHandle[Any, Any], running: bool
    ) -> None:
        """The webhook held the Deployment: start the rollout (or release it if the template went back)."""
        rss = await self._replica_sets(dep)
        stable_hash = (dep["metadata"].get("labels") or {}).get(LABEL_STABLE_REVISION, "")
        template = dep["spec"].get("template") or {}
        if stable_hash and stable_hash_from(rss)(template) == stable_hash:
            await self._release(dep, rss)
            return
        if running:
            return  # started already; its take-over is on the way
        key = json.dumps(without_hash(template), sort_keys=True)
        if self.memo.started.get(handle.id) == key and await ended_failed(handle):
            return  # it failed on this template (its status says why); a new template starts again
        stable = by_hash(rss, stable_hash)
        spec = self._spec(ref, dep, containers_images(stable["spec"]["template"]) if stable else {})
        await self.client.start_workflow(
            WORKFLOW_TYPE,
            spec,
            id=handle.id,
            task_queue=self.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=f"rollout {ref.namespace}/{ref.deployment} from Rollout {ref.name}",
        )
        self.memo.started[handle.id] = key
        log.info("started %s for Rollout %s/%s", handle.id, ref.namespace, ref.name)

    async def _follow(self, obj: Obj, ref: RolloutRef, dep: Obj, handle: WorkflowHandle[Any, Any]) -> None:
        """A running rollout: rollback, continuous release, approval."""
        try:
            st: RolloutStatus = await handle.query("status", result_type=RolloutStatus)
        except RPCError as exc:
            log.info("%s does not answer (%s); next pass", handle.id, exc.message)
            return
        run = (await handle.describe()).run_id or ""
        rss = await self._replica_sets(dep)
        by_hash = {(rs["metadata"].get("labels") or {}).get(HASH_LABEL): rs for rs in rss}
        template = dep["spec"].get("template") or {}
        stable, canary = by_hash.get(st.stable_revision), by_hash.get(st.canary_revision)
        action = template_action(
            template,
            stable["spec"]["template"] if stable else None,
            canary["spec"]["template"] if canary else None,
        )
        if action == "undo":
            if run not in self.memo.undone:
                why = f"pod template set back to the stable revision {st.stable_revision}"
                await undo(handle, writer(dep), why)
                self.memo.undone.add(run)
                log.info("%s: template back to stable -> undo", handle.id)
            return
        if action == "replace":
            key = (run, json.dumps(without_hash(template), sort_keys=True))
            if key not in self.memo.replaced and st.canary_revision:
                # the running run keeps its progress deadline
                spec = self._spec(
                    ref,
                    dep,
                    st.stable_images,
                    Overrides(progress_deadline_seconds=st.progress_deadline_seconds),
                )
                try:
                    await handle.execute_update("replace", spec, result_type=RolloutStatus)
                    self.memo.replaced.add(key)
                    log.info("%s: newer template -> replace", handle.id)
                except Exception as exc:  # noqa: BLE001 - e.g. still taking over: the next pass retries
                    log.info("%s: replace not accepted yet: %s", handle.id, exc)
            return
        await self._pause_or_resume(obj, ref, st, handle, run)
        await self._bookkeeping(obj, dep, st, canary, handle.id)
        canary_status = (obj.get("status") or {}).get("canaryStatus") or {}
        # a step visited again after a jump is approved again: the approvals so far are in the key
        seen = (run, st.canary_revision, st.current_step_index, len(st.approvals))
        if approval_due(canary_status, st) and seen not in self.memo.approved:
            await handle.signal("approve", ApproveSignal(step=st.current_step_index, by=status_writer(obj)))
            self.memo.approved.add(seen)
            log.info("%s: step %d approved through the Rollout status", handle.id, st.current_step_index)
        await self._move(obj, ref, st, handle, run)

    async def _move(
        self, obj: Obj, ref: RolloutRef, st: RolloutStatus, handle: WorkflowHandle[Any, Any], run: str
    ) -> None:
        """Kruise's moves of a running release: steps edited (same number) -> ``replan``; a
        ``nextStepIndex`` patched into the status -> ``jump_step``. Each request is sent once; one the
        run refuses (named, non-retryable) is logged and not sent again."""
        assert ref.plan is not None
        steps = plan_edit(ref.plan.steps, st)
        if steps is not None:
            key = (run, json.dumps([s.model_dump(mode="json") for s in steps], sort_keys=True))
            if key not in self.memo.moved:
                await self._update(handle, "replan", Replan(steps=steps, by=writer(obj)), key)
            return
        step = jump_request((obj.get("status") or {}).get("canaryStatus") or {}, st)
        rv = str(obj["metadata"].get("resourceVersion") or "")
        if step is not None and (run, rv) not in self.memo.moved:
            await self._update(
                handle, "jump_step", StepJump(step=step, by=status_writer(obj), key=rv), (run, rv)
            )

    async def _update(
        self, handle: WorkflowHandle[Any, Any], name: str, arg: Any, key: tuple[str, str]
    ) -> None:
        try:
            answer = await handle.execute_update(name, arg, result_type=str)
        except WorkflowUpdateFailedError as exc:  # refused: the run cannot act on it (the cause says why)
            self.memo.moved.add(key)
            log.info("%s: %s refused: %s", handle.id, name, exc.cause)
            return
        except RPCError as exc:  # no worker answered: the next pass sends it again
            log.info("%s: %s not delivered (%s); next pass", handle.id, name, exc.message)
            return
        self.memo.moved.add(key)
        log.info("%s: %s: %s", handle.id, name, answer)

    def _spec(
        self, ref: RolloutRef, dep: Obj, stable_images: dict[str, str], overrides: Overrides = NO_OVERRIDES
    ) -> RolloutSpec:
        """The run's input (``spec_for``): the Rollout's plan for the Deployment's template as its last
        writer left it (the run checks the reference is there)."""
        assert ref.plan is not None
        template = dep["spec"].get("template") or {}
        spec = spec_for(
            ref.plan,
            dep,
            template=template,
            stable_images=stable_images,
            requested_by=writer(dep),
            timings=self.timings,
            overrides=overrides,
        )
        spec.use_search_attributes = self.use_search_attributes
        spec.rollout_object = ref.name
        return spec

    async def _pause_or_resume(
        self, obj: Obj, ref: RolloutRef, st: RolloutStatus, handle: WorkflowHandle[Any, Any], run: str
    ) -> None:
        """spec.strategy.paused drives the run's hold (the ``control`` pause/resume of `rollout pause`).

        The spec wins, as in Kruise: while it says paused the run is held (a `rollout resume` of that
        hold is undone by the next pass). A hold this controller made names the spec (``held_by`` ends
        in ``HELD_BY_SPEC``), so unpausing the spec releases it even after a controller restart, and
        never releases a `rollout pause` hold.
        """
        asked = pause_answered(self.memo.paused.get(run), st)
        if asked is not None:
            self.memo.paused[run] = asked
        action = hold_action(ref.paused, st, asked)
        if action is None:
            return
        by = f"{writer(obj)}{HELD_BY_SPEC}" if action == ControlAction.PAUSE else writer(obj)
        await handle.signal("control", ControlSignal(action=action, by=by, reason="spec.strategy.paused"))
        self.memo.paused[run] = (ref.paused, st.held_by)
        log.info("%s: spec.strategy.paused=%s -> %s", handle.id, ref.paused, action.value)


async def ended_failed(handle: WorkflowHandle[Any, Any]) -> bool:
    """The last run ended in failure (a failed workflow, or phase Failed in its result)."""
    try:
        desc = await handle.describe()
        if desc.status != WorkflowExecutionStatus.COMPLETED:
            return desc.status != WorkflowExecutionStatus.RUNNING
        result: RolloutStatus = await handle.result()
    except Exception:  # noqa: BLE001 - unreadable: treat as failed, do not loop on starts
        return True
    return result.phase == Phase.FAILED


async def undo(handle: WorkflowHandle[Any, Any], by: str, why: str) -> None:
    """An undo as ``rollout undo`` sends it: a cancellation request the run takes as its undo (it ends
    Canceled), or the ``undo`` signal for a run begun before that."""
    if await cancel_is_undo(handle):
        await handle.cancel(reason=undo_cancel_reason(by, why))
    else:
        await handle.signal("undo", UndoSignal(by=by, reason=why))
