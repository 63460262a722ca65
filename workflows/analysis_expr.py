"""Analysis conditions in Argo's expression style, evaluated safely with simpleeval (never ``eval``).

Supported (over the measured ``result``): comparisons and arithmetic, ``and``/``or``/``not`` and Argo's
``&&``/``||``/``!``, ``true``/``false``/``nil``, indexing (``result[0]``), and the functions ``len``,
``abs``, ``min``, ``max``, ``isNaN``, ``isInf``, ``asInt``, ``asFloat``, ``default(x, d)``, ``all`` and
``any`` — the latter also in expr's predicate form ``all(result, {# < 0.05})`` (``#`` is the element).

``check`` compiles a condition at ``rollout start`` (one-line error); ``evaluate`` runs it per measurement.
Pure: no I/O.
"""

from __future__ import annotations

import ast
import math
import re
from typing import Any

from simpleeval import EvalWithCompoundTypes, InvalidExpression

from workflows.errors import ConditionError

__all__ = ["check", "evaluate", "translate"]

_ELEMENT = "it_"
_PREDICATE_FUNCS = ("all", "any")



def _is_nan(x: Any) -> bool:
    return isinstance(x, float) and math.isnan(x)


def _is_inf(x: Any) -> bool:
    return isinstance(x, float) and math.isinf(x)


def _default(x: Any, d: Any) -> Any:
    return d if x is None or _is_nan(x) else x


FUNCTIONS: dict[str, Any] = {
    "len": len,
    "abs": abs,
    "min": min,
    "max": max,
    "all": all,
    "any": any,
    "isNaN": _is_nan,
    "isInf": _is_inf,
    "asInt": int,
    "asFloat": float,
    "default": _default,
}
_NAMES = {"result", _ELEMENT, "True", "False", "None"}


def _segments(text: str) -> list[tuple[bool, str]]:
    """Split into (is_string_literal, text) pieces so rewrites never touch quoted text."""
    out: list[tuple[bool, str]] = []
    i, start = 0, 0
    while i < len(text):
        ch = text[i]
        if ch in "\"'`":
            if start < i:
                out.append((False, text[start:i]))
            j = i + 1
            while j < len(text) and text[j] != ch:
                j += 2 if text[j] == "\\" else 1
            if j >= len(text):
                raise ConditionError(f"unterminated string in {text!r}")
            lit = text[i : j + 1]
            out.append((True, lit if ch != "`" else repr(lit[1:-1])))
            i = start = j + 1
            continue
        i += 1
    if start < len(text):
        out.append((False, text[start:]))
    return out


def _operators(code: str) -> str:
    code = code.replace("&&", " and ").replace("||", " or ")
    out = []
    for i, ch in enumerate(code):
        if ch == "!" and code[i + 1 : i + 2] != "=":
            out.append(" not ")
        else:
            out.append(ch)
    return "".join(out).replace("#", _ELEMENT)


def _words(code: str) -> str:
    return re.sub(
        r"\b(true|false|nil)\b", lambda m: {"true": "True", "false": "False"}.get(m[1], "None"), code
    )


def _split_args(inner: str) -> list[str]:
    depth = 0
    parts: list[str] = []
    cur: list[str] = []
    for ch in inner:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _predicates(code: str) -> str:
    """``all(X, P)`` -> ``all([(P) for it_ in (X)])`` (``{P}`` braces dropped), innermost first."""
    pattern = re.compile(r"\b(all|any)\s*\(")
    pos = 0
    while True:
        m = pattern.search(code, pos)
        if not m:
            return code
        open_at = m.end() - 1
        depth, close_at = 0, -1
        for k in range(open_at, len(code)):
            if code[k] == "(":
                depth += 1
            elif code[k] == ")":
                depth -= 1
                if depth == 0:
                    close_at = k
                    break
        if close_at < 0:
            raise ConditionError("unbalanced parentheses")
        args = _split_args(_predicates(code[open_at + 1 : close_at]))
        if len(args) == 2:
            pred = args[1].strip()
            if pred.startswith("{") and pred.endswith("}"):
                pred = pred[1:-1]
            inner = f"[({pred}) for {_ELEMENT} in ({args[0].strip()})]"
        else:
            inner = ",".join(args)
        code = f"{code[: open_at + 1]}{inner}{code[close_at:]}"
        pos = open_at + 1 + len(inner)


def translate(condition: str) -> str:
    """Argo/expr syntax -> the Python expression subset simpleeval evaluates."""
    pieces = []
    for is_lit, text in _segments(condition.strip()):
        pieces.append(text if is_lit else _words(_operators(text)))
    return _predicates("".join(pieces)).strip()


def check(condition: str) -> None:
    """Raise ``ConditionError`` unless ``condition`` parses and uses only known names and functions."""
    try:
        tree = ast.parse(translate(condition), mode="eval")
    except SyntaxError as exc:
        raise ConditionError(f"condition {condition!r} does not parse: {exc.msg}") from exc
    bound = {
        t.id
        for node in ast.walk(tree)
        if isinstance(node, ast.comprehension)
        for t in ast.walk(node.target)
        if isinstance(t, ast.Name)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
                raise ConditionError(
                    f"condition {condition!r}: unknown function {name!r} "
                    f"(known: {', '.join(sorted(FUNCTIONS))})"
                )
        elif isinstance(node, ast.Name) and node.id not in _NAMES | bound and node.id not in FUNCTIONS:
            raise ConditionError(f"condition {condition!r}: unknown name {node.id!r} (use `result`)")
        elif isinstance(node, ast.Attribute | ast.Lambda | ast.NamedExpr):
            raise ConditionError(f"condition {condition!r}: {type(node).__name__} is not allowed")


def evaluate(condition: str, result: Any) -> bool:
    """Evaluate ``condition`` over ``result``; a non-boolean answer or a failure raises ``ConditionError``."""
    evaluator = EvalWithCompoundTypes(names={"result": result}, functions=dict(FUNCTIONS))
    try:
        value = evaluator.eval(translate(condition))
    except (InvalidExpression, TypeError, ValueError, IndexError, KeyError, ZeroDivisionError) as exc:
        raise ConditionError(f"condition {condition!r} on {result!r}: {exc}") from exc
    if not isinstance(value, bool):
        raise ConditionError(f"condition {condition!r} on {result!r} gave {value!r}, not true or false")
    return value
