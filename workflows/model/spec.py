"""The rollout spec: the workflow input and its steps."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from workflows.model.analysis import AnalysisSpec
from workflows.model.base import Model
from workflows.model.ids import workflow_id_for
from workflows.model.traffic import StepTraffic, TrafficRoutingRef

__all__ = [
    "StepSpec",
    "RolloutTimings",
    "DEFAULT_PROGRESS_DEADLINE_SECONDS",
    "RolloutSpec",
]


class StepSpec(Model):
    """One canary step: how many pods run the new template, and how long to pause after it.

    Attributes:
        replicas: absolute pod count (int) or a percentage string like ``"50%"``.
        pause_seconds: ``None`` waits for ``approve``; a number is a timer that ``approve`` cuts short.
        traffic: the canary traffic weight / request matches once the step's batch is ready
            (needs ``RolloutSpec.traffic_routing``).
    """

    replicas: int | str
    pause_seconds: int | None = None
    traffic: StepTraffic | None = None
    analysis: list[str] = Field(
        default_factory=list, description="AnalysisTemplate names that must succeed before the step is done"
    )


class RolloutTimings(Model):
    """Durations that tests shorten; defaults suit a real cluster."""

    poll_interval_seconds: float = 0.5
    heartbeat_timeout_seconds: float = 10.0
    activity_timeout_seconds: float = 20.0
    notify_total_seconds: float = 60.0


DEFAULT_PROGRESS_DEADLINE_SECONDS = 600  # Kubernetes' progressDeadlineSeconds default


class RolloutSpec(Model):
    """Workflow input: what to roll out, where, and in which steps.

    The new pod template is never in the input: the starter writes it into the Deployment with its
    own Kubernetes credentials (held: paused, strategy parked) and the input carries a reference to
    that write, ``template_hash`` (``kube.objects.template_hash`` of the written template) and
    ``generation``. The worker rolls out only what the cluster holds and refuses when the cluster's
    template does not match the reference. ``template`` is kept so runs started before that still
    decode and replay; a new run whose input carries one is refused.

    ``progress_deadline_seconds``: a step whose canary makes no progress (no scale, no new ready pod)
    for this long fails; then the rollout is Failed (waiting for undo or ``--replace``) or, with
    ``auto_rollback``, rolls back by itself. Pauses do not count.
    """

    namespace: str
    name: str
    template: dict[str, Any] | None = Field(
        default=None, description="runs started before references only: the new pod template"
    )
    steps: list[StepSpec]
    failure_threshold: int | str | None = None
    stable_images: dict[str, str] = Field(default_factory=dict)
    canary_images: dict[str, str] = Field(default_factory=dict)
    use_search_attributes: bool = False
    requested_by: str = ""
    timings: RolloutTimings = Field(default_factory=RolloutTimings)
    traffic_routing: TrafficRoutingRef | None = None
    progress_deadline_seconds: int = DEFAULT_PROGRESS_DEADLINE_SECONDS
    auto_rollback: bool = False
    rollout_object: str = Field(
        default="",
        description="declarative mode: the Kruise Rollout (same namespace) whose status the run writes",
    )
    notify_urls: list[str] = Field(
        default_factory=list, description="older inputs: webhook URLs told about each event"
    )
    notify_targets: list[str] = Field(
        default_factory=list, description="names of the worker's notification targets told about each event"
    )
    analysis: list[AnalysisSpec] = Field(
        default_factory=list, description="background analysis: runs from analysis_from_step until completion"
    )
    analysis_from_step: int = 1
    step_analysis: list[AnalysisSpec] = Field(
        default_factory=list, description="templates that steps name in StepSpec.analysis"
    )
    template_hash: str = Field(
        default="", description="the reference: template_hash of the pod template the starter wrote"
    )
    generation: int = Field(default=0, description="the Deployment's metadata.generation after that write")
    cluster: str = Field(default="", description="a release target's cluster (kubeconfig context)")
    release_id: str = Field(default="", description="the release this rollout is a target of ('' none)")
    hold_until_released: bool = Field(
        default=False, description="at 100%: stay held (undo still possible) until the release ends"
    )

    @property
    def target(self) -> str:
        """``namespace/name`` of the Deployment."""
        return f"{self.namespace}/{self.name}"

    @property
    def workflow_id(self) -> str:
        """The workflow ID this spec runs under."""
        return workflow_id_for(self.namespace, self.name, self.cluster)
