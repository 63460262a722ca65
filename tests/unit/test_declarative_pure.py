"""Declarative mode's pure parts as tables: the webhook's hold decision, Kruise status, Rollout reading."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from declarative.webhook import hold, json_patch_for
from kruise.rollout_object import read_rollout
from kruise.status import CANCELLING, COMPLETED_IDLE, HEALTHY, PAUSED, idle_status, kruise_status
from kubesim import patch
from workflows.model import Phase, Reason, RolloutStatus, StepState, WaitingFor

STRATEGY = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
PARKED = json.dumps(STRATEGY, sort_keys=True)


def dep(image: str = "nginx:1.26", **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "metadata": {"name": "nginx", "namespace": "ns", "labels": {"app": "nginx"}, "annotations": {}},
        "spec": {
            "replicas": 10,
            "strategy": copy.deepcopy(STRATEGY),
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": image}]},
            },
        },
    }
    for key, value in extra.items():
        d["metadata"]["annotations"][key] = value
    return d


def stable(_template: dict[str, Any]) -> str:
    return "oldhash"


def test_not_under_a_rollout_passes_through() -> None:
    assert hold(dep(), dep("nginx:1.27"), None, stable) is None


def test_template_change_is_held() -> None:
    out = hold(dep(), dep("nginx:1.27"), "rollouts-nginx", stable)
    assert out is not None
    assert out["spec"]["paused"] is True and out["spec"]["strategy"] == {"type": "Recreate"}
    ann = out["metadata"]["annotations"]
    assert json.loads(ann["rollouts.temporal.io/in-progressing"]) == {"rolloutName": "rollouts-nginx"}
    assert json.loads(ann["rollouts.temporal.io/original-strategy"]) == STRATEGY
    assert out["metadata"]["labels"]["rollouts.temporal.io/stable-revision"] == "oldhash"
    # Kruise's own bookkeeping beside ours, where Kruise's webhook and BatchRelease put it.
    assert json.loads(ann["rollouts.kruise.io/in-progressing"]) == {"rolloutName": "rollouts-nginx"}
    assert json.loads(ann["rollouts.kruise.io/deployment-strategy"]) == {
        "rollingStyle": "Partition",
        "rollingUpdate": STRATEGY["rollingUpdate"],
        "paused": False,
        "partition": 0,
    }
    assert out["metadata"]["labels"]["rollouts.kruise.io/stable-revision"] == "oldhash"
    assert out["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    # the JSONPatch the webhook answers with turns the request into exactly this object
    assert patch.json_patch(dep("nginx:1.27"), json_patch_for(dep("nginx:1.27"), out)) == out


@pytest.mark.parametrize("case", ["same template", "scale only", "zero replicas"])
def test_no_template_change_passes_through(case: str) -> None:
    old, new = dep(), dep()
    if case == "scale only":
        new["spec"]["replicas"] = 20
    if case == "zero replicas":
        new = dep("nginx:1.27")
        new["spec"]["replicas"] = 0
    assert hold(old, new, "r", stable) is None


def test_held_deployment_stays_paused_whatever_is_applied() -> None:
    """A GitOps apply of the original manifest mid-rollout: still paused, Recreate, strategy parked."""
    old = dep(
        "nginx:1.27",
        **{
            "rollouts.temporal.io/workflow-id": "rollout-ns-nginx",
            "rollouts.temporal.io/original-strategy": PARKED,
        },
    )
    old["spec"].update(paused=True, strategy={"type": "Recreate"})
    new = copy.deepcopy(old)
    new["spec"]["paused"] = False
    new["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    out = hold(old, new, "r", stable)
    assert out is not None
    assert out["spec"]["paused"] is True and out["spec"]["strategy"] == {"type": "Recreate"}
    parked = json.loads(out["metadata"]["annotations"]["rollouts.temporal.io/original-strategy"])
    assert parked == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


def test_the_workflows_own_writes_and_hand_back_pass_through() -> None:
    owned = dep(
        "nginx:1.27",
        **{"rollouts.temporal.io/workflow-id": "w", "rollouts.temporal.io/original-strategy": PARKED},
    )
    owned["spec"].update(paused=True, strategy={"type": "Recreate"})
    assert hold(owned, copy.deepcopy(owned), "r", stable) is None
    handed_back = dep("nginx:1.27")
    marked = copy.deepcopy(owned)
    marked["metadata"]["annotations"]["rollouts.temporal.io/handing-back"] = "w"
    assert hold(marked, handed_back, "r", stable) is None


def test_dropping_our_marks_without_a_hand_back_is_held_again() -> None:
    """`kubectl replace` of the original manifest mid-rollout: marks restored, still paused."""
    owned = dep(
        "nginx:1.27",
        **{"rollouts.temporal.io/workflow-id": "w", "rollouts.temporal.io/original-strategy": PARKED},
    )
    owned["metadata"]["labels"]["rollouts.temporal.io/stable-revision"] = "oldhash"
    owned["spec"].update(paused=True, strategy={"type": "Recreate"})
    out = hold(owned, dep("nginx:1.27"), "r", stable)
    assert out is not None
    assert out["metadata"]["annotations"]["rollouts.temporal.io/workflow-id"] == "w"
    assert out["metadata"]["labels"]["rollouts.temporal.io/stable-revision"] == "oldhash"
    assert out["spec"]["paused"] is True and out["spec"]["strategy"] == {"type": "Recreate"}


def status(**kw: Any) -> RolloutStatus:
    base: dict[str, Any] = dict(namespace="ns", name="nginx", workflow_id="rollout-ns-nginx", total_steps=3)
    base.update(kw)
    return RolloutStatus(**base)


NOW = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)


def test_kruise_status_at_a_manual_pause() -> None:
    msg = "Rollout is in step(1/3), and you need manually confirm to enter the next step"
    st = status(
        phase=Phase.PAUSED,
        current_step_index=1,
        step_state=StepState.STEP_PAUSED,
        message=msg,
        canary_replicas=1,
        canary_ready_replicas=1,
        canary_revision="new",
        stable_revision="old",
    )
    out = kruise_status(st, current={}, generation=2, workload_generation=36, now=NOW)
    assert out["phase"] == "Progressing" and out["message"] == msg and out["observedGeneration"] == 2
    assert (out["currentStepIndex"], out["currentStepState"]) == (1, "StepPaused")
    c = out["canaryStatus"]
    assert (c["canaryReplicas"], c["canaryReadyReplicas"], c["observedWorkloadGeneration"]) == (1, 1, 36)
    assert (c["canaryRevision"], c["stableRevision"], c["podTemplateHash"]) == ("new", "old", "new")
    assert c["nextStepIndex"] == 2
    assert out["conditions"][0]["reason"] == "InRolling"


def test_a_pending_approval_is_kept_until_the_workflow_moves_on() -> None:
    st = status(phase=Phase.PAUSED, current_step_index=1, step_state=StepState.STEP_PAUSED)
    current = {"canaryStatus": {"currentStepIndex": 1, "currentStepState": "StepReady"}}
    assert (
        kruise_status(st, current=current, generation=1, workload_generation=1, now=NOW)["canaryStatus"][
            "currentStepState"
        ]
        == "StepReady"
    )
    moved = status(phase=Phase.PROGRESSING, current_step_index=2, step_state=StepState.STEP_UPGRADE)
    assert (
        kruise_status(moved, current=current, generation=1, workload_generation=1, now=NOW)["canaryStatus"][
            "currentStepState"
        ]
        == "StepUpgrade"
    )


@pytest.mark.parametrize(
    ("phase", "succeeded", "message"),
    [
        (Phase.COMPLETED, "True", "Rollout progressing has been completed"),
        (Phase.ROLLED_BACK, "False", "Rollout progressing has been canceled"),
    ],
)
def test_kruise_status_when_done(phase: Phase, succeeded: str, message: str) -> None:
    out = kruise_status(status(phase=phase), current={}, generation=1, workload_generation=1, now=NOW)
    assert out["phase"] == "Healthy"
    conds = {c["type"]: c for c in out["conditions"]}
    assert conds["Progressing"]["status"] == "False" and conds["Progressing"]["message"] == message
    assert conds["Succeeded"]["status"] == succeeded


def test_kruise_status_of_a_hold() -> None:
    """A hold (spec.strategy.paused or `rollout pause`) in Kruise's words: reason Paused, Kruise's message;
    the canary status keeps ours (who holds it); releasing it goes back to InRolling."""
    held = (
        "Rollout is paused by kubectl-patch (spec.strategy.paused) at step(1/3); `rollout resume` continues"
    )
    st = status(
        phase=Phase.PAUSED,
        current_step_index=1,
        step_state=StepState.STEP_UPGRADE,
        message=held,
        held_by="kubectl-patch (spec.strategy.paused)",
    )
    out = kruise_status(st, current={}, generation=1, workload_generation=1, now=NOW)
    assert out["phase"] == "Progressing" and out["message"] == PAUSED
    assert PAUSED == "Rollout has been paused, you can resume it by kube-cli"
    cond = out["conditions"][0]
    assert (cond["type"], cond["status"], cond["reason"], cond["message"]) == (
        "Progressing",
        "True",
        "Paused",
        PAUSED,
    )
    assert out["canaryStatus"]["message"] == held and out["currentStepState"] == "StepUpgrade"
    released = kruise_status(
        status(current_step_index=1), current=out, generation=1, workload_generation=1, now=NOW
    )
    assert released["conditions"][0]["reason"] == "InRolling" and released["message"] == ""


def test_kruise_status_of_an_aborted_rollout() -> None:
    """Aborted: still phase Progressing (the Deployment stays held), condition False with reason Aborted."""
    msg = "Rollout aborted update to revision new: traffic and pods are back on revision old."
    out = kruise_status(
        status(phase=Phase.ABORTED, message=msg), current={}, generation=1, workload_generation=1, now=NOW
    )
    assert out["phase"] == "Progressing" and out["message"] == msg
    cond = out["conditions"][0]
    assert (cond["status"], cond["reason"], cond["message"]) == ("False", "Aborted", msg)
    assert [c["type"] for c in out["conditions"]] == ["Progressing"]


def test_kruise_status_of_a_rollback() -> None:
    """Kruise's words for a rollback (the template set back): condition Cancelling while it runs; once
    done the step state stays where the release stopped (not Completed) and canaryRevision is the
    workload's revision again (the stable one)."""
    rolling_back = status(
        phase=Phase.PROGRESSING,
        current_step_index=1,
        step_state=StepState.STEP_PAUSED,
        finalizing=True,
        canary_revision="new",
        stable_revision="old",
        message=f"{Reason.ROLLING_BACK} (pod template set back)",
    )
    out = kruise_status(rolling_back, current={}, generation=1, workload_generation=2, now=NOW)
    cond = out["conditions"][0]
    assert (cond["status"], cond["reason"], cond["message"]) == ("True", "Cancelling", CANCELLING)
    assert CANCELLING == "The workload has been rolled back and the rollout process will be canceled"
    done = status(
        phase=Phase.ROLLED_BACK,
        current_step_index=1,
        step_state=StepState.COMPLETED,
        canary_revision="new",
        stable_revision="old",
        message=Reason.ROLLED_BACK,
    )
    end = kruise_status(done, current=out, generation=1, workload_generation=3, now=NOW)
    assert (end["phase"], end["currentStepState"], end["canaryStatus"]["currentStepState"]) == (
        "Healthy",
        "StepPaused",
        "StepPaused",
    )
    assert (end["canaryStatus"]["canaryRevision"], end["canaryStatus"]["podTemplateHash"]) == ("old", "new")
    # Success finalising is not a rollback.
    finalising = status(
        phase=Phase.PROGRESSING,
        current_step_index=3,
        step_state=StepState.STEP_READY,
        finalizing=True,
        message=Reason.FINALISING,
    )
    assert (
        kruise_status(finalising, current={}, generation=1, workload_generation=1, now=NOW)["conditions"][0][
            "reason"
        ]
        != "Cancelling"
    )


@pytest.mark.parametrize(
    ("case", "current", "want_phase", "want_message", "want_canary"),
    [
        (
            "first apply: Kruise's synthetic completed status",
            {"phase": "Initial", "message": "Workload Not Found"},
            "Healthy",
            COMPLETED_IDLE,
            {
                "observedWorkloadGeneration": 7,
                "podTemplateHash": "h1",
                "stableRevision": "h1",
                "canaryRevision": "h1",
                "currentStepIndex": 3,
                "nextStepIndex": -1,
                "currentStepState": "Completed",
            },
        ),
        (
            "re-enabled after a release: Healthy again, the release's status kept",
            {
                "phase": "Disabled",
                "message": "Rollout is disabled",
                "canaryStatus": {
                    "canaryRevision": "h0",
                    "currentStepIndex": 3,
                    "currentStepState": "Completed",
                    "observedWorkloadGeneration": 2,
                },
            },
            "Healthy",
            HEALTHY,
            {
                "canaryRevision": "h0",
                "currentStepIndex": 3,
                "currentStepState": "Completed",
                "observedWorkloadGeneration": 2,
            },
        ),
        (
            "scaled after its release: observedWorkloadGeneration follows",
            {
                "phase": "Healthy",
                "message": "Rollout progressing has been completed",
                "canaryStatus": {
                    "canaryRevision": "h1",
                    "currentStepIndex": 3,
                    "currentStepState": "Completed",
                    "observedWorkloadGeneration": 5,
                },
            },
            "Healthy",
            "Rollout progressing has been completed",
            {
                "canaryRevision": "h1",
                "currentStepIndex": 3,
                "currentStepState": "Completed",
                "observedWorkloadGeneration": 7,
            },
        ),
    ],
)
def test_idle_status(
    case: str, current: dict[str, Any], want_phase: str, want_message: str, want_canary: dict[str, Any]
) -> None:
    out = idle_status(current, generation=4, steps=3, workload_generation=7, revision="h1")
    assert (out["phase"], out["message"], out["observedGeneration"]) == (want_phase, want_message, 4)
    assert out["canaryStatus"] == want_canary
    assert (out["currentStepIndex"], out["currentStepState"]) == (
        want_canary["currentStepIndex"],
        want_canary["currentStepState"],
    )
    assert idle_status(out, generation=4, steps=3, workload_generation=7, revision="h1") == out  # settled


def rollout(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "nginx"},
        "strategy": {"canary": {"steps": [{"replicas": 1}, {"replicas": "50%"}]}},
    }
    base.update(spec)
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": "r", "namespace": "ns", "generation": 1},
        "spec": base,
    }


def test_read_rollout() -> None:
    ref = read_rollout(rollout())
    assert ref.plan is not None and [s.replicas for s in ref.plan.steps] == [1, "50%"] and not ref.error
    assert read_rollout(rollout(disabled=True)).disabled
    assert read_rollout(rollout(strategy={"paused": True, "canary": {"steps": [{"replicas": 1}]}})).paused


@pytest.mark.parametrize(
    ("strategy", "words"),
    [
        ({"canary": {"steps": []}}, "at least one step"),
        ({"canary": {"steps": [{"replicas": "60%"}, {"replicas": "50%"}]}}, "steps"),
        ({"blueGreen": {}}, "blueGreen is not supported"),
        ({"canary": {"steps": [{"pause": {}}]}}, "replicas is required"),
    ],
)
def test_read_rollout_says_why_a_spec_is_invalid(strategy: dict[str, Any], words: str) -> None:
    ref = read_rollout(rollout(strategy=strategy))
    assert ref.plan is None and words in ref.error, ref.error


def test_traffic_without_traffic_routings_is_ignored_as_kruise_does() -> None:
    """A step's traffic with no trafficRoutings: Kruise ignores it (traffic follows the pods); the
    Rollout is valid and protects its Deployment, it is not left Initial."""
    obj = rollout(strategy={"canary": {"steps": [{"replicas": 1, "traffic": "10%"}, {"replicas": "100%"}]}})
    ref = read_rollout(obj)
    assert ref.error == "" and ref.plan is not None
    assert [s.traffic for s in ref.plan.steps] == [None, None]


def test_a_drift_the_controller_acts_on_never_shows_the_cli_hint() -> None:
    """The template was changed (set back or a new one): until the controller signals undo or replace,
    the Rollout's status stays as it was (no `rollout approve` / `--replace` hint for Rollout users)."""
    at_step = kruise_status(
        status(
            phase=Phase.PAUSED,
            current_step_index=1,
            step_state=StepState.STEP_PAUSED,
            message="Rollout is in step(1/3), and you need manually confirm",
        ),
        current={},
        generation=1,
        workload_generation=2,
        now=NOW,
    )
    drift = status(
        phase=Phase.PAUSED,
        current_step_index=1,
        step_state=StepState.STEP_PAUSED,
        waiting_for=WaitingFor.DRIFT,
        message=Reason.DRIFT.format(what="image"),
    )
    assert kruise_status(drift, current=at_step, generation=1, workload_generation=3, now=NOW) == at_step


def test_kruise_status_while_deleted_or_disabled() -> None:
    """Kruise's Terminating and Disabling phases while the run hands the Deployment back."""
    running = status(phase=Phase.PROGRESSING, current_step_index=1, step_state=StepState.STEP_UPGRADE)
    out = kruise_status(running, current={}, generation=1, workload_generation=1, now=NOW, deleting=True)
    term = next(c for c in out["conditions"] if c["type"] == "Terminating")
    assert (out["phase"], term["status"], term["reason"], term["message"]) == (
        "Terminating",
        "True",
        "InTerminating",
        "Rollout is in terminating",
    )
    done = kruise_status(
        status(phase=Phase.COMPLETED),
        current=out,
        generation=1,
        workload_generation=1,
        now=NOW,
        deleting=True,
    )
    term = next(c for c in done["conditions"] if c["type"] == "Terminating")
    assert (done["phase"], term["status"], term["reason"]) == ("Terminating", "False", "Completed")
    off = kruise_status(running, current={}, generation=2, workload_generation=1, now=NOW, disabled=True)
    assert (off["phase"], off["message"]) == ("Disabling", "Disabling rollout, release resources")
