"""The base of every payload (camelCase on the wire, either case on input) and the rollout's state words:
``Phase``, ``WaitingFor``, ``StepState`` and the ``Reason`` texts."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

__all__ = [
    "Model",
    "Phase",
    "WaitingFor",
    "StepState",
    "Reason",
]


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
