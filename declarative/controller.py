"""The declarative-mode controller: Kruise Rollout objects and their Deployments -> rollout workflows.

Level-triggered, per Rollout: two informers (``kube/informer.py``) keep the Rollouts and the Deployments
labelled as under a Rollout in memory (one LIST each at start and after a watch gap, then one watch
each), and every event puts the Rollout it concerns (``namespace/name``) on a work queue that
reconciles each key on its own, once however many events came (``declarative/workqueue.py``). A resync
timer puts every key back from the cache; a Rollout that was steady (no run going on) and whose
objects did not change since is skipped there without a request, so an idle cluster costs no LIST,
no GET and no Temporal call per Rollout. A change made while the controller was down is acted on when
its informers list again at start. The controller reads
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
from declarative.webhook import APPROVED_BY, stable_hash_from
from declarative.workqueue import WorkQueue
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
from kube.informer import Informer
from kube.names import HASH_LABEL, KRUISE_MARKS
from kube.objects import containers_images, owned_replica_sets
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
WATCH_SECONDS = 300
WORKERS = 4  # Rollouts reconciled at once (never one key twice at once)
Key = tuple[str, str]  # (namespace, Rollout name)
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
        self.queue: WorkQueue[Key] = WorkQueue()
        self.rollouts: dict[Key, Obj] = {}  # the informers' caches
        self.deployments: dict[Key, Obj] = {}
        self.steady: dict[Key, tuple[str, str, str]] = {}  # key -> the versions it was steady at
        self.passes = 0  # resync rounds completed (each looked at every Rollout once)
        self.reconciles = 0  # reconciles that did look (not skipped as steady and unchanged)

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
        """Reconcile until ``stop`` is set: informers fill the caches, a work queue reconciles per key."""
        rollouts = Informer(
            self.kube,
            self._collection("/apis/rollouts.kruise.io/v1beta1", "rollouts"),
            executor=self.executor,
            watch_seconds=WATCH_SECONDS,
        )
        deployments = Informer(
            self.kube,
            self._collection("/apis/apps/v1", "deployments"),
            executor=self.executor,
            watch_seconds=WATCH_SECONDS,
            label_selector=LABEL_WORKLOAD_TYPE,
        )
        tasks = [
            asyncio.create_task(rollouts.run(self._rollouts_synced, self._rollout_event)),
            asyncio.create_task(deployments.run(self._deployments_synced, self._deployment_event)),
        ]
        try:
            synced: asyncio.Future[Any] = asyncio.gather(rollouts.synced.wait(), deployments.synced.wait())
            stopper: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
            await asyncio.wait([synced, stopper], return_when=asyncio.FIRST_COMPLETED)
            if not stop.is_set():
                tasks += [asyncio.create_task(self._work()) for _ in range(WORKERS)]
                tasks.append(asyncio.create_task(self._resync(stop)))
                await stopper
            synced.cancel()
            stopper.cancel()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _resync(self, stop: asyncio.Event) -> None:
        """Every ``resync_seconds``, from the caches alone: each Rollout is looked at again; an idle one
        whose objects did not change since it was last reconciled costs nothing (no request at all)."""
        while not stop.is_set():
            for key in list(self.rollouts):
                self.queue.add(key)
            await self.queue.wait_idle()
            self.passes += 1
            await _wait(stop, self.resync_seconds)

    async def _work(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                await self.reconcile_key(key)
                self.queue.forget(key)
            except Exception as exc:  # noqa: BLE001 - the API or Temporal is away: this key again later
                delay = self.queue.retry(key)
                log.warning("rollout %s/%s: %s; again in %.1fs", *key, exc, delay)
            finally:
                self.queue.done(key)

    # -- the caches ----------------------------------------------------------------------------------

    async def _rollouts_synced(self, items: list[Obj]) -> None:
        self.rollouts = {_key(o): o for o in items}
        for key in self.rollouts:
            self.queue.add(key)

    async def _rollout_event(self, kind: str, obj: Obj) -> None:
        key = _key(obj)
        if kind == "DELETED":
            self.rollouts.pop(key, None)
            self.steady.pop(key, None)
        else:
            self.rollouts[key] = obj
        self.queue.add(key)
        # Ownership of a Deployment goes to the oldest Rollout naming it: its rivals are decided anew.
        for other in self._rollouts_for(key[0], _target(obj)):
            self.queue.add(other)

    async def _deployments_synced(self, items: list[Obj]) -> None:
        self.deployments = {_key(o): o for o in items}
        for key in self.rollouts:
            self.queue.add(key)

    async def _deployment_event(self, kind: str, obj: Obj) -> None:
        key = _key(obj)
        if kind == "DELETED":
            self.deployments.pop(key, None)
        else:
            self.deployments[key] = obj
        for rollout in self._rollouts_for(*key):
            self.queue.add(rollout)

    def _rollouts_for(self, namespace: str, deployment: str) -> list[Key]:
        return [k for k, o in self.rollouts.items() if k[0] == namespace and _target(o) == deployment]

    async def _deployment(self, namespace: str, name: str) -> Obj | None:
        """From the cache (Deployments labelled as under a Rollout); one GET for one not labelled yet."""
        dep = self.deployments.get((namespace, name))
        if dep is not None or not name:
            return copy.deepcopy(dep) if dep is not None else None
        try:
            return await self._req("GET", Kube.deployment_path(namespace, name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def reconcile_key(self, key: Key) -> None:
        """Reconcile one Rollout from the caches (objects are copied: the reconcile may edit them)."""
        cached = self.rollouts.get(key)
        if cached is None:
            return
        obj = copy.deepcopy(cached)
        ref = read_rollout(obj)
        dep = await self._deployment(ref.namespace, ref.deployment)
        owner = owners([o for k, o in self.rollouts.items() if k[0] == key[0]]).get(
            (ref.namespace, ref.deployment), ref.name
        )
        conflict = "" if owner == ref.name else f"{ref.namespace}/{owner}"
        seen = (_rv(obj), _rv(dep), conflict)
        if dep is not None and self.steady.get(key) == seen:
            return  # idle and unchanged since its last reconcile
        self.reconciles += 1
        steady = await self.reconcile(obj, ref, dep, conflict)
        if steady:
            self.steady[key] = seen
        else:
            self.steady.pop(key, None)

    # -- one Rollout ---------------------------------------------------------------------------------

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
        action = template_action(
            template,
            stable["spec"]["template"] if stable else None,
            canary["spec"]["template"] if canary else None,
        )
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
        canary_status = (obj.get("status") or {}).get("canaryStatus") or {}
        if (
            approval_due(canary_status, st)
            and (run, st.canary_revision, st.current_step_index) not in self.memo.approved
        ):
            await handle.signal("approve", ApproveSignal(step=st.current_step_index, by=_status_writer(obj)))
            self.memo.approved.add((run, st.canary_revision, st.current_step_index))
            log.info("%s: step %d approved through the Rollout status", handle.id, st.current_step_index)

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
            requested_by=_writer(dep),
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
        by = f"{_writer(obj)}{HELD_BY_SPEC}" if action == ControlAction.PAUSE else _writer(obj)
        await handle.signal("control", ControlSignal(action=action, by=by, reason="spec.strategy.paused"))
        self.memo.paused[run] = (ref.paused, st.held_by)
        log.info("%s: spec.strategy.paused=%s -> %s", handle.id, ref.paused, action.value)

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
                    await _undo(handle, CONTROLLER, why)
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
        md["annotations"] = {
            k: v for k, v in ann.items() if not k.startswith(ANNOTATION_PREFIX) and k not in KRUISE_MARKS
        }
        md["labels"] = {
            k: v for k, v in labels.items() if not k.startswith(ANNOTATION_PREFIX) and k not in KRUISE_MARKS
        }
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
        await self._req(
            "PATCH",
            Kube.deployment_path(md["namespace"], md["name"]),
            patch,
            content_type="application/merge-patch+json",
        )

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
        await self._req(
            "PATCH",
            Kube.deployment_path(md["namespace"], md["name"]),
            patch,
            content_type="application/merge-patch+json",
        )

    async def _set_finalizers(self, obj: Obj, finalizers: list[str]) -> Obj:
        md = obj["metadata"]
        patch = {"metadata": {"finalizers": finalizers, "resourceVersion": md["resourceVersion"]}}
        try:
            return await self._req(
                "PATCH",
                rollout_path(md["namespace"], md["name"]),
                patch,
                content_type="application/merge-patch+json",
            )
        except ApiException as exc:
            if exc.status in (404, 409):
                return obj
            if exc.status == 422:  # refused by the validating webhook (a spec it refuses): nothing to add
                log.info("%s/%s: finalizer not written: %s", md["namespace"], md["name"], exc.body)
                return obj
            raise

    async def _idle(self, obj: Obj, ref: RolloutRef, dep: Obj) -> bool:
        """No release running: Kruise's idle status (Healthy, the synthetic completed canaryStatus,
        generations that follow the Rollout and the Deployment)."""
        assert ref.plan is not None
        rss = await self._replica_sets(dep)
        revision = stable_hash_from(rss)(dep["spec"].get("template") or {})
        if not revision:
            return False  # the Deployment's ReplicaSet is not there yet: the next pass
        new = idle_status(
            obj.get("status") or {},
            generation=ref.generation,
            steps=len(ref.plan.steps),
            workload_generation=int(dep["metadata"].get("generation") or 0),
            revision=revision,
        )
        await self._put_status(obj, new)
        return True

    async def _idle_status(self, obj: Obj, phase: str, message: str) -> None:
        """Status of a Rollout with no rollout running (written only when it changes: no hot loop)."""
        md = obj["metadata"]
        current = obj.get("status") or {}
        generation = int(md.get("generation") or 0)
        if phase == "Initial" and message == NOT_FOUND:
            current = {}  # Kruise resets the whole status when the workload is gone
        await self._put_status(
            obj, {**current, "phase": phase, "message": message, "observedGeneration": generation}
        )

    async def _put_status(self, obj: Obj, status: Obj) -> None:
        if status == (obj.get("status") or {}):
            return  # written only when it changes: no hot loop
        md = obj["metadata"]
        try:
            await self._req(
                "PUT",
                rollout_path(md["namespace"], md["name"], "status"),
                {**copy.deepcopy(obj), "status": status},
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    async def _replica_sets(self, dep: Obj) -> list[Obj]:
        loop = asyncio.get_running_loop()
        rss = await loop.run_in_executor(self.executor, self.kube.list_deployment_replica_sets, dep)
        return owned_replica_sets(dep, rss)


# -- helpers ---------------------------------------------------------------------------------------------


def _key(obj: Obj) -> Key:
    md = obj.get("metadata") or {}
    return (str(md.get("namespace") or ""), str(md.get("name") or ""))


def _target(rollout: Obj) -> str:
    return str(((rollout.get("spec") or {}).get("workloadRef") or {}).get("name") or "")


def _rv(obj: Obj | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("resourceVersion") or "")


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
    entries = [
        e
        for e in (obj.get("metadata") or {}).get("managedFields") or []
        if e.get("subresource", "") == subresource and e.get("manager")
    ]
    entries.sort(key=lambda e: e.get("time") or "")
    return str(entries[-1]["manager"]) if entries else ""


def _writer(dep: Obj) -> str:
    """Who changed the Deployment last (managedFields), for the rollout's audit trail."""
    return _latest_manager(dep, "") or "kubectl"


def _status_writer(obj: Obj) -> str:
    """The approver: the user the apiserver authenticated for the approving status write, stamped by the
    approval webhook; without the stamp (the webhook was down), the field manager, marked unverified."""
    canary = (obj.get("status") or {}).get("canaryStatus") or {}
    if canary.get(APPROVED_BY):
        return str(canary[APPROVED_BY])
    return f"{_latest_manager(obj, 'status') or 'unknown'} (unverified)"


def now() -> datetime:
    return datetime.now(UTC)
