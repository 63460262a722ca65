"""Our condition evaluator against Argo Rollouts' own (``utils/evaluate``, through ``argo/bin/argo-probe``).

The probe decodes ``result`` from JSON as Argo's web provider does and answers with Argo's verdict:
true, false, or an error (an Error measurement). Ours must give the same verdict on every case: a
fixed corpus (the conditions of Argo's docs and tests, on typical provider values) and a generated one
(hypothesis: conditions from a small grammar over ``result``, results of every JSON shape). Where
we differ on purpose (docs/analysis.md, "Where we differ from Argo, and why") the case is listed in
``KEPT`` with the reason and asserted as ours.

Argo Rollouts version: argo/VERSION (v1.8.5; built by ``make argo``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.argo import ArgoProbe
from workflows.analysis_expr import evaluate
from workflows.errors import ConditionError


@pytest.fixture(scope="module")
def argo() -> Iterator[ArgoProbe]:
    probe = ArgoProbe()
    try:
        yield probe
    finally:
        probe.close()


def ours(condition: str, result: Any) -> bool | str:
    try:
        return evaluate(condition, result)
    except ConditionError as exc:
        return f"error: {exc}"


def same(a: bool | str, b: bool | str) -> bool:
    """The same verdict: the same boolean, or both errors (the texts differ)."""
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str)
    return a is b


WEB = {"ok": True, "data": {"rate": 0.01, "values": [1.0, 2.0], "name": "web"}, "count": 3, "label": None}
CORPUS: list[tuple[str, Any]] = [
    (c, r)
    for c in [
        "result < 0.05",
        "result[0] >= 0.99",
        "len(result) == 0",
        "len(result) == 0 || result[0] < 0.05",
        "isNaN(result)",
        "isInf(result)",
        "isNil(result)",
        "default(result, 0) < 1",
        "all(result, {# < 0.05})",
        "any(result, {# > 0.5})",
        "all(result, # < 0.05)",
        "result == true",
        "result.ok",
        "result.ok == true",
        "result.data.rate < 0.05",
        "result.data.values[1] == 2",
        "len(result.data.values) == 2",
        "result.missing == nil",
        "result.values == nil",
        "result.count > 2 && result.ok",
        'result.data.name == "web"',
        'result == "1.1"',
        'asFloat(result) == "1.1"',
        "asFloat(result) >= 1.1",
        "asInt(result) == 1",
        "result + 1 > 2",
        "result * 2 == 0.02",
        "result / 0 > 1",
        "result % 2 == 1",
        "result ** 2 < 1",
        "9 ** 4000000 > 1",
        "!result",
        "not (result < 1)",
        "result > 1 and result < 3",
        "2 in result",
        '"ok" in result',
        "result != nil",
        "result == nil",
        "1",
        "result",
        "result < 'a'",
        "result == result",
        "-result < 0",
        "result[-1] == 11",
        "result[5] == 1",
    ]
    for r in [0.01, 1.1, "1.1", 10, [10, 11], [], True, None, WEB, "text", [0.01, 0.02]]
]

# Verdicts we keep on purpose: (condition, result) -> why.
KEPT: dict[tuple[str, str], str] = {}


def test_fixed_corpus(argo: ArgoProbe) -> None:
    differ = []
    for condition, result in CORPUS:
        theirs, mine = argo.condition(condition, result), ours(condition, result)
        if not same(theirs, mine) and (condition, repr(result)) not in KEPT:
            differ.append(f"{condition!r} on {result!r}: argo {theirs!r}, ours {mine!r}")
    print(f"\n{len(CORPUS)} fixed cases compared with Argo {len(CORPUS) - len(differ)} agree")
    assert differ == [], "\n".join(differ)


json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 12),
    st.floats(-100, 100, allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "a", "1.1", "web", "10"]),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["ok", "rate", "values", "data", "keys"]), inner, max_size=3),
    ),
    max_leaves=6,
)
atom = st.sampled_from(
    [
        "result", "result.ok", "result.rate", "result.values", "result.keys", "result.data.rate",
        "result[0]", "result[1]", 'result["rate"]', "len(result)", "asFloat(result)", "asInt(result)",
        "default(result, 0)", "0", "1", "2.5", "-1", '"a"', '"1.1"', "true", "false", "nil",
    ]
)  # fmt: skip
comparison = st.builds(
    lambda a, op, b: f"{a} {op} {b}", atom, st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "in"]), atom
)
arith = st.builds(
    lambda a, op, b, cmp, c: f"{a} {op} {b} {cmp} {c}",
    atom,
    st.sampled_from(["+", "-", "*", "/", "%", "**"]),
    atom,
    st.sampled_from(["==", "<", ">"]),
    atom,
)
predicate = st.sampled_from(["isNaN(result)", "isInf(result)", "isNil(result)", "all(result, {# > 0})"])
clause = st.one_of(comparison, arith, predicate, atom)
condition = st.recursive(
    clause,
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"{a} && {b}", inner, inner),
        st.builds(lambda a, b: f"({a}) || ({b})", inner, inner),
        st.builds(lambda a: f"!({a})", inner),
    ),
    max_leaves=3,
)


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,  # the same 400 cases every run: `make test` must not depend on luck
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(cond=condition, result=json_value)
def test_generated_corpus(argo: ArgoProbe, cond: str, result: Any) -> None:
    theirs, mine = argo.condition(cond, result), ours(cond, result)
    assert same(theirs, mine), f"{cond!r} on {result!r}: argo {theirs!r}, ours {mine!r}"
