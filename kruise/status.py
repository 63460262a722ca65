"""A Rollout's ``status`` in Kruise's fields and words, from the workflow's status (pure; no I/O).

``kruise_status`` is what the status-writer activity (``activities/rollout_status.py``) writes for a
running rollout; ``idle_status`` is what the declarative controller writes when none runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from workflows.model import Phase, Reason, RolloutStatus, StepState, WaitingFor
from workflows.plan import next_step_index

__all__ = ["CANCELLING", "COMPLETED_IDLE", "HEALTHY", "PAUSED", "idle_status", "kruise_status"]

# Kruise's Progressing condition message for reason Paused (spec.strategy.paused).
PAUSED = "Rollout has been paused, you can resume it by kube-cli"
# Kruise's Progressing condition message for reason Cancelling (the template was set back: rollback).
CANCELLING = "The workload has been rolled back and the rollout process will be canceled"
HEALTHY = "rollout is healthy"
TERMINATING = "Rollout is in terminating"
DISABLING = "Disabling rollout, release resources"
# Kruise's message for a Rollout whose workload was never released under it (its synthetic status).
COMPLETED_IDLE = "workload deployment is completed"


def _phase(st: RolloutStatus) -> str:
    if st.phase in (Phase.COMPLETED, Phase.ROLLED_BACK):
        return "Healthy"
    return "Progressing"


def _condition(
    old: list[dict[str, Any]], type_: str, status: str, reason: str, message: str, now: str
) -> dict[str, Any]:
    prev = next((c for c in old if c.get("type") == type_), None)
    since = now
    if prev and prev.get("status") == status and prev.get("reason") == reason:
        since = str(prev.get("lastTransitionTime") or now)
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
        "lastUpdateTime": now,
    }


def kruise_status(
    st: RolloutStatus,
    *,
    current: dict[str, Any],
    generation: int,
    workload_generation: int,
    now: datetime,
    deleting: bool = False,
    disabled: bool = False,
    counts: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The Rollout's ``status`` for the workflow status ``st`` (Kruise's fields and words).

    A Rollout being deleted reads as Kruise's ``Terminating`` (condition Terminating, ``InTerminating``
    then ``Completed``), a disabled one as ``Disabling`` ("Disabling rollout, release resources") while
    its run hands the Deployment back (the controller writes ``Disabled`` once the run has ended).

    The verbs in Kruise's words: a hold (``held_by``: spec.strategy.paused or `rollout pause`) is the
    Progressing condition with reason ``Paused`` and Kruise's message; an aborted rollout stays phase
    ``Progressing`` (the Deployment is still held) with the condition False, reason ``Aborted``.

    ``current`` is the status as stored: condition transition times carry over, and a pending
    approval (``currentStepState: StepReady`` patched by the user on the step we pause at) is kept
    until the workflow moves on, so a status write never swallows an approval. A disabled or deleted
    Rollout keeps the step and step state it stopped at while the Deployment is handed back, as
    Kruise's finalising does (Argo CD reads ``Disabled`` + ``StepPaused`` as Degraded).

    ``counts`` is ``(canaryReplicas, canaryReadyReplicas)`` as the canary ReplicaSet has them now
    (pods created, pods ready); without it the run's last recorded counts are written.
    """
    if st.waiting_for == WaitingFor.DRIFT and current.get("canaryStatus"):
        # A template change the controller is about to act on (rollback or continuous release): the
        # CLI's drift hint is not for Rollout users, so the status stays as it was until it acts.
        return {**current, "observedGeneration": generation}
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    old_conds = list(current.get("conditions") or [])
    done = st.phase in (Phase.COMPLETED, Phase.ROLLED_BACK)
    held = bool(st.held_by) and not done
    conditions = [_progressing(st, old_conds, stamp, held)]
    if done:
        succeeded = "True" if st.phase == Phase.COMPLETED else "False"
        conditions.append(_condition(old_conds, "Succeeded", succeeded, "", "", stamp))
    old_canary = current.get("canaryStatus") or {}
    state, index = _step_state(st, old_canary), st.current_step_index
    if (deleting or disabled) and old_canary.get("currentStepState"):
        state = str(old_canary["currentStepState"])
        index = int(old_canary.get("currentStepIndex") or index)
    phase, message = _phase(st), PAUSED if held else st.message
    if deleting:
        phase = "Terminating"
        terminating = ("False", "Completed") if done else ("True", "InTerminating")
        conditions.append(_condition(old_conds, "Terminating", *terminating, TERMINATING, stamp))
    elif disabled:
        phase, message = "Disabling", DISABLING
    return {
        "observedGeneration": generation,
        "phase": phase,
        "message": message,
        "currentStepIndex": index,
        "currentStepState": state,
        "canaryStatus": _canary_status(st, state, index, workload_generation, stamp, counts),
        "conditions": conditions,
    }


def _progressing(st: RolloutStatus, old: list[dict[str, Any]], stamp: str, held: bool) -> dict[str, Any]:
    """Kruise's Progressing condition: (status, reason, message) by the run's phase, hold and step."""
    if st.phase == Phase.COMPLETED:
        args = ("False", "Completed", "Rollout progressing has been completed")
    elif st.phase == Phase.ROLLED_BACK:
        args = ("False", "Completed", "Rollout progressing has been canceled")
    elif st.phase == Phase.ABORTED:
        args = ("False", "Aborted", st.message)
    elif st.finalizing and st.message.startswith(Reason.ROLLING_BACK):
        args = ("True", "Cancelling", CANCELLING)
    elif held:
        args = ("True", "Paused", PAUSED)
    elif st.step_state == StepState.COMPLETED:
        args = ("True", "Finalising", "Rollout has been completed and some closing work is being done")
    else:
        args = ("True", "InRolling", "Rollout is in Progressing")
    return _condition(old, "Progressing", *args, stamp)


def _step_state(st: RolloutStatus, old_canary: dict[str, Any]) -> str:
    """``currentStepState``: the run's, but a pending approval (``StepReady`` patched by the user on the
    step we pause at) stays until the run moves on, and a cancelled release keeps the state it
    stopped at (Kruise)."""
    stored = str(old_canary.get("currentStepState") or "")
    if st.phase == Phase.ROLLED_BACK:
        return stored if stored and stored != StepState.COMPLETED.value else StepState.STEP_PAUSED.value
    if (
        st.step_state == StepState.STEP_PAUSED
        and stored == StepState.STEP_READY.value
        and old_canary.get("currentStepIndex") == st.current_step_index
    ):
        return StepState.STEP_READY.value
    return st.step_state.value


def _canary_status(
    st: RolloutStatus,
    state: str,
    index: int,
    workload_generation: int,
    stamp: str,
    counts: tuple[int, int] | None,
) -> dict[str, Any]:
    """``status.canaryStatus``. A cancelled release's canaryRevision is the workload's revision again
    (the stable one), as in Kruise."""
    rolled_back = st.phase == Phase.ROLLED_BACK
    created, ready = counts if counts is not None else (st.canary_replicas, st.canary_ready_replicas)
    return {
        "currentStepIndex": index,
        # Kruise's next step (-1 after the last); a value patched in is a jump the controller sends
        # (``jump_step``), and the run's next write sets it back to the step after the new current one.
        "nextStepIndex": next_step_index(index, st.total_steps),
        "currentStepState": state,
        "canaryReplicas": created,
        "canaryReadyReplicas": ready,
        "canaryRevision": (st.stable_revision or st.canary_revision) if rolled_back else st.canary_revision,
        "stableRevision": st.stable_revision,
        "podTemplateHash": st.canary_revision,
        "observedWorkloadGeneration": workload_generation,
        "lastUpdateTime": stamp,
        "message": st.message,
        "workflowId": st.workflow_id,
    }


def idle_status(
    current: dict[str, Any],
    *,
    generation: int,
    steps: int,
    workload_generation: int,
    revision: str,
) -> dict[str, Any]:
    """The status of a Rollout with no release running, as Kruise's ``calculateRolloutStatus`` keeps it.

    ``revision`` is the pod-template-hash of the Deployment's current template. A Rollout that was
    Initial or Disabled (and is enabled) is Healthy; one that never saw a release gets Kruise's
    synthetic completed ``canaryStatus`` (the last step, ``Completed``), so tools that judge "done" by
    ``currentStepState`` and ``observedWorkloadGeneration`` work from the first apply; a finished
    release's ``observedWorkloadGeneration`` follows the Deployment while its revision is unchanged
    (a scale after completion); ``observedGeneration`` always follows the Rollout.
    """
    out = dict(current)
    out["observedGeneration"] = generation
    if out.get("phase") in (None, "", "Initial", "Disabling", "Disabled"):
        out.update(phase="Healthy", message=HEALTHY)
    canary = dict(out.get("canaryStatus") or {})
    if not canary:
        canary = {
            "observedWorkloadGeneration": workload_generation,
            "podTemplateHash": revision,
            "stableRevision": revision,
            "canaryRevision": revision,
            "currentStepIndex": steps,
            "nextStepIndex": -1,
            "currentStepState": StepState.COMPLETED.value,
        }
        out["message"] = COMPLETED_IDLE
    elif canary.get("canaryRevision") and canary.get("canaryRevision") == revision:
        canary["observedWorkloadGeneration"] = workload_generation
    out["canaryStatus"] = canary
    out["currentStepIndex"] = canary.get("currentStepIndex")
    out["currentStepState"] = canary.get("currentStepState")
    return out
