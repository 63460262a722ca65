"""The rollout status contract (query ``status``, the workflow result, ``rollout status -o json``) and its
mirror into a Kruise Rollout object."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from workflows.model.analysis import AnalysisStatus
from workflows.model.base import Model, Phase, StepState, WaitingFor
from workflows.model.signals import Approval
from workflows.model.spec import DEFAULT_PROGRESS_DEADLINE_SECONDS, StepSpec

__all__ = [
    "RolloutStatus",
    "RolloutObjectStatusInput",
]


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
