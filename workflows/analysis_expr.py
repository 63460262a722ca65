"""Analysis conditions in Argo's expression style, evaluated safely with simpleeval (never ``eval``).

Supported (over the measured ``result``): comparisons and arithmetic, ``and``/``or``/``not`` and Argo's
``&&``/``||``/``!``, ``true``/``false``/``nil``, indexing (``result[0]``), member access on a JSON
object (``result.data.rate``: a key, never a Python attribute; a missing key is ``nil``), ``in``, and
the functions ``len``, ``abs``, ``min``, ``max``, ``isNaN``, ``isInf``, ``isNil``, ``asInt``,
``asFloat``, ``default(x, d)``, ``all`` and ``any`` — the latter also in expr's predicate form
``all(result, {# < 0.05})`` (``#`` is the element).

Semantics follow Argo's ``utils/evaluate`` (the expr language, tests in tests/conformance): ``and``,
``or`` and ``!`` need booleans; ``<`` and friends compare numbers with numbers and strings with
strings; ``==`` between two values whose types are known and differ (``asFloat(result) == "1.1"``) is
an error, as expr's type check makes it; ``/`` is float division (``1/0`` is ``+Inf``); ``**`` is a
float power (``9**4000000`` is ``+Inf`` at once, never a huge integer); ``isNil`` and ``default`` look
at ``result`` itself, whatever their argument, as in Argo.

``check`` compiles a condition at ``rollout start`` (one-line error); ``evaluate`` runs it per measurement.
Pure: no I/O.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from typing import Any

from simpleeval import EvalWithCompoundTypes, InvalidExpression

from workflows.errors import ConditionError

__all__ = ["check", "evaluate", "translate"]

_ELEMENT = "it_"
_PREDICATE_FUNCS = ("all", "any")
MAX_CONDITION_LENGTH = 4096  # a condition is one line of a template; the cap bounds evaluation cost


class _Fail(Exception):
    """A condition that cannot be evaluated on this value (becomes ``ConditionError``)."""


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _go_type(x: Any) -> str:
    """The Go type name Argo's evaluator would see for a JSON-decoded value (for messages)."""
    if x is None:
        return "nil"
    if isinstance(x, bool):
        return "bool"
    if isinstance(x, int):
        return "int"
    if isinstance(x, float):
        return "float64"
    if isinstance(x, str):
        return "string"
    if isinstance(x, list):
        return "[]interface {}"
    if isinstance(x, dict):
        return "map[string]interface {}"
    return type(x).__name__


def _is_nan(x: Any) -> bool:
    if not _is_number(x):
        raise _Fail(f"isNaN() wants a number, got {_go_type(x)}")
    return isinstance(x, float) and math.isnan(x)


def _is_inf(x: Any) -> bool:
    if not _is_number(x):
        raise _Fail(f"isInf() wants a number, got {_go_type(x)}")
    return isinstance(x, float) and math.isinf(x)


def _as_int(x: Any) -> int:
    if isinstance(x, str):
        if not re.fullmatch(r"[+-]?\d+", x):
            raise _Fail(f'strconv.ParseInt: parsing "{x}": invalid syntax')
        return int(x)
    if not _is_number(x):
        raise _Fail(f"asInt() not supported on {_go_type(x)} {x}")
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        raise _Fail(f"asInt() not supported on {x}")
    return int(x)


def _as_float(x: Any) -> float:
    if isinstance(x, str):
        try:
            return float(x)
        except ValueError:
            raise _Fail(f'strconv.ParseFloat: parsing "{x}": invalid syntax') from None
    if not _is_number(x):
        raise _Fail(f"asFloat() not supported on {_go_type(x)} {x}")
    return float(x)


def _len(x: Any) -> int:
    if not isinstance(x, str | list | dict):
        raise _Fail(f"invalid argument for len (type {_go_type(x)})")
    return len(x)


def _numeric(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        values = args[0] if len(args) == 1 and isinstance(args[0], list) else args
        if not values or not all(_is_number(v) for v in values):
            raise _Fail(f"{name}() wants numbers")
        return fn(*values) if len(args) > 1 or not isinstance(args[0], list) else fn(values)

    return call


def _bools(name: str, fn: Callable[..., bool]) -> Callable[..., bool]:
    def call(values: Any) -> bool:
        if not isinstance(values, list) or not all(isinstance(v, bool) for v in values):
            raise _Fail(f"{name}() wants a list and a predicate that is true or false")
        return fn(values)

    return call


def _functions(result: Any) -> dict[str, Any]:
    """The condition's functions; ``isNil``/``default`` are about ``result``, as in Argo."""
    return {
        "len": _len,
        "abs": _numeric("abs", abs),
        "min": _numeric("min", min),
        "max": _numeric("max", max),
        "all": _bools("all", all),
        "any": _bools("any", any),
        "isNaN": _is_nan,
        "isInf": _is_inf,
        "isNil": lambda _x: result is None,
        "asInt": _as_int,
        "asFloat": _as_float,
        "default": lambda _x, d: d if result is None else result,
    }


FUNCTIONS: dict[str, Any] = _functions(None)
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


_ALLOWED = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
    ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod, ast.Pow,
    ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn,
    ast.Call, ast.Name, ast.Load, ast.Constant, ast.Subscript, ast.Slice, ast.Attribute, ast.List,
    ast.ListComp, ast.comprehension, ast.Store,
)  # fmt: skip


def _parse(condition: str) -> ast.Expression:
    if len(condition) > MAX_CONDITION_LENGTH:
        raise ConditionError(f"condition is longer than {MAX_CONDITION_LENGTH} characters")
    try:
        return ast.parse(translate(condition), mode="eval")
    except SyntaxError as exc:
        raise ConditionError(f"condition {condition!r} does not parse: {exc.msg}") from exc


def check(condition: str) -> None:
    """Raise ``ConditionError`` unless ``condition`` parses and uses only known names and functions."""
    tree = _parse(condition)
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
            node.ifs or not isinstance(node.target, ast.Name) or node.target.id != _ELEMENT
        ):
            raise ConditionError(f"condition {condition!r}: comprehensions are not allowed")
        elif not isinstance(node, _ALLOWED):
            raise ConditionError(f"condition {condition!r}: {type(node).__name__} is not allowed")


# -- expr semantics -----------------------------------------------------------------------------------

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
            return _is_number(self.result)  # a decoded JSON number is a float64
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
        if name in _PREDICATE_FUNCS and len(args) == 1 and isinstance(args[0], ast.ListComp):
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


def _type_check(tree: ast.Expression, result: Any, condition: str) -> None:
    """expr's compile-time check of the condition against the measured value's type."""
    _Types(result, condition).kind(tree.body)


def _deep_equal(a: Any, b: Any) -> bool:
    """Go's reflect.DeepEqual on decoded JSON: same types all the way down (2.0 is not 2)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_deep_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_deep_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _equal(a: Any, b: Any) -> bool:
    """expr's runtime ``==``: numbers by value, anything else deeply and of the same type."""
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return _deep_equal(a, b)


def _order(op: Callable[[Any, Any], bool], sym: str) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        if (_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str)):
            return op(a, b)
        raise _Fail(f"invalid operation: {sym} (mismatched types {_go_type(a)} and {_go_type(b)})")

    return compare


def _contains(item: Any, container: Any) -> bool:
    if container is None:  # a nil known only at run time contains nothing
        return False
    if isinstance(container, list):
        return any(_equal(item, x) for x in container)
    if isinstance(container, dict):
        if item is None:
            return False
        if not isinstance(item, str):
            raise _Fail(f"cannot use {_go_type(item)} as type string in map key")
        return item in container
    raise _Fail(f"invalid operation: in (mismatched types {_go_type(item)} and {_go_type(container)})")


def _arith(op: Callable[[Any, Any], Any], sym: str) -> Callable[[Any, Any], Any]:
    def apply(a: Any, b: Any) -> Any:
        if _is_number(a) and _is_number(b):
            return op(a, b)
        if sym == "+" and isinstance(a, str) and isinstance(b, str):
            return a + b
        raise _Fail(f"invalid operation: {sym} (mismatched types {_go_type(a)} and {_go_type(b)})")

    return apply


def _divide(a: Any, b: Any) -> float:
    if not (_is_number(a) and _is_number(b)):
        raise _Fail(f"invalid operation: / (mismatched types {_go_type(a)} and {_go_type(b)})")
    if b == 0:  # Go float64 division
        return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a) * math.copysign(1, b)
    return float(a) / float(b)


def _modulo(a: Any, b: Any) -> int:
    if not (isinstance(a, int) and isinstance(b, int)) or isinstance(a, bool) or isinstance(b, bool):
        raise _Fail(f"invalid operation: % (mismatched types {_go_type(a)} and {_go_type(b)})")
    if b == 0:
        raise _Fail("integer divide by zero")
    return int(math.fmod(a, b))  # Go's sign rule


def _power(a: Any, b: Any) -> float:
    """Go's math.Pow: a float, never an exact big integer (so ``9**4000000`` is +Inf at once)."""
    if not (_is_number(a) and _is_number(b)):
        raise _Fail(f"invalid operation: ** (mismatched types {_go_type(a)} and {_go_type(b)})")
    try:
        return math.pow(float(a), float(b))
    except OverflowError:
        return math.inf if float(a) > 0 or float(b) % 2 == 0 else -math.inf
    except ValueError:
        return math.nan


def _negate(a: Any) -> Any:
    if not _is_number(a):
        raise _Fail(f"invalid operation: - (mismatched type {_go_type(a)})")
    return -a


def _plus(a: Any) -> Any:
    if not _is_number(a):
        raise _Fail(f"invalid operation: + (mismatched type {_go_type(a)})")
    return a


def _not(a: Any) -> bool:
    if not isinstance(a, bool):
        raise _Fail(f"invalid operation: ! (mismatched type {_go_type(a)})")
    return not a


_OPERATORS: dict[type, Callable[..., Any]] = {
    ast.Add: _arith(operator.add, "+"),
    ast.Sub: _arith(operator.sub, "-"),
    ast.Mult: _arith(operator.mul, "*"),
    ast.Div: _divide,
    ast.Mod: _modulo,
    ast.Pow: _power,
    ast.USub: _negate,
    ast.UAdd: _plus,
    ast.Not: _not,
    ast.Eq: _equal,
    ast.NotEq: lambda a, b: not _equal(a, b),
    ast.Lt: _order(operator.lt, "<"),
    ast.LtE: _order(operator.le, "<="),
    ast.Gt: _order(operator.gt, ">"),
    ast.GtE: _order(operator.ge, ">="),
    ast.In: _contains,
    ast.NotIn: lambda a, b: not _contains(a, b),
}


class _Evaluator(EvalWithCompoundTypes):  # type: ignore[misc]
    """simpleeval with expr's member access and boolean operators."""

    def _eval_attribute(self, node: ast.Attribute) -> Any:
        # A member is a key of a JSON object, never a Python attribute (``.values`` is the key "values").
        if node.attr.startswith("_"):
            raise _Fail(f"member {node.attr!r} is not allowed")
        container = self._eval(node.value)
        if isinstance(container, dict):
            return container.get(node.attr)
        raise _Fail(f"cannot fetch {node.attr} from {_go_type(container)}")

    def _eval_subscript(self, node: ast.Subscript) -> Any:
        container = self._eval(node.value)
        if isinstance(node.slice, ast.Slice):
            return super()._eval_subscript(node)
        key = self._eval(node.slice)
        if isinstance(container, dict):
            if not isinstance(key, str):
                raise _Fail(f"cannot use {_go_type(key)} as a map key")
            return container.get(key)
        if isinstance(container, list | str):
            if not isinstance(key, int) or isinstance(key, bool):
                raise _Fail(f"non-integer index {key!r}")
            if not -len(container) <= key < len(container):
                raise _Fail(f"index out of range: {key} (array length is {len(container)})")
            # a string (known only at run time) indexes to a byte, as in Go
            return container[key] if isinstance(container, list) else container.encode()[key]
        raise _Fail(f"cannot fetch {key!r} from {_go_type(container)}")

    def _eval_call(self, node: ast.Call) -> Any:
        # expr's all/any with a predicate: element by element, stopping at the first decisive one
        if (
            isinstance(node.func, ast.Name)
            and node.func.id in _PREDICATE_FUNCS
            and len(node.args) == 1
            and isinstance(node.args[0], ast.ListComp)
        ):
            comp = node.args[0]
            items = self._eval(comp.generators[0].iter)
            if not isinstance(items, list):
                raise _Fail(f"builtin {node.func.id} takes only array (got {_go_type(items)})")
            decisive = node.func.id == "any"
            outer = self.names.get(_ELEMENT, None)
            try:
                for item in items:
                    self.names[_ELEMENT] = item
                    got = self._eval(comp.elt)
                    if not isinstance(got, bool):
                        raise _Fail(f"predicate of {node.func.id} gave {_go_type(got)}, not bool")
                    if got is decisive:
                        return decisive
            finally:
                self.names[_ELEMENT] = outer
            return not decisive
        return super()._eval_call(node)

    def _eval_boolop(self, node: ast.BoolOp) -> bool:
        stop = isinstance(node.op, ast.Or)  # `or` stops at the first true, `and` at the first false
        for value in node.values:
            got = self._eval(value)
            if not isinstance(got, bool):
                sym = "||" if stop else "&&"
                raise _Fail(f"invalid operation: {sym} (mismatched type {_go_type(got)})")
            if got is stop:
                return stop
        return not stop


def _as_decoded(value: Any) -> Any:
    """Numbers as Argo's providers hand them to the evaluator: JSON numbers decode to float64."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, list):
        return [_as_decoded(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_decoded(v) for k, v in value.items()}
    return value


def _fold(node: ast.expr) -> ast.expr:
    """expr's optimizer on ``&&``/``||`` with a literal true or false, after the type check:
    ``x && true`` is ``x``, ``x && false`` is false, ``x || true`` is true, ``x || false`` is ``x``
    (so ``!(result.missing && false)`` is true, as in Argo)."""
    for field, value in ast.iter_fields(node):
        if isinstance(value, ast.expr):
            setattr(node, field, _fold(value))
        elif isinstance(value, list):
            setattr(node, field, [_fold(v) if isinstance(v, ast.expr) else v for v in value])
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        if isinstance(node.operand, ast.Constant) and isinstance(node.operand.value, bool):
            return ast.Constant(value=not node.operand.value)
        return node
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        left, right = node.left, node.comparators[0]
        if isinstance(left, ast.Constant) and isinstance(right, ast.Constant):  # expr folds constants
            try:
                return ast.Constant(value=_OPERATORS[type(node.ops[0])](left.value, right.value))
            except _Fail:
                return node
        return node
    if not isinstance(node, ast.BoolOp):
        return node
    is_and = isinstance(node.op, ast.And)
    acc = node.values[0]
    for right in node.values[1:]:
        acc = _fold_pair(acc, right, is_and)
    return acc


def _fold_pair(left: ast.expr, right: ast.expr, is_and: bool) -> ast.expr:
    lit = [
        x.value if isinstance(x, ast.Constant) and isinstance(x.value, bool) else None for x in (left, right)
    ]
    absorbing = not is_and  # false for &&, true for ||
    if absorbing in lit:
        return ast.Constant(value=absorbing)
    if lit[0] is not None:
        return right
    if lit[1] is not None:
        return left
    return ast.BoolOp(op=ast.And() if is_and else ast.Or(), values=[left, right])


def evaluate(condition: str, result: Any) -> bool:
    """Evaluate ``condition`` over ``result``; a non-boolean answer or a failure raises ``ConditionError``."""
    result = _as_decoded(result)
    tree = _parse(condition)
    _type_check(tree, result, condition)
    evaluator = _Evaluator(operators=_OPERATORS, names={"result": result}, functions=_functions(result))
    try:
        value = evaluator.eval(condition, previously_parsed=_fold(tree.body))
    except (_Fail, InvalidExpression, TypeError, ValueError, IndexError, KeyError, ZeroDivisionError) as exc:
        raise ConditionError(f"condition {condition!r} on {result!r}: {exc}") from exc
    except (OverflowError, RecursionError, MemoryError) as exc:
        raise ConditionError(f"condition {condition!r} on {result!r}: too large: {exc}") from exc
    if not isinstance(value, bool):
        raise ConditionError(
            f"condition {condition!r} on {result!r}: expected bool, but got {_go_type(value)}"
        )
    return value
