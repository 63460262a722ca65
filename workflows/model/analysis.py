"""Canary analysis payloads: an Argo AnalysisTemplate as the workflow runs it, a metric run's input and
report, and the ``analysis`` section of the status."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from workflows.model.base import Model

__all__ = [
    "ARG_LATEST",
    "ARG_STABLE",
    "MeasurementPhase",
    "MetricPhase",
    "PrometheusProvider",
    "SecretKeyRef",
    "WebHeader",
    "WebProvider",
    "AnalysisArg",
    "MetricSpec",
    "AnalysisSpec",
    "MetricCounts",
    "MetricRunInput",
    "MetricReport",
    "MetricStatus",
    "AnalysisRunStatus",
    "AnalysisStatus",
]


# A user's template is read by ``analysis_parse`` into ``AnalysisSpec`` (one per template) made of
# ``MetricSpec``; the workflow runs each metric as one heartbeating activity that returns a
# ``MetricReport`` only when something worth recording happens (``analysis_math.should_report``).
# ``MetricCounts`` travels both ways so a restarted activity continues the counts. ``AnalysisStatus``
# is the ``analysis`` section of the status.

ARG_LATEST = "Latest"
ARG_STABLE = "Stable"


class MeasurementPhase(StrEnum):
    """The outcome of one measurement (Argo's names)."""

    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"


class MetricPhase(StrEnum):
    """A metric's (and an analysis run's) phase (Argo's names)."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"


class PrometheusProvider(Model):
    """``provider.prometheus``: an instant query against the HTTP API."""

    address: str
    query: str
    timeout: int = Field(default=30, description="seconds")


class SecretKeyRef(Model):
    """``valueFrom.secretKeyRef`` of an analysis arg: a key of a Secret in the rollout's namespace."""

    name: str
    key: str


class WebHeader(Model):
    """One request header of the web provider.

    ``secrets``: args of the value that come from a Secret. Their ``{{args.x}}`` stays in ``value``
    through the workflow (its history never holds the secret); the worker reads the Secret and fills
    it in when it measures.
    """

    key: str
    value: str
    secrets: dict[str, SecretKeyRef] = Field(default_factory=dict)


class WebProvider(Model):
    """``provider.web``: an HTTP request; ``json_path`` picks the result out of the JSON body."""

    url: str
    method: str = "GET"
    headers: list[WebHeader] = Field(default_factory=list)
    body: str = ""
    json_path: str = ""
    timeout_seconds: int = 10


class AnalysisArg(Model):
    """``args[]``: a literal value, or the pod-template-hash of the canary (Latest) or stable (Stable)."""

    name: str
    value: str | None = None
    pod_template_hash: str | None = Field(default=None, description="Latest or Stable")
    secret_key_ref: SecretKeyRef | None = Field(default=None, description="only for web header values")


class MetricSpec(Model):
    """One metric of a template, with Argo's defaults (limits: -1 disables that limit)."""

    name: str
    interval_seconds: float | None = None
    initial_delay_seconds: float = 0
    count: int | None = None
    success_condition: str = ""
    failure_condition: str = ""
    failure_limit: int = 0
    inconclusive_limit: int = 0
    consecutive_error_limit: int = 4
    prometheus: PrometheusProvider | None = None
    web: WebProvider | None = None

    @property
    def planned(self) -> int:
        """How many measurements end the metric (0 = until the rollout completes)."""
        if self.count is not None:
            return self.count
        return 0 if self.interval_seconds else 1


class AnalysisSpec(Model):
    """One AnalysisTemplate as the workflow runs it (``{{args.x}}`` still in the text)."""

    name: str
    source: str = Field(default="", description="the file it came from (for messages)")
    args: list[AnalysisArg] = Field(default_factory=list)
    metrics: list[MetricSpec]


class MetricCounts(Model):
    """Measurement counts of one metric run (Argo's field names)."""

    count: int = 0
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    error: int = 0
    consecutive_error: int = 0


class MetricRunInput(Model):
    """Input of the ``run_metric`` activity: the metric with args substituted, and the counts so far."""

    run: str = Field(description="analysis run name: background-<template> or step<N>-<template>")
    metric: MetricSpec
    counts: MetricCounts = Field(default_factory=MetricCounts)
    started: bool = Field(default=False, description="true after the first measurement (no initialDelay)")
    heartbeat_seconds: float = 5.0


class MetricReport(Model):
    """Result of ``run_metric`` (and its heartbeat details): the last measurement and the counts."""

    phase: MetricPhase
    counts: MetricCounts
    run: str = ""
    metric: str = ""
    measurement: MeasurementPhase | None = None
    value: str = Field(default="", description="the measured value as text (JSON for lists)")
    message: str = Field(default="", description="error text, or which condition decided")
    at: datetime | None = None


class MetricStatus(Model):
    """One metric in ``rollout status``."""

    name: str
    phase: MetricPhase = MetricPhase.PENDING
    value: str = ""
    message: str = ""
    counts: MetricCounts = Field(default_factory=MetricCounts)
    measured_at: datetime | None = None


class AnalysisRunStatus(Model):
    """One analysis run (a template, background or at a step)."""

    name: str
    template: str
    step: int | None = Field(default=None, description="None for background analysis")
    phase: MetricPhase = MetricPhase.PENDING
    message: str = ""
    metrics: list[MetricStatus] = Field(default_factory=list)


class AnalysisStatus(Model):
    """The ``analysis`` section of the status."""

    runs: list[AnalysisRunStatus] = Field(default_factory=list)

    def describe(self) -> list[str]:
        """One short line per metric (live view, UI details)."""
        lines = []
        for run in self.runs:
            for m in run.metrics:
                c = m.counts
                counts = ",".join(
                    f"{sym} {n}"
                    for sym, n in (
                        ("✔", c.successful),
                        ("✖", c.failed),
                        ("?", c.inconclusive),
                        ("⚠", c.error),
                    )
                    if n
                )
                lines.append(
                    f"{run.name}/{m.name}: {m.phase.value}"
                    + (f" value {m.value}" if m.value else "")
                    + (f" ({counts})" if counts else "")
                )
        return lines
