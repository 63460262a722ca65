"""The shared Deployment watcher: one informer per cluster in the worker, signalling the rollouts.

A paused rollout holds no activity and no watch of its own. Instead every worker process runs one
``DeploymentWatcher``: an informer (``kube.informer``) on the Deployments that rollouts hold (label
``rollouts.temporal.io/stable-revision``, set by the take-over and removed at hand-back). When such a
Deployment's ``spec.replicas`` or pod template changes, or it is deleted, the watcher signals
``deployment_changed`` to the workflow of that Deployment; the workflow re-runs the step's converge
(rescale, or pause for the other writer's template).

- The workflow ID comes from the Deployment's namespace and name (``rollout/<ns>/<name>``, or the
  legacy ``rollout-<ns>-<name>`` of older runs), never from the user-writable annotation: a
  Deployment whose ``rollouts.temporal.io/workflow-id`` names any other ID is ignored, so a Deployment
  editor cannot aim signals at another tenant's rollout. The signal names the Deployment and the
  workflow checks it is its own.
- Namespaces outside the worker's scope (``kube.client.NamespaceScope``) are ignored.

- Several workers each run one: the signal is idempotent (the workflow ignores a change whose
  resourceVersion it has already seen, and acts only when replicas or template differ from what it
  holds), so N workers cost N signals per change, never N rescales.
- A (re)start or a watch gap re-lists: every held Deployment whose state is new to this watcher is
  signalled once, so a change made while no worker ran is picked up.
- A signal that finds the rollout closed while its Deployment is still held (terminated, timed out,
  failed on a bug) reports an orphaned hold in plain words (``orphan_text``, ``orphans``): at a
  worker's start every held Deployment is signalled once, so each orphan is named then, and again at
  its next change.
- Our own writes do not echo: the held write of ``rollout start`` (or the take-over of a Deployment
  the webhook held) is a Deployment's first sighting (no signal), the hand-back removes the label
  (a ``DELETED`` event for the selector, without our annotation: no signal).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from kube.client import Kube, NamespaceScope
from kube.informer import Informer
from kube.names import ANN_WORKFLOW_ID, LABEL_STABLE_REVISION
from kube.objects import template_hash
from watcher_decisions import event_due, gone, resync_due, status_only
from workflows.model import DeploymentChange, legacy_workflow_id, target_of_workflow_id

__all__ = ["SIGNAL", "DeploymentWatcher", "HeldState", "held_state", "orphan_text"]

Obj = dict[str, Any]
log = logging.getLogger("rollout-worker.watcher")

SIGNAL = "deployment_changed"


@dataclass(frozen=True)
class HeldState:
    """What a rollout cares about in its Deployment."""

    workflow_id: str
    namespace: str
    name: str
    replicas: int
    template_hash: str
    generation: int
    resource_version: str

    def differs(self, other: HeldState) -> bool:
        return (self.replicas, self.template_hash) != (other.replicas, other.template_hash)

    def change(self, *, deleted: bool = False) -> DeploymentChange:
        return DeploymentChange(
            resource_version=self.resource_version,
            generation=self.generation,
            replicas=self.replicas,
            template_hash=self.template_hash,
            deleted=deleted,
            namespace=self.namespace,
            name=self.name,
        )


def held_state(dep: Obj, scope: NamespaceScope | None = None) -> HeldState | None:
    """The state of a Deployment a rollout holds, or ``None`` when no rollout of it holds it.

    The ID is derived from namespace and name; the annotation only says which form (new or legacy)
    holds it. Any other annotation value is someone else's write and is ignored.
    """
    md, spec = dep.get("metadata") or {}, dep.get("spec") or {}
    wid = (md.get("annotations") or {}).get(ANN_WORKFLOW_ID)
    ns, name = str(md.get("namespace") or ""), str(md.get("name") or "")
    if not wid or not ns or not name:
        return None
    # A release target's ID carries its cluster (rollout/<cluster>/<ns>/<name>): the same Deployment.
    if wid != legacy_workflow_id(ns, name) and target_of_workflow_id(wid) != (ns, name):
        log.debug("deployment %s/%s names workflow %r, not its own: ignored", ns, name, wid)
        return None
    if scope is not None and not scope.allows(ns):
        return None
    return HeldState(
        workflow_id=wid,
        namespace=ns,
        name=name,
        replicas=int(spec.get("replicas") or 0),
        template_hash=template_hash(spec.get("template") or {}),
        generation=int(md.get("generation") or 0),
        resource_version=str(md.get("resourceVersion") or ""),
    )


async def orphan_text(client: Client, key: str, workflow_id: str) -> str:
    """Why the Deployment ``key`` is an orphaned hold ("" when its rollout still runs).

    The watcher signals only the rollouts it sees held; a signal that finds the rollout closed
    (terminated, timed out, failed on a bug, canceled by an older build) means nothing will ever
    hand the Deployment back, so the worker says so (``rollout status`` and ``list`` do too).
    """
    try:
        desc = await client.get_workflow_handle(workflow_id).describe()
        closed = desc.status.name.lower().replace("_", " ") if desc.status is not None else "closed"
        if desc.status is not None and desc.status.name == "RUNNING":
            return ""
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND or workflow_id.count("/") == 3:
            return ""  # rollout/<cluster>/<ns>/<name> not started yet: its release starts it or hands it back
        closed = "unknown to Temporal"
    namespace, _, name = key.partition("/")
    return (
        f"deployment {key or '?'} is held by rollout {workflow_id}, which is {closed}: it stays paused and "
        f"no rollout will move it; `rollout undo {name} -n {namespace}` hands it back on the stable template"
    )


class DeploymentWatcher:
    """One informer on held Deployments (all namespaces, or ``namespace``); signals their workflows."""

    def __init__(
        self,
        client: Client,
        kube: Kube,
        *,
        executor: Executor,
        namespace: str | None = None,
        signal_concurrency: int = 32,
        scope: NamespaceScope | None = None,
    ) -> None:
        path = Kube.deployment_path(namespace) if namespace else "/apis/apps/v1/deployments"
        self.scope = scope
        self.client = client
        self.informer = Informer(kube, path, executor=executor, label_selector=LABEL_STABLE_REVISION)
        self.held: dict[str, HeldState] = {}  # "namespace/name" -> last state seen
        self.signals_sent = 0
        self.orphans: dict[str, str] = {}  # "namespace/name" -> why it is an orphaned hold
        self._sem = asyncio.Semaphore(signal_concurrency)
        self._task: asyncio.Task[None] | None = None

    @staticmethod
    def _key(dep: Obj) -> str:
        md = dep.get("metadata") or {}
        return f"{md.get('namespace')}/{md.get('name')}"

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> DeploymentWatcher:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="deployment-watcher")
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def run(self) -> None:
        await self.informer.run(self._on_sync, self._on_event)

    # -- informer callbacks --------------------------------------------------------------------------

    async def _on_sync(self, items: list[Obj]) -> None:
        """A (re-)list: signal every held Deployment whose state this watcher has not seen."""
        seen: dict[str, HeldState] = {}
        due: list[tuple[HeldState, bool]] = []
        for dep in items:
            state = held_state(dep, self.scope)
            if state is None:
                continue
            key = self._key(dep)
            seen[key] = state
            old = self.held.get(key)
            if resync_due(old, state):
                due.append((state, False))
        # Gone while unwatched: deleted, or handed back (then the signal finds the workflow closed or
        # finalizing, and it ignores a deletion it is not paused for).
        due.extend((old, True) for old in gone(self.held, seen))
        self.held = seen
        if due:
            log.info("re-sync: signalling %d rollouts of %d held Deployments", len(due), len(seen))
        await asyncio.gather(*(self._signal(state, deleted) for state, deleted in due))

    async def _on_event(self, kind: str, dep: Obj) -> None:
        key = self._key(dep)
        old = self.held.get(key)
        md = dep.get("metadata") or {}
        wid = (md.get("annotations") or {}).get(ANN_WORKFLOW_ID)
        if status_only(kind, old, int(md.get("generation") or 0), wid):
            return  # a status update (the spec, hence replicas and template, is unchanged)
        state = held_state(dep, self.scope)
        if kind == "DELETED":
            self.held.pop(key, None)
            # Out of the selector: handed back (our annotation is gone too) or deleted by a user.
            if state is not None:
                await self._signal(state, True)
            return
        if state is None:
            self.held.pop(key, None)
            return
        self.held[key] = state
        if event_due(old, state):
            await self._signal(state, False)

    async def _signal(self, state: HeldState, deleted: bool) -> None:
        async with self._sem:
            try:
                await self.client.get_workflow_handle(state.workflow_id).signal(
                    SIGNAL, state.change(deleted=deleted)
                )
                self.signals_sent += 1
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    log.warning("could not signal %s: %s", state.workflow_id, exc)
                elif not deleted:  # a closed rollout that still holds its Deployment
                    await self._report_orphan(state)

    async def _report_orphan(self, state: HeldState) -> None:
        """Say in plain words that a Deployment is held by a closed rollout (kept in ``orphans``)."""
        key = next((k for k, held in self.held.items() if held.workflow_id == state.workflow_id), "")
        text = await orphan_text(self.client, key, state.workflow_id)
        if text and self.orphans.get(key) != text:
            self.orphans[key] = text
            log.warning("%s", text)
