"""The reconcile of one Rollout: ignore a duplicate, start or follow its workflow, hand the Deployment back
when the Rollout is disabled or deleted, or keep Kruise's idle status."""

from __future__ import annotations

from typing import Any

from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from connect import find_rollout
from declarative.objects import CONTROLLER, Obj
from declarative.runs import RunSide, undo
from kruise.rollout_object import DISABLED, FINALIZER, NOT_FOUND, RolloutRef, conflict_message
from workflows.model import (
    ANN_IN_PROGRESS,
    ANN_WORKFLOW_ID,
    ControlAction,
    ControlSignal,
    Phase,
    RolloutStatus,
    workflow_id_for,
)

__all__ = ["IDLE_PHASES", "Reconciler"]

# Phases of a Rollout with no release running that the controller keeps (Kruise's idle transitions).
IDLE_PHASES = ("", None, "Initial", "Healthy", "Disabling", "Disabled")


class Reconciler(RunSide):
    """One Rollout at a time (``Controller`` calls ``reconcile`` from its work queue)."""

    async def reconcile(self, obj: Obj, ref: RolloutRef, dep: Obj | None, conflict: str) -> bool:
        """Act on one Rollout; True when it is steady: no run is going on, so until the Rollout or its
        Deployment change, looking again would find nothing to do."""
        if conflict:
            await self._ignore_duplicate(obj, ref, conflict)
            return True
        # rollout/<ns>/<deployment>, or a running legacy rollout-<ns>-<deployment> run for this target
        handle, desc = await find_rollout(self.client, ref.namespace, ref.deployment)
        running = desc is not None and desc.status == WorkflowExecutionStatus.RUNNING
        if not running:  # new runs start under the new ID only
            handle = self.client.get_workflow_handle(
                workflow_id_for(ref.namespace, ref.deployment), result_type=RolloutStatus
            )
        wid = handle.id
        if ref.deleting or ref.disabled:
            await self._hand_back(obj, ref, dep, handle if running else None)
            held = dep is not None and any(
                k in (dep["metadata"].get("annotations") or {}) for k in (ANN_IN_PROGRESS, ANN_WORKFLOW_ID)
            )
            return not running and not held
        if ref.plan is not None and FINALIZER not in (obj["metadata"].get("finalizers") or []):
            obj = await self._set_finalizers(obj, [*(obj["metadata"].get("finalizers") or []), FINALIZER])
        if ref.plan is None or dep is None:
            await self._idle_status(obj, "Initial", ref.error or NOT_FOUND)
            return True
        await self._label(dep, True)
        ann = dep["metadata"].get("annotations") or {}
        owner = ann.get(ANN_WORKFLOW_ID)
        if owner == wid and running:
            await self._follow(obj, ref, dep, handle)
            return False
        if ann.get(ANN_IN_PROGRESS) and not owner:
            await self._start(ref, dep, handle, running)
            return False
        if not owner and not running and (obj.get("status") or {}).get("phase") in IDLE_PHASES:
            await self._drop_kruise_marks(dep)
            return await self._idle(obj, ref, dep)
        return not running

    async def _ignore_duplicate(self, obj: Obj, ref: RolloutRef, owner: str) -> None:
        """A second Rollout for a Deployment (it got past the validating webhook): it never touches the
        Deployment or the first Rollout's run - disabled or deleted, it only lets itself go."""
        if ref.deleting:
            kept = [f for f in obj["metadata"].get("finalizers") or [] if f != FINALIZER]
            if kept != (obj["metadata"].get("finalizers") or []):
                await self._set_finalizers(obj, kept)
            return
        await self._idle_status(obj, "Initial", conflict_message(owner))

    async def _hand_back(
        self, obj: Obj, ref: RolloutRef, dep: Obj | None, handle: WorkflowHandle[Any, Any] | None
    ) -> None:
        """Disabled or deleted: finish (or, opted in, roll back) a running rollout, then drop the label
        (and the finalizer)."""
        if handle is not None:
            run = (await handle.describe()).run_id or ""
            if run not in self.memo.undone:
                why = "Rollout deleted" if ref.deleting else "Rollout disabled"
                st: RolloutStatus = await handle.query("status", result_type=RolloutStatus)
                if ref.back_to_stable or st.phase in (Phase.ABORTED, Phase.FAILED):
                    await undo(handle, CONTROLLER, why)
                else:  # Kruise: the Deployment is released and the new template finishes
                    await handle.signal(
                        "control", ControlSignal(action=ControlAction.PROMOTE_FULL, by=CONTROLLER, reason=why)
                    )
                self.memo.undone.add(run)
            return  # the run reports its hand-back in the status; Disabled once it has ended
        if dep is not None:
            ann = dep["metadata"].get("annotations") or {}
            if ann.get(ANN_IN_PROGRESS) and not ann.get(ANN_WORKFLOW_ID):
                await self._release(dep, await self._replica_sets(dep), to_stable=ref.back_to_stable)
                return
            if ann.get(ANN_WORKFLOW_ID):
                return  # the workflow is still handing it back
            await self._label(dep, False)
        if ref.deleting:
            kept = [f for f in obj["metadata"].get("finalizers") or [] if f != FINALIZER]
            if kept != (obj["metadata"].get("finalizers") or []):
                await self._set_finalizers(obj, kept)
        else:
            await self._idle_status(obj, "Disabled", DISABLED)
