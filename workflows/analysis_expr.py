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
The parts: ``analysis_syntax`` (expr syntax -> Python, ``check``), ``analysis_types`` (expr's type
check), ``analysis_values`` (run-time values, functions and operators); this module evaluates.
Pure: no I/O.
"""

from __future__ import annotations

import ast
from typing import Any

from simpleeval import EvalWithCompoundTypes, InvalidExpression

from workflows.analysis_syntax import check, parse_condition, translate
from workflows.analysis_types import type_check
from workflows.analysis_values import ELEMENT, OPERATORS, PREDICATE_FUNCS, Fail, functions, go_type
from workflows.errors import ConditionError

__all__ = ["check", "evaluate", "translate"]


class _Evaluator(EvalWithCompoundTypes):  # type: ignore[misc]
    """simpleeval with expr's member access and boolean operators."""

    def _eval_attribute(self, node: ast.Attribute) -> Any:
        # A member is a key of a JSON object, never a Python attribute (``.values`` is the key "values").
        if node.attr.startswith("_"):
            raise Fail(f"member {node.attr!r} is not allowed")
        container = self._eval(node.value)
        if isinstance(container, dict):
            return container.get(node.attr)
        raise Fail(f"cannot fetch {node.attr} from {go_type(container)}")

    def _eval_subscript(self, node: ast.Subscript) -> Any:
        container = self._eval(node.value)
        if isinstance(node.slice, ast.Slice):
            return super()._eval_subscript(node)
        key = self._eval(node.slice)
        if isinstance(container, dict):
            if not isinstance(key, str):
                raise Fail(f"cannot use {go_type(key)} as a map key")
            return container.get(key)
        if isinstance(container, list | str):
            if not isinstance(key, int) or isinstance(key, bool):
                raise Fail(f"non-integer index {key!r}")
            if not -len(container) <= key < len(container):
                raise Fail(f"index out of range: {key} (array length is {len(container)})")
            # a string (known only at run time) indexes to a byte, as in Go
            return container[key] if isinstance(container, list) else container.encode()[key]
        raise Fail(f"cannot fetch {key!r} from {go_type(container)}")

    def _eval_call(self, node: ast.Call) -> Any:
        # expr's all/any with a predicate: element by element, stopping at the first decisive one
        if (
            isinstance(node.func, ast.Name)
            and node.func.id in PREDICATE_FUNCS
            and len(node.args) == 1
            and isinstance(node.args[0], ast.ListComp)
        ):
            comp = node.args[0]
            items = self._eval(comp.generators[0].iter)
            if not isinstance(items, list):
                raise Fail(f"builtin {node.func.id} takes only array (got {go_type(items)})")
            decisive = node.func.id == "any"
            outer = self.names.get(ELEMENT, None)
            try:
                for item in items:
                    self.names[ELEMENT] = item
                    got = self._eval(comp.elt)
                    if not isinstance(got, bool):
                        raise Fail(f"predicate of {node.func.id} gave {go_type(got)}, not bool")
                    if got is decisive:
                        return decisive
            finally:
                self.names[ELEMENT] = outer
            return not decisive
        return super()._eval_call(node)

    def _eval_boolop(self, node: ast.BoolOp) -> bool:
        stop = isinstance(node.op, ast.Or)  # `or` stops at the first true, `and` at the first false
        for value in node.values:
            got = self._eval(value)
            if not isinstance(got, bool):
                sym = "||" if stop else "&&"
                raise Fail(f"invalid operation: {sym} (mismatched type {go_type(got)})")
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
                return ast.Constant(value=OPERATORS[type(node.ops[0])](left.value, right.value))
            except Fail:
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
    tree = parse_condition(condition)
    type_check(tree, result, condition)
    evaluator = _Evaluator(operators=OPERATORS, names={"result": result}, functions=functions(result))
    try:
        value = evaluator.eval(condition, previously_parsed=_fold(tree.body))
    except (Fail, InvalidExpression, TypeError, ValueError, IndexError, KeyError, ZeroDivisionError) as exc:
        raise ConditionError(f"condition {condition!r} on {result!r}: {exc}") from exc
    except (OverflowError, RecursionError, MemoryError) as exc:
        raise ConditionError(f"condition {condition!r} on {result!r}: too large: {exc}") from exc
    if not isinstance(value, bool):
        raise ConditionError(
            f"condition {condition!r} on {result!r}: expected bool, but got {go_type(value)}"
        )
    return value
