"""Edges of the analysis outcome math (``workflows/analysis_math.py``) beyond tests/unit/test_analysis.py:
the one-line outcome for every phase, limits at their boundaries, and what the counts keep."""

from __future__ import annotations

from typing import Any

import pytest

from workflows import analysis_math as am
from workflows.model import MeasurementPhase as M
from workflows.model import MetricCounts, MetricSpec
from workflows.model import MetricPhase as P

S, F, Q, E = M.SUCCESSFUL, M.FAILED, M.INCONCLUSIVE, M.ERROR


def _metric(**kw: Any) -> MetricSpec:
    return MetricSpec(name="rate", web={"url": "http://x"}, **kw)


def _counts(seq: list[M]) -> MetricCounts:
    c = MetricCounts()
    for phase in seq:
        c = am.count_measurement(c, phase)
    return c


@pytest.mark.parametrize(
    ("kw", "phase", "seq", "value", "note", "want"),
    [
        (
            {"success_condition": "result < 0.05", "failure_limit": 0},
            P.FAILED,
            [F],
            "0.5",
            "",
            "metric rate failed: measured 0.5, successCondition `result < 0.05` not met; "
            "1 failed > failureLimit 0",
        ),
        (
            {"success_condition": "result < 0.05", "failure_limit": 0},
            P.FAILED,
            [F],
            "",
            "",
            "metric rate failed: measured (no value), successCondition `result < 0.05` not met; "
            "1 failed > failureLimit 0",
        ),
        (
            {"consecutive_error_limit": 1},
            P.ERROR,
            [E, E],
            "",
            "GET http://x answered 500",
            "metric rate errored 2 times in a row > consecutiveErrorLimit 1: GET http://x answered 500",
        ),
        (
            {
                "success_condition": "result < 0.05",
                "failure_condition": "result > 0.2",
                "inconclusive_limit": 0,
            },
            P.INCONCLUSIVE,
            [Q],
            "0.1",
            "",
            "metric rate inconclusive: measured 0.1, neither successCondition `result < 0.05` nor "
            "failureCondition `result > 0.2` met; 1 > inconclusiveLimit 0",
        ),
        (
            {"success_condition": "result < 0.05", "inconclusive_limit": 0},
            P.INCONCLUSIVE,
            [Q],
            "",
            "",
            "metric rate inconclusive: measured (no value), neither successCondition `result < 0.05` nor "
            "failureCondition `` met; 1 > inconclusiveLimit 0",
        ),
        ({"count": 3}, P.SUCCESSFUL, [S, F, S], "0.01", "", "metric rate successful: 2 of 3 measurements"),
        ({}, P.RUNNING, [S], "0.01", "", "metric rate: last value 0.01"),
        ({}, P.RUNNING, [E], "", "timeout", ""),
        ({}, P.PENDING, [], "", "", ""),
    ],
)
def test_outcome_message_for_every_phase(
    kw: dict[str, Any], phase: P, seq: list[M], value: str, note: str, want: str
) -> None:
    assert am.outcome_message(_metric(**kw), phase, _counts(seq), value, note) == want


@pytest.mark.parametrize(
    ("kw", "seq", "want"),
    [
        # each limit: at the limit still running, one more is over it
        ({"interval_seconds": 1, "failure_limit": 2}, [F, F], P.RUNNING),
        ({"interval_seconds": 1, "failure_limit": 2}, [F, F, F], P.FAILED),
        ({"interval_seconds": 1, "consecutive_error_limit": 2}, [E, E], P.RUNNING),
        ({"interval_seconds": 1, "consecutive_error_limit": 2}, [E, E, E], P.ERROR),
        ({"interval_seconds": 1, "inconclusive_limit": 2}, [Q, Q], P.RUNNING),
        ({"interval_seconds": 1, "inconclusive_limit": 2}, [Q, Q, Q], P.INCONCLUSIVE),
        # -1 disables a limit
        ({"interval_seconds": 1, "consecutive_error_limit": -1}, [E] * 9, P.RUNNING),
        ({"interval_seconds": 1, "inconclusive_limit": -1}, [Q] * 9, P.RUNNING),
        # Argo's order: failed, then inconclusive, then consecutive errors, the later one winning
        ({"interval_seconds": 1, "consecutive_error_limit": 0, "inconclusive_limit": 0}, [Q, E], P.ERROR),
        ({"interval_seconds": 1, "failure_limit": 0, "inconclusive_limit": 0}, [Q, F], P.INCONCLUSIVE),
        # a failed or inconclusive measurement ends an error streak
        ({"interval_seconds": 1, "consecutive_error_limit": 1, "failure_limit": 5}, [E, F, E], P.RUNNING),
        (
            {"interval_seconds": 1, "consecutive_error_limit": 1, "inconclusive_limit": 5},
            [E, Q, E],
            P.RUNNING,
        ),
        # count reached with a limit over: the limit wins
        ({"interval_seconds": 1, "count": 2, "failure_limit": 0}, [S, F], P.FAILED),
        ({"interval_seconds": 1, "count": 2}, [S, S, S], P.SUCCESSFUL),
    ],
)
def test_metric_phase_at_the_limits(kw: dict[str, Any], seq: list[M], want: P) -> None:
    assert am.metric_phase(_metric(**kw), _counts(seq)) == want


def test_count_measurement_copies_and_counts_each_phase() -> None:
    before = MetricCounts(count=4, successful=1, failed=1, inconclusive=1, error=1, consecutive_error=1)
    for phase, field in ((S, "successful"), (F, "failed"), (Q, "inconclusive"), (E, "error")):
        after = am.count_measurement(before, phase)
        assert after is not before and before.count == 4, "the counts passed in are left alone"
        assert after.count == (4 if phase == E else 5), "an Error measurement does not count (Argo)"
        old, new = before.model_dump(by_alias=False), after.model_dump(by_alias=False)
        changed = {k for k, v in new.items() if v != old[k]} - {"count"}
        assert changed == {field, "consecutive_error"}, (phase, changed)
        assert after.consecutive_error == (2 if phase == E else 0)


@pytest.mark.parametrize(
    ("kw", "seq", "new", "want"),
    [
        ({"interval_seconds": 5, "inconclusive_limit": -1}, [S], Q, False),  # cannot count: heartbeat
        ({"interval_seconds": 5, "inconclusive_limit": 3}, [S, Q], Q, True),  # every one that counts
        ({"interval_seconds": 5, "failure_limit": 3}, [S, F], F, True),
        ({"interval_seconds": 5, "failure_limit": 3}, [S, F], S, False),
        ({"interval_seconds": 5, "failure_limit": 3}, [S, F], Q, True),  # inconclusiveLimit 0: terminal
        ({"interval_seconds": 5, "failure_limit": 0}, [], F, True),
    ],
)
def test_should_report_more(kw: dict[str, Any], seq: list[M], new: M, want: bool) -> None:
    metric = _metric(**kw)
    before = _counts(seq)
    after = am.count_measurement(before, new)
    assert am.should_report(metric, before, after, am.metric_phase(metric, after)) is want


@pytest.mark.parametrize(
    ("phases", "want"),
    [
        ([P.FAILED, P.ERROR], P.FAILED),  # failed is the worst
        ([P.ERROR, P.FAILED], P.FAILED),
        ([P.ERROR, P.INCONCLUSIVE], P.ERROR),
        ([P.INCONCLUSIVE, P.PENDING], P.INCONCLUSIVE),
        ([P.SUCCESSFUL], P.SUCCESSFUL),
        ([P.SUCCESSFUL, P.PENDING], P.RUNNING),
        ([P.PENDING], P.PENDING),
    ],
)
def test_run_phase_more(phases: list[P], want: P) -> None:
    assert am.run_phase(phases) == want


def test_terminal_phases() -> None:
    assert {P.SUCCESSFUL, P.FAILED, P.INCONCLUSIVE, P.ERROR} == am.TERMINAL
    assert P.RUNNING not in am.TERMINAL and P.PENDING not in am.TERMINAL


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (10.0, "10"),  # Go's FormatFloat(x, 'f', -1, 64), as Prometheus' SampleValue prints
        (0.5, "0.5"),
        (0.01, "0.01"),
        (-2.5, "-2.5"),
        (1e21, "1000000000000000000000"),
        (1.5e-7, "0.00000015"),
        (100.0, "100"),
        (7, "7"),
        (float("inf"), "+Inf"),
        (float("-inf"), "-Inf"),
        (float("nan"), "NaN"),
        (True, "true"),
        (False, "false"),
        ([10.0, 11.0], "[10,11]"),
        ([], "[]"),
        ([0.5, float("inf")], "[0.5,+Inf]"),
        ({"value": 0.01}, '{"value":0.01}'),
        ([{"a": 1}], '[{"a":1}]'),
        ("ok", '"ok"'),
        (12345678901234567891, "12345678901234567891"),  # an int is printed whole, never through a float
        ({}, "{}"),
        (["x", 10.0], '["x",10.0]'),  # not a vector: JSON as it is
        ({"a": 1, "b": 2}, '{"a":1,"b":2}'),
        ({"v": float("nan")}, '{"v":NaN}'),
        ({1}, "{1}"),  # not JSON at all: its repr
        ("x" * 300, '"' + "x" * 196 + "..."),
    ],
)
def test_format_value_as_argo_prints_it(value: Any, want: str) -> None:
    assert am.format_value(value) == want


def test_format_value_cuts_at_the_limit() -> None:
    assert am.format_value([1.0] * 50, limit=10) == "[1,1,1,..."
    assert am.format_value(12345, limit=3) == "..."
    assert am.format_value(12345, limit=5) == "12345"  # exactly at the limit: whole


def test_activity_metric_measures_an_error_again_after_the_retry_interval() -> None:
    """No interval: count 1 at the error retry interval (an Error does not count, so it is retried);
    with an interval the metric goes to its activity as it is."""
    bare = _metric()
    sent = am.activity_metric(bare)
    assert (sent.count, sent.interval_seconds) == (1, am.ERROR_RETRY_SECONDS)
    assert (bare.count, bare.interval_seconds) != (1, am.ERROR_RETRY_SECONDS), "the input is left alone"
    timed = _metric(interval_seconds=5, count=3)
    assert am.activity_metric(timed) is timed
