"""ConfigMaps and Secrets: the write-time rules of upstream ``ValidateConfigMap[Update]`` and
``ValidateSecret[Update]``, and Secret's ``stringData`` (merged into ``data`` on write, never stored)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

Obj = dict[str, Any]
Cause = tuple[str, str, str]

MAX_SIZE = 1024 * 1024  # core.MaxSecretSize, also the ConfigMap limit
_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")
_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
    "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)
IMMUTABLE_MSG = "Forbidden: field is immutable when `immutable` is set"
# Secret types whose data must carry these keys (one of them for basic-auth).
_REQUIRED_KEYS = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


def _invalid(field: str, value: Any, detail: str) -> Cause:
    return field, f"Invalid value: {json.dumps(value)}: {detail}", "FieldValueInvalid"


def key_errors(key: str) -> list[str]:
    """``IsConfigMapKey``: the messages for an invalid data key."""
    out = []
    if len(key) > 253:
        out.append("must be no more than 253 characters")
    if not _KEY_RE.match(key):
        out.append(_KEY_MSG)
    if key == ".":
        out.append("must not be '.'")
    elif key == "..":
        out.append("must not be '..'")
    elif key.startswith(".."):
        out.append("must not start with '..'")
    return out


def _decoded_size(value: Any) -> int:
    try:
        return len(base64.b64decode(str(value), validate=True))
    except (binascii.Error, ValueError):
        return len(str(value))


def _bag(obj: Obj, field: str) -> dict[str, Any]:
    bag = obj.get(field)
    return bag if isinstance(bag, dict) else {}


def _immutable(obj: Obj, old: Obj | None, fields: tuple[str, ...]) -> list[Cause]:
    if old is None or old.get("immutable") is not True:
        return []
    causes: list[Cause] = []
    if obj.get("immutable") is not True:
        causes.append(("immutable", IMMUTABLE_MSG, "FieldValueForbidden"))
    for field in fields:
        if _bag(obj, field) != _bag(old, field):
            causes.append((field, IMMUTABLE_MSG, "FieldValueForbidden"))
    return causes


def validate_configmap(obj: Obj, old: Obj | None) -> list[Cause]:
    causes = _immutable(obj, old, ("data", "binaryData"))
    data, binary = _bag(obj, "data"), _bag(obj, "binaryData")
    size = 0
    for key, value in data.items():
        causes += [_invalid(f"data[{key}]", key, msg) for msg in key_errors(str(key))]
        if key in binary:
            causes.append(_invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
        size += len(str(value).encode())
    for key, value in binary.items():
        causes += [_invalid(f"binaryData[{key}]", key, msg) for msg in key_errors(str(key))]
        size += _decoded_size(value)
    if size > MAX_SIZE:
        causes.append(("", f"Too long: may not be more than {MAX_SIZE} bytes", "FieldValueTooLong"))
    return causes


def validate_secret(obj: Obj, old: Obj | None) -> list[Cause]:
    causes = _immutable(obj, old, ("data",))
    if old is not None and obj.get("type") != old.get("type"):
        causes.append(_invalid("type", obj.get("type"), "field is immutable"))
    data = _bag(obj, "data")
    size = 0
    for key, value in data.items():
        causes += [_invalid(f"data[{key}]", key, msg) for msg in key_errors(str(key))]
        size += _decoded_size(value)
    if size > MAX_SIZE:
        causes.append(("data", f"Too long: may not be more than {MAX_SIZE} bytes", "FieldValueTooLong"))
    kind = obj.get("type") or "Opaque"
    if kind == "kubernetes.io/basic-auth" and "username" not in data and "password" not in data:
        causes += [(f"data[{k}]", "Required value", "FieldValueRequired") for k in ("username", "password")]
    if kind == "kubernetes.io/service-account-token":
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if not annotations.get("kubernetes.io/service-account.name"):
            causes.append(
                (
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "Required value",
                    "FieldValueRequired",
                )
            )
    for key in _REQUIRED_KEYS.get(kind, ()):
        if key not in data:
            causes.append((f"data[{key}]", "Required value", "FieldValueRequired"))
    return causes


def bad_secret_data(obj: Obj) -> str | None:
    """The decoding error of a Secret whose ``data`` values are not base64 (the apiserver answers 400)."""
    for value in _bag(obj, "data").values():
        try:
            base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError) as exc:
            return f"illegal base64 data: {exc}"
    return None


def default_secret(obj: Obj) -> None:
    """``type`` defaults to Opaque; ``stringData`` is written over ``data`` (base64) and dropped."""
    if not obj.get("type"):
        obj["type"] = "Opaque"
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data: Obj = obj["data"] if isinstance(obj.get("data"), dict) else {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        obj["data"] = data
