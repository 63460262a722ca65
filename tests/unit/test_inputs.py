"""Input parsing (Kruise manifests, --image) and the camelCase wire format of the models."""

from __future__ import annotations

import re

import pytest
import yaml

from cli.inputs import apply_images, parse_images
from kruise.manifest import parse_kruise_rollout
from workflows.errors import InputError
from workflows.model import ApproveSignal, Phase, RolloutStatus, StepSpec, UndoSignal

SEED_ROLLOUT = """
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata: {name: rollouts-nginx, namespace: default}
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: nginx}
  strategy:
    canary:
      enableExtraWorkloadForCanary: false
      failureThreshold: 20%
      steps:
      - replicas: 1
      - replicas: 50%
        pause: {duration: 60}
      - replicas: 100%
"""


def test_seed_kruise_rollout() -> None:
    kp = parse_kruise_rollout(yaml.safe_load(SEED_ROLLOUT), "r.yaml")
    assert kp.deployment == "nginx" and kp.namespace == "default"
    assert kp.steps == [
        StepSpec(replicas=1),
        StepSpec(replicas="50%", pause_seconds=60),
        StepSpec(replicas="100%"),
    ]
    assert kp.failure_threshold == "20%"


def test_kruise_workload_must_be_deployment() -> None:
    doc = yaml.safe_load(SEED_ROLLOUT.replace("kind: Deployment", "kind: StatefulSet"))
    with pytest.raises(InputError, match="must name an apps/v1 Deployment"):
        parse_kruise_rollout(doc, "r.yaml")


def test_images() -> None:
    assert parse_images(["nginx=nginx:1.27", " side = busybox:1 "]) == {
        "nginx": "nginx:1.27",
        "side": "busybox:1",
    }
    template = {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.26"}]}}
    new = apply_images(template, {"nginx": "nginx:1.27"}, "nginx")
    assert new["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert template["spec"]["containers"][0]["image"] == "nginx:1.26"  # the input is not modified
    with pytest.raises(
        InputError, match='container "php" not found in deployment "nginx" \\(containers: nginx\\)'
    ):
        apply_images(template, {"php": "php:8"}, "nginx")


def test_models_speak_camel_case_and_accept_both() -> None:
    st = RolloutStatus(
        namespace="default", name="nginx", workflow_id="rollout-default-nginx", current_step_index=1
    )
    data = st.model_dump(mode="json")
    assert data["workflowId"] == "rollout-default-nginx" and data["currentStepIndex"] == 1
    assert data["phase"] == Phase.PROGRESSING.value and data["stepState"] == "StepUpgrade"
    assert RolloutStatus.model_validate(data) == st
    # Signal payloads as typed in the Temporal UI or `temporal workflow signal`.
    assert ApproveSignal.model_validate({"step": 2, "by": "ops"}) == ApproveSignal(step=2, by="ops")
    assert ApproveSignal.model_validate({}) == ApproveSignal()
    assert UndoSignal.model_validate({"by": "ops", "reason": "5xx"}).reason == "5xx"
    assert StepSpec.model_validate({"replicas": "50%", "pause_seconds": 5}).pause_seconds == 5


TRAFFIC_ROLLOUT = """
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata: {name: rollouts-nginx}
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: nginx}
  strategy:
    canary:
      progressDeadlineSeconds: 120
      autoRollback: true
      steps:
      - replicas: 1
        traffic: 5%
        matches:
        - headers: [{type: Exact, name: X-Canary, value: "true"}]
      - replicas: 50%
        traffic: 50%
      - replicas: 100%
      trafficRoutings:
      - service: nginx
        gracePeriodSeconds: 1
        ingress: {classType: nginx, name: nginx}
"""


def test_kruise_rollout_with_traffic_and_extensions() -> None:
    kp = parse_kruise_rollout(yaml.safe_load(TRAFFIC_ROLLOUT), "r.yaml")
    assert kp.routing is not None
    assert (kp.routing.service, kp.routing.grace_period_seconds) == ("nginx", 1)
    assert kp.routing.ingress is not None and kp.routing.ingress.name == "nginx"
    assert [s.traffic.weight if s.traffic else None for s in kp.steps] == [5, 50, None]
    first = kp.steps[0].traffic
    assert first is not None and first.matches[0].headers[0].name == "X-Canary"
    assert (kp.progress_deadline_seconds, kp.auto_rollback) == (120, True)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("autoRollback: true", "autoRollback: yes please", "autoRollback must be true or false"),
        ("progressDeadlineSeconds: 120", "progressDeadlineSeconds: 0", "must be a positive integer"),
        ("traffic: 5%", "traffic: 5", "traffic must be a percentage string"),
        (
            "replicas: 50%\n        traffic: 50%",
            "replicas: 80%\n        traffic: 50%",
            "partition-percent-limit",
        ),
        ("classType: nginx", "classType: alb", "is not supported (only nginx)"),
        (
            "        ingress:",
            "        customNetworkRefs: []\n        ingress:",
            "unsupported field(s) customNetworkRefs",
        ),
    ],
)
def test_kruise_rollout_traffic_rejects(old: str, new: str, message: str) -> None:
    assert old in TRAFFIC_ROLLOUT
    with pytest.raises(InputError, match=r"^r\.yaml: .*" + re.escape(message)):
        parse_kruise_rollout(yaml.safe_load(TRAFFIC_ROLLOUT.replace(old, new)), "r.yaml")
