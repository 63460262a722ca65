"""CustomResourceDefinitions (apiextensions.k8s.io/v1): served custom resources from stored CRDs.

A CRD that is created (or loaded from ``--state``) registers one ``ResourceType`` per served version,
so discovery, CRUD, watch, the status subresource and Tables work through the same code as the
built-in kinds. Besides that this module does what the apiserver's CRD handler adds on top:
structural-schema pruning and defaulting, and Table columns from ``additionalPrinterColumns``.
Objects are stored in the CRD's storage version; ``kubesim/conversion.py`` converts them to and from the
version a client addresses (``spec.conversion``: ``None`` or ``Webhook``), as the apiserver does.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jsonpath_ng import parse as jsonpath_parse
from jsonpath_ng.exceptions import JsonPathParserError

from kubesim import resources
from kubesim.resources import ResourceType
from kubesim.table_cells import human_duration, parse_time

Obj = dict[str, Any]
CRD_KEY = "customresourcedefinitions.apiextensions.k8s.io"
_META_FIELDS = ("apiVersion", "kind", "metadata")


@dataclass
class CustomVersion:
    """What the server needs to know about one served version of a CRD."""

    rt: ResourceType
    schema: Obj = field(default_factory=dict)
    columns: list[Obj] = field(default_factory=list)
    storage: str = ""  # the CRD's storage version (all versions of one CRD share one store key)
    conversion: Obj = field(default_factory=dict)  # the CRD's spec.conversion


# (store key, version) -> that served version.
CUSTOM: dict[tuple[str, str], CustomVersion] = {}


def is_custom(rt: ResourceType) -> bool:
    return (rt.key, rt.version) in CUSTOM


def version_of(rt: ResourceType) -> CustomVersion | None:
    return CUSTOM.get((rt.key, rt.version))


def _types_of(crd: Obj) -> list[CustomVersion]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, plural, kind = spec.get("group", ""), names.get("plural", ""), names.get("kind", "")
    subs_kinds: list[CustomVersion] = []
    storage = next((v.get("name", "") for v in spec.get("versions") or [] if v.get("storage")), "")
    conversion = dict(spec.get("conversion") or {})
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        subresources = tuple(k for k in ("status", "scale") if k in (version.get("subresources") or {}))
        rt = ResourceType(
            group,
            version.get("name", ""),
            plural,
            kind,
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()),
            subresources=subresources,
            generation_on_spec=True,
            singular=names.get("singular", kind.lower()),
            categories=tuple(names.get("categories") or ()),
        )
        schema = ((version.get("schema") or {}).get("openAPIV3Schema")) or {}
        columns = list(version.get("additionalPrinterColumns") or [])
        subs_kinds.append(CustomVersion(rt, schema, columns, storage, conversion))
    return subs_kinds


def register(crd: Obj, store: Any) -> None:
    """Serve the CRD's versions (replacing what an older state of the same CRD served)."""
    unregister(crd, store, drop_objects=False)
    for cv in _types_of(crd):
        if not (cv.rt.group and cv.rt.version and cv.rt.plural and cv.rt.kind):
            continue
        resources.register(cv.rt)
        CUSTOM[(cv.rt.key, cv.rt.version)] = cv
        store.ensure_resource(cv.rt.key)


def unregister(crd: Obj, store: Any, *, drop_objects: bool = True) -> None:
    spec = crd.get("spec") or {}
    key = f"{(spec.get('names') or {}).get('plural', '')}.{spec.get('group', '')}"
    for rt in [r for r in resources.RESOURCES if r.key == key]:
        resources.unregister(rt)
    for served in [k for k in CUSTOM if k[0] == key]:
        del CUSTOM[served]
    if drop_objects:
        store.drop_resource(key)


def accepted_status(crd: Obj) -> Obj:
    """The status the apiserver writes once names are accepted and the CRD is established."""
    spec = crd.get("spec") or {}
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    names = copy.deepcopy(spec.get("names") or {})
    names.setdefault("singular", str(names.get("kind", "")).lower())
    names.setdefault("listKind", f"{names.get('kind', '')}List")
    conds = [
        {
            "type": "NamesAccepted",
            "status": "True",
            "reason": "NoConflicts",
            "message": "no conflicts found",
            "lastTransitionTime": now,
        },
        {
            "type": "Established",
            "status": "True",
            "reason": "InitialNamesAccepted",
            "message": "the initial names have been accepted",
            "lastTransitionTime": now,
        },
    ]
    stored = [v.get("name") for v in spec.get("versions") or [] if v.get("storage")]
    return {"acceptedNames": names, "conditions": conds, "storedVersions": stored}


def validate_crd(crd: Obj) -> list[tuple[str, str]]:
    """(field, message) problems of a CRD the apiserver would refuse."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    problems: list[tuple[str, str]] = []
    name = (crd.get("metadata") or {}).get("name", "")
    if name != f"{names.get('plural', '')}.{spec.get('group', '')}":
        problems.append(
            ("metadata.name", f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group')
        )
    if not names.get("kind"):
        problems.append(("spec.names.kind", "Required value"))
    versions = spec.get("versions") or []
    if not versions:
        problems.append(
            ("spec.versions", "Invalid value: null: must have exactly one version marked as storage version")
        )
    elif sum(1 for v in versions if v.get("storage")) != 1:
        problems.append(
            ("spec.versions", "Invalid value: must have exactly one version marked as storage version")
        )
    return problems


# ---- structural schema: pruning and defaulting ---------------------------------------------------------


def _prune(value: Any, schema: Obj, path: str, unknown: list[str]) -> None:
    if not schema or schema.get("x-kubernetes-preserve-unknown-fields"):
        if isinstance(value, dict) and schema.get("properties"):
            for key, sub in schema["properties"].items():
                if key in value:
                    _prune(value[key], sub, f"{path}.{key}" if path else key, unknown)
        return
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if props is not None:
            for key in list(value):
                child = f"{path}.{key}" if path else key
                if key in props:
                    _prune(value[key], props[key], child, unknown)
                elif isinstance(extra, dict):
                    _prune(value[key], extra, child, unknown)
                elif extra is not True:
                    unknown.append(child)
                    del value[key]
        elif isinstance(extra, dict):
            for key in value:
                _prune(value[key], extra, f"{path}.{key}" if path else key, unknown)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _prune(item, schema["items"], f"{path}[{i}]", unknown)


def _default(value: Any, schema: Obj) -> None:
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                _default(value[key], sub)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _default(item, schema["items"])


def unknown_fields(rt: ResourceType, obj: Any) -> list[str]:
    """Prune fields the version's schema does not know (metadata kept); returns their paths."""
    cv = version_of(rt)
    if cv is None or not isinstance(obj, dict) or not cv.schema:
        return []
    unknown: list[str] = []
    props = cv.schema.get("properties") or {}
    for key in list(obj):
        if key in _META_FIELDS:
            continue
        if key not in props and not cv.schema.get("x-kubernetes-preserve-unknown-fields"):
            unknown.append(key)
            del obj[key]
        elif key in props:
            _prune(obj[key], props[key], key, unknown)
    return unknown


def apply_defaults(rt: ResourceType, obj: Obj) -> None:
    """Prune, then default from the schema (the apiserver's order for a request body)."""
    cv = version_of(rt)
    if cv is None or not cv.schema:
        return
    unknown_fields(rt, obj)
    _default(
        obj,
        {
            "properties": {
                k: v for k, v in (cv.schema.get("properties") or {}).items() if k not in _META_FIELDS
            }
        },
    )


# ---- Tables from additionalPrinterColumns -------------------------------------------------------------

_NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "priority": 0,
    "description": "Name must be unique within a namespace.",
}
_AGE_COLUMN = {
    "name": "Age",
    "type": "date",
    "format": "",
    "priority": 0,
    "description": "CreationTimestamp is a timestamp representing the server time when this "
    "object was created.",
}


def _cell(obj: Obj, path: str) -> Any:
    try:
        expr = jsonpath_parse("$" + path if path.startswith(".") else path)
    except (JsonPathParserError, Exception):  # noqa: BLE001 - a bad path prints an empty cell, as kubectl does
        return None
    found = [m.value for m in expr.find(obj)]
    if not found:
        return None
    value = found[0]
    return value if isinstance(value, (str, int, float, bool)) else str(value)


def printer(rt: ResourceType) -> tuple[list[Obj], Any] | None:
    """(columnDefinitions, row function) for a custom resource, or None for built-in kinds."""
    cv = version_of(rt)
    if cv is None:
        return None
    specs = cv.columns
    if not specs:
        columns = [dict(_NAME_COLUMN), dict(_AGE_COLUMN)]

        def default_row(obj: Obj, now: datetime) -> tuple[list[Any], None]:
            meta = obj.get("metadata") or {}
            return [meta.get("name", ""), meta.get("creationTimestamp")], None

        return columns, default_row
    columns = [dict(_NAME_COLUMN)] + [
        {
            "name": c.get("name", ""),
            "type": c.get("type", "string"),
            "format": c.get("format", ""),
            "description": c.get("description", ""),
            "priority": int(c.get("priority") or 0),
        }
        for c in specs
    ]

    def row(obj: Obj, now: datetime) -> tuple[list[Any], None]:
        cells = [(obj.get("metadata") or {}).get("name", "")]
        for c in specs:
            value = _cell(obj, str(c.get("jsonPath", "")))
            if c.get("type") == "date" and value is not None:
                # the apiserver prints date columns as an age ("5m"), like the built-in Age column
                when = parse_time(value)
                value = human_duration((now - when).total_seconds()) if when else value
            cells.append(value)
        return cells, None

    return columns, row
