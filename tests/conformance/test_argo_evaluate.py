"""argo-rollouts ``utils/evaluate/evaluate_test.go``, ported: conditions and measurement outcomes.

Upstream: github.com/argoproj/argo-rollouts v1.8.5 (module zip; the test files are identical to the
``release-1.8`` branch at f49f57137258cbe049d7db052c41a7ee362a6002). Inputs and expected outcomes are
upstream's; each test is named after the upstream test (and case). Go-internal helpers (``asInt``
panics, ``valueFromPointer``, ``Equal`` on string slices, ``EvalTime``) have no counterpart here; their
behaviour is covered through conditions. Differences we keep on purpose are asserted as ours with the
reason, and listed in docs/analysis.md "Where we differ from Argo, and why".
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from workflows.analysis_expr import check, evaluate
from workflows.analysis_math import measurement_phase
from workflows.errors import ConditionError
from workflows.model import MeasurementPhase as M


def evaluate_result(result: Any, success: str, failure: str) -> M:
    """Argo's ``EvaluateResult``: an error in either condition is an Error measurement."""
    try:
        s = evaluate(success, result) if success else None
        f = evaluate(failure, result) if failure else None
    except ConditionError:
        return M.ERROR
    return measurement_phase(s, f)


@pytest.mark.parametrize(
    ("name", "success", "failure", "want"),
    [
        ("TestEvaluateResultWithSuccess", "true", "false", M.SUCCESSFUL),
        ("TestEvaluateResultWithFailure", "true", "true", M.FAILED),
        ("TestEvaluateResultInconclusive", "false", "false", M.INCONCLUSIVE),
        ("TestEvaluateResultNoSuccessConditionAndNotFailing", "", "false", M.SUCCESSFUL),
        ("TestEvaluateResultNoFailureConditionAndNotSuccessful", "false", "", M.FAILED),
        ("TestEvaluateResultNoFailureConditionAndNoSuccessCondition", "", "", M.SUCCESSFUL),
    ],
)
def test_evaluate_result(name: str, success: str, failure: str, want: M) -> None:
    assert evaluate_result(True, success, failure) == want, name


@pytest.mark.parametrize(
    ("name", "success", "failure"),
    [
        ("TestEvaluateResultWithErrorOnSuccessCondition", "a == true", "true"),
        ("TestEvaluateResultWithErrorOnFailureCondition", "true", "a == true"),
    ],
)
def test_evaluate_result_error(name: str, success: str, failure: str) -> None:
    """Argo: Error at each measurement. Ours: the same at evaluation, and refused at `rollout start`
    already (``check``), because an unknown name can never evaluate (difference: earlier, same verdict)."""
    assert evaluate_result(True, success, failure) == M.ERROR, name
    with pytest.raises(ConditionError, match="unknown name 'a'"):
        check("a == true")


def test_evaluate_condition_with_success() -> None:  # TestEvaluateConditionWithSuccess
    assert evaluate("result == true", True) is True


def test_evaluate_condition_with_failure() -> None:  # TestEvaluateConditionWithFailure
    assert evaluate("result == false", True) is False


def test_error_with_non_bool_return() -> None:  # TestErrorWithNonBoolReturn
    with pytest.raises(ConditionError, match="expected bool, but got int"):
        evaluate("1", True)


def test_error_with_invalid_reference() -> None:  # TestErrorWithInvalidReference
    with pytest.raises(ConditionError, match="invalidVariable"):
        evaluate("invalidVariable", True)


def test_evaluate_array() -> None:
    """TestEvaluateArray: member access on JSON objects; ``.values`` is the key, not dict.values."""
    floats = {"service_apdex": {"label": None, "values": {"values": [2.0, 2.0]}}}
    cond = "all(result.service_apdex.values.values, {# > 1})"
    check(cond)
    assert evaluate(cond, floats) is True


def test_evaluate_in_operator() -> None:  # TestEvaluateInOperator
    assert evaluate("2 in result", [2.0, 2.0]) is True


def test_evaluate_float64() -> None:  # TestEvaluateFloat64
    assert evaluate("result > 1", 5.0) is True


def test_evaluate_invalid_struct() -> None:
    """TestEvaluateInvalidStruct: ``result.Name()`` is an error (Argo at evaluation, ours at start)."""
    with pytest.raises(ConditionError):
        check("result.Name() == 'hi'")
    with pytest.raises(ConditionError):
        evaluate("result.Name() == 'hi'", True)


def test_evaluate_as_int_panic() -> None:  # TestEvaluateAsIntPanic
    with pytest.raises(ConditionError):
        evaluate("asInt(result) == 1.1", "1.1")


@pytest.mark.parametrize(
    ("value", "cond"), [("1", "asInt(result) == 1"), (1, "asInt(result) == 1"), (1.123, "asInt(result) == 1")]
)
def test_evaluate_as_int(value: Any, cond: str) -> None:  # TestEvaluateAsInt
    assert evaluate(cond, value) is True


@pytest.mark.parametrize(
    ("value", "cond", "err"),
    [
        ("NotANum", "asFloat(result) == 1.1", r'strconv.ParseFloat: parsing "NotANum": invalid syntax'),
        ("1.1", 'asFloat(result) == "1.1"', r"invalid operation: == \(mismatched types"),
    ],
)
def test_evaluate_as_float_error(value: Any, cond: str, err: str) -> None:  # TestEvaluateAsFloatError
    with pytest.raises(ConditionError, match=err):
        evaluate(cond, value)


@pytest.mark.parametrize(
    ("value", "cond"),
    [
        ("1.1", "asFloat(result) == 1.1"),
        ("1.1", "asFloat(result) >= 1.1"),
        ("1.1", "asFloat(result) <= 1.1"),
        (1.1, "asFloat(result) == 1.1"),
        (1, "asFloat(result) == 1"),
        (1, "asFloat(result) >= 1"),
        (1, "asFloat(result) >= 1"),
    ],
)
def test_evaluate_as_float(value: Any, cond: str) -> None:  # TestEvaluateAsFloat
    assert evaluate(cond, value) is True


@pytest.mark.parametrize(("text", "ok"), [("1", True), ("notint", False), ("1.1", False)])
def test_as_int(text: str, ok: bool) -> None:  # TestAsInt (a panic is an Error measurement)
    if ok:
        assert evaluate("asInt(result) == 1", text) is True
    else:
        with pytest.raises(ConditionError):
            evaluate("asInt(result) == 1", text)


@pytest.mark.parametrize(("text", "want"), [("1", 1.0), ("notfloat", None), ("1.1", 1.1)])
def test_as_float(text: str, want: float | None) -> None:  # TestAsFloat
    if want is not None:
        assert evaluate(f"asFloat(result) == {want}", text) is True
    else:
        with pytest.raises(ConditionError):
            evaluate("asFloat(result) == 1", text)


def test_is_inf() -> None:  # TestIsInf
    assert evaluate("isInf(result)", math.inf) is True
    assert evaluate("isInf(result)", 0.0) is False


@pytest.mark.parametrize(
    ("value", "default", "want"), [(None, 0, 0), (None, 1, 1), (None, 2, 2), (1.0, 0, 1.0)]
)
def test_default_func(value: Any, default: int, want: float) -> None:  # TestDefaultFunc
    assert evaluate(f"default(result, {default}) == {want}", value) is True


@pytest.mark.parametrize(
    ("value", "want"), [(None, True), (1.0, False), (["hi", "hello"], False), (1, False), (False, False)]
)
def test_is_nil_func(value: Any, want: bool) -> None:  # TestIsNilFunc / TestIsNil
    assert evaluate("isNil(result)", value) is want


def test_is_nil_looks_at_result() -> None:
    """Argo's ``isNil(x)`` and ``default(x, d)`` ignore ``x`` and test ``result`` (evaluate.go); so do we."""
    assert evaluate("isNil(result.missing)", {"a": 1}) is False
    assert evaluate("default(result.missing, 5) == result", {"a": 1}) is True
