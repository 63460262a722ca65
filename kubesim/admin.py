"""kubesim's admin surface (not Kubernetes API): the audit log and runtime fault injection.

``GET/DELETE /kubesim/audit`` and ``GET/PUT/DELETE /kubesim/faults`` follow the contract in COMMON.md. The
middleware records one audit entry per API request and answers faulted requests with a proper ``Status``
before
they reach the store.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from kubesim import errors, protobuf

AUDIT_LIMIT = 100_000
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
FAULT_KEYS = {"errorRate": float, "errorCodes": list, "conflictRate": float, "latencyMs": float}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Parser = Callable[[str, str, Any], Any]


class AdminState:
    """Audit entries and the current fault settings."""

    def __init__(self) -> None:
        self.audit: deque[dict[str, Any]] = deque(maxlen=AUDIT_LIMIT)
        self.seq = 0
        self.faults: dict[str, Any] = {}
        self.rng = random.Random()

    # -- routes ----------------------------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/kubesim/audit", self.get_audit)
        app.router.add_delete("/kubesim/audit", self.clear_audit)
        app.router.add_get("/kubesim/faults", self.get_faults)
        app.router.add_put("/kubesim/faults", self.put_faults)
        app.router.add_delete("/kubesim/faults", self.clear_faults)

    async def get_audit(self, request: web.Request) -> web.Response:
        since = request.query.get("since")
        items = list(self.audit)
        if since:
            try:
                floor = int(since)
            except ValueError:
                return _error(errors.ApiError(400, f"invalid since {since!r}"))
            items = [e for e in items if e["seq"] > floor]
        return web.json_response({"items": items})

    async def clear_audit(self, request: web.Request) -> web.Response:
        self.audit.clear()
        return web.json_response({"items": []})

    async def get_faults(self, request: web.Request) -> web.Response:
        return web.json_response(self.faults)

    async def put_faults(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError as exc:
            return _error(errors.ApiError(400, f"invalid JSON: {exc}"))
        if not isinstance(body, dict):
            return _error(errors.ApiError(400, "faults must be a JSON object"))
        faults: dict[str, Any] = {}
        for key, value in body.items():
            if key not in FAULT_KEYS:
                return _error(
                    errors.ApiError(400, f"unknown fault setting {key!r}; known: {sorted(FAULT_KEYS)}")
                )
            if FAULT_KEYS[key] is float and (not isinstance(value, int | float) or isinstance(value, bool)):
                return _error(errors.ApiError(400, f"{key} must be a number"))
            if key == "errorCodes" and (
                not isinstance(value, list)
                or not value
                or not all(isinstance(c, int) and 400 <= c <= 599 for c in value)
            ):
                return _error(errors.ApiError(400, "errorCodes must be a non-empty list of HTTP error codes"))
            faults[key] = value
        self.faults = faults
        return web.json_response(self.faults)

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.faults = {}
        return web.json_response({})

    # -- middleware ------------------------------------------------------------------------------------------

    def middleware(self, parse: Parser) -> Any:
        """Build the aiohttp middleware; ``parse(method, path, query)`` returns a server RequestInfo."""

        @web.middleware
        async def audit_and_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path.startswith("/kubesim/"):
                return await handler(request)
            info = parse(request.method, request.path, request.query)
            request["kubesim_info"] = info
            # Recorded on arrival (so open watches show up at once); the code is filled in before the
            # response is sent, so a client that has its answer always sees the final code.
            entry = self._entry(request, info)
            self.seq += 1
            entry["seq"] = self.seq
            self.audit.append(entry)
            response: web.StreamResponse | None = None
            try:
                response = await self._fault(request, info)
                if response is None:
                    response = await handler(request)
                return response
            finally:
                entry["code"] = response.status if response is not None else 500

        return audit_and_faults

    def _entry(self, request: web.Request, info: Any) -> dict[str, Any]:
        rt = info.rt
        return {
            "seq": 0,
            "ts": time.time(),
            "verb": info.verb,
            "method": request.method,
            "path": request.path,
            "query": request.query_string,
            "resource": rt.plural if rt is not None else "",
            "group": rt.group if rt is not None else "",
            "subresource": info.subresource,
            "namespace": info.namespace,
            "name": info.name,
            "userAgent": request.headers.get("User-Agent", ""),
            "code": 0,
            "dryRun": "All" in request.query.getall("dryRun", []),
        }

    async def _fault(self, request: web.Request, info: Any) -> web.Response | None:
        """An injected failure for an API resource request, or None to let it through."""
        faults = self.faults
        if not faults or info.rt is None or info.verb == "watch":
            return None
        latency = float(faults.get("latencyMs") or 0)
        if latency > 0:
            await asyncio.sleep(latency / 1000.0)
        rt = info.rt
        rate = float(faults.get("errorRate") or 0)
        if rate > 0 and self.rng.random() < rate:
            code = int(self.rng.choice(faults.get("errorCodes") or [500]))
            if code == 429:
                err = errors.ApiError(
                    429,
                    "Too many requests, please try again later.",
                    "TooManyRequests",
                    {"retryAfterSeconds": 0},
                )
                resp = _error(err)
                resp.headers["Retry-After"] = "0"
                return resp
            if code == 409:
                return _error(errors.conflict(rt.plural, info.name, rt.group))
            if code == 500:
                return _error(
                    errors.ApiError(
                        500,
                        "Internal error occurred: kubesim injected fault",
                        "InternalError",
                        {"causes": [{"message": "kubesim injected fault"}]},
                    )
                )
            return _error(errors.ApiError(code, f"kubesim injected fault ({code})"))
        conflict = float(faults.get("conflictRate") or 0)
        if conflict > 0 and info.verb in WRITE_VERBS and self.rng.random() < conflict:
            name = info.name or await _body_name(request)
            return _error(errors.conflict(rt.plural, name, rt.group))
        return None


async def _body_name(request: web.Request) -> str:
    """metadata.name of a create body (aiohttp caches the body, so the handler can still read it)."""
    try:
        raw = await request.read()
        if protobuf.is_protobuf(request.headers.get("Content-Type", "")):
            body = protobuf.codec().decode(raw)
        else:
            body = json.loads(raw or b"{}")
        return str(((body.get("metadata") or {}).get("name")) or "")
    except (ValueError, AttributeError, protobuf.Unavailable):
        return ""


def _error(err: errors.ApiError) -> web.Response:
    resp = web.Response(body=json.dumps(err.status()).encode(), status=err.code)
    resp.headers["Content-Type"] = "application/json"
    return resp
