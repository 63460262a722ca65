"""Release waves: the parent workflow's names, input, status, updates and signals (workflows/release.py,
workflows/release_plan.py, cli/release.py)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field
from temporalio.common import SearchAttributeKey

from workflows.model.base import Model
from workflows.model.deployment import DeploymentRef
from workflows.model.ids import TASK_QUEUE, workflow_id_for
from workflows.model.spec import RolloutSpec

__all__ = [
    "RELEASE_WORKFLOW_TYPE",
    "RELEASE_ID_PREFIX",
    "SA_RELEASE_ID",
    "SA_RELEASE_WAVE",
    "SA_CLUSTER",
    "SA_RELEASE_ID_KEY",
    "SA_RELEASE_WAVE_KEY",
    "SA_CLUSTER_KEY",
    "release_workflow_id",
    "task_queue_for",
    "ReleaseTarget",
    "WaveApproval",
    "FailurePolicy",
    "ReleaseTargetRun",
    "ReleaseWaveSpec",
    "ReleaseSpec",
    "ReleasePhase",
    "WaveState",
    "TargetState",
    "ReleaseTargetStatus",
    "ReleaseWaveStatus",
    "ReleaseStatus",
    "ReleaseApprove",
    "ReleaseAction",
    "ReleaseControl",
    "TargetHeld",
    "RELEASE_FINISH_SIGNAL",
    "StableTemplateInput",
    "ReleaseNotifyEvent",
    "ReleaseNotification",
    "ReleaseDeliverInput",
    "ReleaseInput",
    "ReleaseCarry",
    "TargetOutcomeInput",
    "TargetOutcome",
]


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


class ReleaseCarry(Model):
    """What a release hands the next run when it continues as new between waves (no target running):
    the status (waves done, approvals, halts, every target's state), the next wave, and what the
    parent's handlers had recorded. The targets' previous templates stay in the input's ``waves``."""

    status: ReleaseStatus
    next_wave: int = Field(description="0-based index of the wave the next run starts with")
    cancelled: list[str] = Field(default_factory=list, description="targets this release asked to roll back")
    expired: dict[int, datetime] = Field(default_factory=dict, description="waves whose approval timed out")
    runs: int = Field(default=1, description="runs of this release before the next one")


class ReleaseInput(ReleaseSpec):
    """The release workflow's input: the release and the names of the notify targets (the worker's
    ``ROLLOUT_NOTIFY_TARGETS``) told about its waves and its end. Runs started without it read as none.

    ``continue_as_new_after``: history events after which the parent continues as new between waves
    (0: when the server suggests it); ``carried``: set by the previous run of a release that did."""

    notify: list[str] = Field(default_factory=list)
    continue_as_new_after: int = 0
    carried: ReleaseCarry | None = None


class TargetOutcomeInput(Model):
    """Input of ``wait_target_outcome``: a target started by an earlier run of the release."""

    workflow_id: str


class TargetOutcome(Model):
    """How a target's rollout run ended: ``completed``, ``canceled`` (its undo), or ``failed`` with the
    failure's type and message."""

    kind: Literal["completed", "canceled", "failed"]
    error_type: str = ""
    message: str = ""
