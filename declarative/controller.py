"""The declarative-mode controller: Kruise Rollout objects and their Deployments -> rollout workflows.

Level-triggered: every pass lists the Rollouts and the Deployments they reference and decides per
Rollout; watches on both (and a resync timer) only say when to run the next pass, so a change made
while the controller was down is acted on by the first pass after it returns. The controller reads
and signals; a running rollout's ``Rollout.status`` is written by the workflow's activities. The
controller writes only: its finalizer on the Rollout, the ``rollouts.kruise.io/workload-type`` label on
a referenced Deployment (the webhook's objectSelector) and the removal of Kruise's marks once it is
handed back, the status of a Rollout with no rollout running (bad input, Healthy, Disabled: Kruise's
idle status), and - only when no workflow ever took it over - the release of a Deployment the
webhook held.

Per Rollout (the workflow ID is ``rollout/<namespace>/<deployment>``; a running rollout started under
the older ``rollout-<namespace>-<deployment>`` is followed when its input names this Deployment):

- Deployment held by the webhook, no workflow owns it -> start the workflow (idempotent start:
  ``USE_EXISTING``) with the Rollout's steps, traffic routing and the Deployment's new template;
- owned by the running workflow, template back to the stable ReplicaSet's -> ``undo`` (Kruise's
  rollback detection); template different from the canary's -> ``replace`` (continuous release);
- ``status.canaryStatus.currentStepState: StepReady`` on the step the workflow pauses at -> ``approve``
  (the Kruise way: ``kubectl-kruise rollout approve`` patches exactly that);
- ``spec.strategy.paused`` -> ``control`` pause (the hold of `rollout pause`, also through a timed
  pause or a running scale); cleared -> ``control`` resume of that hold;
- ``spec.disabled`` or deletion mid-rollout -> as Kruise, the release finishes (``control``
  promote-full: the remaining steps and pauses are skipped, the Deployment is handed back on the new
  template); with the Rollout annotation ``rollouts.temporal.io/hand-back: stable`` -> ``undo`` (back
  on the stable template). Then the label and the finalizer go. A second Rollout for the same
  Deployment never acts (the oldest one owns it).
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError

from connect import cancel_is_undo, find_rollout
from declarative.decisions import HELD_BY_SPEC, approval_due, hold_action, pause_answered, template_action
from declarative.webhook import stable_hash_from
from kruise.rollout_object import (
    DISABLED,
    FINALIZER,
    NOT_FOUND,
    RolloutRef,
    conflict_message,
    owners,
    read_rollout,
)
from kruise.spec import NO_OVERRIDES, Overrides, spec_for
from kruise.status import idle_status
from kube.client import Kube, rollout_path
from kube.names import HASH_LABEL, KRUISE_MARKS
from kube.objects import containers_images, owned_replica_sets
from kube.watch import EventStream
from workflows.model import (
    ANN_HANDING_BACK,
    ANN_IN_PROGRESS,
    ANN_ORIGINAL_STRATEGY,
    ANN_WORKFLOW_ID,
    ANNOTATION_PREFIX,
    LABEL_STABLE_REVISION,
    LABEL_WORKLOAD_TYPE,
    TASK_QUEUE,
    WORKFLOW_TYPE,
    ApproveSignal,
    ControlAction,
    ControlSignal,
    Phase,
    RolloutSpec,
    RolloutStatus,
    RolloutTimings,
    UndoSignal,
    undo_cancel_reason,
    workflow_id_for,
)

__all__ = ["Controller"]

log = logging.getLogger("rollout-controller")
Obj = dict[str, Any]
RESYNC_SECONDS = 10.0
# Phases of a Rollout with no release running that the controller keeps (Kruise's idle transitions).
IDLE_PHASES = ("", None, "Initial", "Healthy", "Disabling", "Disabled")
DEBOUNCE_SECONDS = 0.2
WATCH_SECONDS = 300
CONTROLLER = "rollout-controller"


@dataclass
class _Memo:
    """What this process already asked of a run, so a pass never repeats a signal or an update."""

    approved: set[tuple[str, str, int]] = field(default_factory=set)
    undone: set[str] = field(default_factory=set)
    replaced: set[tuple[str, str]] = field(default_factory=set)
    paused: dict[str, tuple[bool, str]] = field(default_factory=dict)  # run -> (spec paused, held_by seen)
    # workflow ID -> the template this process started it with: a run that ended (failed) on a held
    # Deployment is not started again for the same template (no start/fail loop); a new one is.
    started: dict[str, str] = field(default_factory=dict)


class Controller:
    """Reconciles Rollouts in ``namespace`` (all namespaces when None)."""

    def __init__(
        self,
        client: Client,
        api_client: ApiClient,
        *,
        namespace: str | None = None,
        task_queue: str = TASK_QUEUE,
        timings: RolloutTimings | None = None,
        use_search_attributes: bool = False,
        resync_seconds: float = RESYNC_SECONDS,
    ) -> None:
        self.client = client
        self.kube = Kube(api_client)
        self.namespace = namespace
        self.task_queue = task_queue
        self.timings = timings or RolloutTimings()
        self.use_search_attributes = use_search_attributes
        self.resync_seconds = resync_seconds
        self.executor = ThreadPoolExecutor(8, thread_name_prefix="rollout-controller")
        self.memo = _Memo()
        self.passes = 0

    # -- I/O helpers ---------------------------------------------------------------------------------

    async def _req(self, method: str, path: str, body: Any = None, **kw: Any) -> Obj:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: self.kube.request(method, path, body, **kw))

    def _collection(self, group_path: str, plural: str) -> str:
        if self.namespace:
            return f"{group_path}/namespaces/{self.namespace}/{plural}"
        return f"{group_path}/{plural}"

    # -- the loop ------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Reconcile until ``stop`` is set: a pass, then wait for a watch event or the resync timer."""
        backoff = 0.5
        while not stop.is_set():
            try:
                rv_rollouts, rv_deployments = await self.reconcile_all()
                backoff = 0.5
            except Exception as exc:  # noqa: BLE001 - the API or Temporal is away: retry, never crash
                log.warning("reconcile failed (%s); retrying in %.1fs", exc, backoff)
                await _wait(stop, backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            await self._wait_for_change(stop, rv_rollouts, rv_deployments)

    async def _wait_for_change(self, stop: asyncio.Event, rv_rollouts: str, rv_deployments: str) -> None:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        streams = [
            EventStream(self.kube, self._collection("/apis/rollouts.kruise.io/v1beta1", "rollouts"),
                        resource_version=rv_rollouts, timeout_seconds=WATCH_SECONDS, queue=queue),
            EventStream(self.kube, self._collection("/apis/apps/v1", "deployments"),
                        resource_version=rv_deployments, timeout_seconds=WATCH_SECONDS, queue=queue,
                        query={"labelSelector": LABEL_WORKLOAD_TYPE}),
        ]
        for s in streams:
            s.start(self.executor)
        stopper = asyncio.ensure_future(stop.wait())
        try:
            waiter = asyncio.ensure_future(streams[0].next())
            await asyncio.wait({waiter, stopper}, timeout=self.resync_seconds,
                               return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            await _wait(stop, DEBOUNCE_SECONDS)  # let a burst of events settle into one pass
        except Exception as exc:  # noqa: BLE001 - a broken watch just means the next pass comes sooner
            log.debug("watch ended: %s", exc)
        finally:
            stopper.cancel()
            for s in streams:
                s.close()

    async def reconcile_all(self) -> tuple[str, str]:
        """One pass over every Rollout; returns the list resourceVersions for the watches."""
        self.passes += 1
        rollouts = await self._req("GET", self._collection("/apis/rollouts.kruise.io/v1beta1", "rollouts"))
        deployments = await self._req("GET", self._collection("/apis/apps/v1", "deployments"))
        deps = {(d["metadata"]["namespace"], d["metadata"]["name"]): d
                for d in deployments.get("items") or []}
        items = list(rollouts.get("items") or [])
        owner_of = owners(items)
        for obj in items:
            ref = read_rollout(obj)
            key = (ref.namespace, ref.deployment)
            owner = owner_of.get(key, ref.name)
            conflict = "" if owner == ref.name else f"{ref.namespace}/{owner}"
            try:
                await self.reconcile(obj, ref, deps.get(key), conflict)
            except Exception as exc:  # noqa: BLE001 - one bad Rollout never stops the others
                log.warning("rollout %s/%s: %s", ref.namespace, ref.name, exc)
        return (str((rollouts.get("metadata") or {}).get("resourceVersion") or "0"),
                str((deployments.get("metadata") or {}).get("resourceVersion") or "0"))

    # -- one Rollout ---------------------------------------------------------------------------------

    async def reconcile(self, obj: Obj, ref: RolloutRef, dep: Obj | None, conflict: str) -> None:
        if conflict:
            await self._ignore_duplicate(obj, ref, conflict)
            return
        # rollout/<ns>/<deployment>, or a running legacy rollout-<ns>-<deployment> run for this target
        handle, desc = await find_rollout(self.client, ref.namespace, ref.deployment)
        running = desc is not None and desc.status == WorkflowExecutionStatus.RUNNING
        if not running:  # new runs start under the new ID only
            handle = self.client.get_workflow_handle(
                workflow_id_for(ref.namespace, ref.deployment), result_type=RolloutStatus)
        wid = handle.id
        if ref.deleting or ref.disabled:
            await self._hand_back(obj, ref, dep, handle if running else None)
            return
        if ref.plan is not None and FINALIZER not in (obj["metadata"].get("finalizers") or []):
            obj = await self._set_finalizers(obj, [*(obj["metadata"].get("finalizers") or []), FINALIZER])
        if ref.plan is None or dep is None:
            await self._idle_status(obj, "Initial", ref.error or NOT_FOUND)
            return
        await self._label(dep, True)
        ann = dep["metadata"].get("annotations") or {}
        owner = ann.get(ANN_WORKFLOW_ID)
        if owner == wid and running:
            await self._follow(obj, ref, dep, handle)
        elif ann.get(ANN_IN_PROGRESS) and not owner:
            await self._start(ref, dep, handle, running)
        elif not owner and not running and (obj.get("status") or {}).get("phase") in IDLE_PHASES:
            await self._drop_kruise_marks(dep)
            await self._idle(obj, ref, dep)

    async def _ignore_duplicate(self, obj: Obj, ref: RolloutRef, owner: str) -> None:
        """A second Rollout for a Deployment (it got past the validating webhook): it never touches the
        Deployment or the first Rollout's run - disabled or deleted, it only lets itself go."""
        if ref.deleting:
            kept = [f for f in obj["metadata"].get("finalizers") or [] if f != FINALIZER]
            if kept != (obj["metadata"].get("finalizers") or []):
                await self._set_finalizers(obj, kept)
            return
        await self._idle_status(obj, "Initial", conflict_message(owner))

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
        key = json.dumps(_without_hash(template), sort_keys=True)
        if self.memo.started.get(handle.id) == key and await _ended_failed(handle):
            return  # it failed on this template (its status says why); a new template starts again
        stable = _by_hash(rss, stable_hash)
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
        action = template_action(template, stable["spec"]["template"] if stable else None,
                                 canary["spec"]["template"] if canary else None)
        if action == "undo":
            if run not in self.memo.undone:
                why = f"pod template set back to the stable revision {st.stable_revision}"
                await _undo(handle, _writer(dep), why)
                self.memo.undone.add(run)
                log.info("%s: template back to stable -> undo", handle.id)
            return
        if action == "replace":
            key = (run, json.dumps(_without_hash(template), sort_keys=True))
            if key not in self.memo.replaced and st.canary_revision:
                # the running run keeps its progress deadline
                spec = self._spec(ref, dep, st.stable_images,
                                  Overrides(progress_deadline_seconds=st.progress_deadline_seconds))
                try:
                    await handle.execute_update("replace", spec, result_type=RolloutStatus)
                    self.memo.replaced.add(key)
                    log.info("%s: newer template -> replace", handle.id)
                except Exception as exc:  # noqa: BLE001 - e.g. still taking over: the next pass retries
                    log.info("%s: replace not accepted yet: %s", handle.id, exc)
            return
        await self._pause_or_resume(obj, ref, st, handle, run)
        canary_status = (obj.get("status") or {}).get("canaryStatus") or {}
        if (
            approval_due(canary_status, st)
            and (run, st.canary_revision, st.current_step_index) not in self.memo.approved
        ):
            await handle.signal("approve", ApproveSignal(step=st.current_step_index, by=_status_writer(obj)))
            self.memo.approved.add((run, st.canary_revision, st.current_step_index))
            log.info("%s: step %d approved through the Rollout status", handle.id, st.current_step_index)

    def _spec(self, ref: RolloutRef, dep: Obj, stable_images: dict[str, str],
              overrides: Overrides = NO_OVERRIDES) -> RolloutSpec:
        """The run's input (``spec_for``): the Rollout's plan for the Deployment's template as its last
        writer left it (the run checks the reference is there)."""
        assert ref.plan is not None
        template = dep["spec"].get("template") or {}
        spec = spec_for(ref.plan, dep, template=template, stable_images=stable_images,
                        requested_by=_writer(dep), timings=self.timings, overrides=overrides)
        spec.use_search_attributes = self.use_search_attributes
        spec.rollout_object = ref.name
        return spec

    async def _pause_or_resume(self, obj: Obj, ref: RolloutRef, st: RolloutStatus,
                               handle: WorkflowHandle[Any, Any], run: str) -> None:
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
        by = f"{_writer(obj)}{HELD_BY_SPEC}" if action == ControlAction.PAUSE else _writer(obj)
        await handle.signal("control", ControlSignal(action=action, by=by, reason="spec.strategy.paused"))
        self.memo.paused[run] = (ref.paused, st.held_by)
        log.info("%s: spec.strategy.paused=%s -> %s", handle.id, ref.paused, action.value)

    async def _hand_back(self, obj: Obj, ref: RolloutRef, dep: Obj | None,
                         handle: WorkflowHandle[Any, Any] | None) -> None:
        """Disabled or deleted: finish (or, opted in, roll back) a running rollout, then drop the label
        (and the finalizer)."""
        if handle is not None:
            run = (await handle.describe()).run_id or ""
            if run not in self.memo.undone:
                why = "Rollout deleted" if ref.deleting else "Rollout disabled"
                st: RolloutStatus = await handle.query("status", result_type=RolloutStatus)
                if ref.back_to_stable or st.phase in (Phase.ABORTED, Phase.FAILED):
                    await _undo(handle, CONTROLLER, why)
                else:  # Kruise: the Deployment is released and the new template finishes
                    await handle.signal("control", ControlSignal(action=ControlAction.PROMOTE_FULL,
                                                                 by=CONTROLLER, reason=why))
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

    # -- writes --------------------------------------------------------------------------------------

    async def _release(self, dep: Obj, rss: list[Obj], *, to_stable: bool = False) -> None:
        """Undo the webhook's hold of a Deployment no workflow took over: strategy back, unpaused."""
        md = dep["metadata"]
        ann = dict(md.get("annotations") or {})
        if not ann.get(ANN_HANDING_BACK):  # first say so, or the webhook keeps holding the Deployment
            md["annotations"] = {**ann, ANN_HANDING_BACK: CONTROLLER}
            dep.pop("status", None)
            dep = await self._req("PUT", Kube.deployment_path(md["namespace"], md["name"]), dep)
            md = dep["metadata"]
            ann = dict(md.get("annotations") or {})
        spec = dep["spec"]
        labels = dict(md.get("labels") or {})
        stable_hash = labels.get(LABEL_STABLE_REVISION, "")
        if to_stable:
            stable = _by_hash(rss, stable_hash)
            if stable is not None:
                spec["template"] = _without_hash(stable["spec"]["template"])
        spec["strategy"] = json.loads(ann.get(ANN_ORIGINAL_STRATEGY) or '{"type": "RollingUpdate"}')
        spec["paused"] = False
        md["annotations"] = {k: v for k, v in ann.items()
                             if not k.startswith(ANNOTATION_PREFIX) and k not in KRUISE_MARKS}
        md["labels"] = {k: v for k, v in labels.items()
                        if not k.startswith(ANNOTATION_PREFIX) and k not in KRUISE_MARKS}
        dep.pop("status", None)
        await self._req("PUT", Kube.deployment_path(md["namespace"], md["name"]), dep)
        log.info("released %s/%s held by the webhook (no rollout took it over)", md["namespace"], md["name"])

    async def _drop_kruise_marks(self, dep: Obj) -> None:
        """Kruise's bookkeeping goes with the hand-back (the workflow's finalize drops only ours)."""
        md = dep["metadata"]
        ann, labels = md.get("annotations") or {}, md.get("labels") or {}
        if ann.get(ANN_IN_PROGRESS) or ann.get(ANN_WORKFLOW_ID):
            return  # still held
        drop_ann = [k for k in KRUISE_MARKS if k in ann]
        drop_labels = [k for k in KRUISE_MARKS if k in labels]
        if not drop_ann and not drop_labels:
            return
        patch = {"metadata": {"annotations": dict.fromkeys(drop_ann), "labels": dict.fromkeys(drop_labels)}}
        await self._req("PATCH", Kube.deployment_path(md["namespace"], md["name"]), patch,
                        content_type="application/merge-patch+json")

    async def _label(self, dep: Obj, on: bool) -> None:
        labels = dep["metadata"].get("labels") or {}
        if (LABEL_WORKLOAD_TYPE in labels) == on:
            return
        patch: Obj = {"metadata": {"labels": {LABEL_WORKLOAD_TYPE: "deployment" if on else None}}}
        if not on:  # handed back: Kruise's bookkeeping goes too
            ann = dep["metadata"].get("annotations") or {}
            patch["metadata"]["labels"].update(dict.fromkeys(k for k in KRUISE_MARKS if k in labels))
            patch["metadata"]["annotations"] = dict.fromkeys(k for k in KRUISE_MARKS if k in ann)
        md = dep["metadata"]
        await self._req("PATCH", Kube.deployment_path(md["namespace"], md["name"]), patch,
                        content_type="application/merge-patch+json")

    async def _set_finalizers(self, obj: Obj, finalizers: list[str]) -> Obj:
        md = obj["metadata"]
        patch = {"metadata": {"finalizers": finalizers, "resourceVersion": md["resourceVersion"]}}
        try:
            return await self._req("PATCH", rollout_path(md["namespace"], md["name"]), patch,
                                   content_type="application/merge-patch+json")
        except ApiException as exc:
            if exc.status in (404, 409):
                return obj
            if exc.status == 422:  # refused by the validating webhook (a spec it refuses): nothing to add
                log.info("%s/%s: finalizer not written: %s", md["namespace"], md["name"], exc.body)
                return obj
            raise

    async def _idle(self, obj: Obj, ref: RolloutRef, dep: Obj) -> None:
        """No release running: Kruise's idle status (Healthy, the synthetic completed canaryStatus,
        generations that follow the Rollout and the Deployment)."""
        assert ref.plan is not None
        rss = await self._replica_sets(dep)
        revision = stable_hash_from(rss)(dep["spec"].get("template") or {})
        if not revision:
            return  # the Deployment's ReplicaSet is not there yet: the next pass
        new = idle_status(obj.get("status") or {}, generation=ref.generation, steps=len(ref.plan.steps),
                          workload_generation=int(dep["metadata"].get("generation") or 0), revision=revision)
        await self._put_status(obj, new)

    async def _idle_status(self, obj: Obj, phase: str, message: str) -> None:
        """Status of a Rollout with no rollout running (written only when it changes: no hot loop)."""
        md = obj["metadata"]
        current = obj.get("status") or {}
        generation = int(md.get("generation") or 0)
        if phase == "Initial" and message == NOT_FOUND:
            current = {}  # Kruise resets the whole status when the workload is gone
        await self._put_status(obj, {**current, "phase": phase, "message": message,
                                     "observedGeneration": generation})

    async def _put_status(self, obj: Obj, status: Obj) -> None:
        if status == (obj.get("status") or {}):
            return  # written only when it changes: no hot loop
        md = obj["metadata"]
        try:
            await self._req("PUT", rollout_path(md["namespace"], md["name"], "status"),
                            {**copy.deepcopy(obj), "status": status})
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    async def _replica_sets(self, dep: Obj) -> list[Obj]:
        loop = asyncio.get_running_loop()
        rss = await loop.run_in_executor(self.executor, self.kube.list_deployment_replica_sets, dep)
        return owned_replica_sets(dep, rss)


# -- helpers ---------------------------------------------------------------------------------------------



async def _ended_failed(handle: WorkflowHandle[Any, Any]) -> bool:
    """The last run ended in failure (a failed workflow, or phase Failed in its result)."""
    try:
        desc = await handle.describe()
        if desc.status != WorkflowExecutionStatus.COMPLETED:
            return desc.status != WorkflowExecutionStatus.RUNNING
        result: RolloutStatus = await handle.result()
    except Exception:  # noqa: BLE001 - unreadable: treat as failed, do not loop on starts
        return True
    return result.phase == Phase.FAILED


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


async def _undo(handle: WorkflowHandle[Any, Any], by: str, why: str) -> None:
    """An undo as ``rollout undo`` sends it: a cancellation request the run takes as its undo (it ends
    Canceled), or the ``undo`` signal for a run begun before that."""
    if await cancel_is_undo(handle):
        await handle.cancel(reason=undo_cancel_reason(by, why))
    else:
        await handle.signal("undo", UndoSignal(by=by, reason=why))


def _by_hash(rss: list[Obj], pod_template_hash: str) -> Obj | None:
    hashes = [(rs["metadata"].get("labels") or {}).get(HASH_LABEL) for rs in rss]
    return next((rs for rs, h in zip(rss, hashes, strict=True) if h == pod_template_hash), None)


def _without_hash(template: Obj) -> Obj:
    out = copy.deepcopy(template)
    ((out.get("metadata") or {}).get("labels") or {}).pop(HASH_LABEL, None)
    return out


def _latest_manager(obj: Obj, subresource: str) -> str:
    entries = [e for e in (obj.get("metadata") or {}).get("managedFields") or []
               if e.get("subresource", "") == subresource and e.get("manager")]
    entries.sort(key=lambda e: e.get("time") or "")
    return str(entries[-1]["manager"]) if entries else ""


def _writer(dep: Obj) -> str:
    """Who changed the Deployment last (managedFields), for the rollout's audit trail."""
    return _latest_manager(dep, "") or "kubectl"


def _status_writer(obj: Obj) -> str:
    """Who patched the Rollout's status last: the approver (managedFields of the status subresource)."""
    return _latest_manager(obj, "status") or "unknown"


def now() -> datetime:
    return datetime.now(UTC)
