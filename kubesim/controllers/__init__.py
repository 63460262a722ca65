"""kubesim's controllers: deployment, replicaset, scheduler/kubelet, endpoints/endpointslices, garbage
collection.

Entry point: ``start_controllers(store, ready_delay=...)`` inside the running asyncio
loop; the returned ``Controllers`` has ``async stop()``. Controllers react to store events synchronously
(through one subscription that first updates the shared cache) and reconcile in their own asyncio tasks. All
writes land in the ``Store`` with its semantics (rv bump, no-op suppression, 409 preconditions, watch
history), so API watchers see the real event stream; status writes use ``writes.update_status`` (see its
docstring).

Also exported: ``delete_with_propagation`` (Foreground/Orphan/Background deletes handled by ``gc``).
"""

from __future__ import annotations

import logging

from kubesim.controllers.base import Context, Controller
from kubesim.controllers.cache import Cache
from kubesim.controllers.deployment import DeploymentController
from kubesim.controllers.endpoints import EndpointsController
from kubesim.controllers.events import EventRecorder
from kubesim.controllers.gc import GarbageCollector, delete_with_propagation
from kubesim.controllers.kubelet import Kubelet
from kubesim.controllers.replicaset import ReplicaSetController
from kubesim.store import Store, WatchEvent

__all__ = ["Controllers", "delete_with_propagation", "start_controllers"]

log = logging.getLogger("kubesim.controllers")

# Periodic resync of every key (upstream controllers resync far less often; kubesim wants quick repair).
DEFAULT_RESYNC = 0.5


class Controllers:
    """The running controllers; ``stop()`` cancels their tasks and unsubscribes from the store."""

    def __init__(self, store: Store, *, ready_delay: float, resync: float = DEFAULT_RESYNC) -> None:
        self.store = store
        self.cache = Cache(store)
        self.ctx = Context(store, self.cache, EventRecorder(store), ready_delay=ready_delay, resync=resync)
        self.deployment = DeploymentController(self.ctx)
        self.replicaset = ReplicaSetController(self.ctx)
        self.kubelet = Kubelet(self.ctx)
        self.endpoints = EndpointsController(self.ctx)
        self.gc = GarbageCollector(self.ctx)
        self.all: list[Controller] = [self.deployment, self.replicaset, self.kubelet, self.endpoints, self.gc]
        self._subscribed = False

    def _on_event(self, event: WatchEvent) -> None:
        # Runs inside a store write (HTTP handler or controller): never let a routing bug fail that write.
        try:
            old = self.cache.apply(event)
        except Exception:
            log.exception("cache update failed for %s %s", event.type, event.resource)
            return
        for controller in self.all:
            try:
                controller.on_event(event, old)
            except Exception:
                log.exception("%s: event routing failed", controller.name)

    def start(self) -> None:
        self.store.subscribe(self._on_event)
        self._subscribed = True
        for controller in self.all:
            controller.start()

    async def stop(self) -> None:
        if self._subscribed:
            self.store.unsubscribe(self._on_event)
            self._subscribed = False
        for controller in self.all:
            await controller.stop()


def start_controllers(store: Store, *, ready_delay: float, resync: float = DEFAULT_RESYNC) -> Controllers:
    """Start every controller on the running loop (call from async code, e.g. the server's startup hook)."""
    controllers = Controllers(store, ready_delay=ready_delay, resync=resync)
    controllers.start()
    return controllers
