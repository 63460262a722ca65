"""Activity payloads about the Deployment and its two ReplicaSets: take over, retarget, snapshot, scale,
step moves, waits and watches, converge, and the hand-back."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from workflows.model.base import Model
from workflows.model.spec import StepSpec

__all__ = [
    "DeploymentRef",
    "TakeoverInput",
    "TakeoverResult",
    "RetargetInput",
    "ReplicaSetCounts",
    "SnapshotInput",
    "Snapshot",
    "ScaleInput",
    "StepMoveInput",
    "StepMoveResult",
    "WaitInput",
    "WatchInput",
    "WatchResult",
    "ConvergeInput",
    "ConvergeResult",
    "FinalizeInput",
]


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
    notify_defaults: bool = Field(
        default=False,
        description="also answer the worker's default notification targets (no activity of their own)",
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
    notify_defaults: list[str] = Field(default_factory=list)  # the worker's, when the input asked


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


class FinalizeInput(Model):
    """Hand the Deployment back: restore strategy, unpause, drop our metadata (and maybe the template)."""

    ref: DeploymentRef
    workflow_id: str
    original_strategy: dict[str, Any]
    restore_template_from_rs: str | None = None
