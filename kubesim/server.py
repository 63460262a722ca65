"""The Kubernetes REST layer of kubesim: routing, non-resource paths and reads.

One aiohttp catch-all route parses the path into a ``RequestInfo`` (also used by the audit middleware) and
dispatches on the verb: reads here, watches in ``watches.py``, writes in ``writes.py``, deletes in
``deletes.py`` (their shared vocabulary is ``rest.py``, request bodies ``bodies.py``). Everything runs on the
single asyncio loop that owns the ``Store``.
"""

from __future__ import annotations

import base64
import json
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from kubesim import conversion, discovery, errors, openapi, protobuf, tables
from kubesim.deletes import Deletes
from kubesim.pod_metrics import PodMetrics
from kubesim.resources import BY_KEY
from kubesim.rest import (
    JSON_CT,
    TABLE_CT,
    RequestInfo,
    bad_request,
    dumps,
    include_object,
    json_response,
    matcher,
    not_found_path,
    parse_request,
    scale_of,
    segments,
    status_response,
    wants_table,
    with_type,
)
from kubesim.store import Store
from kubesim.watches import Watches, translate
from kubesim.writes import Writes

if TYPE_CHECKING:
    from kubesim.admin import AdminState

AGGREGATED_CT = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
ENDPOINTS_WARNING = '299 - "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"'
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")


class ApiServer:
    """Request handlers bound to one ``KubeSim`` runtime."""

    def __init__(self, store: Store, allocate_cluster_ip: Callable[[], str]) -> None:
        self.store = store
        self.watches = Watches(store)
        self.writes = Writes(store, allocate_cluster_ip)
        self.deletes = Deletes(store)

    # -- entry -----------------------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        info: RequestInfo = request.get("kubesim_info") or parse_request(
            request.method, request.path, request.query
        )
        try:
            resp = await self._dispatch(request, info)
        except errors.ApiError as err:
            resp = status_response(err)
        except web.HTTPException:
            raise
        except Exception as exc:  # a kubesim bug: answer like the apiserver, leave a trace in the log
            traceback.print_exc()
            resp = status_response(errors.ApiError(500, f"Internal error occurred: {exc!r}", "InternalError"))
        if info.rt is not None and info.rt.key == "endpoints" and isinstance(resp, web.Response):
            resp.headers.add("Warning", ENDPOINTS_WARNING)
        if (
            info.rt is not None
            and isinstance(resp, web.Response)
            and protobuf.wants_protobuf(request.headers.get("Accept", ""))
        ):
            _to_protobuf(resp)  # resources only: discovery and /version stay JSON
        return resp

    async def _dispatch(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        if info.rt is None:
            if info.bad:
                raise not_found_path()
            return self._non_resource(request, info)
        if info.bad:
            raise not_found_path()
        if info.rt.namespaced is False and info.namespace:
            raise not_found_path()
        method = request.method
        if info.verb == "watch":
            return await self.watches.serve(request, info)
        if info.verb == "list":
            return await self.list_(request, info)
        if info.verb == "get" and info.name:
            return await self.get(request, info)
        if info.verb == "create" and not info.name:
            return await self.writes.create(request, info)
        if method == "PUT" and info.name:
            return await self.writes.update(request, info)
        if method == "PATCH" and info.name:
            return await self.writes.patch(request, info)
        if info.verb == "delete" and info.name and not info.subresource:
            return await self.deletes.delete(request, info)
        if info.verb == "deletecollection":
            return await self.deletes.delete_collection(request, info)
        raise errors.ApiError(
            405, "the server does not allow this method on the requested resource", "MethodNotAllowed"
        )

    # -- non-resource paths ----------------------------------------------------------------------------------

    def _non_resource(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        segs = segments(request.path)
        if request.method not in ("GET", "HEAD"):
            raise errors.ApiError(
                405, "the server does not allow this method on the requested resource", "MethodNotAllowed"
            )
        if segs in (["healthz"], ["readyz"], ["livez"]):
            return web.Response(text="ok", content_type="text/plain")
        if segs == ["version"]:
            return json_response(discovery.version_info())
        if segs[:1] in (["api"], ["apis"]):
            found = _discovery(request, segs)
            if found is not None:
                return found
        if segs[:2] == ["openapi", "v3"]:
            if len(segs) == 2:
                return json_response(openapi.openapi_v3_root(f"http://{request.host}"))
            doc = openapi.openapi_v3_doc("/".join(segs[2:]))
            if doc is not None:
                return json_response(doc)
        raise not_found_path()

    # -- reads -----------------------------------------------------------------------------------------------

    async def get(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        assert info.rt is not None
        rt = info.rt
        obj = self.store.peek(rt.key, info.namespace, info.name)
        if obj is None:
            raise errors.not_found(rt.plural, info.name, rt.group)
        if info.subresource == "scale":
            return json_response(scale_of(rt, obj))
        obj = (await conversion.to_version(rt, [obj]))[0]
        if wants_table(request):
            table = tables.to_table(rt, [with_type(rt, obj)], include_object=include_object(request))
            return json_response(table, content_type=TABLE_CT)
        return json_response(with_type(rt, obj))

    async def list_(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        assert info.rt is not None
        rt, query = info.rt, request.query
        match = matcher(rt, info.namespace, query)
        items = [o for o in self.store.list(rt.key, info.namespace or None) if match(o)]
        list_rv = self.store.rv
        token = query.get("continue")
        if token:
            try:
                state = json.loads(base64.urlsafe_b64decode(token.encode()))
                start = (state["start"][0], state["start"][1])
                list_rv = int(state.get("rv", list_rv))
            except (ValueError, KeyError, TypeError, IndexError):
                raise bad_request("continue key is not valid: illegal base64 data") from None
            items = [o for o in items if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > start]
        meta: dict[str, Any] = {"resourceVersion": str(list_rv)}
        limit = query.get("limit")
        if limit:
            try:
                n = int(limit)
            except ValueError:
                raise bad_request(f"invalid limit {limit!r}") from None
            if 0 < n < len(items):
                last = items[n - 1]["metadata"]
                meta["continue"] = base64.urlsafe_b64encode(
                    dumps({"rv": list_rv, "start": [last.get("namespace", ""), last["name"]]})
                ).decode()
                meta["remainingItemCount"] = len(items) - n
                items = items[:n]
        items = await conversion.to_version(rt, items)
        if wants_table(request):
            table = tables.to_table(
                rt, [with_type(rt, o) for o in items], list_meta=meta, include_object=include_object(request)
            )
            return json_response(table, content_type=TABLE_CT)
        body = {
            "kind": rt.list_kind,
            "apiVersion": rt.group_version,
            "metadata": meta,
            "items": [with_type(rt, o) for o in items],
        }
        return json_response(body)

    # -- watch streams (watches.py) ---------------------------------------------------------------------

    async def list_watches(self, request: web.Request) -> web.Response:
        """``GET /kubesim/watches``: the watch streams open now (user agent, resource, namespace,
        selector)."""
        return web.json_response({"items": list(self.watches.watchers.values())})

    def close_watches(self) -> None:
        """End every open watch stream (server shutdown)."""
        self.watches.close_watches()


def _discovery(request: web.Request, segs: list[str]) -> web.Response | None:
    """``/api``, ``/apis`` and below: the aggregated or legacy discovery documents; None if unknown."""
    accept = request.headers.get("Accept", "")
    if len(segs) == 1:
        if discovery.wants_aggregated(accept):
            return json_response(discovery.aggregated_discovery(segs[0]), content_type=AGGREGATED_CT)
        if segs[0] == "api":
            host = request.host or "127.0.0.1"
            try:
                body = discovery.legacy_api_versions(host)
            except TypeError:
                body = discovery.legacy_api_versions()
            return json_response(body)
        return json_response(discovery.legacy_group_list())
    if segs[0] == "api" and len(segs) == 2:
        doc = discovery.api_resource_list("", segs[1])
        if doc is not None:
            return json_response(doc)
    if segs[0] == "apis" and len(segs) == 3:
        doc = discovery.api_resource_list(segs[1], segs[2])
        if doc is not None:
            return json_response(doc)
    if segs[0] == "apis" and len(segs) == 2:
        for group in discovery.legacy_group_list().get("groups", []):
            if group.get("name") == segs[1]:
                return json_response({"kind": "APIGroup", "apiVersion": "v1", **group})
    return None


def _to_protobuf(resp: web.Response) -> None:
    """Re-encode a JSON object answer in protobuf, for a client that prefers it (the apiserver negotiates
    per request). Tables, discovery and kinds without a message (custom resources) stay JSON."""
    if resp.content_type != JSON_CT or not isinstance(resp.body, bytes):
        return
    codec = protobuf.available()
    obj = json.loads(resp.body) if codec is not None else None
    if codec is None or not isinstance(obj, dict) or not codec.supports(obj):
        return
    resp.body = codec.encode(obj)
    resp.content_type = protobuf.PROTOBUF_CT


def build_app(
    store: Store, admin: AdminState, allocate_cluster_ip: Callable[[], str], middlewares: list[Any]
) -> tuple[web.Application, ApiServer]:
    """The aiohttp application: admin routes first, then the catch-all API handler."""
    server = ApiServer(store, allocate_cluster_ip)
    app = web.Application(middlewares=middlewares, client_max_size=64 * 1024 * 1024)
    admin.add_routes(app)
    app.router.add_get("/kubesim/watches", server.list_watches)
    PodMetrics(store).add_routes(app)
    app.router.add_route("*", "/{tail:.*}", server.handle)
    return app, server


__all__ = [
    "ApiServer",
    "RequestInfo",
    "WRITE_VERBS",
    "build_app",
    "parse_request",
    "scale_of",
    "translate",
    "BY_KEY",
]
