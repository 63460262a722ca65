"""kubesim's REST vocabulary: what a request addresses (``RequestInfo``), JSON answers and Status errors,
label/field selector matching, and the Scale view. Shared by the read, watch, write and delete handlers."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kubesim import errors, tables
from kubesim.resources import BY_GVR, ResourceType
from kubesim.selectors import (
    SelectorError,
    matches_fields,
    matches_requirements,
    parse_field_selector,
    parse_label_selector,
    selector_to_string,
)
from kubesim.store import Obj

JSON_CT = "application/json"
TABLE_CT = "application/json;as=Table;v=v1;g=meta.k8s.io"


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


def segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def parse_request(method: str, path: str, query: dict[str, str] | Any) -> RequestInfo:
    """Map method + path to a Kubernetes verb and resource coordinates (like the apiserver's RequestInfo)."""
    segs = segments(path)
    default_verb = {
        "GET": "get",
        "HEAD": "get",
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete",
    }.get(method, method.lower())
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
    if (
        rest[0] == "namespaces"
        and len(rest) >= 3
        and (gv + (rest[2],)) in BY_GVR
        and BY_GVR[gv + (rest[2],)].namespaced
    ):
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
        info.verb = {
            "GET": "watch" if watch else "list",
            "HEAD": "list",
            "POST": "create",
            "DELETE": "deletecollection",
        }.get(method, default_verb)
    return info


# ---- response helpers --------------------------------------------------------------------------------------


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def json_response(
    obj: Any, status: int = 200, content_type: str = JSON_CT, warnings: list[str] | None = None
) -> web.Response:
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


def with_type(rt: ResourceType, obj: Obj) -> Obj:
    """The object with apiVersion/kind (objects written by the API always have them; copy only if not)."""
    if obj.get("kind") == rt.kind and "apiVersion" in obj:
        return obj
    return {"apiVersion": rt.group_version, "kind": rt.kind, **obj}


def warning_header(text: str) -> str:
    return '299 - "' + text.replace('"', '\\"') + '"'


def include_object(request: web.Request) -> str:
    """The includeObject query parameter for Table output (default Metadata)."""
    return request.query.get("includeObject") or "Metadata"


def wants_table(request: web.Request) -> bool:
    return tables.wants_table(request.headers.get("Accept", ""))


def matcher(rt: ResourceType, namespace: str, query: Any) -> Callable[[Obj], bool]:
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


def scale_of(rt: ResourceType, obj: Obj) -> Obj:
    """The autoscaling/v1 Scale view of a Deployment or ReplicaSet."""
    meta = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta.get("namespace", ""),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": selector_to_string((obj.get("spec") or {}).get("selector")),
        },
    }
