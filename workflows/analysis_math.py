"""Pure measurement-outcome math of canary analysis (Argo Rollouts' rules; table tests in tests/unit).

- One measurement: the conditions decide (``measurement_phase``). Failure wins; a missing condition is
  the negation of the other; neither met is Inconclusive; no conditions at all is Successful.
- One metric: counts against limits (``metric_phase``, Argo's ``assessMetricStatus``): consecutive
  errors > consecutiveErrorLimit -> Error, else inconclusive > inconclusiveLimit -> Inconclusive, else
  failed > failureLimit -> Failed (failureLimit -1 disables it), else planned count reached ->
  Successful, else Running. An Error measurement does not count towards ``count``: it is retried
  (``next_wait``) and only ends the metric through consecutiveErrorLimit.
- A run that is terminating (a sibling metric ended Failed, Error or Inconclusive, or the rollout
  stopped it) ends every metric still running as Successful (``metric_phase(..., terminating=True)``).
- History: the metric's activity returns (one history event) only when ``should_report`` says so; every
  other measurement is a heartbeat. Returns are bounded by the limits (see docs/analysis.md).
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

from workflows.model import MeasurementPhase, MetricCounts, MetricPhase, MetricSpec

__all__ = [
    "ERROR_RETRY_SECONDS",
    "TERMINAL",
    "activity_metric",
    "count_measurement",
    "format_value",
    "is_terminating",
    "is_worse",
    "limit_phase",
    "measurement_phase",
    "measured",
    "metric_phase",
    "next_wait",
    "outcome_message",
    "run_phase",
    "should_report",
    "worst",
]

ERROR_RETRY_SECONDS = 10.0  # Argo's DefaultErrorRetryInterval: an errored measurement is retried after this

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
    """The counts after one more measurement of ``phase`` (Argo's ``runMeasurements``).

    An Error does not count towards ``count`` (so it can never complete a metric); any other phase
    ends an error streak.
    """
    c = counts.model_copy()
    if phase == MeasurementPhase.ERROR:
        c.error += 1
        c.consecutive_error += 1
        return c
    c.count += 1
    c.consecutive_error = 0
    if phase == MeasurementPhase.SUCCESSFUL:
        c.successful += 1
    elif phase == MeasurementPhase.FAILED:
        c.failed += 1
    else:
        c.inconclusive += 1
    return c


def measured(counts: MetricCounts) -> int:
    """How many measurements were taken (counted ones and errors)."""
    return counts.count + counts.error


def limit_phase(metric: MetricSpec, counts: MetricCounts) -> MetricPhase | None:
    """The limit a metric is over, if any (Argo's ``assessMetricFailureInconclusiveOrError``).

    Argo checks failed, then inconclusive, then consecutive errors, the later one winning. Only
    failureLimit may be -1 (disabled); the parser refuses the others below 0, as Argo's validation
    does (the guards keep specs of older runs, where -1 meant disabled, as they were).
    """
    phase = None
    if metric.failure_limit >= 0 and counts.failed > metric.failure_limit:
        phase = MetricPhase.FAILED
    if metric.inconclusive_limit >= 0 and counts.inconclusive > metric.inconclusive_limit:
        phase = MetricPhase.INCONCLUSIVE
    if metric.consecutive_error_limit >= 0 and counts.consecutive_error > metric.consecutive_error_limit:
        phase = MetricPhase.ERROR
    return phase


def metric_phase(metric: MetricSpec, counts: MetricCounts, *, terminating: bool = False) -> MetricPhase:
    """The metric's phase after ``counts`` (Argo's ``assessMetricStatus``).

    ``terminating``: the run is stopping (a sibling ended, or the rollout stopped it); a metric that
    is over no limit then ends Successful, with or without measurements.
    """
    if measured(counts) == 0:
        return MetricPhase.SUCCESSFUL if terminating else MetricPhase.PENDING
    over = limit_phase(metric, counts)
    if over is not None:
        return over
    planned = metric.planned
    if planned and counts.count >= planned:
        return MetricPhase.SUCCESSFUL
    return MetricPhase.SUCCESSFUL if terminating else MetricPhase.RUNNING


def next_wait(metric: MetricSpec, phase: MeasurementPhase) -> float:
    """Seconds until the next measurement: the error retry interval after an Error, else the interval."""
    if phase == MeasurementPhase.ERROR:
        return ERROR_RETRY_SECONDS
    return metric.interval_seconds or 0


def activity_metric(metric: MetricSpec) -> MetricSpec:
    """The metric as its measuring activity gets it: one without ``interval`` is "count 1, interval =
    the error retry interval", so an Error (which does not count) is measured again after 10 s."""
    if metric.interval_seconds:
        return metric
    return metric.model_copy(update={"count": 1, "interval_seconds": ERROR_RETRY_SECONDS})


def should_report(metric: MetricSpec, before: MetricCounts, after: MetricCounts, phase: MetricPhase) -> bool:
    """Whether this measurement ends the activity (one history event) instead of a heartbeat.

    Reported: the first measurement, a terminal phase, and every failed or inconclusive measurement
    that counts towards an enabled limit (so the history alone explains a rollback). Successes and
    errors below the limit are heartbeats only, which keeps a long analysis at a constant history size.
    """
    if phase in TERMINAL or measured(before) == 0:
        return True
    if after.failed > before.failed and metric.failure_limit >= 0:
        return True
    return after.inconclusive > before.inconclusive and metric.inconclusive_limit >= 0


# Argo's analysisStatusOrder, best to worst.
_ORDER = (
    MetricPhase.SUCCESSFUL,
    MetricPhase.RUNNING,
    MetricPhase.PENDING,
    MetricPhase.INCONCLUSIVE,
    MetricPhase.ERROR,
    MetricPhase.FAILED,
)


def is_worse(current: MetricPhase, new: MetricPhase) -> bool:
    """Whether ``new`` is worse than ``current`` (Argo's ``IsWorse``)."""
    return _ORDER.index(new) > _ORDER.index(current)


def worst(left: MetricPhase, right: MetricPhase) -> MetricPhase:
    """The worse of two phases (Argo's ``Worst``)."""
    return right if is_worse(left, right) else left


def is_terminating(phases: list[MetricPhase]) -> bool:
    """A run stops measuring once a metric is Failed, Error or Inconclusive (Argo's ``IsTerminating``)."""
    return any(p in (MetricPhase.FAILED, MetricPhase.ERROR, MetricPhase.INCONCLUSIVE) for p in phases)


def run_phase(phases: list[MetricPhase], *, terminate: bool = False) -> MetricPhase:
    """An analysis run's phase from its metrics' (Argo's ``assessRunStatus``).

    The worst completed phase once every metric completed or the run is terminating (``terminate``: it
    was told to stop); a terminating run with nothing completed is Successful. Otherwise Running, or
    Pending while no metric has measured (Argo says Running there too).
    """
    done = [p for p in phases if p in TERMINAL]
    if terminate or is_terminating(phases) or (phases and len(done) == len(phases)):
        result = MetricPhase.SUCCESSFUL
        for p in done:
            result = worst(result, p)
        return result
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


def _number(x: float) -> str:
    """A float as Go's ``strconv.FormatFloat(x, 'f', -1, 64)`` (Prometheus' SampleValue.String)."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    text = format(Decimal(repr(float(x))), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_value(value: Any, *, limit: int = 200) -> str:
    """A measured value as Argo prints it: ``10``, ``0.5``, ``+Inf``, ``NaN``, a vector ``[10,11]``.

    A number or a list of numbers is printed like Argo's Prometheus provider; anything else (a web
    provider's JSON) as compact JSON. Long text is cut to ``limit`` characters.
    """
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        text = _number(float(value)) if isinstance(value, float) else str(value)
    elif isinstance(value, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        text = "[" + ",".join(format_value(v, limit=limit) for v in value) + "]"
    else:
        try:
            text = json.dumps(value, separators=(",", ":"), allow_nan=True)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
