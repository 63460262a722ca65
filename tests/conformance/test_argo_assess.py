"""argo-rollouts ``analysis/analysis_test.go`` and ``utils/analysis/helpers_test.go``, ported: how
measurements are counted, how a metric and a run are assessed (limits, count, precedence,
termination), and when the next measurement is due.

Upstream: github.com/argoproj/argo-rollouts v1.8.5 (test files identical to ``release-1.8`` at
f49f57137258cbe049d7db052c41a7ee362a6002). An Argo ``MetricResult`` is our ``MetricCounts``
(``count``, ``successful``, ``failed``, ``inconclusive``, ``error``, ``consecutive_error``); "has
measurements" is ``count + error > 0``. Cases about dry-run metrics, ``consecutiveSuccessLimit``,
Job providers, secrets, TTL and measurement retention are not ported: those fields are refused by
our parser (docs/analysis.md, "Supported subset").
"""

from __future__ import annotations

from typing import Any

import pytest

from workflows import analysis_math as am
from workflows.model import MeasurementPhase as M
from workflows.model import MetricCounts, MetricSpec
from workflows.model import MetricPhase as P


def metric(**kw: Any) -> MetricSpec:
    return MetricSpec(name="success-rate", web={"url": "http://x"}, **kw)


def counts(**kw: int) -> MetricCounts:
    return MetricCounts(**kw)


# -- assessMetricStatus -----------------------------------------------------------------------------


def test_assess_metric_status_no_measurements() -> None:  # TestAssessMetricStatusNoMeasurements
    assert am.metric_phase(metric(), counts()) == P.PENDING
    assert am.metric_phase(metric(), counts(), terminating=True) == P.SUCCESSFUL


@pytest.mark.parametrize(
    ("limit", "terminating", "want"),
    [(2, False, P.FAILED), (2, True, P.FAILED), (3, False, P.RUNNING), (3, True, P.SUCCESSFUL)],
)
def test_assess_metric_status_failure_limit(limit: int, terminating: bool, want: P) -> None:
    """TestAssessMetricStatusFailureLimit: failed 3 against failureLimit 2, then 3 (interval 60s)."""
    m = metric(failure_limit=limit, interval_seconds=60)
    assert am.metric_phase(m, counts(failed=3, count=3), terminating=terminating) == want


@pytest.mark.parametrize(
    ("limit", "terminating", "want"),
    [(2, False, P.INCONCLUSIVE), (2, True, P.INCONCLUSIVE), (3, False, P.RUNNING), (3, True, P.SUCCESSFUL)],
)
def test_assess_metric_status_inconclusive_limit(limit: int, terminating: bool, want: P) -> None:
    """TestAssessMetricStatusInconclusiveLimit."""
    m = metric(inconclusive_limit=limit, interval_seconds=60)
    assert am.metric_phase(m, counts(inconclusive=3, count=3), terminating=terminating) == want


@pytest.mark.parametrize(
    ("consecutive", "terminating", "want"),
    [(5, False, P.ERROR), (5, True, P.ERROR), (4, True, P.SUCCESSFUL), (4, False, P.RUNNING)],
)
def test_assess_metric_status_consecutive_errors(consecutive: int, terminating: bool, want: P) -> None:
    """TestAssessMetricStatusConsecutiveErrors (default consecutiveErrorLimit 4, interval 60s)."""
    c = counts(consecutive_error=consecutive, count=5)
    assert am.metric_phase(metric(interval_seconds=60), c, terminating=terminating) == want


def test_assess_metric_status_count_reached() -> None:  # TestAssessMetricStatusCountReached
    m = metric(count=10)
    assert am.metric_phase(m, counts(successful=10, count=10)) == P.SUCCESSFUL
    assert am.metric_phase(m, counts(successful=5, inconclusive=5, count=10)) == P.INCONCLUSIVE


@pytest.mark.parametrize(
    ("case", "c", "want", "message"),
    [
        ("failed", counts(failed=1, count=1), P.FAILED, "failed (1) > failureLimit (0)"),
        (
            "inconclusive",
            counts(inconclusive=1, count=1),
            P.INCONCLUSIVE,
            "inconclusive (1) > inconclusiveLimit (0)",
        ),
        (
            "error",
            counts(consecutive_error=5, error=5),
            P.ERROR,
            "consecutiveErrors (5) > consecutiveErrorLimit (4)",
        ),
    ],
)
def test_assess_metric_failure_inconclusive_or_error(
    case: str, c: MetricCounts, want: P, message: str
) -> None:
    """TestAssessMetricFailureInconclusiveOrError: the limit's phase, also when terminating.

    Argo's message names the limit; ours is a sentence with the same numbers (``outcome_message``).
    """
    m = metric()
    assert am.limit_phase(m, c) == want, case
    assert am.metric_phase(m, c, terminating=True) == want
    ours = am.outcome_message(m, want, c, "1", "boom")
    numbers = [n for n in message.replace("(", " ").replace(")", " ").split() if n.isdigit()]
    assert all(n in ours for n in numbers), (ours, message)


def test_limit_precedence_as_argo() -> None:
    """assessMetricFailureInconclusiveOrError checks failed, inconclusive, errors; the later one wins."""
    m = metric(interval_seconds=60)
    assert am.limit_phase(m, counts(failed=1, inconclusive=1, count=2)) == P.INCONCLUSIVE
    assert am.limit_phase(m, counts(failed=1, consecutive_error=5, count=1, error=5)) == P.ERROR
    assert am.limit_phase(m, counts(inconclusive=1, consecutive_error=5, count=1, error=5)) == P.ERROR


# -- runMeasurements counting ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phase", "want"),
    [
        # TestRunMeasurementsResetConsecutiveErrorCounter: (consecutiveError, error, count) after one more
        (M.ERROR, (5, 5, 4)),
        (M.SUCCESSFUL, (0, 4, 5)),
        (M.INCONCLUSIVE, (0, 4, 5)),
        (M.FAILED, (0, 4, 5)),
    ],
)
def test_run_measurements_reset_consecutive_error_counter(phase: M, want: tuple[int, int, int]) -> None:
    after = am.count_measurement(counts(consecutive_error=4, count=4, error=4), phase)
    assert (after.consecutive_error, after.error, after.count) == want


# -- generateMetricTasks / calculateNextReconcileTime ----------------------------------------------------


def test_generate_metric_tasks_no_interval_or_count() -> None:
    """TestGenerateMetricTasksNoIntervalOrCount: one counted measurement completes the metric."""
    assert am.metric_phase(metric(), counts(count=1, successful=1)) == P.SUCCESSFUL


@pytest.mark.parametrize("interval", [None, 300.0])
def test_generate_metric_tasks_error(interval: float | None) -> None:
    """TestGenerateMetricTasksError / TestCalculateNextReconcileUponError: after an Error the metric is
    not done (with or without interval) and is measured again after the error retry interval (10 s).

    Difference kept: the retry interval applies to metrics without ``interval`` only; a metric with an
    interval retries an Error at its interval (``next_wait`` has Argo's rule; the measuring activity
    uses the interval, docs/analysis.md)."""
    m = metric(interval_seconds=interval)
    after = am.count_measurement(counts(), M.ERROR)
    assert am.metric_phase(m, after) == P.RUNNING
    assert am.next_wait(m, M.ERROR) == 10.0 == am.ERROR_RETRY_SECONDS
    assert am.next_wait(m, M.SUCCESSFUL) == (interval or 0)


# -- assessRunStatus and the helpers --------------------------------------------------------------------


def test_assess_run_status() -> None:  # TestAssessRunStatus
    assert am.run_phase([P.SUCCESSFUL, P.RUNNING]) == P.RUNNING
    assert am.run_phase([P.SUCCESSFUL, P.FAILED]) == P.FAILED


def test_assess_run_status_update_result() -> None:
    """TestAssessRunStatusUpdateResult: a metric with count 1, failed 1 flips to Failed; the run,
    terminating, takes the worst completed phase (Argo's run stays Running for one more reconcile while
    the in-flight Job measurement is terminated; ours has no in-flight measurement to wait for)."""
    failed = am.metric_phase(metric(), counts(count=1, failed=1))
    assert failed == P.FAILED
    assert am.run_phase([P.RUNNING, failed]) == P.FAILED


@pytest.mark.parametrize("ended", [P.FAILED, P.INCONCLUSIVE, P.ERROR])
def test_reconcile_analysis_run_terminate_sibling_after_fail(ended: P) -> None:
    """TestReconcileAnalysisRunTerminateSiblingAfterFail: a sibling still running ends Successful and
    the run takes the ended metric's phase."""
    assert am.is_terminating([P.RUNNING, ended])
    sibling = am.metric_phase(metric(interval_seconds=60), counts(count=1, successful=1), terminating=True)
    assert sibling == P.SUCCESSFUL
    assert am.run_phase([sibling, ended]) == ended


def test_is_worst() -> None:  # TestIsWorst
    S, Q, E, F = P.SUCCESSFUL, P.INCONCLUSIVE, P.ERROR, P.FAILED
    table = {
        (S, S): False, (S, Q): True, (S, E): True, (S, F): True,
        (Q, S): False, (Q, Q): False, (Q, E): True, (Q, F): True,
        (E, E): False, (E, S): False, (E, Q): False, (E, F): True,
        (F, S): False, (F, Q): False, (F, E): False, (F, F): False,
    }  # fmt: skip
    for (current, new), want in table.items():
        assert am.is_worse(current, new) is want, (current, new)


def test_worst() -> None:  # TestWorst
    assert am.worst(P.SUCCESSFUL, P.FAILED) == P.FAILED
    assert am.worst(P.FAILED, P.SUCCESSFUL) == P.FAILED


def test_is_fast_fail_terminating() -> None:
    """TestIsFastFailTerminating / TestIsTerminating (the dry-run rows are not ported: dryRun is refused)."""
    phases = [P.RUNNING, P.RUNNING, P.RUNNING]
    assert not am.is_terminating(phases)
    for ended in (P.ERROR, P.FAILED, P.INCONCLUSIVE):
        assert am.is_terminating([P.RUNNING, ended, P.RUNNING])
    assert not am.is_terminating([])


def test_terminate_analysis_run() -> None:
    """TestTerminateAnalysisRun: a run told to stop before any measurement is Successful."""
    assert am.run_phase([P.PENDING, P.PENDING], terminate=True) == P.SUCCESSFUL


def test_unsafe_error_then_count() -> None:
    """Issue 22's unsafe case, with Argo's counting: count 3, Error, Error, Success is still Running."""
    m = metric(interval_seconds=1, count=3)
    c = counts()
    for phase in (M.ERROR, M.ERROR, M.SUCCESSFUL):
        c = am.count_measurement(c, phase)
    assert am.metric_phase(m, c) == P.RUNNING
    single = am.count_measurement(counts(), M.ERROR)
    assert am.metric_phase(metric(), single) == P.RUNNING  # never Successful from an Error
