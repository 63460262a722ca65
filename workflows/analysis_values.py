"""Analysis conditions at run time, as Argo's expr sees values: Go's type names for messages, the builtin
functions (``len``, ``isNaN``, ``asInt``, ...) and the operators with expr's rules (``==`` deeply and of
one type, ``/`` a float division, ``**`` a float power, ``%`` on integers only).

Pure: no I/O (see ``analysis_expr``).
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from typing import Any

__all__ = [
    "ELEMENT",
    "FUNCTIONS",
    "OPERATORS",
    "PREDICATE_FUNCS",
    "Fail",
    "functions",
    "go_type",
    "is_number",
]

ELEMENT = "it_"
PREDICATE_FUNCS = ("all", "any")


class Fail(Exception):
    """A condition that cannot be evaluated on this value (becomes ``ConditionError``)."""


def is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


_GO_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "bool"),
    (int, "int"),
    (float, "float64"),
    (str, "string"),
    (list, "[]interface {}"),
    (dict, "map[string]interface {}"),
)


def go_type(x: Any) -> str:
    """The Go type name Argo's evaluator would see for a JSON-decoded value (for messages)."""
    if x is None:
        return "nil"
    # bool before int: a Python bool is an int
    return next((name for t, name in _GO_TYPES if isinstance(x, t)), type(x).__name__)


def _is_nan(x: Any) -> bool:
    if not is_number(x):
        raise Fail(f"isNaN() wants a number, got {go_type(x)}")
    return isinstance(x, float) and math.isnan(x)


def _is_inf(x: Any) -> bool:
    if not is_number(x):
        raise Fail(f"isInf() wants a number, got {go_type(x)}")
    return isinstance(x, float) and math.isinf(x)


def _as_int(x: Any) -> int:
    if isinstance(x, str):
        if not re.fullmatch(r"[+-]?\d+", x):
            raise Fail(f'strconv.ParseInt: parsing "{x}": invalid syntax')
        return int(x)
    if not is_number(x):
        raise Fail(f"asInt() not supported on {go_type(x)} {x}")
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        raise Fail(f"asInt() not supported on {x}")
    return int(x)


def _as_float(x: Any) -> float:
    if isinstance(x, str):
        try:
            return float(x)
        except ValueError:
            raise Fail(f'strconv.ParseFloat: parsing "{x}": invalid syntax') from None
    if not is_number(x):
        raise Fail(f"asFloat() not supported on {go_type(x)} {x}")
    return float(x)


def _len(x: Any) -> int:
    if not isinstance(x, str | list | dict):
        raise Fail(f"invalid argument for len (type {go_type(x)})")
    return len(x)


def _numeric(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        values = args[0] if len(args) == 1 and isinstance(args[0], list) else args
        if not values or not all(is_number(v) for v in values):
            raise Fail(f"{name}() wants numbers")
        return fn(*values) if len(args) > 1 or not isinstance(args[0], list) else fn(values)

    return call


def _bools(name: str, fn: Callable[..., bool]) -> Callable[..., bool]:
    def call(values: Any) -> bool:
        if not isinstance(values, list) or not all(isinstance(v, bool) for v in values):
            raise Fail(f"{name}() wants a list and a predicate that is true or false")
        return fn(values)

    return call


def functions(result: Any) -> dict[str, Any]:
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


FUNCTIONS: dict[str, Any] = functions(None)


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
    if is_number(a) and is_number(b):
        return bool(a == b)
    return _deep_equal(a, b)


def _order(op: Callable[[Any, Any], bool], sym: str) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        if (is_number(a) and is_number(b)) or (isinstance(a, str) and isinstance(b, str)):
            return op(a, b)
        raise Fail(f"invalid operation: {sym} (mismatched types {go_type(a)} and {go_type(b)})")

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
            raise Fail(f"cannot use {go_type(item)} as type string in map key")
        return item in container
    raise Fail(f"invalid operation: in (mismatched types {go_type(item)} and {go_type(container)})")


def _arith(op: Callable[[Any, Any], Any], sym: str) -> Callable[[Any, Any], Any]:
    def apply(a: Any, b: Any) -> Any:
        if is_number(a) and is_number(b):
            return op(a, b)
        if sym == "+" and isinstance(a, str) and isinstance(b, str):
            return a + b
        raise Fail(f"invalid operation: {sym} (mismatched types {go_type(a)} and {go_type(b)})")

    return apply


def _divide(a: Any, b: Any) -> float:
    if not (is_number(a) and is_number(b)):
        raise Fail(f"invalid operation: / (mismatched types {go_type(a)} and {go_type(b)})")
    if b == 0:  # Go float64 division
        return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a) * math.copysign(1, b)
    return float(a) / float(b)


def _modulo(a: Any, b: Any) -> int:
    if not (isinstance(a, int) and isinstance(b, int)) or isinstance(a, bool) or isinstance(b, bool):
        raise Fail(f"invalid operation: % (mismatched types {go_type(a)} and {go_type(b)})")
    if b == 0:
        raise Fail("integer divide by zero")
    return int(math.fmod(a, b))  # Go's sign rule


def _power(a: Any, b: Any) -> float:
    """Go's math.Pow: a float, never an exact big integer (so ``9**4000000`` is +Inf at once)."""
    if not (is_number(a) and is_number(b)):
        raise Fail(f"invalid operation: ** (mismatched types {go_type(a)} and {go_type(b)})")
    try:
        return math.pow(float(a), float(b))
    except OverflowError:
        return math.inf if float(a) > 0 or float(b) % 2 == 0 else -math.inf
    except ValueError:
        return math.nan


def _negate(a: Any) -> Any:
    if not is_number(a):
        raise Fail(f"invalid operation: - (mismatched type {go_type(a)})")
    return -a


def _plus(a: Any) -> Any:
    if not is_number(a):
        raise Fail(f"invalid operation: + (mismatched type {go_type(a)})")
    return a


def _not(a: Any) -> bool:
    if not isinstance(a, bool):
        raise Fail(f"invalid operation: ! (mismatched type {go_type(a)})")
    return not a


OPERATORS: dict[type, Callable[..., Any]] = {
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
