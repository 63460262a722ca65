"""Kruise's bookkeeping of a running release (``kruise/bookkeeping.py``) and the status kept while a
Rollout is disabled or deleted, as tables."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from kruise.bookkeeping import canary_counts, counts_patch, deployment_marks, extra_status, marks_patch
from kruise.status import kruise_status
from kube.names import KRUISE_ANN_DEPLOYMENT_STRATEGY as STRATEGY
from kube.names import KRUISE_ANN_EXTRA_STATUS as EXTRA
from workflows.model import Phase, RolloutStatus, StepSpec, StepState

NOW = datetime(2026, 1, 1, tzinfo=UTC)
HELD = json.dumps({"rollingStyle": "Partition", "rollingUpdate": {}, "paused": False, "partition": 0})
STEPS = [StepSpec(replicas=1), StepSpec(replicas="50%"), StepSpec(replicas="100%")]


def status(index: int = 1, **kw: Any) -> RolloutStatus:
    return RolloutStatus(
        namespace="ns", name="nginx", workflow_id="rollout/ns/nginx", current_step_index=index, total_steps=3,
        steps=STEPS, **kw,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("ready", "expected", "text"),
    [
        (0, 0, "{}"),
        (0, 1, '{"expectedUpdatedReplicas":1}'),
        (2, 5, '{"updatedReadyReplicas":2,"expectedUpdatedReplicas":5}'),
    ],
)
def test_extra_status_is_go_json_with_zeros_left_out(ready: int, expected: int, text: str) -> None:
    assert extra_status(ready, expected) == text


@pytest.mark.parametrize(
    ("index", "replicas", "ready", "partition", "extra"),
    [
        (0, 10, 0, 0, {}),  # taken over, no step yet
        (1, 10, 0, 1, {"expectedUpdatedReplicas": 1}),
        (1, 10, 1, 1, {"updatedReadyReplicas": 1, "expectedUpdatedReplicas": 1}),
        (2, 10, 3, "50%", {"updatedReadyReplicas": 3, "expectedUpdatedReplicas": 5}),
        (
            2,
            3,
            1,
            "50%",
            {"updatedReadyReplicas": 1, "expectedUpdatedReplicas": 2},
        ),  # NewRSReplicasLimit: ceil
        (3, 4, 4, "100%", {"updatedReadyReplicas": 4, "expectedUpdatedReplicas": 4}),
    ],
)
def test_deployment_marks_follow_the_step(
    index: int, replicas: int, ready: int, partition: int | str, extra: dict[str, int]
) -> None:
    marks = deployment_marks({STRATEGY: HELD}, status(index), replicas, ready)
    strategy = json.loads(marks.get(STRATEGY, HELD))
    assert strategy["partition"] == partition
    assert strategy["rollingStyle"] == "Partition"  # the rest of the strategy as the webhook wrote it
    assert json.loads(marks[EXTRA]) == extra
    # written again only when something changed
    assert (
        deployment_marks(
            {STRATEGY: marks.get(STRATEGY, HELD), EXTRA: marks[EXTRA]}, status(index), replicas, ready
        )
        == {}
    )


def test_no_marks_on_a_deployment_not_held_as_kruise_holds_it() -> None:
    assert deployment_marks({}, status(1), 10, 1) == {}


def test_marks_patch_only_while_the_run_holds_the_deployment() -> None:
    ops = marks_patch({EXTRA: "{}"}, "rollout/ns/nginx")
    assert ops[0] == {
        "op": "test",
        "path": "/metadata/annotations/rollouts.temporal.io~1workflow-id",
        "value": "rollout/ns/nginx",
    }
    assert ops[1] == {
        "op": "add",
        "path": "/metadata/annotations/rollouts.kruise.io~1deployment-extra-status",
        "value": "{}",
    }


def test_canary_counts_are_created_and_ready_pods() -> None:
    """A canary pod that exists but is not ready counts in canaryReplicas (not in the ready count); the
    ReplicaSet's spec (pods asked for, maybe not created yet) does not."""
    rs = {"spec": {"replicas": 2}, "status": {"replicas": 1, "readyReplicas": 0}}
    assert canary_counts(rs) == (1, 0)
    assert canary_counts(None) == (0, 0)
    stored = {"canaryReplicas": 0, "canaryReadyReplicas": 0, "observedWorkloadGeneration": 3}
    assert counts_patch(stored, (1, 0), 3) == {
        "status": {
            "canaryStatus": {"canaryReplicas": 1, "canaryReadyReplicas": 0, "observedWorkloadGeneration": 3}
        }
    }
    current = {"canaryReplicas": 1, "canaryReadyReplicas": 0, "observedWorkloadGeneration": 3}
    assert counts_patch(current, (1, 0), 3) is None
    # an annotation write bumped the Deployment's generation: followed, as Kruise does
    assert counts_patch(current, (1, 0), 4) == {
        "status": {
            "canaryStatus": {"canaryReplicas": 1, "canaryReadyReplicas": 0, "observedWorkloadGeneration": 4}
        }
    }


def test_kruise_status_writes_the_live_counts() -> None:
    st = status(1, step_state=StepState.STEP_UPGRADE, canary_replicas=0, canary_ready_replicas=0)
    out = kruise_status(st, current={}, generation=1, workload_generation=1, now=NOW, counts=(1, 0))
    assert (out["canaryStatus"]["canaryReplicas"], out["canaryStatus"]["canaryReadyReplicas"]) == (1, 0)


@pytest.mark.parametrize("how", ["disabled", "deleting"])
def test_disabled_or_deleted_keeps_the_step_it_stopped_at(how: str) -> None:
    """Kruise's finalising leaves canaryStatus as it was: Argo CD then reads Disabled + StepPaused as
    Degraded. The run finishing the release (promote-full) does not move the step shown."""
    paused = kruise_status(
        status(1, phase=Phase.PAUSED, step_state=StepState.STEP_PAUSED),
        current={}, generation=1, workload_generation=1, now=NOW,
    )  # fmt: skip
    finishing = status(3, phase=Phase.COMPLETED, step_state=StepState.COMPLETED)
    out = kruise_status(
        finishing, current=paused, generation=2, workload_generation=1, now=NOW, **{how: True}
    )
    assert (out["currentStepIndex"], out["currentStepState"]) == (1, "StepPaused")
    assert (out["canaryStatus"]["currentStepIndex"], out["canaryStatus"]["currentStepState"]) == (
        1,
        "StepPaused",
    )
    assert out["canaryStatus"]["nextStepIndex"] == 2
    # with nothing stored yet, the run's own step is shown
    fresh = kruise_status(finishing, current={}, generation=2, workload_generation=1, now=NOW, **{how: True})
    assert fresh["canaryStatus"]["currentStepState"] == "Completed"
