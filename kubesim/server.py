"""The Kubernetes REST layer of kubesim: routing, verbs, selectors, paging, watch and Status errors.

One aiohttp catch-all route parses the path into a ``RequestInfo`` (also used by the audit middleware) and
dispatches on the verb. Everything runs on the single asyncio loop that owns the ``Store``.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml
from aiohttp import web

from kubesim import admission, crd, defaults, discovery, errors, openapi, patch, protobuf, tables, validation
from kubesim.pod_metrics import PodMetrics
from kubesim.resources import BY_GVR, BY_KEY, RESOURCES, ResourceType
from kubesim.selectors import (
    SelectorError,
    matches_fields,
    matches_requirements,
    parse_field_selector,
    parse_label_selector,
    selector_to_string,
)
from kubesim.store import Interest, Obj, Store, WatchEvent, now_rfc3339

if TYPE_CHECKING:
    from kubesim.admin import AdminState

JSON_CT = "application/json"
TABLE_CT = "application/json;as=Table;v=v1;g=meta.k8s.io"
AGGREGATED_CT = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
ENDPOINTS_WARNING = '299 - "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"'
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml")
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
BOOKMARK_INTERVAL = 1.0
# Kinds whose DELETE answers with the object rather than a Status (ReturnDeletedObject in the registry).
RETURNS_DELETED_OBJECT = ("pods", "services", "namespaces")
PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")


@dataclass
class RequestInfo:
    """What a request addresses; ``rt`` is None for non-resource paths (discovery, /version, ...)."""

    verb: str
    path: str
    rt: ResourceType | None = None
    namespace: str = ""
    name: str = ""
    subresource: str = ""
    group: str = ""
    version: str = ""
    bad: bool = False  # an /api(s) path that names no known resource


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def parse_request(method: str, path: str, query: dict[str, str] | Any) -> RequestInfo:
    """Map method + path to a Kubernetes verb and resource coordinates (like the apiserver's RequestInfo)."""
    segs = _segments(path)
    default_verb = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
                    "DELETE": "delete"}.get(method, method.lower())
    info = RequestInfo(verb=default_verb, path=path)
    if segs[:1] == ["api"] and len(segs) >= 2:
        info.group, info.version, rest = "", segs[1], segs[2:]
    elif segs[:1] == ["apis"] and len(segs) >= 3:
        info.group, info.version, rest = segs[1], segs[2], segs[3:]
    else:
        return info
    if not rest:
        return info
    gv = (info.group, info.version)
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 3 and (gv + (rest[2],)) in BY_GVR \
            and BY_GVR[gv + (rest[2],)].namespaced:
        namespace, rest = rest[1], rest[2:]
    rt = BY_GVR.get(gv + (rest[0],))
    if rt is None or len(rest) > 3:
        info.bad = True
        return info
    info.rt, info.namespace = rt, namespace
    if len(rest) >= 2:
        info.name = rest[1]
    if len(rest) == 3:
        info.subresource = rest[2]
        if info.subresource not in rt.subresources:
            info.bad = True
    watch = str(query.get("watch", "")).lower() in ("true", "1")
    if info.name and watch and method == "GET" and not info.subresource:
        info.verb = "watch"  # the legacy single-object watch: a watch filtered by metadata.name
    if not info.name:
        info.verb = {"GET": "watch" if watch else "list", "HEAD": "list", "POST": "create",
                     "DELETE": "deletecollection"}.get(method, default_verb)
    return info


# ---- response helpers --------------------------------------------------------------------------------------

def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def json_response(obj: Any, status: int = 200, content_type: str = JSON_CT,
                  warnings: list[str] | None = None) -> web.Response:
    resp = web.Response(body=dumps(obj), status=status)
    resp.headers["Content-Type"] = content_type
    for text in warnings or []:
        resp.headers.add("Warning", text)
    return resp


def status_response(err: errors.ApiError) -> web.Response:
    return json_response(err.status(), err.code)


def not_found_path() -> errors.ApiError:
    return errors.ApiError(404, "the server could not find the requested resource", "NotFound", {})


def bad_request(message: str) -> errors.ApiError:
    return errors.ApiError(400, message, "BadRequest")


def _with_type(rt: ResourceType, obj: Obj) -> Obj:
    """The object with apiVersion/kind (objects written by the API always have them; copy only if not)."""
    if obj.get("kind") == rt.kind and "apiVersion" in obj:
        return obj
    return {"apiVersion": rt.group_version, "kind": rt.kind, **obj}


def _warning(text: str) -> str:
    return '299 - "' + text.replace('"', '\\"') + '"'


# ---- the REST handler --------------------------------------------------------------------------------------

class ApiServer:
    """Request handlers bound to one ``KubeSim`` runtime."""

    def __init__(self, store: Store, allocate_cluster_ip: Callable[[], str]) -> None:
        self.store = store
        self.allocate_cluster_ip = allocate_cluster_ip
        # Open watch streams, and who holds them (GET /kubesim/watches: what a benchmark counts).
        self.watchers: dict[asyncio.Queue[WatchEvent | None], dict[str, str]] = {}
        # Encoded watch lines by (rv, type, protobuf?): every watcher of an event shares one encoding.
        self._lines: dict[tuple[int, str, bool], bytes] = {}

    # -- entry -----------------------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        info: RequestInfo = request.get("kubesim_info") or parse_request(
            request.method, request.path, request.query)
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
        if info.rt is not None and isinstance(resp, web.Response) and \
                protobuf.wants_protobuf(request.headers.get("Accept", "")):
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
            return await self.watch(request, info)
        if info.verb == "list":
            return self.list_(request, info)
        if info.verb == "get" and info.name:
            return self.get(request, info)
        if info.verb == "create" and not info.name:
            return await self.create(request, info)
        if method == "PUT" and info.name:
            return await self.update(request, info)
        if method == "PATCH" and info.name:
            return await self.patch(request, info)
        if info.verb == "delete" and info.name and not info.subresource:
            return await self.delete(request, info)
        if info.verb == "deletecollection":
            return await self.delete_collection(request, info)
        raise errors.ApiError(405, "the server does not allow this method on the requested resource",
                              "MethodNotAllowed")

    # -- non-resource paths ----------------------------------------------------------------------------------

    def _non_resource(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        segs = _segments(request.path)
        if request.method not in ("GET", "HEAD"):
            raise errors.ApiError(405, "the server does not allow this method on the requested resource",
                                  "MethodNotAllowed")
        if segs in (["healthz"], ["readyz"], ["livez"]):
            return web.Response(text="ok", content_type="text/plain")
        if segs == ["version"]:
            return json_response(discovery.version_info())
        if segs[:1] in (["api"], ["apis"]):
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
        if segs[:2] == ["openapi", "v3"]:
            if len(segs) == 2:
                return json_response(openapi.openapi_v3_root(f"http://{request.host}"))
            doc = openapi.openapi_v3_doc("/".join(segs[2:]))
            if doc is not None:
                return json_response(doc)
        raise not_found_path()

    # -- reads -----------------------------------------------------------------------------------------------

    def _wants_table(self, request: web.Request) -> bool:
        return tables.wants_table(request.headers.get("Accept", ""))

    def get(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        assert info.rt is not None
        rt = info.rt
        obj = self.store.peek(rt.key, info.namespace, info.name)
        if obj is None:
            raise errors.not_found(rt.plural, info.name, rt.group)
        if info.subresource == "scale":
            return json_response(scale_of(rt, obj))
        if self._wants_table(request):
            return json_response(tables.to_table(rt, [_with_type(rt, obj)], include_object=_include(request)),
                                 content_type=TABLE_CT)
        return json_response(_with_type(rt, obj))

    def _matcher(self, rt: ResourceType, namespace: str, query: Any) -> Callable[[Obj], bool]:
        try:
            label_reqs = parse_label_selector(query.get("labelSelector"))
            field_reqs = parse_field_selector(query.get("fieldSelector"), rt.key)
        except SelectorError as exc:
            raise bad_request(str(exc)) from None

        def match(obj: Obj) -> bool:
            meta = obj.get("metadata") or {}
            if namespace and meta.get("namespace") != namespace:
                return False
            if label_reqs and not matches_requirements(label_reqs, meta.get("labels")):
                return False
            return not field_reqs or matches_fields(field_reqs, obj)

        return match

    def list_(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        assert info.rt is not None
        rt, query = info.rt, request.query
        match = self._matcher(rt, info.namespace, query)
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
                meta["continue"] = base64.urlsafe_b64encode(dumps(
                    {"rv": list_rv, "start": [last.get("namespace", ""), last["name"]]})).decode()
                meta["remainingItemCount"] = len(items) - n
                items = items[:n]
        if self._wants_table(request):
            return json_response(tables.to_table(rt, [_with_type(rt, o) for o in items], list_meta=meta,
                                                 include_object=_include(request)), content_type=TABLE_CT)
        body = {"kind": rt.list_kind, "apiVersion": rt.group_version, "metadata": meta,
                "items": [_with_type(rt, o) for o in items]}
        return json_response(body)

    # -- watch -----------------------------------------------------------------------------------------------

    async def watch(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        assert info.rt is not None
        rt, query = info.rt, request.query
        match = self._matcher(rt, info.namespace, query)
        if info.name:
            by_query, name = match, info.name

            def match(obj: Obj) -> bool:
                return (obj.get("metadata") or {}).get("name") == name and by_query(obj)

        bookmarks = query.get("allowWatchBookmarks", "").lower() in ("true", "1")
        send_initial = query.get("sendInitialEvents", "").lower() in ("true", "1")
        if send_initial and (not bookmarks or query.get("resourceVersionMatch") != "NotOlderThan"):
            raise errors.invalid("ListOptions", "", [(
                "sendInitialEvents", "Forbidden: sendInitialEvents is forbidden for watch unless the "
                "WatchList feature gate is enabled and allowWatchBookmarks=true and "
                "resourceVersionMatch=NotOlderThan", "FieldValueForbidden")], "meta.k8s.io")
        rv_text = query.get("resourceVersion", "")
        try:
            timeout = float(query.get("timeoutSeconds") or 0)
            if timeout <= 0:  # unset or 0: the apiserver's random 30-60 min
                timeout = random.uniform(1800, 3600)
            start_rv = int(rv_text) if rv_text else 0
        except ValueError:
            raise bad_request(f"invalid resourceVersion or timeoutSeconds: {rv_text!r}") from None
        as_table: str | None = _include(request) if self._wants_table(request) else None
        proto = _watch_codec(request, rt) if as_table is None else None

        # Snapshot/replay and subscribe with no await in between, so no event is lost or duplicated.
        lines: list[bytes] = []
        expired: errors.ApiError | None = None
        snapshot_rv = self.store.rv
        if send_initial or start_rv == 0:
            for obj in self.store.list(rt.key, info.namespace or None):
                if match(obj):
                    lines.append(self._event_line("ADDED", rt, obj, as_table, proto))
            if send_initial:
                lines.append(_frame({"type": "BOOKMARK", "object": {
                    "kind": rt.kind, "apiVersion": rt.group_version, "metadata": {
                        "resourceVersion": str(snapshot_rv),
                        "annotations": {"k8s.io/initial-events-end": "true"}}}}, proto))
        else:
            try:
                for event in self.store.events_since(start_rv):
                    if event.resource == rt.key:
                        type_ = translate(event, match)
                        if type_:
                            lines.append(self._event_line(type_, rt, event.obj, as_table, proto))
            except errors.ApiError as err:
                expired = err
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
        try:
            resp = web.StreamResponse(status=200)
            resp.headers["Content-Type"] = protobuf.WATCH_CT if proto else TABLE_CT if as_table else JSON_CT
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            if expired is not None:
                await resp.write(_frame({"type": "ERROR", "object": expired.status()}, proto))
                await resp.write_eof()
                return resp
            if lines:
                await resp.write(b"".join(lines))
            await self._stream(resp, rt, queue, match, as_table, bookmarks, timeout, proto)
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.store.unsubscribe(on_event, interest)
            self.watchers.pop(queue, None)
        return resp

    async def _stream(self, resp: web.StreamResponse, rt: ResourceType,
                      queue: asyncio.Queue[WatchEvent | None],
                      match: Callable[[Obj], bool], as_table: str | None, bookmarks: bool,
                      timeout: float, proto: protobuf.Codec | None = None) -> None:
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
                    await resp.write(_frame({"type": "BOOKMARK", "object": {
                        "kind": rt.kind, "apiVersion": rt.group_version,
                        "metadata": {"resourceVersion": str(self.store.rv)}}}, proto))
                continue
            batch: list[bytes] = []
            while True:
                if event is None:  # server shutdown
                    if batch:
                        await resp.write(b"".join(batch))
                    return
                type_ = translate(event, match)
                if type_:
                    batch.append(self._shared_line(event, type_, rt, as_table, proto))
                if queue.empty():
                    break
                event = queue.get_nowait()
            if batch:
                await resp.write(b"".join(batch))

    def _shared_line(self, event: WatchEvent, type_: str, rt: ResourceType, as_table: str | None,
                     proto: protobuf.Codec | None) -> bytes:
        if as_table is not None:
            return self._event_line(type_, rt, event.obj, as_table)
        key = (event.rv, type_, proto is not None)
        line = self._lines.get(key)
        if line is None:
            if len(self._lines) > 4096:
                self._lines.clear()
            line = self._lines[key] = self._event_line(type_, rt, event.obj, None, proto)
        return line

    def _event_line(self, type_: str, rt: ResourceType, obj: Obj, as_table: str | None,
                    proto: protobuf.Codec | None = None) -> bytes:
        """One watch line (or protobuf frame); under Table output the object is a one-row Table (kubectl get
        -w)."""
        obj = _with_type(rt, obj)
        if as_table is not None:
            obj = tables.to_table(rt, [obj], include_object=as_table)
        return _frame({"type": type_, "object": obj}, proto)

    async def list_watches(self, request: web.Request) -> web.Response:
        """``GET /kubesim/watches``: the watch streams open now (user agent, resource, namespace,
        selector)."""
        return web.json_response({"items": list(self.watchers.values())})

    def close_watches(self) -> None:
        """End every open watch stream (server shutdown)."""
        for queue in list(self.watchers):
            queue.put_nowait(None)

    # -- writes ----------------------------------------------------------------------------------------------

    async def _body(self, request: web.Request) -> bytes:
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if "cbor" in ctype or ("protobuf" in ctype and (ctype != protobuf.PROTOBUF_CT or
                                                         protobuf.available() is None)):
            raise errors.ApiError(415, f'the body of the request was in an unknown format - accepted media '
                                       f'types include: application/json, application/yaml (got "{ctype}")',
                                  "UnsupportedMediaType")
        return await request.read()

    def _decode(self, raw: bytes, yaml_ok: bool = False, request: web.Request | None = None) -> Any:
        """Parse a JSON (or YAML) body; duplicate JSON keys are noted on the request for fieldValidation."""
        if not raw.strip():
            raise bad_request("the body of the request was empty")
        if request is not None and protobuf.is_protobuf(request.headers.get("Content-Type", "")):
            request["kubesim_duplicates"] = []
            request["kubesim_protobuf"] = True  # no unknown or duplicate fields to report
            try:
                return protobuf.codec().decode(raw)
            except protobuf.ProtobufError as exc:
                raise bad_request(str(exc)) from None
        if request is not None and "yaml" in request.headers.get("Content-Type", "").lower():
            yaml_ok = True
        duplicates: list[str] = []

        def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for key, value in items:
                if key in out:
                    duplicates.append(key)
                out[key] = value
            return out

        try:
            if yaml_ok:
                decoded = yaml.safe_load(raw.decode())
            else:
                decoded = json.loads(raw, object_pairs_hook=pairs)
        except (ValueError, yaml.YAMLError) as exc:
            raise bad_request(f"couldn't get version/kind; json parse error: {exc}") from None
        if request is not None:
            request["kubesim_duplicates"] = duplicates
        return decoded

    def _check_type(self, rt: ResourceType, obj: Any, subresource: str = "") -> Obj:
        """The body must be an object of this kind; apiVersion/kind default from the URL."""
        if not isinstance(obj, dict):
            raise bad_request(f"json: cannot unmarshal {type(obj).__name__} into Go value of type struct")
        kind, gv = rt.kind, rt.group_version
        if subresource == "scale":
            kind, gv = "Scale", "autoscaling/v1"
        if obj.get("kind") not in (None, "", kind):
            raise bad_request(f"the kind in the data ({obj['kind']}) does not match the expected kind "
                              f"({kind})")
        if obj.get("apiVersion") not in (None, "", gv):
            raise bad_request(f"the API version in the data ({obj['apiVersion']}) does not match the "
                              f"expected "
                              f"API version ({gv})")
        if "metadata" in obj and not isinstance(obj["metadata"], dict) and obj["metadata"] is not None:
            raise bad_request("metadata must be an object")
        if obj.get("metadata") is None:
            obj["metadata"] = {}
        # apiVersion and kind first, like the apiserver's encoding.
        rest = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
        obj.clear()
        obj.update({"apiVersion": gv, "kind": kind, **rest})
        return obj

    def _check_json_types(self, rt: ResourceType, obj: Obj, subresource: str = "") -> None:
        """Values of the wrong JSON type fail decoding in every fieldValidation mode (400)."""
        kind = "Scale" if subresource == "scale" else rt.kind
        problems = validation.type_errors(kind, obj)
        if problems:
            version = "v1" if subresource == "scale" else rt.version
            raise bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: {problems[0]}')

    def _field_validation(self, request: web.Request, rt: ResourceType, obj: Any, *, is_patch: bool = False,
                          subresource: str = "") -> list[str]:
        """Prune unknown fields; Strict -> 400, Warn (default) -> Warning headers, Ignore -> nothing."""
        mode = request.query.get("fieldValidation", "Warn") or "Warn"
        if mode not in ("Strict", "Warn", "Ignore"):
            raise bad_request(f'fieldValidation: Unsupported value: "{mode}": supported values: "Ignore", '
                              f'"Strict", "Warn"')
        if request.get("kubesim_protobuf"):
            return []  # a protobuf body holds only the schema's fields
        kind = "Scale" if subresource == "scale" else rt.kind
        unknown = (crd.unknown_fields(rt, obj) if crd.is_custom(rt) and not subresource
                   else validation.prune_unknown_fields(kind, obj, is_patch=is_patch))
        duplicates = request.get("kubesim_duplicates") or []
        if (not unknown and not duplicates) or mode == "Ignore":
            return []
        texts = [f'unknown field "{u}"' for u in unknown] + [f'duplicate field "{d}"' for d in duplicates]
        if mode == "Strict":
            raise bad_request("strict decoding error: " + ", ".join(texts))
        return [_warning(t) for t in texts]

    def _dry_run(self, request: web.Request, body: Obj | None = None) -> bool:
        values = request.query.getall("dryRun", [])
        if body and isinstance(body.get("dryRun"), list):
            values = values + body["dryRun"]
        for value in values:
            if value != "All":
                raise bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
        return bool(values)

    def _manager(self, request: web.Request) -> str:
        manager = request.query.get("fieldManager")
        if manager:
            return manager
        agent = request.headers.get("User-Agent", "unknown")
        return agent.split("/", 1)[0] or "unknown"

    def _prepare_new(self, rt: ResourceType, obj: Obj, namespace: str) -> None:
        """Create-time normalisation: namespace, defaults, status reset (the registry's PrepareForCreate)."""
        meta = obj["metadata"]
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise bad_request("the namespace of the provided object does not match the namespace sent on "
                                  "the request")
            meta["namespace"] = namespace
            if self.store.peek("namespaces", "", namespace) is None:
                raise errors.not_found("namespaces", namespace)
        else:
            meta.pop("namespace", None)
        if meta.get("resourceVersion"):
            raise errors.ApiError(500, "resourceVersion should not be set on objects to be created",
                                  "InternalError")
        for key in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                    "generation",
                    "selfLink"):
            meta.pop(key, None)
        self._apply_defaults(rt, obj)
        if rt.key == "deployments.apps":
            obj["status"] = {}
        elif rt.key == "replicasets.apps":
            obj["status"] = {"replicas": 0}
        elif rt.key == "pods":
            obj["status"] = {"phase": "Pending", "qosClass": _qos_class(obj)}
        elif rt.key == "services":
            obj["status"] = {"loadBalancer": {}}
        elif rt.key == crd.CRD_KEY:
            obj["status"] = crd.accepted_status(obj)
        elif rt.key == "namespaces":
            obj["status"] = {"phase": "Active"}
            spec: Obj = obj["spec"] if isinstance(obj.get("spec"), dict) else {}
            obj["spec"] = spec
            if "kubernetes" not in (spec.get("finalizers") or []):  # required on create (PrepareForCreate)
                spec["finalizers"] = [*(spec.get("finalizers") or []), "kubernetes"]
            name = meta.get("name") or ""
            if name:
                meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name

    def _apply_defaults(self, rt: ResourceType, obj: Obj) -> None:
        if crd.is_custom(rt):
            crd.apply_defaults(rt, obj)
            return
        defaults.apply_defaults(rt.key, obj, self.allocate_cluster_ip)

    async def _admit(self, request: web.Request, rt: ResourceType, subresource: str, operation: str, obj: Obj,
                     old: Obj | None, dry_run: bool) -> Obj:
        """Run the mutating, then the validating admission webhooks (kubesim/admission.py) on the object."""
        meta = obj.get("metadata") or {}
        args = (self.store, rt, subresource, operation, meta.get("namespace", ""), meta.get("name", ""))
        typed_old = _with_type(rt, old) if old is not None else None
        if self.store.list(admission.MWC_KEY):
            result = await admission.mutate(*args, _with_type(rt, obj), typed_old, self._manager(request),
                                            dry_run)
            obj = result if result is not None else obj
        if self.store.list(admission.VWC_KEY):
            await admission.validate(*args, _with_type(rt, obj), typed_old, self._manager(request), dry_run)
        return obj

    def _validate(self, rt: ResourceType, obj: Obj, old: Obj | None) -> None:
        causes = validation.validate(rt.key, obj, old)
        if rt.key == crd.CRD_KEY:
            causes += [(f, m, "FieldValueInvalid") for f, m in crd.validate_crd(obj)]
        if causes:
            raise errors.invalid(rt.kind, (obj.get("metadata") or {}).get("name") or "", causes, rt.group)

    async def create(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        assert info.rt is not None
        rt = info.rt
        raw = await self._body(request)
        obj = self._check_type(rt, self._decode(raw, request=request))
        self._check_json_types(rt, obj)
        warnings = self._field_validation(request, rt, obj)
        dry_run = self._dry_run(request)
        created = await self._create(request, rt, obj, info.namespace, dry_run, "Update")
        return json_response(created, 201, warnings=warnings)

    async def _create(self, request: web.Request, rt: ResourceType, obj: Obj, namespace: str, dry_run: bool,
                      operation: str) -> Obj:
        self._prepare_new(rt, obj, namespace)
        meta = obj["metadata"]
        if not meta.get("name") and not meta.get("generateName"):
            raise errors.invalid(rt.kind, "", [("metadata.name", "Required value: name or generateName is "
                                                "required", "FieldValueRequired")], rt.group)
        obj = await self._admit(request, rt, "", "CREATE", obj, None, dry_run)
        self._validate(rt, obj, None)
        _touch_managed(obj, self._manager(request), operation, rt.group_version, "")
        return self.store.create(rt.key, obj, dry_run=dry_run)

    async def update(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        assert info.rt is not None
        rt = info.rt
        raw = await self._body(request)
        obj = self._check_type(rt, self._decode(raw, request=request), info.subresource)
        self._check_json_types(rt, obj, info.subresource)
        warnings = self._field_validation(request, rt, obj, subresource=info.subresource)
        dry_run = self._dry_run(request)
        meta = obj["metadata"]
        if meta.get("name") and meta["name"] != info.name:
            raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL "
                              f"({info.name})")
        if rt.namespaced and meta.get("namespace") and meta["namespace"] != info.namespace:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the "
                              "request")
        meta["name"] = info.name
        current = self.store.peek(rt.key, info.namespace, info.name)
        if current is None:
            raise errors.not_found(rt.plural, info.name, rt.group)
        if info.subresource == "scale":
            return json_response(self._write_scale(rt, current, obj, dry_run), warnings=warnings)
        result = await self._write(request, rt, info, obj, current, dry_run, "Update")
        return json_response(result, warnings=warnings)

    async def _write(self, request: web.Request, rt: ResourceType, info: RequestInfo, obj: Obj, current: Obj,
                     dry_run: bool, operation: str) -> Obj:
        """Validate and store an updated object (main resource or /status)."""
        meta = obj.setdefault("metadata", {})
        if rt.namespaced:
            meta["namespace"] = info.namespace
        if info.subresource != "status":
            if rt.key == "services":
                _keep_allocated(obj, current)
            self._apply_defaults(rt, obj)
            obj = await self._admit(request, rt, "", "UPDATE", obj, current, dry_run)
            meta = obj.setdefault("metadata", {})
            self._validate(rt, obj, current)
        else:  # webhooks whose rules name the subresource (``rollouts/status``) see it, as in Kubernetes
            obj = await self._admit(request, rt, "status", "UPDATE", obj, current, dry_run)
            merged = dict(current)
            merged["status"] = obj.get("status")
            self._validate(rt, merged, current)
        if info.subresource == "status":
            # Store.update takes only status (plus the rv precondition) from a /status write.
            managed = copy.deepcopy(current["metadata"].get("managedFields") or [])
            slim_meta = {"name": info.name, "namespace": info.namespace, "managedFields": managed,
                         "resourceVersion": meta.get("resourceVersion")}
            _touch_managed({"metadata": slim_meta}, self._manager(request), operation, rt.group_version,
                           "status")
            slim = {"metadata": slim_meta, "status": obj.get("status")}
            return self.store.update(rt.key, slim, subresource="status", dry_run=dry_run)
        # managedFields is carried from the stored object unless the client sent its own.
        if "managedFields" not in meta and current["metadata"].get("managedFields"):
            meta["managedFields"] = copy.deepcopy(current["metadata"]["managedFields"])
        _touch_managed(obj, self._manager(request), operation, rt.group_version, "")
        return self.store.update(rt.key, obj, dry_run=dry_run)

    def _write_scale(self, rt: ResourceType, current: Obj, scale: Obj, dry_run: bool) -> Obj:
        name = current["metadata"]["name"]
        want_rv = (scale.get("metadata") or {}).get("resourceVersion")
        if want_rv and str(want_rv) != current["metadata"]["resourceVersion"]:
            raise errors.conflict(rt.plural, name, rt.group)
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid("Scale", name, [("spec.replicas", f"Invalid value: {replicas}: must be "
                                                                   f"greater "
                                                  "than or equal to 0")], "autoscaling")
        new = copy.deepcopy(current)
        new.setdefault("spec", {})["replicas"] = replicas
        new["metadata"].pop("resourceVersion", None)
        result = self.store.update(rt.key, new, dry_run=dry_run)
        return scale_of(rt, result)

    async def patch(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        assert info.rt is not None
        rt = info.rt
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip()
        if ctype not in PATCH_TYPES:
            raise errors.ApiError(415, "the body of the request was in an unknown format - accepted "
                                       "media types "
                                       "include: " + ", ".join(PATCH_TYPES), "UnsupportedMediaType")
        is_apply = ctype == "application/apply-patch+yaml"
        force = request.query.get("force")
        if force is not None and not is_apply:
            raise errors.invalid("PatchOptions", "", [("force", f"Invalid value: {force}: may not be "
                                                                f"specified "
                                                       "for non-apply patch")], "meta.k8s.io")
        if is_apply and not request.query.get("fieldManager"):
            raise bad_request("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is "
                              "required for apply patch")
        raw = await self._body(request)
        body = self._decode(raw, yaml_ok=is_apply, request=request)
        dry_run = self._dry_run(request)
        warnings: list[str] = []
        if ctype != "application/json-patch+json":
            if not isinstance(body, dict):
                raise bad_request("the patch body must be a JSON object")
            warnings = self._field_validation(request, rt, body, is_patch=True, subresource=info.subresource)
        current = self.store.peek(rt.key, info.namespace, info.name)
        if current is None:
            if is_apply and not info.subresource:
                obj = self._check_type(rt, body)
                self._check_json_types(rt, obj)
                meta = obj["metadata"]
                if meta.get("name") and meta["name"] != info.name:
                    raise bad_request(f"the name of the object ({meta['name']}) does not match the name "
                                      f"on the "
                                      f"URL ({info.name})")
                meta["name"] = info.name
                created = await self._create(request, rt, obj, info.namespace, dry_run, "Apply")
                return json_response(created, 201, warnings=warnings)
            raise errors.not_found(rt.plural, info.name, rt.group)
        base = (scale_of(rt, current) if info.subresource == "scale"
                else copy.deepcopy(_with_type(rt, current)))
        try:
            if ctype == "application/json-patch+json":
                patched = patch.json_patch(base, body)
            elif ctype == "application/merge-patch+json":
                patched = patch.merge_patch(base, body)
            else:  # strategic merge, and apply treated as a strategic merge
                patched = patch.strategic_merge(base, body)
        except patch.PatchError as exc:
            if exc.code == 400:
                raise bad_request(exc.message) from None
            raise errors.ApiError(422, exc.message, "Invalid") from None
        patched = self._check_type(rt, patched, info.subresource)
        self._check_json_types(rt, patched, info.subresource)
        if ctype == "application/json-patch+json":
            warnings = self._field_validation(request, rt, patched, subresource=info.subresource)
        meta = patched["metadata"]
        if meta.get("name") != info.name:
            raise bad_request(f"the name of the object ({meta.get('name')}) does not match the name on "
                              f"the URL "
                              f"({info.name})")
        if info.subresource == "scale":
            return json_response(self._write_scale(rt, current, patched, dry_run), warnings=warnings)
        result = await self._write(request, rt, info, patched, current, dry_run,
                                   "Apply" if is_apply else "Update")
        return json_response(result, warnings=warnings)

    # -- deletes ---------------------------------------------------------------------------------------------

    async def _delete_options(self, request: web.Request) -> tuple[str, dict[str, Any], bool]:
        raw = await self._body(request)
        body: dict[str, Any] = {}
        if raw.strip():
            decoded = self._decode(raw)
            if not isinstance(decoded, dict):
                raise bad_request("DeleteOptions must be a JSON object")
            body = decoded
        policy = request.query.get("propagationPolicy") or body.get("propagationPolicy") or ""
        if not policy:
            orphan = request.query.get("orphanDependents") or body.get("orphanDependents")
            policy = "Orphan" if str(orphan).lower() == "true" else "Background"
        if policy not in ("Background", "Foreground", "Orphan"):
            raise errors.invalid("DeleteOptions", "", [(
                "propagationPolicy", f'Unsupported value: "{policy}": '
                                 'supported values: "Foreground", "Background", "Orphan", "nil"',
                                 "FieldValueNotSupported")], "meta.k8s.io")
        return policy, body.get("preconditions") or {}, self._dry_run(request, body)

    def _delete_one(self, rt: ResourceType, namespace: str, name: str, policy: str,
                    preconditions: dict[str, Any], dry_run: bool) -> tuple[Obj, bool]:
        """Delete with a propagation policy; returns (last state, still present)."""
        current = self.store.peek(rt.key, namespace, name)
        if current is None:
            raise errors.not_found(rt.plural, name, rt.group)
        if rt.key == "namespaces" and name in PROTECTED_NAMESPACES:
            raise errors.ApiError(403, f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                                  "Forbidden", {"name": name, "kind": "namespaces"})
        uid, want_rv = preconditions.get("uid"), preconditions.get("resourceVersion")
        if dry_run:
            result = self.store.delete(rt.key, namespace, name, uid=uid, resource_version=want_rv,
                                       dry_run=True)
            return result, False
        # Check preconditions before any side effect on dependents.
        self.store.delete(rt.key, namespace, name, uid=uid, resource_version=want_rv, dry_run=True)
        owner_uid = current["metadata"].get("uid")
        if policy == "Orphan":
            self._orphan_dependents(namespace if rt.namespaced else None, owner_uid)
        if rt.key == "namespaces":
            self._delete_namespace_contents(name)
        # Foreground: finalizer foregroundDeletion + deletionTimestamp in one write; the GC finishes it.
        extra = ("foregroundDeletion",) if policy == "Foreground" else ()
        result = self.store.delete(rt.key, namespace, name, add_finalizers=extra)
        still = self.store.peek(rt.key, namespace, name) is not None
        return result, still

    def _orphan_dependents(self, namespace: str | None, owner_uid: str | None) -> None:
        for rt in RESOURCES:
            if not rt.namespaced and namespace is not None:
                continue
            for obj in self.store.list(rt.key, namespace):
                refs = obj["metadata"].get("ownerReferences") or []
                if any(r.get("uid") == owner_uid for r in refs):
                    new = copy.deepcopy(obj)
                    kept = [r for r in refs if r.get("uid") != owner_uid]
                    if kept:
                        new["metadata"]["ownerReferences"] = kept
                    else:
                        new["metadata"].pop("ownerReferences", None)
                    self.store.update(rt.key, new)

    def _delete_namespace_contents(self, namespace: str) -> None:
        for rt in RESOURCES:
            if not rt.namespaced:
                continue
            for obj in list(self.store.list(rt.key, namespace)):
                meta = obj["metadata"]
                if not meta.get("deletionTimestamp"):
                    self.store.delete(rt.key, namespace, meta["name"])

    def _deleted_response(self, rt: ResourceType, obj: Obj, still: bool) -> web.Response:
        if still or rt.key in RETURNS_DELETED_OBJECT:
            return json_response(_with_type(rt, obj))
        details: dict[str, Any] = {"name": obj["metadata"]["name"], "group": rt.group, "kind": rt.plural,
                                   "uid": obj["metadata"].get("uid", "")}
        if not rt.group:
            details.pop("group")
        return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                              "details": details})

    async def delete(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        assert info.rt is not None
        policy, preconditions, dry_run = await self._delete_options(request)
        obj, still = self._delete_one(info.rt, info.namespace, info.name, policy, preconditions, dry_run)
        return self._deleted_response(info.rt, obj, still)

    async def delete_collection(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        assert info.rt is not None
        rt = info.rt
        match = self._matcher(rt, info.namespace, request.query)
        policy, preconditions, dry_run = await self._delete_options(request)
        deleted = []
        for obj in [o for o in self.store.list(rt.key, info.namespace or None) if match(o)]:
            meta = obj["metadata"]
            result, _ = self._delete_one(rt, meta.get("namespace", ""), meta["name"], policy, {}, dry_run)
            deleted.append(_with_type(rt, result))
        return json_response({"kind": rt.list_kind, "apiVersion": rt.group_version,
                              "metadata": {"resourceVersion": str(self.store.rv)}, "items": deleted})


# ---- helpers -----------------------------------------------------------------------------------------------

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


def scale_of(rt: ResourceType, obj: Obj) -> Obj:
    """The autoscaling/v1 Scale view of a Deployment or ReplicaSet."""
    meta = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": meta["name"], "namespace": meta.get("namespace", ""), "uid": meta.get("uid"),
                     "resourceVersion": meta.get("resourceVersion"),
                     "creationTimestamp": meta.get("creationTimestamp")},
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
        "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                   "selector": selector_to_string((obj.get("spec") or {}).get("selector"))},
    }


def _touch_managed(obj: Obj, manager: str, operation: str, api_version: str, subresource: str) -> None:
    """Record a coarse managedFields entry for ``manager`` (kubectl hides these by default)."""
    meta = obj.setdefault("metadata", {})
    entries = [e for e in (meta.get("managedFields") or []) if isinstance(e, dict)]
    entry = {"manager": manager, "operation": operation, "apiVersion": api_version, "time": now_rfc3339(),
             "fieldsType": "FieldsV1", "fieldsV1": {}}
    if subresource:
        entry["subresource"] = subresource
    for i, old in enumerate(entries):
        if old.get("manager") == manager and old.get("operation") == operation and \
                old.get("subresource", "") == subresource:
            entries[i] = {**old, "time": entry["time"]}
            break
    else:
        entries.append(entry)
    meta["managedFields"] = entries


def _keep_allocated(obj: Obj, current: Obj) -> None:
    """A Service update that omits allocated values keeps them (patchAllocatedValues)."""
    spec, old = obj.get("spec"), current.get("spec") or {}
    if not isinstance(spec, dict):
        return
    for key in ("clusterIP", "clusterIPs"):
        if not spec.get(key) and old.get(key):
            spec[key] = copy.deepcopy(old[key])
    old_ports = {(p.get("port"), p.get("protocol")): p for p in old.get("ports") or []}
    for port in spec.get("ports") or []:
        prev = old_ports.get((port.get("port"), port.get("protocol")))
        if prev and "nodePort" in prev and "nodePort" not in port:
            port["nodePort"] = prev["nodePort"]


def _qos_class(pod: Obj) -> str:
    containers = ((pod.get("spec") or {}).get("containers")) or []
    resources = [c.get("resources") or {} for c in containers if isinstance(c, dict)]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(r.get("limits") and (not r.get("requests") or r.get("requests") == r.get("limits"))
                     and {"cpu", "memory"} <= set(r["limits"]) for r in resources)
    return "Guaranteed" if guaranteed else "Burstable"


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


def _include(request: web.Request) -> str:
    """The includeObject query parameter for Table output (default Metadata)."""
    return request.query.get("includeObject") or "Metadata"


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


__all__ = ["ApiServer", "RequestInfo", "WRITE_VERBS", "build_app", "parse_request", "scale_of", "translate",
           "BY_KEY"]
