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

This module is the loop (informers, caches, work queue, resync); ``reconcile.py`` is one Rollout,
``runs.py`` the Temporal side (start, follow, the memo of what was asked), ``writes.py`` the Kubernetes
writes, ``objects.py`` the reads of objects.
"""

import asyncio
import copy
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from temporalio.client import Client

from declarative.objects import Key, Obj, key_of, resource_version, target_of
from declarative.reconcile import Reconciler
from declarative.runs import Memo
from declarative.workqueue import WorkQueue
from kruise.rollout_object import owners, read_rollout
from kube.client import Kube
from kube.informer import Informer
from workflows.model import LABEL_WORKLOAD_TYPE, TASK_QUEUE, RolloutTimings

__all__ = ["Controller"]

log = logging.getLogger("rollout-controller")
RESYNC_SECONDS = 10.0
WATCH_SECONDS = 300
WORKERS = 4  # Rollouts reconciled at once (never one key twice at once)


class Controller(Reconciler):
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
        self.memo = Memo()
        self.queue: WorkQueue[Key] = WorkQueue()
        self.rollouts: dict[Key, Obj] = {}  # the informers' caches
        self.deployments: dict[Key, Obj] = {}
        self.steady: dict[Key, tuple[str, str, str]] = {}  # key -> the versions it was steady at
        self.passes = 0  # resync rounds completed (each looked at every Rollout once)
        self.reconciles = 0  # reconciles that did look (not skipped as steady and unchanged)

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
        self.rollouts = {key_of(o): o for o in items}
        for key in self.rollouts:
            self.queue.add(key)

    async def _rollout_event(self, kind: str, obj: Obj) -> None:
        key = key_of(obj)
        if kind == "DELETED":
            self.rollouts.pop(key, None)
            self.steady.pop(key, None)
        else:
            self.rollouts[key] = obj
        self.queue.add(key)
        # Ownership of a Deployment goes to the oldest Rollout naming it: its rivals are decided anew.
        for other in self._rollouts_for(key[0], target_of(obj)):
            self.queue.add(other)

    async def _deployments_synced(self, items: list[Obj]) -> None:
        self.deployments = {key_of(o): o for o in items}
        for key in self.rollouts:
            self.queue.add(key)

    async def _deployment_event(self, kind: str, obj: Obj) -> None:
        key = key_of(obj)
        if kind == "DELETED":
            self.deployments.pop(key, None)
        else:
            self.deployments[key] = obj
        for rollout in self._rollouts_for(*key):
            self.queue.add(rollout)

    def _rollouts_for(self, namespace: str, deployment: str) -> list[Key]:
        return [k for k, o in self.rollouts.items() if k[0] == namespace and target_of(o) == deployment]

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
        seen = (resource_version(obj), resource_version(dep), conflict)
        if dep is not None and self.steady.get(key) == seen:
            return  # idle and unchanged since its last reconcile
        self.reconciles += 1
        steady = await self.reconcile(obj, ref, dep, conflict)
        if steady:
            self.steady[key] = seen
        else:
            self.steady.pop(key, None)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass
