"""A Kubernetes watch read in a worker thread and consumed from asyncio.

The official client is synchronous, so one watch request runs in a thread (the activities' pool)
and hands each decoded event to the event loop through an ``asyncio.Queue``. ``close()`` shuts the
socket down from the loop, so a wait that is done (or cancelled) frees its thread and connection at
once instead of at the watch's ``timeoutSeconds``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import Executor
from typing import Any

from kubernetes.client.exceptions import ApiException

from kube.client import Kube

__all__ = ["EventStream"]

Obj = dict[str, Any]
_END = object()


class EventStream:
    """One ``?watch=true`` request from ``resource_version``; ``next()`` yields its events in order.

    ``next()`` returns ``None`` once the server ends the stream (``timeoutSeconds`` reached; with a
    shared ``queue``: once any of the streams on it ends) and
    raises the request's error (``ApiException``, connection errors) if it failed. An ``ERROR``
    event (410 Expired) is returned like any other event: the caller re-lists.
    """

    def __init__(
        self,
        kube: Kube,
        path: str,
        *,
        resource_version: str,
        timeout_seconds: int,
        query: dict[str, str] | None = None,
        queue: asyncio.Queue[Any] | None = None,
    ) -> None:
        self.kube = kube
        self.path = path
        self.query = {
            **(query or {}),
            "watch": "true",
            "resourceVersion": resource_version,
            "timeoutSeconds": str(timeout_seconds),
        }
        self.timeout_seconds = timeout_seconds
        # Streams may share one queue: the reader then sees the events of all of them, in arrival order.
        self._queue: asyncio.Queue[Any] = queue if queue is not None else asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._lock = threading.Lock()
        self._closed = False
        self._response: Any = None
        self._ended = False

    def start(self, executor: Executor) -> EventStream:
        """Open the request in ``executor`` (returns at once)."""
        self._loop.run_in_executor(executor, self._run)
        return self

    async def next(self) -> Obj | None:
        """The next event, ``None`` at the end of the stream; raises the stream's error."""
        if self._ended:
            return None
        item = await self._queue.get()
        if item is _END:
            self._ended = True
            return None
        if isinstance(item, BaseException):
            self._ended = True
            raise item
        event: Obj = item
        return event

    def close(self) -> None:
        """Stop reading: shut the socket down so the thread returns now (idempotent)."""
        with self._lock:
            self._closed = True
            response = self._response
        if response is not None:
            try:
                response.shutdown()
            except Exception:  # noqa: BLE001 - already closed or never fully opened
                pass

    # -- the thread --------------------------------------------------------------------------------

    def _put(self, item: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is gone (worker shutting down)
            pass

    def _run(self) -> None:
        response: Any = None
        complete = False
        try:
            self.kube.check_scope("GET", self.path)
            params = self.kube.api_client.param_serialize(
                method="GET",
                resource_path=self.path,
                query_params=list(self.query.items()),
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
            )
            # Read timeout: the server ends the stream at timeoutSeconds; allow it some slack.
            rest = self.kube.api_client.call_api(
                *params, _request_timeout=(10.0, self.timeout_seconds + 10.0)
            )
            response = rest.response
            with self._lock:
                self._response = response
                closed = self._closed
            if closed:
                return
            if not 200 <= rest.status <= 299:
                body = response.read().decode("utf-8", "replace")
                raise ApiException(status=rest.status, reason=rest.reason, body=body)
            pending = b""
            for chunk in response.stream(amt=None, decode_content=False):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        self._put(json.loads(line))
                if self._closed:
                    return
            complete = not self._closed
        except BaseException as exc:  # noqa: BLE001 - handed to the loop, which decides
            if not self._closed:
                self._put(exc)
        finally:
            self._put(_END)
            if response is not None:
                try:
                    if not complete:  # a half-read stream must not go back into the pool
                        response.close()
                    response.release_conn()
                except Exception:  # noqa: BLE001 - the connection is dropped either way
                    pass
