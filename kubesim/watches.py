"""kubesim's watch streams: the initial list or the replay from a resourceVersion, then the live events,
bookmarks and the timeout, in JSON lines, Table rows or protobuf frames (one shared encoding per event)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from aiohttp import web

from kubesim import conversion, errors, protobuf, tables
from kubesim.resources import ResourceType
from kubesim.rest import (
    JSON_CT,
    TABLE_CT,
    RequestInfo,
    bad_request,
    dumps,
    include_object,
    matcher,
    wants_table,
    with_type,
)
from kubesim.selectors import parse_label_selector
from kubesim.store import Interest, Obj, Store, WatchEvent

BOOKMARK_INTERVAL = 1.0


class Watches:
    """The open watch streams on one ``Store``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # Open watch streams, and who holds them (GET /kubesim/watches: what a benchmark counts).
        self.watchers: dict[asyncio.Queue[WatchEvent | None], dict[str, str]] = {}
        # Encoded watch lines by (rv, type, protobuf?): every watcher of an event shares one encoding.
        self._lines: dict[tuple[int, str, bool], bytes] = {}

    async def serve(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        assert info.rt is not None
        rt, query = info.rt, request.query
        match = matcher(rt, info.namespace, query)
        if info.name:
            by_query, name = match, info.name

            def match(obj: Obj) -> bool:
                return (obj.get("metadata") or {}).get("name") == name and by_query(obj)

        bookmarks, send_initial, timeout, start_rv = _watch_options(query)
        as_table: str | None = include_object(request) if wants_table(request) else None
        proto = _watch_codec(request, rt) if as_table is None else None

        # Snapshot/replay and subscribe with no await in between, so no event is lost or duplicated.
        converting = conversion.storage_rt(rt) is not rt  # a custom resource's non-storage version
        entries, expired = self._backlog(rt, info.namespace, match, send_initial, start_rv, as_table, proto)
        queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue()

        def on_event(event: WatchEvent) -> None:
            queue.put_nowait(event)  # the store's Interest index delivers only this resource's events

        interest = Interest(rt.key, info.namespace or None, _equality_label(query.get("labelSelector")))
        if expired is None:
            self.store.subscribe(on_event, interest)
            self.watchers[queue] = {
                "userAgent": request.headers.get("User-Agent", ""),
                "resource": rt.key,
                "namespace": info.namespace,
                "labelSelector": query.get("labelSelector", ""),
                "name": info.name or "",
            }
        resp = web.StreamResponse(status=200)
        try:
            lines = await self._render(entries, rt, as_table, proto)  # a failed conversion: a plain 500
            resp.headers["Content-Type"] = protobuf.WATCH_CT if proto else TABLE_CT if as_table else JSON_CT
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            if expired is not None:
                await resp.write(_frame({"type": "ERROR", "object": expired.status()}, proto))
                await resp.write_eof()
                return resp
            if lines:
                await resp.write(b"".join(lines))
            await self._stream(resp, rt, queue, match, as_table, bookmarks, timeout, proto, converting)
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.store.unsubscribe(on_event, interest)
            self.watchers.pop(queue, None)
        return resp

    def _backlog(
        self,
        rt: ResourceType,
        namespace: str,
        match: Callable[[Obj], bool],
        send_initial: bool,
        start_rv: int,
        as_table: str | None,
        proto: protobuf.Codec | None,
    ) -> tuple[list[bytes | tuple[str, Obj]], errors.ApiError | None]:
        """The lines a watch starts with: the initial list (and its bookmark), or the replay since
        ``start_rv``; or the Expired error when that resourceVersion is too old. Events are (type,
        object) pairs, rendered by ``_render`` once the objects are in the watched version."""
        lines: list[bytes | tuple[str, Obj]] = []
        expired: errors.ApiError | None = None
        snapshot_rv = self.store.rv
        if send_initial or start_rv == 0:
            for obj in self.store.list(rt.key, namespace or None):
                if match(obj):
                    lines.append(("ADDED", obj))
            if send_initial:
                lines.append(
                    _frame(
                        {
                            "type": "BOOKMARK",
                            "object": {
                                "kind": rt.kind,
                                "apiVersion": rt.group_version,
                                "metadata": {
                                    "resourceVersion": str(snapshot_rv),
                                    "annotations": {"k8s.io/initial-events-end": "true"},
                                },
                            },
                        },
                        proto,
                    )
                )
        else:
            try:
                for event in self.store.events_since(start_rv):
                    if event.resource == rt.key:
                        type_ = translate(event, match)
                        if type_:
                            lines.append((type_, event.obj))
            except errors.ApiError as err:
                expired = err
        return lines, expired

    async def _stream(
        self,
        resp: web.StreamResponse,
        rt: ResourceType,
        queue: asyncio.Queue[WatchEvent | None],
        match: Callable[[Obj], bool],
        as_table: str | None,
        bookmarks: bool,
        timeout: float,
        proto: protobuf.Codec | None = None,
        converting: bool = False,
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            wait = min(remaining, BOOKMARK_INTERVAL) if bookmarks else remaining
            try:
                event = await asyncio.wait_for(queue.get(), wait)
            except TimeoutError:
                if bookmarks and deadline - loop.time() > 0:
                    await resp.write(
                        _frame(
                            {
                                "type": "BOOKMARK",
                                "object": {
                                    "kind": rt.kind,
                                    "apiVersion": rt.group_version,
                                    "metadata": {"resourceVersion": str(self.store.rv)},
                                },
                            },
                            proto,
                        )
                    )
                continue
            batch: list[bytes] = []
            while True:
                if event is None:  # server shutdown
                    if batch:
                        await resp.write(b"".join(batch))
                    return
                type_ = translate(event, match)
                if type_ and converting:  # per watcher: the shared lines are the stored version's
                    try:
                        obj = (await conversion.to_version(rt, [event.obj]))[0]
                    except errors.ApiError as err:  # the watch ends with the error, as the apiserver's
                        await resp.write(
                            b"".join(batch) + _frame({"type": "ERROR", "object": err.status()}, proto)
                        )
                        return
                    batch.append(self._event_line(type_, rt, obj, as_table, proto))
                elif type_:
                    batch.append(self._shared_line(event, type_, rt, as_table, proto))
                if queue.empty():
                    break
                event = queue.get_nowait()
            if batch:
                await resp.write(b"".join(batch))

    async def _render(
        self,
        entries: list[bytes | tuple[str, Obj]],
        rt: ResourceType,
        as_table: str | None,
        proto: protobuf.Codec | None,
    ) -> list[bytes]:
        pairs = [e for e in entries if isinstance(e, tuple)]
        objs = iter(await conversion.to_version(rt, [obj for _, obj in pairs]))
        return [
            e if isinstance(e, bytes) else self._event_line(e[0], rt, next(objs), as_table, proto)
            for e in entries
        ]

    def _shared_line(
        self,
        event: WatchEvent,
        type_: str,
        rt: ResourceType,
        as_table: str | None,
        proto: protobuf.Codec | None,
    ) -> bytes:
        if as_table is not None:
            return self._event_line(type_, rt, event.obj, as_table)
        key = (event.rv, type_, proto is not None)
        line = self._lines.get(key)
        if line is None:
            if len(self._lines) > 4096:
                self._lines.clear()
            line = self._lines[key] = self._event_line(type_, rt, event.obj, None, proto)
        return line

    def _event_line(
        self,
        type_: str,
        rt: ResourceType,
        obj: Obj,
        as_table: str | None,
        proto: protobuf.Codec | None = None,
    ) -> bytes:
        """One watch line (or protobuf frame); under Table output the object is a one-row Table (kubectl get
        -w)."""
        obj = with_type(rt, obj)
        if as_table is not None:
            obj = tables.to_table(rt, [obj], include_object=as_table)
        return _frame({"type": type_, "object": obj}, proto)

    def close_watches(self) -> None:
        """End every open watch stream (server shutdown)."""
        for queue in list(self.watchers):
            queue.put_nowait(None)


def _watch_options(query: Any) -> tuple[bool, bool, float, int]:
    """allowWatchBookmarks, sendInitialEvents, the timeout (seconds) and the resourceVersion to start at."""
    bookmarks = query.get("allowWatchBookmarks", "").lower() in ("true", "1")
    send_initial = query.get("sendInitialEvents", "").lower() in ("true", "1")
    if send_initial and (not bookmarks or query.get("resourceVersionMatch") != "NotOlderThan"):
        raise errors.invalid(
            "ListOptions",
            "",
            [
                (
                    "sendInitialEvents",
                    "Forbidden: sendInitialEvents is forbidden for watch unless the "
                    "WatchList feature gate is enabled and allowWatchBookmarks=true and "
                    "resourceVersionMatch=NotOlderThan",
                    "FieldValueForbidden",
                )
            ],
            "meta.k8s.io",
        )
    rv_text = query.get("resourceVersion", "")
    try:
        timeout = float(query.get("timeoutSeconds") or 0)
        if timeout <= 0:  # unset or 0: the apiserver's random 30-60 min
            timeout = random.uniform(1800, 3600)
        start_rv = int(rv_text) if rv_text else 0
    except ValueError:
        raise bad_request(f"invalid resourceVersion or timeoutSeconds: {rv_text!r}") from None
    return bookmarks, send_initial, timeout, start_rv


def _equality_label(selector: str | None) -> tuple[str, str] | None:
    """One ``key=value`` requirement of a (valid) label selector, to index the watch by; else None."""
    for key, op, values in parse_label_selector(selector):
        if op == "=" or (op == "in" and len(values) == 1):
            return key, values[0]
    return None


def translate(event: WatchEvent, match: Callable[[Obj], bool]) -> str | None:
    """The watch event type a filtered watcher sees (watch-cache selector transitions), or None."""
    if event.type == "ADDED":
        return "ADDED" if match(event.obj) else None
    if event.type == "DELETED":
        return "DELETED" if match(event.obj) else None
    now = match(event.obj)
    before = event.old is not None and match(event.old)
    if now and before:
        return "MODIFIED"
    if now:
        return "ADDED"
    if before:
        return "DELETED"
    return None


def _watch_codec(request: web.Request, rt: ResourceType) -> protobuf.Codec | None:
    """The codec for a watch the client wants in protobuf (and the kind has a message), else None."""
    if not protobuf.wants_protobuf(request.headers.get("Accept", "")):
        return None
    codec = protobuf.available()
    return codec if codec is not None and codec.message(rt.group_version, rt.kind) is not None else None


def _frame(event: Obj, proto: protobuf.Codec | None) -> bytes:
    """One watch event on the wire: a JSON line, or a length-prefixed protobuf frame."""
    if proto is None:
        return dumps(event) + b"\n"
    return proto.watch_frame(event["type"], event["object"])
