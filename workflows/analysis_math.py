"""Pure measurement-outcome math of canary analysis (Argo Rollouts' rules; table tests in tests/unit).

- One measurement: the conditions decide (``measurement_phase``). Failure wins; a missing condition is
  the negation of the other; neither met is Inconclusive; no conditions at all is Successful.
- One metric: counts against limits (``metric_phase``): failed > failureLimit -> Failed, consecutive
  errors > consecutiveErrorLimit -> Error, inconclusive > inconclusiveLimit -> Inconclusive, planned
  count reached -> Successful, else Running. A limit of -1 disables it.
- History: the metric's activity returns (one history event) only when ``should_report`` says so; every
  other measurement is a heartbeat. Returns are bounded by the limits (see docs/analysis.md).
"""

from __future__ import annotations

from workflows.model import MeasurementPhase, MetricCounts, MetricPhase, MetricSpec

__all__ = [
    "TERMINAL",
    "count_measurement",
    "measurement_phase",
    "metric_phase",
    "outcome_message",
    "run_phase",
    "should_report",
]

TERMINAL = frozenset(
    {MetricPhase.SUCCESSFUL, MetricPhase.FAILED, MetricPhase.INCONCLUSIVE, MetricPhase.ERROR}
)


def measurement_phase(success: bool | None, failure: bool | None) -> MeasurementPhase:
    """The phase of one measurement from its evaluated conditions (``None`` = condition not given)."""
    if success is None and failure is None:
        return MeasurementPhase.SUCCESSFUL
    if failure is None:
        failure = not success
    if success is None:
        success = not failure
    if failure:
        return MeasurementPhase.FAILED
    if not success:
        return MeasurementPhase.INCONCLUSIVE
    return MeasurementPhase.SUCCESSFUL


def count_measurement(counts: MetricCounts, phase: MeasurementPhase) -> MetricCounts:
    """The counts after one more measurement of ``phase`` (a success or failure ends an error streak)."""
    c = counts.model_copy()
    c.count += 1
    if phase == MeasurementPhase.ERROR:
        c.error += 1
        c.consecutive_error += 1
        return c
    c.consecutive_error = 0
    if phase == MeasurementPhase.SUCCESSFUL:
        c.successful += 1
    elif phase == MeasurementPhase.FAILED:
        c.failed += 1
    else:
        c.inconclusive += 1
    return c


def _over(value: int, limit: int) -> bool:
    return limit >= 0 and value > limit


def metric_phase(metric: MetricSpec, counts: MetricCounts) -> MetricPhase:
    """The metric's phase after ``counts`` (Argo's order: failed, error, inconclusive, count reached)."""
    if _over(counts.failed, metric.failure_limit):
        return MetricPhase.FAILED
    if _over(counts.consecutive_error, metric.consecutive_error_limit):
        return MetricPhase.ERROR
    if _over(counts.inconclusive, metric.inconclusive_limit):
        return MetricPhase.INCONCLUSIVE
    planned = metric.planned
    if planned and counts.count >= planned:
        return MetricPhase.SUCCESSFUL
    return MetricPhase.PENDING if counts.count == 0 else MetricPhase.RUNNING


def should_report(
    metric: MetricSpec, before: MetricCounts, after: MetricCounts, phase: MetricPhase
) -> bool:
    """Whether this measurement ends the activity (one history event) instead of a heartbeat.

    Reported: the first measurement, a terminal phase, and every failed or inconclusive measurement
    that counts towards an enabled limit (so the history alone explains a rollback). Successes and
    errors below the limit are heartbeats only, which keeps a long analysis at a constant history size.
    """
    if phase in TERMINAL or before.count == 0:
        return True
    if after.failed > before.failed and metric.failure_limit >= 0:
        return True
    return after.inconclusive > before.inconclusive and metric.inconclusive_limit >= 0


def run_phase(phases: list[MetricPhase]) -> MetricPhase:
    """An analysis run's phase from its metrics' (worst wins: Failed/Error, Inconclusive, Running)."""
    for worst in (MetricPhase.FAILED, MetricPhase.ERROR, MetricPhase.INCONCLUSIVE):
        if worst in phases:
            return worst
    if phases and all(p == MetricPhase.SUCCESSFUL for p in phases):
        return MetricPhase.SUCCESSFUL
    if any(p != MetricPhase.PENDING for p in phases):
        return MetricPhase.RUNNING
    return MetricPhase.PENDING


def outcome_message(
    metric: MetricSpec, phase: MetricPhase, counts: MetricCounts, value: str, note: str
) -> str:
    """The one line that says why a metric ended: metric, measured value, condition and limit."""
    if phase == MetricPhase.FAILED:
        cond = (
            f"failureCondition `{metric.failure_condition}`"
            if metric.failure_condition
            else f"successCondition `{metric.success_condition}` not met"
        )
        return (
            f"metric {metric.name} failed: measured {value or '(no value)'}, {cond}; "
            f"{counts.failed} failed > failureLimit {metric.failure_limit}"
        )
    if phase == MetricPhase.ERROR:
        return (
            f"metric {metric.name} errored {counts.consecutive_error} times in a row "
            f"> consecutiveErrorLimit {metric.consecutive_error_limit}: {note}"
        )
    if phase == MetricPhase.INCONCLUSIVE:
        return (
            f"metric {metric.name} inconclusive: measured {value or '(no value)'}, neither "
            f"successCondition `{metric.success_condition}` nor failureCondition "
            f"`{metric.failure_condition}` met; {counts.inconclusive} > inconclusiveLimit "
            f"{metric.inconclusive_limit}"
        )
    if phase == MetricPhase.SUCCESSFUL:
        return f"metric {metric.name} successful: {counts.successful} of {counts.count} measurements"
    return f"metric {metric.name}: last value {value}" if value else ""
