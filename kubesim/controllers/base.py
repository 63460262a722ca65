"""Work queue and reconcile loop shared by every controller.

Each controller keeps a de-duplicating queue of keys, fed by store events (through ``on_event``), by delayed
re-queues and by a periodic resync. Reconciles are synchronous functions over the shared cache; the loop
yields to the event loop between items so the HTTP server stays responsive. A 409/404 from the store (a
concurrent write won) re-queues the key after a short back-off, like upstream's rate-limited queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable, Iterable
from typing import Any

from kubesim.controllers.cache import Cache
from kubesim.controllers.events import EventRecorder
from kubesim.errors import ApiError
from kubesim.store import Store, WatchEvent

log = logging.getLogger("kubesim.controllers")

Obj = dict[str, Any]

RETRY_DELAY = 0.02
ERROR_DELAY = 0.5
# How many reconciles run before the loop yields to the event loop.
BATCH = 25


class Context:
    """What every controller shares: the store, its cache, the event recorder and the global knobs."""

    def __init__(
        self, store: Store, cache: Cache, recorder: EventRecorder, *, ready_delay: float, resync: float
    ) -> None:
        self.store = store
        self.cache = cache
        self.recorder = recorder
        self.ready_delay = ready_delay
        self.resync = resync


class Controller:
    """A reconcile loop keyed by hashable keys (usually ``(namespace, name)``)."""

    name = "controller"
    # Periodic resync of every key; 0 disables it.
    resync_factor: float = 1.0
    # Seconds to wait after a wake-up before draining the queue, so bursts of events (e.g. ten pods of one
    # ReplicaSet turning Ready) coalesce into one reconcile per key.
    coalesce: float = 0.0

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.cache = ctx.cache
        self._queue: dict[Hashable, None] = {}
        self._wake = asyncio.Event()
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []

    # ---- queue ---------------------------------------------------------------------------------------------

    def enqueue(self, key: Hashable) -> None:
        if key not in self._queue:
            self._queue[key] = None
            self._wake.set()

    def enqueue_after(self, key: Hashable, delay: float) -> None:
        """Re-queue ``key`` after ``delay`` seconds; an earlier pending timer for the key wins."""
        loop = asyncio.get_running_loop()
        when = loop.time() + max(0.0, delay)
        timer = self._timers.get(key)
        if timer is not None and not timer.cancelled() and timer.when() <= when:
            return
        if timer is not None:
            timer.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        self.enqueue(key)

    # ---- hooks ---------------------------------------------------------------------------------------------

    def on_event(self, event: WatchEvent, old: Obj | None) -> None:
        """Route a store event to keys (called synchronously inside the store write)."""

    def keys(self) -> Iterable[Hashable]:
        """Every key, for the periodic resync."""
        return ()

    def reconcile(self, key: Any) -> None:
        raise NotImplementedError

    def order(self, batch: list[Hashable]) -> list[Hashable]:
        """The order in which a drained batch of keys is reconciled (default: first queued first)."""
        return batch

    # ---- loop ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._run(), name=f"kubesim-{self.name}"))
        if self.resync_factor > 0:
            self._tasks.append(asyncio.create_task(self._resync(), name=f"kubesim-{self.name}-resync"))
        for key in self.keys():
            self.enqueue(key)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: PERF203 - shutdown path
                pass
        self._tasks.clear()
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.ctx.resync * self.resync_factor)
            for key in self.keys():
                self.enqueue(key)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if self.coalesce:
                await asyncio.sleep(self.coalesce)
            self._wake.clear()
            while self._queue:
                batch = self.order(list(self._queue))
                self._queue.clear()
                for i, key in enumerate(batch):
                    self._reconcile_one(key)
                    if i % BATCH == BATCH - 1:
                        await asyncio.sleep(0)
                await asyncio.sleep(0)

    def _reconcile_one(self, key: Hashable) -> None:
        try:
            self.reconcile(key)
        except ApiError as exc:
            # A concurrent writer won (409) or the object vanished mid-sync (404): retry shortly.
            delay = RETRY_DELAY if exc.code in (404, 409, 429) else ERROR_DELAY
            log.debug("%s: %s requeued after %s", self.name, key, exc.message)
            self.enqueue_after(key, delay)
        except Exception:
            log.exception("%s: reconcile of %s failed", self.name, key)
            self.enqueue_after(key, ERROR_DELAY)
