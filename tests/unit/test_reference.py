"""Templates by reference (security review F1): the pure checks as tables.

``held_for_rollout`` is the one write `rollout start` makes with the caller's credentials; ``check_held``
is what the worker's take-over requires of the cluster; ``input_refusal`` is what a new run refuses.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from kube.objects import template_hash
from workflows import errors
from workflows.checks import check_held, held_for_rollout
from workflows.model import RolloutSpec, StepSpec, legacy_workflow_id, target_of_workflow_id, workflow_id_for
from workflows.rollout import input_refusal

OLD = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "web:1"}]}}
NEW = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "web:2"}]}}
WID = workflow_id_for("shop", "web")


def _dep() -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}, "resourceVersion": "7"},
        "spec": {
            "replicas": 4,
            "template": copy.deepcopy(OLD),
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
        },
        "status": {"replicas": 4},
    }


def test_the_held_write() -> None:
    out = held_for_rollout(_dep(), NEW, WID, "abc")
    assert out["spec"]["template"] == NEW and out["spec"]["paused"] is True
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    ann = out["metadata"]["annotations"]
    assert ann["rollouts.temporal.io/workflow-id"] == WID
    parked = json.loads(ann["rollouts.temporal.io/original-strategy"])
    assert parked == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}
    assert out["metadata"]["labels"]["rollouts.temporal.io/stable-revision"] == "abc"
    assert out["metadata"]["resourceVersion"] == "7" and "status" not in out  # a conditional PUT
    assert check_held(out, WID, template_hash(NEW)) is None


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ("not held", errors.NOT_HELD),
        ("another rollout's hold", errors.NOT_HELD),
        ("unpaused", errors.NOT_HELD),
        ("template swapped", errors.TEMPLATE_MISMATCH),
        ("no reference", errors.TEMPLATE_MISMATCH),
    ],
)
def test_check_held_refuses(change: str, error: str) -> None:
    dep, want = held_for_rollout(_dep(), NEW, WID, "abc"), template_hash(NEW)
    if change == "not held":
        dep = _dep()
    elif change == "another rollout's hold":
        dep["metadata"]["annotations"]["rollouts.temporal.io/workflow-id"] = workflow_id_for("shop", "api")
    elif change == "unpaused":
        dep["spec"]["paused"] = False
    elif change == "template swapped":
        dep["spec"]["template"]["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    elif change == "no reference":
        want = ""
    refusal = check_held(dep, WID, want)
    assert refusal is not None and refusal.error_type == error


def _spec(**kw: Any) -> RolloutSpec:
    base: dict[str, Any] = {
        "namespace": "shop",
        "name": "web",
        "steps": [StepSpec(replicas=1)],
        "template_hash": template_hash(NEW),
    }
    return RolloutSpec(**{**base, **kw})


@pytest.mark.parametrize(
    ("spec", "wid", "error"),
    [
        (_spec(), WID, None),
        (_spec(template=NEW), WID, errors.TEMPLATE_IN_INPUT),
        (_spec(), legacy_workflow_id("shop", "web"), errors.WORKFLOW_ID_MISMATCH),
        (_spec(), workflow_id_for("kube-system", "coredns"), errors.WORKFLOW_ID_MISMATCH),
        (_spec(template_hash=""), WID, errors.TEMPLATE_MISMATCH),
        (_spec(steps=[StepSpec(replicas="150%")]), WID, errors.INVALID_ROLLOUT_SPEC),
    ],
)
def test_input_refusal(spec: RolloutSpec, wid: str, error: str | None) -> None:
    refusal = input_refusal(spec, wid)
    assert (refusal.type if refusal is not None else None) == error
    assert refusal is None or refusal.non_retryable


def test_ids_cannot_collide() -> None:
    assert legacy_workflow_id("shop", "prod-web") == legacy_workflow_id("shop-prod", "web")
    assert workflow_id_for("shop", "prod-web") != workflow_id_for("shop-prod", "web")
    assert target_of_workflow_id(workflow_id_for("shop-prod", "web")) == ("shop-prod", "web")
    assert target_of_workflow_id(legacy_workflow_id("shop", "web")) is None
