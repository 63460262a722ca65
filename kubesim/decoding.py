"""What the apiserver's typed decoder checks before validation: unknown fields (``fieldValidation``) and
values of the wrong JSON type. The schema is the kubernetes client's model classes (``openapi_types`` and
``attribute_map``), as the apiserver's strict decoder uses the Go types.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from kubesim import configdata

# ---- unknown fields (fieldValidation) ----------------------------------------------------------------------

_KIND_MODELS = {"Event": "CoreV1Event", "Scale": "V1Scale"}


@cache
def _model_fields(class_name: str) -> dict[str, str] | None:
    """JSON field name -> openapi type string of a kubernetes client model, or None if unknown."""
    from kubernetes.client import models

    cls = getattr(models, class_name, None)
    if cls is None or not hasattr(cls, "openapi_types"):
        return None
    return {cls.attribute_map[attr]: typ for attr, typ in cls.openapi_types.items()}


def _walk(value: Any, typ: str, path: str, unknown: list[str], is_patch: bool) -> None:
    if typ.startswith("List[") and isinstance(value, list):
        inner = typ[5:-1]
        for i, item in enumerate(value):
            _walk(item, inner, f"{path}[{i}]", unknown, is_patch)
        return
    if typ.startswith("Dict[") and isinstance(value, dict):
        inner = typ[5:-1].split(",", 1)[1].strip()
        for key, item in value.items():
            _walk(item, inner, f"{path}.{key}", unknown, is_patch)
        return
    fields = _model_fields(typ) if typ not in _PRIMITIVES else None
    if fields is None or not isinstance(value, dict):
        return
    for key in list(value):
        if is_patch and key.startswith("$"):
            continue
        child = f"{path}.{key}" if path else key
        if key not in fields:
            unknown.append(child)
            del value[key]
        else:
            _walk(value[key], fields[key], child, unknown, is_patch)


def prune_unknown_fields(kind: str, obj: Any, *, is_patch: bool = False) -> list[str]:
    """Remove fields the kind's schema does not know; returns their paths (e.g. ``spec.replicaz``).

    Kinds without a client model (HTTPRoute) are free-form. Patch bodies keep their ``$`` directives.
    """
    class_name = _KIND_MODELS.get(kind, f"V1{kind}")
    if _model_fields(class_name) is None:
        return []
    unknown: list[str] = []
    _walk(obj, class_name, "", unknown, is_patch)
    return unknown


# ---- JSON types (what Go's decoder rejects whatever fieldValidation says) --------------------------------

_PRIMITIVES = {
    "str": "string",
    "int": "int32",
    "bool": "bool",
    "float": "float64",
    "datetime": "Time",
    "object": "",
    "bytes": "string",
}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_error(value: Any, typ: str, struct: str, path: str) -> str | None:
    """A Go-decoder style message if ``value`` cannot decode as ``typ``; None if fine."""
    if value is None:
        return None  # null decodes as the zero value
    ok: bool
    if typ == "object":
        return None  # IntOrString, Quantity, RawExtension: anything goes
    if typ == "str" or typ == "bytes":
        ok = isinstance(value, str)
    elif typ == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif typ == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif typ == "bool":
        ok = isinstance(value, bool)
    elif typ == "datetime":
        ok = isinstance(value, str) and _TIME_RE.match(value) is not None
    elif typ.startswith("List["):
        ok = isinstance(value, list)
    else:  # maps and structs
        ok = isinstance(value, dict)
    if ok:
        return None
    go_type = _PRIMITIVES.get(typ) or (
        "[]" + _go_name(typ[5:-1])
        if typ.startswith("List[")
        else "map[string]" + _go_name(typ.split(",", 1)[1].strip()[:-1])
        if typ.startswith("Dict[")
        else _go_name(typ)
    )
    if typ == "datetime":
        return f'parsing time {json.dumps(value)} as "2006-01-02T15:04:05Z07:00": cannot parse'
    return (
        f"json: cannot unmarshal {_json_type(value)} into Go struct field {struct}.{path} of type {go_type}"
    )


def _go_name(typ: str, qualified: bool = True) -> str:
    """``V1DeploymentSpec`` -> ``v1.DeploymentSpec`` (the Go type the client model mirrors)."""
    if typ in _PRIMITIVES:
        return _PRIMITIVES[typ] or "interface {}"
    name = re.sub(r"^(Core|Discovery|Events)?V\d+(alpha\d+|beta\d+)?", "", typ)
    return f"v1.{name}" if qualified else name


_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")


def _check_types(value: Any, typ: str, struct: str, path: str, errors_out: list[str]) -> None:
    err = _type_error(value, typ, struct, path)
    if err is not None:
        errors_out.append(err)
        return
    if value is None:
        return
    if typ.startswith("List["):
        for item in value:
            _check_types(item, typ[5:-1], struct, path, errors_out)
        return
    if typ.startswith("Dict["):
        inner = typ[5:-1].split(",", 1)[1].strip()
        for key, item in value.items():
            _check_types(item, inner, struct, f"{path}.{key}", errors_out)
        return
    fields = _model_fields(typ) if typ not in _PRIMITIVES else None
    if fields is None:
        return
    name = _go_name(typ, qualified=False)
    for key, item in value.items():
        if key in fields:
            _check_types(item, fields[key], name, f"{path}.{key}" if path else key, errors_out)


def type_errors(kind: str, obj: Any) -> list[str]:
    """Fields whose JSON type cannot decode into the kind's Go type (answered 400 in every mode)."""
    class_name = _KIND_MODELS.get(kind, f"V1{kind}")
    if _model_fields(class_name) is None:
        return []
    out: list[str] = []
    _check_types(obj, class_name, kind, "", out)
    if kind == "Secret" and isinstance(obj, dict) and not out:
        bad = configdata.bad_secret_data(obj)
        out += [bad] if bad else []
    return out
