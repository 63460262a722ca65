"""A shared informer: one LIST, then one watch, of a kind of object, for the whole process.

The client-go pattern without client-go: ``run`` lists the objects (a label selector narrows them),
hands the full list to ``on_sync``, then follows them on one watch from the list's resourceVersion and
hands every event to ``on_event``. When the watch ends at its ``timeoutSeconds`` it is reopened from
the last resourceVersion seen (bookmarks keep that fresh); on 410 Expired, an ``ERROR`` event or a
failed request it lists again, so a restart or a gap always ends in a re-sync from a list.

One informer per cluster replaces one watch per waiting rollout: the API server carries one open
watch however many rollouts are paused.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

from kube.client import Kube
from kube.watch import EventStream

__all__ = ["Informer"]

Obj = dict[str, Any]
log = logging.getLogger("rollout-worker.informer")


class Informer:
    """List + watch ``path`` (a collection URL, e.g. ``/apis/apps/v1/deployments``)."""

    def __init__(
        self,
        kube: Kube,
        path: str,
        *,
        executor: Executor,
        label_selector: str | None = None,
        watch_seconds: int = 240,
        retry_seconds: float = 1.0,
    ) -> None:
        self.kube = kube
        self.path = path
        self.executor = executor
        self.query = {"labelSelector": label_selector} if label_selector else {}
        self.watch_seconds = watch_seconds
        self.retry_seconds = retry_seconds
        self.resource_version = ""
        self.lists = 0  # how many times it listed (1 + re-syncs), for tests and metrics
        self.synced = asyncio.Event()

    async def _list(self) -> list[Obj]:
        loop = asyncio.get_running_loop()
        data = await loop.run_in_executor(
            self.executor, lambda: self.kube.request("GET", self.path, query=self.query, timeout=60.0)
        )
        self.resource_version = str((data.get("metadata") or {}).get("resourceVersion") or "")
        self.lists += 1
        return list(data.get("items") or [])

    async def run(
        self,
        on_sync: Callable[[list[Obj]], Awaitable[None]],
        on_event: Callable[[str, Obj], Awaitable[None]],
    ) -> None:
        """List, then watch, forever (until cancelled); re-list after any gap (backing off to 30 s)."""
        delay = self.retry_seconds
        while True:
            try:
                await on_sync(await self._list())
                self.synced.set()
                delay = self.retry_seconds
                await self._watch(on_event)
            except asyncio.CancelledError:
                raise
            except (ApiException, OSError, ValueError, urllib3.exceptions.HTTPError) as exc:
                reason = f"HTTP {exc.status}" if isinstance(exc, ApiException) else str(exc)
                log.warning("informer on %s: %s; listing again in %.0fs", self.path, reason, delay)
                await asyncio.sleep(delay)
                delay = min(30.0, delay * 2)

    async def _watch(self, on_event: Callable[[str, Obj], Awaitable[None]]) -> None:
        """Follow the watch from ``resource_version`` until it needs a re-list (returns) or fails."""
        while True:
            stream = EventStream(
                self.kube,
                self.path,
                resource_version=self.resource_version,
                timeout_seconds=self.watch_seconds,
                query={**self.query, "allowWatchBookmarks": "true"},
            ).start(self.executor)
            try:
                while True:
                    event = await stream.next()
                    if event is None:
                        break  # timeoutSeconds: reopen from the last resourceVersion
                    kind = str(event.get("type") or "")
                    obj = event.get("object") or {}
                    if kind == "ERROR":
                        log.info("informer on %s: %s; listing again", self.path, obj.get("message"))
                        return  # 410 Expired and friends
                    rv = (obj.get("metadata") or {}).get("resourceVersion")
                    if rv:
                        self.resource_version = str(rv)
                    if kind != "BOOKMARK":
                        await on_event(kind, obj)
            finally:
                stream.close()
