"""Request bodies of kubesim's writes: the accepted media types, JSON/YAML/protobuf decoding (duplicate keys
noted for fieldValidation), the kind and JSON-type checks, fieldValidation, dryRun and the field manager."""

from __future__ import annotations

import json
from typing import Any

import yaml
from aiohttp import web

from kubesim import crd, decoding, errors, protobuf
from kubesim.resources import ResourceType
from kubesim.rest import bad_request, warning_header
from kubesim.store import Obj


async def read_body(request: web.Request) -> bytes:
    ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if "cbor" in ctype or (
        "protobuf" in ctype and (ctype != protobuf.PROTOBUF_CT or protobuf.available() is None)
    ):
        raise errors.ApiError(
            415,
            f"the body of the request was in an unknown format - accepted media "
            f'types include: application/json, application/yaml (got "{ctype}")',
            "UnsupportedMediaType",
        )
    return await request.read()


def decode(raw: bytes, yaml_ok: bool = False, request: web.Request | None = None) -> Any:
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


def check_type(rt: ResourceType, obj: Any, subresource: str = "") -> Obj:
    """The body must be an object of this kind; apiVersion/kind default from the URL."""
    if not isinstance(obj, dict):
        raise bad_request(f"json: cannot unmarshal {type(obj).__name__} into Go value of type struct")
    kind, gv = rt.kind, rt.group_version
    if subresource == "scale":
        kind, gv = "Scale", "autoscaling/v1"
    if obj.get("kind") not in (None, "", kind):
        raise bad_request(f"the kind in the data ({obj['kind']}) does not match the expected kind ({kind})")
    if obj.get("apiVersion") not in (None, "", gv):
        raise bad_request(
            f"the API version in the data ({obj['apiVersion']}) does not match the "
            f"expected "
            f"API version ({gv})"
        )
    if "metadata" in obj and not isinstance(obj["metadata"], dict) and obj["metadata"] is not None:
        raise bad_request("metadata must be an object")
    if obj.get("metadata") is None:
        obj["metadata"] = {}
    # apiVersion and kind first, like the apiserver's encoding.
    rest = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    obj.clear()
    obj.update({"apiVersion": gv, "kind": kind, **rest})
    return obj


def check_json_types(rt: ResourceType, obj: Obj, subresource: str = "") -> None:
    """Values of the wrong JSON type fail decoding in every fieldValidation mode (400)."""
    kind = "Scale" if subresource == "scale" else rt.kind
    problems = decoding.type_errors(kind, obj)
    if problems:
        version = "v1" if subresource == "scale" else rt.version
        raise bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: {problems[0]}')


def field_validation(
    request: web.Request, rt: ResourceType, obj: Any, *, is_patch: bool = False, subresource: str = ""
) -> list[str]:
    """Prune unknown fields; Strict -> 400, Warn (default) -> Warning headers, Ignore -> nothing."""
    mode = request.query.get("fieldValidation", "Warn") or "Warn"
    if mode not in ("Strict", "Warn", "Ignore"):
        raise bad_request(
            f'fieldValidation: Unsupported value: "{mode}": supported values: "Ignore", "Strict", "Warn"'
        )
    if request.get("kubesim_protobuf"):
        return []  # a protobuf body holds only the schema's fields
    kind = "Scale" if subresource == "scale" else rt.kind
    unknown = (
        crd.unknown_fields(rt, obj)
        if crd.is_custom(rt) and not subresource
        else decoding.prune_unknown_fields(kind, obj, is_patch=is_patch)
    )
    duplicates = request.get("kubesim_duplicates") or []
    if (not unknown and not duplicates) or mode == "Ignore":
        return []
    texts = [f'unknown field "{u}"' for u in unknown] + [f'duplicate field "{d}"' for d in duplicates]
    if mode == "Strict":
        raise bad_request("strict decoding error: " + ", ".join(texts))
    return [warning_header(t) for t in texts]


def dry_run(request: web.Request, body: Obj | None = None) -> bool:
    values = request.query.getall("dryRun", [])
    if body and isinstance(body.get("dryRun"), list):
        values = values + body["dryRun"]
    for value in values:
        if value != "All":
            raise bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
    return bool(values)


def manager(request: web.Request) -> str:
    manager = request.query.get("fieldManager")
    if manager:
        return manager
    agent = request.headers.get("User-Agent", "unknown")
    return agent.split("/", 1)[0] or "unknown"
