"""A work queue keyed by Rollout (``namespace/name``), in the manner of client-go's workqueue.

A key added while it waits is not added twice; a key added while it is being reconciled is reconciled
once more after that (never by two workers at once). A failed key comes back after a per-key backoff
(0.5 s doubling to 30 s), so one broken Rollout never spins the loop or delays the others.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

__all__ = ["WorkQueue"]

K = TypeVar("K")
BASE_DELAY = 0.5
MAX_DELAY = 30.0


class WorkQueue(Generic[K]):
    def __init__(self) -> None:
        self._order: deque[K] = deque()
        self._dirty: set[K] = set()
        self._active: set[K] = set()
        self._failures: dict[K, int] = {}
        self._ready = asyncio.Condition()
        self._idle = asyncio.Event()
        self._idle.set()

    def __len__(self) -> int:
        return len(self._dirty) + len(self._active)

    def add(self, key: K) -> None:
        if key in self._dirty:
            return
        self._dirty.add(key)
        self._idle.clear()
        if key not in self._active:
            self._order.append(key)
            asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._ready:
            self._ready.notify()

    def add_after(self, key: K, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self.add, key)

    def retry(self, key: K) -> float:
        """Add ``key`` back after its backoff; returns the delay."""
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        delay = min(MAX_DELAY, BASE_DELAY * 2**n)
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

    async def get(self) -> K:
        async with self._ready:
            await self._ready.wait_for(lambda: bool(self._order))
            key = self._order.popleft()
        self._dirty.discard(key)
        self._active.add(key)
        return key

    def done(self, key: K) -> None:
        self._active.discard(key)
        if key in self._dirty:
            self._order.append(key)
            asyncio.get_running_loop().create_task(self._notify())
        elif not self._dirty and not self._active:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Until nothing waits and nothing is being reconciled (keys in backoff do not count)."""
        await self._idle.wait()
