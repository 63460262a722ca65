"""Label and field selectors (reference section 2.2)."""

from __future__ import annotations

import re
from typing import Any


def matches_label_selector(selector: dict[str, Any] | None, labels: dict[str, str] | None) -> bool:
    """Match a ``LabelSelector`` object (matchLabels + matchExpressions).

    A nil selector matches nothing; ``{}`` matches everything.
    """
    if selector is None:
        return False
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def matches_map_selector(selector: dict[str, str] | None, labels: dict[str, str] | None) -> bool:
    """Service-style selector: a plain map ANDed by equality. Empty or absent matches nothing."""
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def selector_to_string(selector: dict[str, Any] | None) -> str:
    """Render a LabelSelector the way the apiserver does in Scale.status.selector."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], sorted(expr.get("values") or [])
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


# ---- query-string selectors (labels.Parse / fields.ParseSelector) ------------------------------------------

# One parsed requirement: (key, operator, values); operators: = != in notin exists !exists gt lt.
Requirement = tuple[str, str, tuple[str, ...]]


class SelectorError(ValueError):
    """A selector string that does not parse (answered as 400 BadRequest)."""


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside ``( )``."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _set_values(text: str, raw: str) -> tuple[str, ...]:
    text = text.strip()
    if not (text.startswith("(") and text.endswith(")")):
        raise SelectorError(f"unable to parse requirement: found '{raw}', expected: '('")
    return tuple(v.strip() for v in text[1:-1].split(",") if v.strip())


def parse_label_selector(text: str | None) -> list[Requirement]:
    """Parse a query-string label selector such as ``app=web,track in (canary,stable),!legacy``."""
    reqs: list[Requirement] = []
    if not text or not text.strip():
        return reqs
    for raw in _split_top_level(text):
        part = raw.strip()
        if not part:
            raise SelectorError(f"found '', expected: identifier in selector {text!r}")
        words = part.split(None, 1)
        if len(words) == 2 and words[1].lstrip().startswith(("in ", "in(", "notin ", "notin(")):
            rest = words[1].lstrip()
            op = "in" if rest.startswith("in") and not rest.startswith("notin") else "notin"
            reqs.append((words[0], op, _set_values(rest[len(op) :], raw)))
            continue
        for sym, op in (("!=", "!="), ("==", "="), ("=", "="), (">", "gt"), ("<", "lt")):
            if sym in part:
                key, value = (s.strip() for s in part.split(sym, 1))
                if not key:
                    raise SelectorError(f"unable to parse requirement: found '{sym}', expected: identifier")
                if op in ("gt", "lt") and not value.lstrip("-").isdigit():
                    raise SelectorError(
                        f"unable to parse requirement: for 'Gt', 'Lt' operators, the value "
                        f"must be an integer: {value!r}"
                    )
                reqs.append((key, op, (value,)))
                break
        else:
            if part.startswith("!"):
                reqs.append((part[1:].strip(), "!exists", ()))
            elif " " in part:
                raise SelectorError(
                    f"unable to parse requirement: found '{part}', expected: ',', '!=', "
                    f"'==', '=', 'in', 'notin'"
                )
            else:
                reqs.append((part, "exists", ()))
    for key, op, values in reqs:
        _check_requirement(key, op, values)
    return reqs


_KEY_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_KEY_PREFIX_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _check_requirement(key: str, op: str, values: tuple[str, ...]) -> None:
    """Key and value syntax of one requirement (labels.NewRequirement)."""
    prefix, _, name = key.rpartition("/")
    if (
        not name
        or len(name) > 63
        or not _KEY_NAME_RE.match(name)
        or ("/" in key and (not prefix or len(prefix) > 253 or not _KEY_PREFIX_RE.match(prefix)))
    ):
        raise SelectorError(
            f"unable to parse requirement: key: Invalid value: {key!r}: name part must "
            "consist of alphanumeric characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric character"
        )
    if op in ("gt", "lt"):
        return
    for value in values:
        if len(value) > 63 or not _VALUE_RE.match(value):
            raise SelectorError(
                f"unable to parse requirement: values[0][{key}]: Invalid value: {value!r}: a "
                "valid label must be an empty string or consist of alphanumeric characters, "
                "'-', '_' or '.', and must start and end with an alphanumeric character"
            )


def matches_requirements(reqs: list[Requirement], labels: dict[str, str] | None) -> bool:
    """Evaluate parsed label requirements (ANDed) against a label map."""
    labels = labels or {}
    for key, op, values in reqs:
        present = key in labels
        value = labels.get(key)
        if op == "=":
            ok = present and value == values[0]
        elif op == "!=":
            ok = not present or value != values[0]
        elif op == "in":
            ok = present and value in values
        elif op == "notin":
            ok = not present or value not in values
        elif op == "exists":
            ok = present
        elif op == "!exists":
            ok = not present
        else:
            try:
                n, limit = int(value or ""), int(values[0])
            except ValueError:
                return False
            ok = n > limit if op == "gt" else n < limit
        if not ok:
            return False
    return True


# Field selector support per store key; every kind supports metadata.name and metadata.namespace.
_EVENT_FIELDS = tuple(
    f"involvedObject.{f}"
    for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
) + ("reason", "source", "type", "reportingComponent")
SUPPORTED_FIELDS: dict[str, tuple[str, ...]] = {
    "pods": (
        "status.phase",
        "spec.nodeName",
        "spec.restartPolicy",
        "status.podIP",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.nominatedNodeName",
        "spec.hostNetwork",
    ),
    "events": _EVENT_FIELDS,
    "namespaces": ("status.phase",),
    "replicasets.apps": ("status.replicas",),
}


def parse_field_selector(text: str | None, resource: str) -> list[Requirement]:
    """Parse ``a=b,c!=d``; raises SelectorError for syntax errors and unsupported field labels."""
    reqs: list[Requirement] = []
    if not text or not text.strip():
        return reqs
    allowed = ("metadata.name", "metadata.namespace") + SUPPORTED_FIELDS.get(resource, ())
    for raw in text.split(","):
        part = raw.strip()
        found = next(((sym, op) for sym, op in (("!=", "!="), ("==", "="), ("=", "=")) if sym in part), None)
        if found is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        sym, op = found
        key, value = (s.strip() for s in part.split(sym, 1))
        if key not in allowed:
            raise SelectorError(f"field label not supported: {key}")
        reqs.append((key, op, (value,)))
    return reqs


def field_value(obj: dict[str, Any], path: str) -> str:
    """The string form of a dotted field (missing -> ""); ``source`` on events is source.component."""
    if path == "source":
        path = "source.component"
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def matches_fields(reqs: list[Requirement], obj: dict[str, Any]) -> bool:
    """Evaluate parsed field requirements (ANDed) against an object."""
    for key, op, values in reqs:
        equal = field_value(obj, key) == values[0]
        if equal != (op == "="):
            return False
    return True
