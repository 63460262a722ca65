"""Analysis conditions from Argo's expr syntax to the Python expression subset simpleeval evaluates
(``&&``, ``!``, ``nil``, ``all(xs, {# < 1})``, ...), parsed and checked against the allowed node types,
names and functions.

Pure: no I/O (see ``analysis_expr``).
"""

from __future__ import annotations

import ast
import re

from workflows.analysis_values import ELEMENT, FUNCTIONS
from workflows.errors import ConditionError

__all__ = ["MAX_CONDITION_LENGTH", "check", "parse_condition", "translate"]

MAX_CONDITION_LENGTH = 4096  # a condition is one line of a template; the cap bounds evaluation cost

_NAMES = {"result", ELEMENT, "True", "False", "None"}


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
    return "".join(out).replace("#", ELEMENT)


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
            inner = f"[({pred}) for {ELEMENT} in ({args[0].strip()})]"
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


_ALLOWED = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
    ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod, ast.Pow,
    ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn,
    ast.Call, ast.Name, ast.Load, ast.Constant, ast.Subscript, ast.Slice, ast.Attribute, ast.List,
    ast.ListComp, ast.comprehension, ast.Store,
)  # fmt: skip


def parse_condition(condition: str) -> ast.Expression:
    if len(condition) > MAX_CONDITION_LENGTH:
        raise ConditionError(f"condition is longer than {MAX_CONDITION_LENGTH} characters")
    try:
        return ast.parse(translate(condition), mode="eval")
    except SyntaxError as exc:
        raise ConditionError(f"condition {condition!r} does not parse: {exc.msg}") from exc


def check(condition: str) -> None:
    """Raise ``ConditionError`` unless ``condition`` parses and uses only known names and functions."""
    tree = parse_condition(condition)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
                raise ConditionError(
                    f"condition {condition!r}: unknown function {name!r} "
                    f"(known: {', '.join(sorted(FUNCTIONS))})"
                )
            if node.keywords:
                raise ConditionError(f"condition {condition!r}: keyword arguments are not allowed")
        elif isinstance(node, ast.Name) and node.id not in _NAMES and node.id not in FUNCTIONS:
            raise ConditionError(f"condition {condition!r}: unknown name {node.id!r} (use `result`)")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ConditionError(f"condition {condition!r}: member {node.attr!r} is not allowed")
        elif isinstance(node, ast.comprehension) and (
            node.ifs or not isinstance(node.target, ast.Name) or node.target.id != ELEMENT
        ):
            raise ConditionError(f"condition {condition!r}: comprehensions are not allowed")
        elif not isinstance(node, _ALLOWED):
            raise ConditionError(f"condition {condition!r}: {type(node).__name__} is not allowed")
