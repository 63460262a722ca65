"""expr's compile-time type check of an analysis condition against the measured value's type.

Pure: no I/O (see ``analysis_expr``).
"""

from __future__ import annotations

import ast
from typing import Any

from workflows.analysis_values import PREDICATE_FUNCS, is_number
from workflows.errors import ConditionError

__all__ = ["type_check"]

_KINDS = {bool: "bool", int: "number", float: "number", str: "string", list: "array", dict: "map"}


def _kind(value: Any) -> str | None:
    """The kind of a value whose type expr knows at compile time (None: nil)."""
    return _KINDS.get(type(value), "any") if value is not None else None


_GO = {"number": "float64", "string": "string", "bool": "bool", "array": "[]interface {}",
       "map": "map[string]interface {}", "nil": "<nil>", "any": "interface {}"}  # fmt: skip
_RETURNS = {"asInt": "number", "asFloat": "number", "len": "number", "isNaN": "bool", "isInf": "bool",
            "isNil": "bool", "all": "bool", "any": "bool"}  # fmt: skip


class _Types:
    """expr's compile-time type check, as far as conditions need it.

    Argo compiles each condition with ``result`` in the environment, so ``result`` has the type of the
    measured value; a member of a map, an element of a JSON list and ``#`` are ``interface{}``
    (``any``), checked only when the condition runs. An operation on known, unfitting types is an
    error even where evaluation would never reach it (``false && 1 - false``), as in expr.
    """

    def __init__(self, result: Any, condition: str) -> None:
        self.result, self.condition = result, condition

    def fail(self, text: str) -> ConditionError:
        return ConditionError(f"condition {self.condition!r}: {text}")

    def kind(self, node: ast.AST) -> str:  # noqa: C901, PLR0911, PLR0912 - one case per node type
        if isinstance(node, ast.Constant):
            return "nil" if node.value is None else _KINDS.get(type(node.value), "any")
        if isinstance(node, ast.Name):
            return (_kind(self.result) or "nil") if node.id == "result" else "any"
        if isinstance(node, ast.List):
            for elt in node.elts:
                self.kind(elt)
            return "array"
        if isinstance(node, ast.Attribute):
            return self.index(self.kind(node.value), "string")
        if isinstance(node, ast.Subscript):
            base = self.kind(node.value)
            if isinstance(node.slice, ast.Slice):
                return base
            return self.index(base, self.kind(node.slice))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return self.call(node.func.id, node.args)
        if isinstance(node, ast.UnaryOp):
            k = self.kind(node.operand)
            if isinstance(node.op, ast.Not):
                if k not in ("bool", "any"):
                    raise self.fail(f"invalid operation: ! (mismatched type {_GO[k]})")
                return "bool"
            if k not in ("number", "any"):
                raise self.fail(f"invalid operation: - (mismatched type {_GO[k]})")
            return k
        if isinstance(node, ast.BoolOp):
            for value in node.values:
                k = self.kind(value)
                if k not in ("bool", "any"):
                    sym = "&&" if isinstance(node.op, ast.And) else "||"
                    raise self.fail(f"invalid operation: {sym} (mismatched types bool and {_GO[k]})")
            return "bool"
        if isinstance(node, ast.BinOp):
            kind = self.arith(node.op, self.kind(node.left), self.kind(node.right))
            if isinstance(node.op, ast.Mod) and (self.floaty(node.left) or self.floaty(node.right)):
                raise self.fail("invalid operation: % (mismatched types int and float64)")
            return kind
        if isinstance(node, ast.Compare):
            left = self.kind(node.left)
            for op, comparator in zip(node.ops, node.comparators, strict=True):
                right = self.kind(comparator)
                self.compare(op, left, right)
                left = right
            return "bool"
        return "any"

    def floaty(self, node: ast.expr) -> bool:
        """Known to be a float64 (``%`` takes integers only)."""
        if isinstance(node, ast.Constant):
            return isinstance(node.value, float)
        if isinstance(node, ast.Name) and node.id == "result":
            return is_number(self.result)  # a decoded JSON number is a float64
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return node.func.id == "asFloat"
        return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div | ast.Pow)

    def index(self, base: str, key: str) -> str:
        if base == "map" and key not in ("string", "any"):
            raise self.fail(f"cannot use {_GO[key]} to get an element from map[string]interface {{}}")
        if base == "array" and key not in ("number", "any"):
            raise self.fail(f"array elements can only be selected using an integer (got {_GO[key]})")
        if base in ("number", "bool", "string"):
            raise self.fail(f"type {_GO[base]}[{'string' if key == 'string' else 'int'}] is undefined")
        if base == "nil":
            raise self.fail("type <nil> has no field or element")
        return "any"

    def call(self, name: str, args: list[ast.expr]) -> str:
        if name in PREDICATE_FUNCS and len(args) == 1 and isinstance(args[0], ast.ListComp):
            comp = args[0]
            items = self.kind(comp.generators[0].iter)
            if items not in ("array", "any"):
                raise self.fail(f"builtin {name} takes only array (got {_GO[items]})")
            self.kind(comp.elt)
            return "bool"
        kinds = [self.kind(a) for a in args]
        if name in ("isNaN", "isInf") and kinds and kinds[0] not in ("number", "any", "nil"):
            raise self.fail(f"cannot use {_GO[kinds[0]]} as argument (type float64) to call {name}")
        if name == "len" and kinds and kinds[0] in ("number", "bool", "nil"):
            raise self.fail(f"invalid argument for len (type {_GO[kinds[0]]})")
        return _RETURNS.get(name, "any")

    def arith(self, op: ast.operator, left: str, right: str) -> str:
        sym = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Mod: "%", ast.Pow: "**"}[type(op)]
        if left == right == "number" or (sym == "+" and left == right == "string"):
            return left
        fits = ("number", "string") if sym == "+" else ("number",)
        if (left == "any" and right in (*fits, "any")) or (right == "any" and left in fits):
            return "number" if sym in ("/", "**") else "any"  # expr: / and ** are always float64
        raise self.fail(f"invalid operation: {sym} (mismatched types {_GO[left]} and {_GO[right]})")

    def compare(self, op: ast.cmpop, left: str, right: str) -> None:
        if isinstance(op, ast.Eq | ast.NotEq):
            if "any" not in (left, right) and "nil" not in (left, right) and left != right:
                sym = "==" if isinstance(op, ast.Eq) else "!="
                raise self.fail(f"invalid operation: {sym} (mismatched types {_GO[left]} and {_GO[right]})")
        elif isinstance(op, ast.In | ast.NotIn):
            if right in ("number", "bool", "string", "nil"):
                raise self.fail(f'operator "in" not defined on {_GO[right]}')
            if right == "map" and left not in ("string", "any"):
                raise self.fail(f"cannot use {_GO[left]} as type string in map key")
        else:
            ok = left == right and left in ("number", "string")
            if not ok and not (
                (left == "any" and right in ("number", "string", "any"))
                or (right == "any" and left in ("number", "string"))
            ):
                raise self.fail(f"invalid operation: (mismatched types {_GO[left]} and {_GO[right]})")


def type_check(tree: ast.Expression, result: Any, condition: str) -> None:
    """expr's compile-time check of the condition against the measured value's type."""
    _Types(result, condition).kind(tree.body)
