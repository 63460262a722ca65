"""Label and field selectors (reference section 2.2)."""

from __future__ import annotations

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
