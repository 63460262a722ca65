"""Every value that crosses a boundary: workflow input/output, signals, activity payloads, status.

One pydantic module, imported by the workflow, the activities, the CLI and the tests. All models
serialise with camelCase keys (``currentStepIndex``) and accept either camelCase or snake_case on
input, so the same JSON works from the CLI, ``temporal workflow signal`` and the Temporal UI.
Field names are part of the replay contract: renaming one breaks committed histories.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from temporalio.common import SearchAttributeKey

from kube.names import (
    ANN_HANDING_BACK,
    ANN_IN_PROGRESS,
    ANN_ORIGINAL_STRATEGY,
    ANN_WORKFLOW_ID,
    ANNOTATION_PREFIX,
    CANARY_SUFFIX,
    LABEL_STABLE_REVISION,
    LABEL_WORKLOAD_TYPE,
)

__all__ = [
    "ARG_LATEST",
    "ARG_STABLE",
    "AnalysisArg",
    "AnalysisRunStatus",
    "AnalysisSpec",
    "AnalysisStatus",
    "MeasurementPhase",
    "MetricCounts",
    "MetricPhase",
    "MetricReport",
    "MetricRunInput",
    "MetricSpec",
    "MetricStatus",
    "PrometheusProvider",
    "WebHeader",
    "WebProvider",
    "ANNOTATION_PREFIX",
    "ANN_HANDING_BACK",
    "ANN_IN_PROGRESS",
    "LABEL_WORKLOAD_TYPE",
    "ANN_ORIGINAL_STRATEGY",
    "ANN_WORKFLOW_ID",
    "LABEL_STABLE_REVISION",
    "TASK_QUEUE",
    "MEMO_STATUS",
    "PATCH_OUTCOMES",
    "UNDO_REASON_PREFIX",
    "undo_cancel_reason",
    "undo_from_cancel",
    "WORKFLOW_TYPE",
    "SA_TARGET",
    "SA_PHASE",
    "SA_STEP",
    "SA_TARGET_KEY",
    "SA_PHASE_KEY",
    "SA_STEP_KEY",
    "DEFAULT_PROGRESS_DEADLINE_SECONDS",
    "Approval",
    "ApproveSignal",
    "ControlAction",
    "ControlSignal",
    "DeliverInput",
    "Notification",
    "NotifyEvent",
    "ConvergeInput",
    "ConvergeResult",
    "DeploymentChange",
    "DeploymentRef",
    "FinalizeInput",
    "Model",
    "PauseSignal",
    "Phase",
    "Reason",
    "ReplicaSetCounts",
    "RetargetInput",
    "RolloutObjectStatusInput",
    "RolloutSpec",
    "RolloutStatus",
    "RolloutTimings",
    "ScaleInput",
    "Snapshot",
    "StepMoveInput",
    "StepMoveResult",
    "SnapshotInput",
    "StepSpec",
    "StepState",
    "TakeoverInput",
    "TakeoverResult",
    "UndoSignal",
    "WaitInput",
    "WatchInput",
    "WaitingFor",
    "WatchResult",
    "WORKFLOW_ID_PREFIX",
    "legacy_workflow_id",
    "target_of_workflow_id",
    "workflow_id_for",
]

# --- identity and Kubernetes metadata keys (our own prefix; never Kruise's) -------------------------

# (defined in kube.names; re-exported here because workflow inputs and the CLI speak of them)

TASK_QUEUE = "rollouts"
WORKFLOW_TYPE = "Rollout"

# Custom search attribute names (registered on the server; see connect.ensure_search_attributes).
SA_TARGET = "RolloutTarget"
SA_PHASE = "RolloutPhase"
SA_STEP = "RolloutStep"
SA_TARGET_KEY = SearchAttributeKey.for_keyword(SA_TARGET)
SA_PHASE_KEY = SearchAttributeKey.for_keyword(SA_PHASE)
SA_STEP_KEY = SearchAttributeKey.for_int(SA_STEP)


WORKFLOW_ID_PREFIX = "rollout"


def workflow_id_for(namespace: str, name: str, cluster: str = "") -> str:
    """Return the one workflow ID a Deployment's new rollouts run under: ``rollout/<namespace>/<name>``,
    or ``rollout/<cluster>/<namespace>/<name>`` in a named cluster (a release target).

    ``/`` cannot occur in a namespace or Deployment name, so no two targets share an ID (the older
    ``rollout-<namespace>-<name>`` made ``shop``/``prod-web`` and ``shop-prod``/``web`` one ID); the
    segment count tells the default-cluster and named-cluster forms apart.
    """
    if cluster:
        return f"{WORKFLOW_ID_PREFIX}/{cluster}/{namespace}/{name}"
    return f"{WORKFLOW_ID_PREFIX}/{namespace}/{name}"


def legacy_workflow_id(namespace: str, name: str) -> str:
    """The ID of rollouts started before ``workflow_id_for``: ambiguous, so found only with a target check."""
    return f"{WORKFLOW_ID_PREFIX}-{namespace}-{name}"


def target_of_workflow_id(workflow_id: str) -> tuple[str, str] | None:
    """``(namespace, name)`` of a ``workflow_id_for`` ID, ``None`` for any other (legacy) form."""
    parts = workflow_id.split("/")
    if len(parts) == 4 and all(parts[1:]):  # rollout/<cluster>/<ns>/<name>
        parts = parts[:1] + parts[2:]
    if len(parts) != 3 or parts[0] != WORKFLOW_ID_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


class Model(BaseModel):
    """Base: camelCase on the wire, snake_case or camelCase accepted on input."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


class Phase(StrEnum):
    """Overall rollout phase (the status contract's names)."""

    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    COMPLETED = "Completed"
    ROLLED_BACK = "RolledBack"
    FAILED = "Failed"
    ABORTED = "Aborted"  # traffic and pods back on stable, Deployment still held: retry or undo


class WaitingFor(StrEnum):
    """What a paused rollout waits for (``RolloutStatus.waiting_for``); the CLI and live view read it."""

    APPROVAL = "approval"  # a pause without duration: `rollout approve`
    TIMER = "timer"  # a timed pause; `rollout approve` cuts it short
    DRIFT = "drift"  # another writer changed the pod template: approve, `start --replace` or undo
    HOLD = "hold"  # `rollout pause`: `rollout resume` releases it
    ANALYSIS = "analysis"  # an inconclusive canary analysis: approve continues, undo rolls back


class StepState(StrEnum):
    """Per-step state, Kruise's names."""

    STEP_UPGRADE = "StepUpgrade"
    STEP_PAUSED = "StepPaused"
    STEP_READY = "StepReady"
    COMPLETED = "Completed"


class Reason:
    """Message templates shown in status, logs and the UI (Kruise's texts where they fit)."""

    UPGRADE = "Rollout is in step({i}/{n}), and upgrade workload to new version"
    MANUAL = "Rollout is in step({i}/{n}), and you need manually confirm to enter the next step"
    TIMED = "Rollout is in step({i}/{n}), and wait duration({s} seconds) to enter the next step"
    STARTING = "Rollout is initializing: taking over the Deployment"
    FINALISING = "Rollout has been completed and some closing work is being done"
    COMPLETED = "Rollout progressing has been completed"
    ROLLING_BACK = "The workload is being rolled back and the rollout process will be canceled"
    ROLLED_BACK = "Rollout progressing has been canceled: all pods are back on the stable revision"
    RESCALED = "Deployment replicas changed from {old} to {new}; step {i} rescaled"
    DEADLINE = (
        'ReplicaSet "{rs}" has timed out progressing: {ready} of {target} canary pods ready '
        "after {s} seconds without progress (progress deadline)"
    )
    FAILED_WAITING = (
        "{why}. Run `rollout undo` to roll back, or `rollout start --replace` with a fixed template"
    )
    AUTO_ROLLBACK = "{why}; rolling back automatically"
    RETARGETING = (
        "A newer template replaces revision {old}: scaling its canary down, then restarting at step 1"
    )
    HELD = "Rollout is paused by {by} at step({i}/{n}); `rollout resume` continues"
    ABORTING = "Rollout is being aborted by {by}: traffic and pods go back to the stable revision"
    ABORTED = (
        "Rollout aborted update to revision {canary}: traffic and pods are back on revision {stable}. "
        "`rollout retry` restarts at step 1, `rollout undo` hands the Deployment back on the stable template"
    )
    FULL_PROMOTION = "Full promotion requested by {by}: skipping the remaining steps and pauses"
    ANALYSIS_FAILED = "analysis {run}: {why}"
    ANALYSIS_HOLD = (
        "analysis {run}: {why}. `rollout approve` continues (the analysis starts over), "
        "`rollout undo` rolls back"
    )
    DRIFT = (
        "Deployment pod template was changed outside the rollout ({what}). "
        "`rollout approve` restores the rollout's template, `rollout start --replace` adopts the new one, "
        "`rollout undo` rolls back"
    )


# --- traffic payloads (Kruise trafficRoutings / steps[].traffic / matches) -------------------------------
# Before they derived from Model these serialised in snake_case; committed histories still hold that form,
# which Model accepts on input.

DEFAULT_GRACE_PERIOD_SECONDS = 3  # Kruise CRD default


class IngressRef(Model):
    """``trafficRoutings[].ingress``: the user's Ingress in front of the stable Service."""

    class_type: str = "nginx"
    name: str


class GatewayRef(Model):
    """``trafficRoutings[].gateway``: the user's Gateway API HTTPRoute."""

    http_route_name: str


class TrafficRoutingRef(Model):
    """``trafficRoutings[0]``: stable Service plus the Ingress and/or HTTPRoute that route to it."""

    service: str
    grace_period_seconds: int = DEFAULT_GRACE_PERIOD_SECONDS
    ingress: IngressRef | None = None
    gateway: GatewayRef | None = None

    @property
    def canary_service(self) -> str:
        """Name of the canary Service we create."""
        return self.service + CANARY_SUFFIX

    @property
    def service_only(self) -> bool:
        """True when no Ingress or HTTPRoute routes to the Service (``--service`` alone): the rollout
        splits pods, not requests (the stable Service pinned to stable pods, ``<svc>-canary`` to canary)."""
        return self.ingress is None and self.gateway is None

    @property
    def canary_ingress(self) -> str | None:
        """Name of the canary Ingress we create (nginx only)."""
        return self.ingress.name + CANARY_SUFFIX if self.ingress else None


class HeaderMatch(Model):
    """Gateway API HTTPHeaderMatch (also used for a cookie, see COOKIE_HEADER_NAME)."""

    type: Literal["Exact", "RegularExpression"] = "Exact"
    name: str
    value: str


class QueryParamMatch(Model):
    """Gateway API HTTPQueryParamMatch."""

    type: Literal["Exact", "RegularExpression"] = "Exact"
    name: str
    value: str


class PathMatch(Model):
    """Gateway API HTTPPathMatch."""

    type: Literal["Exact", "PathPrefix", "RegularExpression"] = "PathPrefix"
    value: str = "/"


class HttpRouteMatch(Model):
    """One Kruise ``matches[]`` entry: its conditions are ANDed; entries of a step are ORed."""

    path: PathMatch | None = None
    headers: list[HeaderMatch] = Field(default_factory=list)
    query_params: list[QueryParamMatch] = Field(default_factory=list)


class StepTraffic(Model):
    """A step's traffic: canary ``weight`` percent and/or request ``matches`` that always go to the canary."""

    weight: int | None = None
    matches: list[HttpRouteMatch] = Field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        """True when the step routes nothing explicitly (traffic follows pods via the plain Service)."""
        return self.weight is None and not self.matches


class TrafficSnapshot(Model):
    """The user's objects before we touched them, taken once at start and kept in workflow state.

    Attributes:
        service: the stable Service name.
        stable_selector: its original ``spec.selector`` (restored byte-equal at the end).
        service_spec: its original ``spec`` (for reference and tests).
        ingress_spec: the user's Ingress ``spec`` when an Ingress is routed (we never modify it).
        http_route_spec: the user's HTTPRoute ``spec``; the canary rules are always computed from it and
            it is written back unchanged on restore.
    """

    service: str
    stable_selector: dict[str, str]
    service_spec: dict[str, Any] = Field(default_factory=dict)
    ingress_spec: dict[str, Any] | None = None
    http_route_spec: dict[str, Any] | None = None


class TrafficInput(Model):
    """Input of every traffic activity (each uses the fields it needs).

    Attributes:
        namespace: namespace of the Deployment and all traffic objects.
        routing: the rollout's traffic routing.
        snapshot: result of ``snapshot_traffic`` (needed by set_traffic for an HTTPRoute and by restores).
        stable_hash: stable pod-template-hash (route_stable_service).
        canary_hash: canary pod-template-hash (ensure_canary_service).
        traffic: the step's weight/matches (set_traffic); None or empty means weight 0.
        deployment: the Deployment name; it becomes the owner of the canary Service.
    """

    namespace: str
    routing: TrafficRoutingRef
    snapshot: TrafficSnapshot | None = None
    stable_hash: str = ""
    canary_hash: str = ""
    traffic: StepTraffic | None = None
    deployment: str = ""


class TrafficChange(Model):
    """Result of a traffic activity: ``changed`` tells the workflow to wait gracePeriodSeconds."""

    changed: bool
    message: str = ""


# --- canary analysis (Argo AnalysisTemplate -> AnalysisSpec; see workflows/analysis_*.py) ------------------
#
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


# --- the rollout spec (workflow input) --------------------------------------------------------------


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


# --- signals ----------------------------------------------------------------------------------------


class ApproveSignal(Model):
    """Approve the paused step ``step`` (1-based); ``None`` approves whichever step is paused."""

    step: int | None = None
    by: str = ""
    comment: str = ""


class UndoSignal(Model):
    """Roll everything back to the stable revision."""

    by: str = ""
    reason: str = ""


# Runs that record this patch marker take a cancellation request as an undo and end Failed or Canceled
# (workflows/outcome.py); the CLI reads the marker to choose cancel or the old `undo` signal.
PATCH_OUTCOMES = "outcomes-as-temporal-statuses"
# `rollout undo` is a Temporal cancellation request; its reason carries who asked, in these words.
UNDO_REASON_PREFIX = "rollout undo by "
# Memo key of a closed run's last RolloutStatus (failed and canceled runs have no result to read it from).
MEMO_STATUS = "rolloutStatus"


def undo_cancel_reason(by: str, reason: str = "") -> str:
    """The reason ``rollout undo`` sends with its cancellation request (the UI shows it as is)."""
    text = f"{UNDO_REASON_PREFIX}{by or 'unknown'}"
    return f"{text}: {reason}" if reason else text


def undo_from_cancel(reason: str) -> UndoSignal:
    """The undo a cancellation request asks for; ``by`` is empty when the reason does not name it
    (a raw ``temporal workflow cancel``, the UI's button: the workflow then asks its history)."""
    if not reason.startswith(UNDO_REASON_PREFIX):
        return UndoSignal(by="", reason=reason)
    by, _, why = reason[len(UNDO_REASON_PREFIX) :].partition(": ")
    return UndoSignal(by=by, reason=why)


class PauseSignal(Model):
    """The old ``pause`` signal of declarative mode, kept so runs that received it replay: it now sets or
    releases the ``control`` hold. Controllers send ``ControlSignal`` pause/resume instead."""

    paused: bool = True
    by: str = ""


class ControlAction(StrEnum):
    """The operator verbs beyond approve and undo (``rollout approve --full|pause|resume|abort|retry``)."""

    PROMOTE_FULL = "promote-full"
    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"
    RETRY = "retry"


class ControlSignal(Model):
    """One operator verb: the ``control`` signal (no worker needed) or the ``control_now`` update."""

    action: ControlAction
    by: str = ""
    reason: str = ""


class Approval(Model):
    """A recorded approval."""

    by: str
    at: datetime
    step: int
    comment: str = ""


# --- activity payloads ------------------------------------------------------------------------------


class DeploymentRef(Model):
    """A Deployment's coordinates."""

    namespace: str
    name: str


class TakeoverInput(Model):
    """Input of ``take_over``: the atomic write that starts a rollout."""

    ref: DeploymentRef
    workflow_id: str
    template: dict[str, Any] | None = Field(default=None, description="runs started before references")
    template_hash: str = Field(default="", description="the Deployment's template must have this hash")
    adopt: bool = Field(
        default=False,
        description="declarative mode: the webhook already holds the Deployment (paused, strategy parked)",
    )


class TakeoverResult(Model):
    """What ``take_over`` found and parked."""

    stable_rs: str
    stable_revision: str
    canary_rs: str
    canary_revision: str
    original_strategy: dict[str, Any]
    # A hold taken over from a closed run of the same workflow ID whose canary is another template:
    # the new run supersedes that canary first (as `--replace` does).
    template_differs: bool = False
    resumed: bool = False  # the Deployment already carried this workflow ID (a retry, or a closed run's hold)


class RetargetInput(Model):
    """Input of ``retarget``: ensure the canary ReplicaSet of a new template in the Deployment we own.

    By reference (``template_hash``): the starter wrote the template, the activity checks it is there.
    With ``restore_template_from_rs``: write that ReplicaSet's template back (approve over another
    writer's change). ``template``: runs started before references wrote it from the input.
    """

    ref: DeploymentRef
    workflow_id: str
    template: dict[str, Any] | None = None
    stable_rs: str
    template_hash: str = ""
    restore_template_from_rs: str = ""


class ReplicaSetCounts(Model):
    """Spec and readiness of one ReplicaSet."""

    name: str
    replicas: int = 0
    ready_replicas: int = 0


class SnapshotInput(Model):
    """Input of ``get_snapshot``."""

    ref: DeploymentRef
    stable_rs: str
    canary_rs: str


class Snapshot(Model):
    """A normalised view of the Deployment and its two ReplicaSets."""

    replicas: int
    stable: ReplicaSetCounts
    canary: ReplicaSetCounts
    template_drift: str = Field(
        default="", description="non-empty when the Deployment's template is no longer the canary's"
    )


class ScaleInput(Model):
    """Set one ReplicaSet to exactly ``replicas`` pods."""

    ref: DeploymentRef
    rs_name: str
    replicas: int
    desired_replicas: int
    max_replicas: int


class StepMoveInput(Model):
    """Input of ``step_move``: read, then make the step's next scale move in the same activity.

    The targets, fenceposts and failure threshold are computed from the fresh read exactly as the
    workflow's converge loop computes them (``plan.step_targets``/``resolve_fenceposts``/
    ``failure_threshold_count``/``next_move``).
    """

    snapshot: SnapshotInput
    step: StepSpec
    rolling_update: dict[str, Any] | None = None
    failure_threshold: int | str | None = None
    check_drift: bool = Field(default=True, description="make no move when the template drifted")


class StepMoveResult(Model):
    """Result of ``step_move``: the snapshot after the move, and which side was scaled ("" for none)."""

    snapshot: Snapshot
    scaled: str = ""


class WaitInput(Model):
    """Wait until the snapshot lets the plan move on (see ``plan.next_move``)."""

    snapshot: SnapshotInput
    canary_target: int
    stable_target: int
    max_surge: int
    max_unavailable: int
    failure_threshold: int
    grow_canary: bool = True
    poll_interval_seconds: float = 0.5
    canary_ready: int = Field(
        default=-1, description="also return once more canary pods than this are ready (progress deadline)"
    )


class WatchInput(Model):
    """Input of ``watch_replicas``: return when spec.replicas differs from ``replicas``."""

    ref: DeploymentRef
    replicas: int
    poll_interval_seconds: float = 0.5
    canary_rs: str = Field(default="", description="also return when the template drifts from this RS")


class WatchResult(Model):
    """Result of ``watch_replicas``."""

    replicas: int
    template_drift: str = ""


class ConvergeInput(Model):
    """Input of ``converge_step``: make every move of a step (or of finalize) in one activity.

    The activity reads, applies ``plan.next_move`` (targets from ``step``, or canary = replicas and
    stable = 0 when ``step`` is ``None``), writes, and follows the ReplicaSets on a watch until the
    batch is ready, exactly as the workflow's converge loop did one activity per move.
    """

    snapshot: SnapshotInput
    step: StepSpec | None = Field(default=None, description="None: finalize (all canary, stable 0)")
    back: bool = Field(default=False, description="undo, abort, retarget: all stable, canary 0")
    rolling_update: dict[str, Any] | None = None
    failure_threshold: int | str | None = None
    check_drift: bool = Field(default=True, description="stop (outcome drift) when the template drifted")
    progress_deadline_seconds: int = Field(default=0, description="0: no deadline (pauses, finalize)")
    poll_interval_seconds: float = 0.5


class ConvergeResult(Model):
    """Result of ``converge_step``: the last snapshot and why it returned (done, drift, deadline)."""

    snapshot: Snapshot
    outcome: Literal["done", "drift", "deadline"] = "done"
    writes: int = 0


class DeploymentChange(Model):
    """Signal ``deployment_changed``: the shared watcher saw the rollout's Deployment change.

    Sent by every worker's watcher (duplicates are expected and ignored: the workflow keeps the
    newest ``resource_version`` it acted on). ``template_hash`` is ``kube.template_hash`` of the
    Deployment's pod template; the workflow compares it with the canary's pod-template-hash.
    """

    resource_version: str = ""
    generation: int = 0
    replicas: int = 0
    template_hash: str = ""
    deleted: bool = False
    namespace: str = Field(default="", description="the Deployment's; the workflow ignores another's")
    name: str = ""


class FinalizeInput(Model):
    """Hand the Deployment back: restore strategy, unpause, drop our metadata (and maybe the template)."""

    ref: DeploymentRef
    workflow_id: str
    original_strategy: dict[str, Any]
    restore_template_from_rs: str | None = None


# --- notifications (``--notify``, ``ROLLOUT_NOTIFY_URLS``; see workflows/notify.py) -----------------


class NotifyEvent(StrEnum):
    """The events a rollout notifies (Argo's triggers: on-rollout-paused, -step-completed, ...)."""

    STEP_PAUSED = "StepPaused"  # a step waits for `rollout approve`
    STEP_COMPLETED = "StepCompleted"
    COMPLETED = "Completed"
    ROLLED_BACK = "RolledBack"
    ABORTED = "Aborted"
    FAILED = "Failed"
    ANALYSIS_FAILED = "AnalysisFailed"


class Notification(Model):
    """One event of one rollout (``ui_url`` and ``text`` are filled in by the delivering activity)."""

    event: NotifyEvent
    namespace: str
    name: str
    workflow_id: str
    step: int
    total_steps: int
    phase: str
    message: str
    at: datetime
    ui_url: str = ""
    text: str = ""


class DeliverInput(Model):
    """Input of ``deliver_notification``: one event to one target (by name; ``url`` in older runs)."""

    url: str = ""
    target: str = Field(default="", description="a name the worker resolves to its URL")
    notification: Notification


# --- status (query ``status``, workflow result, ``rollout status -o json``) -------------------------


class RolloutStatus(Model):
    """The rollout status contract (camelCase JSON)."""

    namespace: str
    name: str
    workflow_id: str
    phase: Phase = Phase.PROGRESSING
    current_step_index: int = 0
    total_steps: int = 0
    step_state: StepState = StepState.STEP_UPGRADE
    replicas: int = 0
    canary_replicas: int = 0
    canary_ready_replicas: int = 0
    stable_replicas: int = 0
    stable_ready_replicas: int = 0
    canary_revision: str = ""
    stable_revision: str = ""
    message: str = ""
    approvals: list[Approval] = Field(default_factory=list)
    stable_images: dict[str, str] = Field(default_factory=dict)
    canary_images: dict[str, str] = Field(default_factory=dict)
    steps: list[StepSpec] = Field(default_factory=list)
    pause_seconds: int | None = None
    paused_at: datetime | None = None
    traffic_weight: int | None = None
    traffic_matches: list[str] = Field(default_factory=list)
    traffic: str = ""
    superseded_revisions: list[str] = Field(default_factory=list)
    progress_deadline_seconds: int = DEFAULT_PROGRESS_DEADLINE_SECONDS
    waiting_for: WaitingFor | None = None
    finalizing: bool = False  # handing the Deployment back after the last step; undo is refused
    held_by: str = Field(
        default="", description="who paused the rollout with `rollout pause` (empty: not held)"
    )
    promote_full: bool = Field(default=False, description="`rollout approve --full` was accepted")
    analysis: AnalysisStatus | None = None


class RolloutObjectStatusInput(Model):
    """Input of ``write_rollout_status``: mirror ``status`` into the Kruise Rollout object's status."""

    namespace: str
    rollout: str
    deployment: str
    status: RolloutStatus


# --- release waves (workflows/release.py, workflows/release_plan.py, cli/release.py) --------------------
#
# A release runs one parent workflow (``release/<id>``) and one child rollout per target
# (``rollout/<cluster>/<ns>/<name>`` on the cluster's own task queue, ``task_queue_for``). The CLI checks
# every target and writes each one's hold with the caller's credentials before the parent starts.

RELEASE_WORKFLOW_TYPE = "Release"
RELEASE_ID_PREFIX = "release"
SA_RELEASE_ID = "ReleaseId"
SA_RELEASE_WAVE = "ReleaseWave"
SA_CLUSTER = "Cluster"
SA_RELEASE_ID_KEY = SearchAttributeKey.for_keyword(SA_RELEASE_ID)
SA_RELEASE_WAVE_KEY = SearchAttributeKey.for_int(SA_RELEASE_WAVE)
SA_CLUSTER_KEY = SearchAttributeKey.for_keyword(SA_CLUSTER)


def release_workflow_id(release_id: str) -> str:
    """The parent workflow's ID: ``release/<id>``."""
    return f"{RELEASE_ID_PREFIX}/{release_id}"


def task_queue_for(cluster: str, base: str = TASK_QUEUE) -> str:
    """The task queue a cluster's worker serves (``rollout-worker --cluster NAME``): ``<base>-<cluster>``."""
    return f"{base}-{cluster}" if cluster else base


class ReleaseTarget(Model):
    """One Deployment of a release: the kubeconfig context (cluster) it lives in, its namespace and name."""

    cluster: str
    namespace: str
    deployment: str

    @property
    def key(self) -> str:
        """``cluster/namespace/deployment``."""
        return f"{self.cluster}/{self.namespace}/{self.deployment}"

    @property
    def workflow_id(self) -> str:
        """The child rollout's workflow ID."""
        return workflow_id_for(self.namespace, self.deployment, self.cluster)


class WaveApproval(Model):
    """A wave waits for ``rollout release approve --wave W`` before its first write."""

    required: bool = False
    timeout_seconds: float | None = Field(default=None, description="None: wait for ever")
    on_timeout: Literal["halt"] = "halt"


class FailurePolicy(Model):
    """What a failed target does to the release.

    ``on_target_failure``: ``halt`` stops the wave at the first failure (no new target starts, the
    release fails); ``continue`` lets the wave go on while failures stay within ``max_failures``.
    ``rollback``: which targets already released go back to their pre-release template when the release
    fails: ``none``, ``currentWave``, or ``previousWaves`` (the current wave, then each earlier one).
    """

    on_target_failure: Literal["halt", "continue"] = "halt"
    rollback: Literal["none", "currentWave", "previousWaves"] = "none"


class ReleaseTargetRun(Model):
    """A target as the release runs it: the child's input (a reference to the hold the CLI wrote) and
    what hands the Deployment back if the target never starts (its stable ReplicaSet and strategy)."""

    target: ReleaseTarget
    rollout: RolloutSpec
    stable_rs: str
    original_strategy: dict[str, Any] = Field(default_factory=dict)


class ReleaseWaveSpec(Model):
    """One wave: its targets, run ``max_parallel`` at a time (0: all), then a bake."""

    name: str
    targets: list[ReleaseTargetRun]
    bake_seconds: float = 0
    max_parallel: int = 0
    max_failures: int = 0
    approval: WaveApproval = Field(default_factory=WaveApproval)


class ReleaseSpec(Model):
    """The parent workflow's input."""

    release_id: str
    waves: list[ReleaseWaveSpec]
    failure_policy: FailurePolicy = Field(default_factory=FailurePolicy)
    change: str = ""
    requested_by: str = ""
    use_search_attributes: bool = False
    task_queue: str = Field(default=TASK_QUEUE, description="children run on task_queue_for(cluster, this)")


class ReleasePhase(StrEnum):
    """The release's phase (``rollout release status``)."""

    PROGRESSING = "Progressing"
    WAITING_APPROVAL = "WaitingApproval"
    BAKING = "Baking"
    HALTED = "Halted"
    ROLLING_BACK = "RollingBack"
    FINISHING = "Finishing"
    COMPLETED = "Completed"
    ROLLED_BACK = "RolledBack"
    FAILED = "Failed"
    ABORTED = "Aborted"


class WaveState(StrEnum):
    PENDING = "Pending"
    WAITING_APPROVAL = "WaitingApproval"
    RUNNING = "Running"
    BAKING = "Baking"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ROLLED_BACK = "RolledBack"


class TargetState(StrEnum):
    PENDING = "Pending"  # not started: still held by the CLI's write
    RUNNING = "Running"
    HELD = "Held"  # at 100% on the new template, undo possible, until the release ends
    COMPLETED = "Completed"
    FAILED = "Failed"
    ROLLED_BACK = "RolledBack"
    SKIPPED = "Skipped"  # never started: handed back on its old template


class ReleaseTargetStatus(Model):
    cluster: str
    namespace: str
    deployment: str
    workflow_id: str
    state: TargetState = TargetState.PENDING
    message: str = ""


class ReleaseWaveStatus(Model):
    name: str
    state: WaveState = WaveState.PENDING
    targets: list[ReleaseTargetStatus] = Field(default_factory=list)
    failures: int = 0
    max_failures: int = 0
    max_parallel: int = 0
    bake_seconds: float = 0
    bake_until: datetime | None = None
    approval_required: bool = False
    approval_deadline: datetime | None = None
    approved_by: str = ""


class ReleaseStatus(Model):
    """The release status contract (``rollout release status -o json``)."""

    release_id: str
    workflow_id: str
    phase: ReleasePhase = ReleasePhase.PROGRESSING
    current_wave: int = Field(default=0, description="1-based; 0 before the first wave")
    total_waves: int = 0
    message: str = ""
    halted_by: str = ""
    change: str = ""
    waves: list[ReleaseWaveStatus] = Field(default_factory=list)


class ReleaseApprove(Model):
    """Update ``approve``: open the gate of wave ``wave`` (its name)."""

    wave: str
    by: str = ""


class ReleaseAction(StrEnum):
    HALT = "halt"
    RESUME = "resume"
    ABORT = "abort"


class ReleaseControl(Model):
    """Update ``control``: halt (no new target starts), resume, or abort (with a rollback choice)."""

    action: ReleaseAction
    by: str = ""
    rollback: Literal["none", "previousWaves"] = "previousWaves"


class TargetHeld(Model):
    """Signal ``target_held`` (child -> parent): the target reached 100% and waits for the release's end."""

    workflow_id: str


# The child's signal that ends its hold (the release is over): hand the Deployment back on the new template.
RELEASE_FINISH_SIGNAL = "release_finish"


class StableTemplateInput(Model):
    """Input of ``hold_stable_template``: a held target about to roll back gets its stable template back
    first (still held), so the Deployment controller sees the stable ReplicaSet as the new one and does
    not scale it down again while the full canary is saturated."""

    ref: DeploymentRef
    workflow_id: str
    stable_rs: str


# --- release notifications (a Release file's ``spec.notify``; see workflows/release_notify.py) ------


class ReleaseNotifyEvent(StrEnum):
    """What a release tells its notify targets: each wave's start and end, and the release's end."""

    WAVE_STARTED = "WaveStarted"
    WAVE_COMPLETED = "WaveCompleted"  # every target at 100% and the bake elapsed
    WAVE_FAILED = "WaveFailed"  # more failures than maxFailures
    RELEASE_ENDED = "ReleaseEnded"  # ``phase`` says how: Completed, RolledBack, Failed, Aborted


class ReleaseNotification(Model):
    """One event of one release (``ui_url`` and ``text`` are filled in by the delivering activity)."""

    event: ReleaseNotifyEvent
    release_id: str
    workflow_id: str
    wave: int = Field(description="1-based; 0 for the release's end")
    wave_name: str = ""
    total_waves: int
    phase: str
    message: str
    at: datetime
    ui_url: str = ""
    text: str = ""


class ReleaseDeliverInput(Model):
    """Input of ``deliver_release_notification``: one event to one named target."""

    target: str
    notification: ReleaseNotification


class ReleaseInput(ReleaseSpec):
    """The release workflow's input: the release and the names of the notify targets (the worker's
    ``ROLLOUT_NOTIFY_TARGETS``) told about its waves and its end. Runs started without it read as none."""

    notify: list[str] = Field(default_factory=list)
