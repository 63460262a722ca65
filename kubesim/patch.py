"""Patch algorithms as pure functions: strategic merge (reference section 3), JSON merge (RFC 7386) and JSON
Patch (RFC 6902).

Inputs are not mutated; results may share unchanged subtrees with the inputs, so callers pass private copies
(``Store.get`` returns one) when they go on to mutate the result.
"""

from __future__ import annotations

import copy
from typing import Any

Json = Any

_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
# List name -> merge key for merge-strategy lists (patchStrategy/patchMergeKey struct tags in k8s.io/api).
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "volumes": "name",
    "imagePullSecrets": "name",
    "resourceClaims": "name",
    "schedulingGates": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "ownerReferences": "uid",
}
# Merge-strategy lists of primitives (set semantics).
_PRIMITIVE_MERGE = {("metadata", "finalizers"), ("spec", "template", "metadata", "finalizers")}


class PatchError(Exception):
    """A patch that cannot be applied; ``code`` is the HTTP status to answer with (400 or 422)."""

    def __init__(self, message: str, code: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def list_strategy(path: tuple[str, ...]) -> tuple[str, str | None]:
    """("merge", key) / ("merge", None) for primitive sets / ("replace", None) for a list at ``path``.

    ``path`` holds map keys from the object root, list indices left out.
    """
    name = path[-1] if path else ""
    if name == "ports":
        if len(path) >= 2 and path[-2] in _CONTAINER_LISTS:
            return "merge", "containerPort"
        if path == ("spec", "ports"):
            return "merge", "port"  # Service
        return "replace", None
    if name == "conditions" and len(path) >= 2 and path[-2] == "status":
        return "merge", "type"
    if path in _PRIMITIVE_MERGE:
        return "merge", None
    if name in _MERGE_KEYS:
        return "merge", _MERGE_KEYS[name]
    return "replace", None


def _strip(value: Json) -> Json:
    """Drop SMP directives and nulls from a fragment that is inserted as new content."""
    if isinstance(value, dict):
        if value.get("$patch") == "delete":
            return None
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$") and v is not None}
    if isinstance(value, list):
        return [_strip(v) for v in value if not (isinstance(v, dict) and "$patch" in v and len(v) == 1)]
    return value


def strategic_merge(original: Json, patch: Json) -> Json:
    """Apply a strategic merge patch to ``original`` (an object dict)."""
    if not isinstance(patch, dict):
        raise PatchError("strategic merge patch must be a JSON object", 400)
    if not isinstance(original, dict):
        original = {}
    result = _merge_map(original, patch, ())
    return {} if result is None else result


def _merge_map(
    orig: dict[str, Json], patch: dict[str, Json], path: tuple[str, ...]
) -> dict[str, Json] | None:
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip({k: v for k, v in patch.items() if k != "$patch"})
    if directive == "delete":
        return None
    if directive not in (None, "merge"):
        raise PatchError(f"Unknown patch type: {directive}")
    result = dict(orig)
    orders: dict[str, list[Json]] = {}
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list) and isinstance(value, list):
                result[field] = [x for x in result[field] if x not in value]
        elif key.startswith("$setElementOrder/"):
            if not isinstance(value, list):
                raise PatchError(f"invalid value for {key}: must be a list", 400)
            orders[key.split("/", 1)[1]] = value
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
            continue
        current = result.get(key)
        if isinstance(value, dict):
            merged = _merge_map(current if isinstance(current, dict) else {}, value, path + (key,))
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(current if isinstance(current, list) else [], value, path + (key,))
        else:
            result[key] = value
    for field, order in orders.items():
        if isinstance(result.get(field), list):
            result[field] = _apply_order(
                result[field], order, orig.get(field) or [], list_strategy(path + (field,))[1]
            )
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(orig: list[Json], patch: list[Json], path: tuple[str, ...]) -> list[Json]:
    if any(isinstance(e, dict) and e.get("$patch") == "replace" for e in patch):
        return [_strip(e) for e in patch if not (isinstance(e, dict) and "$patch" in e)]
    strategy, key = list_strategy(path)
    if strategy == "replace":
        return [_strip(e) for e in patch]
    if key is None:
        return list(orig) + [x for x in patch if x not in orig]
    result = list(orig)
    for element in patch:
        if not isinstance(element, dict) or key not in element:
            if isinstance(element, dict) and element.get("$patch") == "delete":
                continue
            raise PatchError(f"map: {element} does not contain declared merge key: {key}", 400)
        idx = next(
            (i for i, e in enumerate(result) if isinstance(e, dict) and e.get(key) == element[key]), None
        )
        if element.get("$patch") == "delete":
            result = [e for e in result if not (isinstance(e, dict) and e.get(key) == element[key])]
            continue
        if idx is None:
            merged = _merge_map({}, element, path)
            if merged is not None:
                result.append(merged)
        else:
            merged = _merge_map(result[idx], element, path)
            if merged is None:
                del result[idx]
            else:
                result[idx] = merged
    return result


def _apply_order(items: list[Json], order: list[Json], orig: list[Json], key: str | None) -> list[Json]:
    """Reorder per ``$setElementOrder``; items not named keep their place after their original predecessor."""

    def ident(e: Json) -> Json:
        return e.get(key) if key is not None and isinstance(e, dict) else e

    wanted = [ident(o) for o in order]
    by_id = {_hashable(ident(e)): e for e in items}
    final = [by_id[_hashable(w)] for w in wanted if _hashable(w) in by_id]
    placed = {_hashable(w) for w in wanted}
    orig_ids = [ident(e) for e in orig]
    for e in items:
        eid = _hashable(ident(e))
        if eid in placed:
            continue
        # Insert after the nearest original predecessor that is already placed.
        pos = 0
        if ident(e) in orig_ids:
            for prev in reversed(orig_ids[: orig_ids.index(ident(e))]):
                hp = _hashable(prev)
                ids = [_hashable(ident(x)) for x in final]
                if hp in ids:
                    pos = ids.index(hp) + 1
                    break
        else:
            pos = len(final)
        final.insert(pos, e)
        placed.add(eid)
    return final


def _hashable(value: Json) -> Json:
    return repr(value) if isinstance(value, dict | list) else value


# ---- JSON merge patch (RFC 7386) ---------------------------------------------------------------------------


def merge_patch(target: Json, patch: Json) -> Json:
    """RFC 7386: maps merge, ``null`` deletes, everything else (lists included) replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# ---- JSON Patch (RFC 6902) ---------------------------------------------------------------------------------


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise PatchError(f"invalid JSON pointer: {path!r}", 400)
    if path == "":
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Json, parts: list[str], path: str) -> Json:
    cur = doc
    for part in parts[:-1]:
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            raise PatchError(f'doc is missing path: "{path}": missing value')
    return cur


def _get(doc: Json, path: str) -> Json:
    parts = _pointer(path)
    if not parts:
        return doc
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    raise PatchError(f'doc is missing path: "{path}": missing value')


def _list_index(parent: list[Json], last: str, path: str, *, insert: bool) -> int:
    if last == "-" and insert:
        return len(parent)
    if not last.isdigit():
        raise PatchError(f'invalid array index {last!r} in "{path}"')
    idx = int(last)
    if idx > len(parent) or (not insert and idx == len(parent)):
        raise PatchError(f'index out of range in "{path}"')
    return idx


def _add(doc: Json, path: str, value: Json) -> Json:
    parts = _pointer(path)
    if not parts:
        return value
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_list_index(parent, last, path, insert=True), value)
    else:
        raise PatchError(f'doc is missing path: "{path}": missing value')
    return doc


def _remove(doc: Json, path: str) -> Json:
    parts = _pointer(path)
    if not parts:
        raise PatchError("cannot remove the document root")
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_list_index(parent, last, path, insert=False))
    raise PatchError(f"unable to remove nonexistent key: {last}: missing value")


def json_patch(doc: Json, ops: Json) -> Json:
    """RFC 6902 ops add/remove/replace/move/copy/test on a private copy of ``doc``."""
    if not isinstance(ops, list):
        raise PatchError("json patch must be a JSON array of operations", 400)
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op:
            raise PatchError(f"invalid JSON patch operation: {op!r}", 400)
        kind, path, source = op["op"], str(op.get("path")), str(op.get("from"))
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"missing value for {kind} operation", 400)
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)  # must exist
            if _pointer(path):
                _remove(doc, path)
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "move":
            value = _get(doc, source)
            _remove(doc, source)
            doc = _add(doc, path, value)
        elif kind == "copy":
            doc = _add(doc, path, copy.deepcopy(_get(doc, source)))
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"Unexpected kind: {kind}", 400)
    return doc
