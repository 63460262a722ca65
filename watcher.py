"""The shared Deployment watcher: one informer per cluster in the worker, signalling the rollouts.

A paused rollout holds no activity and no watch of its own. Instead every worker process runs one
``DeploymentWatcher``: an informer (``kube.informer``) on the Deployments that rollouts hold (label
``rollouts.temporal.io/stable-revision``, set by the take-over and removed at hand-back). When such a
Deployment's ``spec.replicas`` or pod template changes, or it is deleted, the watcher signals
``deployment_changed`` to the workflow named in its ``rollouts.temporal.io/workflow-id`` annotation;
the workflow re-runs the step's converge (rescale, or pause for the other writer's template).

- Several workers each run one: the signal is idempotent (the workflow ignores a change whose
  resourceVersion it has already seen, and acts only when replicas or template differ from what it
  holds), so N workers cost N signals per change, never N rescales.
- A (re)start or a watch gap re-lists: every held Deployment whose state is new to this watcher is
  signalled once, so a change made while no worker ran is picked up.
- Our own writes do not echo: the take-over is a Deployment's first sighting (no signal), the
  hand-back removes the label (a ``DELETED`` event for the selector, without our annotation: no signal).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from kube.client import Kube
from kube.informer import Informer
from kube.names import ANN_WORKFLOW_ID, LABEL_STABLE_REVISION
from kube.objects import template_hash
from watcher_decisions import event_due, gone, resync_due, status_only
from workflows.model import DeploymentChange

__all__ = ["SIGNAL", "DeploymentWatcher", "HeldState", "held_state"]

Obj = dict[str, Any]
log = logging.getLogger("rollout-worker.watcher")

SIGNAL = "deployment_changed"


@dataclass(frozen=True)
class HeldState:
    """What a rollout cares about in its Deployment."""

    workflow_id: str
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
        )


def held_state(dep: Obj) -> HeldState | None:
    """The state of a Deployment a rollout holds, or ``None`` when no rollout holds it."""
    md, spec = dep.get("metadata") or {}, dep.get("spec") or {}
    wid = (md.get("annotations") or {}).get(ANN_WORKFLOW_ID)
    if not wid:
        return None
    return HeldState(
        workflow_id=wid,
        replicas=int(spec.get("replicas") or 0),
        template_hash=template_hash(spec.get("template") or {}),
        generation=int(md.get("generation") or 0),
        resource_version=str(md.get("resourceVersion") or ""),
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
    ) -> None:
        path = Kube.deployment_path(namespace) if namespace else "/apis/apps/v1/deployments"
        self.client = client
        self.informer = Informer(kube, path, executor=executor, label_selector=LABEL_STABLE_REVISION)
        self.held: dict[str, HeldState] = {}  # "namespace/name" -> last state seen
        self.signals_sent = 0
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
            state = held_state(dep)
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
        state = held_state(dep)
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
                if exc.status != RPCStatusCode.NOT_FOUND:  # closed rollouts need no news
                    log.warning("could not signal %s: %s", state.workflow_id, exc)
