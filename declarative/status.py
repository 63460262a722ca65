"""Rollout status in Kruise's fields and words, from the workflow's status (pure; no I/O).

Shared by the status-writer activity (``activities/rollout_status.py``) and tests.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from workflows.model import Phase, Reason, RolloutStatus, StepState, WaitingFor

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
    until the workflow moves on, so a status write never swallows an approval.
    """
    if st.waiting_for == WaitingFor.DRIFT and current.get("canaryStatus"):
        # A template change the controller is about to act on (rollback or continuous release): the
        # CLI's drift hint is not for Rollout users, so the status stays as it was until it acts.
        return {**current, "observedGeneration": generation}
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    old_conds = list(current.get("conditions") or [])
    old_canary = current.get("canaryStatus") or {}
    state = st.step_state.value
    if (
        st.step_state == StepState.STEP_PAUSED
        and old_canary.get("currentStepState") == StepState.STEP_READY.value
        and old_canary.get("currentStepIndex") == st.current_step_index
    ):
        state = StepState.STEP_READY.value
    done = st.phase in (Phase.COMPLETED, Phase.ROLLED_BACK)
    held = bool(st.held_by) and not done
    if st.phase == Phase.COMPLETED:
        progressing = _condition(old_conds, "Progressing", "False", "Completed",
                                 "Rollout progressing has been completed", stamp)
    elif st.phase == Phase.ROLLED_BACK:
        progressing = _condition(old_conds, "Progressing", "False", "Completed",
                                 "Rollout progressing has been canceled", stamp)
    elif st.phase == Phase.ABORTED:
        progressing = _condition(old_conds, "Progressing", "False", "Aborted", st.message, stamp)
    elif st.finalizing and st.message.startswith(Reason.ROLLING_BACK):
        progressing = _condition(old_conds, "Progressing", "True", "Cancelling", CANCELLING, stamp)
    elif held:
        progressing = _condition(old_conds, "Progressing", "True", "Paused", PAUSED, stamp)
    elif st.step_state == StepState.COMPLETED:
        progressing = _condition(old_conds, "Progressing", "True", "Finalising",
                                 "Rollout has been completed and some closing work is being done", stamp)
    else:
        progressing = _condition(old_conds, "Progressing", "True", "InRolling", "Rollout is in Progressing",
                                 stamp)
    conditions = [progressing]
    if done:
        succeeded = "True" if st.phase == Phase.COMPLETED else "False"
        conditions.append(_condition(old_conds, "Succeeded", succeeded, "", "", stamp))
    canary_revision = st.canary_revision
    if st.phase == Phase.ROLLED_BACK:
        # Kruise: a cancelled release keeps the step state it stopped at, and its canaryRevision is
        # the workload's revision again (the stable one).
        stored = str(old_canary.get("currentStepState") or "")
        state = stored if stored and stored != StepState.COMPLETED.value else StepState.STEP_PAUSED.value
        canary_revision = st.stable_revision or st.canary_revision
    canary: dict[str, Any] = {
        "currentStepIndex": st.current_step_index,
        # Kruise's next step (-1 after the last); a value patched in to jump is not acted on (yet)
        # and is corrected by the next write.
        "nextStepIndex": st.current_step_index + 1 if st.current_step_index < st.total_steps else -1,
        "currentStepState": state,
        "canaryReplicas": st.canary_replicas,
        "canaryReadyReplicas": st.canary_ready_replicas,
        "canaryRevision": canary_revision,
        "stableRevision": st.stable_revision,
        "podTemplateHash": st.canary_revision,
        "observedWorkloadGeneration": workload_generation,
        "lastUpdateTime": stamp,
        "message": st.message,
        "workflowId": st.workflow_id,
    }
    phase, message = _phase(st), PAUSED if held else st.message
    if deleting:
        phase = "Terminating"
        conditions.append(_condition(old_conds, "Terminating", "False" if done else "True",
                                     "Completed" if done else "InTerminating", TERMINATING, stamp))
    elif disabled:
        phase, message = "Disabling", DISABLING
    return {
        "observedGeneration": generation,
        "phase": phase,
        "message": message,
        "currentStepIndex": st.current_step_index,
        "currentStepState": state,
        "canaryStatus": canary,
        "conditions": conditions,
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
