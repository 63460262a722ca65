"""kruise/v1alpha1.py: Rollout conversion v1alpha1 <-> v1beta1, one row per field both versions have.

Each row: where the field is in a v1alpha1 object and its value there, where it is in v1beta1 and its
value there. Both directions are checked, and both round trips give back the object we started from.
The mapping is Kruise's (openkruise/rollouts at 9dd6279dff3549d10a26c33e9f5a537320d29d2d,
``api/v1alpha1/conversion.go``).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kruise.v1alpha1 import (
    ROLLING_STYLE,
    ROLLOUT_ID,
    TRAFFIC_ROUTING,
    V1ALPHA1,
    V1BETA1,
    ConversionError,
    convert,
    convert_review,
    to_v1alpha1,
    to_v1beta1,
)

Obj = dict[str, Any]
WORKLOAD = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "nginx"}
A_STEPS = "spec.strategy.canary.steps"
B_STEPS = "spec.strategy.canary.steps"
A_CANARY = "spec.strategy.canary"
B_CANARY = "spec.strategy.canary"
HEADERS = [{"type": "Exact", "name": "user-agent", "value": "Android"}]
MODIFIER = {"set": [{"name": "x-canary", "value": "yes"}]}
ROUTING = {
    "service": "nginx",
    "gracePeriodSeconds": 5,
    "ingress": {"classType": "nginx", "name": "nginx"},
}
GATEWAY = {"service": "nginx", "gateway": {"httpRouteName": "nginx-route"}}
CUSTOM = {
    "service": "nginx",
    "customNetworkRefs": [{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "name": "vs"}],
}
STATUS = {
    "observedGeneration": 3,
    "phase": "Progressing",
    "message": "Rollout is in step(1/3), and you need manually confirm to enter the next step",
    "conditions": [
        {
            "type": "Progressing",
            "status": "True",
            "reason": "InRolling",
            "message": "Rollout is in Progressing",
            "lastUpdateTime": "2026-12-07T20:00:00Z",
            "lastTransitionTime": "2026-12-07T20:00:00Z",
        }
    ],
    "canaryStatus": {
        "observedWorkloadGeneration": 2,
        "observedRolloutID": "r1",
        "rolloutHash": "h",
        "stableRevision": "77c4dfb67d",
        "canaryRevision": "6df54cb9b5",
        "podTemplateHash": "6df54cb9b5",
        "canaryReplicas": 1,
        "canaryReadyReplicas": 1,
        "nextStepIndex": 2,
        "currentStepIndex": 1,
        "currentStepState": "StepPaused",
        "message": "BatchRelease is at state Ready, rollout-id , step 1",
        "lastUpdateTime": "2026-12-07T20:00:01Z",
        "finalisingStep": "",
    },
}


def alpha(**spec: Any) -> Obj:
    return {
        "apiVersion": V1ALPHA1,
        "kind": "Rollout",
        "metadata": {"name": "r", "namespace": "default", "annotations": {ROLLING_STYLE: "partition"}},
        "spec": {
            "objectRef": {"workloadRef": dict(WORKLOAD)},
            "strategy": {"canary": {"steps": [{"replicas": 1}]}},
            **spec,
        },
    }


def beta(**spec: Any) -> Obj:
    return {
        "apiVersion": V1BETA1,
        "kind": "Rollout",
        "metadata": {"name": "r", "namespace": "default"},
        "spec": {
            "workloadRef": dict(WORKLOAD),
            "strategy": {"canary": {"steps": [{"replicas": 1}]}},
            **spec,
        },
    }


def keys_of(path: str) -> list[str]:
    """``a.b.c``; a key with dots in it (an annotation) follows a colon: ``metadata.annotations:k.io/x``."""
    head, _, last = path.partition(":")
    return head.split(".") + ([last] if last else [])


def put(obj: Obj, path: str, value: Any) -> Obj:
    keys = keys_of(path)
    node = obj
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = copy.deepcopy(value)
    return obj


def get(obj: Obj, path: str) -> Any:
    node: Any = obj
    for key in keys_of(path):
        node = node.get(key) if isinstance(node, dict) else None
    return node


# (case, v1alpha1 path, v1alpha1 value, v1beta1 path, v1beta1 value)
FIELDS: list[tuple[str, str, Any, str, Any]] = [
    ("workloadRef", "spec.objectRef.workloadRef", WORKLOAD, "spec.workloadRef", WORKLOAD),
    ("disabled", "spec.disabled", True, "spec.disabled", True),
    ("paused", "spec.strategy.paused", True, "spec.strategy.paused", True),
    ("replicas count", A_STEPS, [{"replicas": 1}], B_STEPS, [{"replicas": 1}]),
    ("replicas percent", A_STEPS, [{"replicas": "50%"}], B_STEPS, [{"replicas": "50%"}]),
    (
        "pause",
        A_STEPS,
        [{"replicas": 1, "pause": {}}, {"replicas": "100%", "pause": {"duration": 10}}],
        B_STEPS,
        [{"replicas": 1, "pause": {}}, {"replicas": "100%", "pause": {"duration": 10}}],
    ),
    (
        "weight is traffic",
        A_STEPS,
        [{"weight": 20, "replicas": 1}],
        B_STEPS,
        [{"traffic": "20%", "replicas": 1}],
    ),
    (
        "header matches",
        A_STEPS,
        [{"replicas": 1, "matches": [{"headers": HEADERS}]}],
        B_STEPS,
        [{"replicas": 1, "matches": [{"headers": HEADERS}]}],
    ),
    (
        "requestHeaderModifier",
        A_STEPS,
        [{"replicas": 1, "requestHeaderModifier": MODIFIER}],
        B_STEPS,
        [{"replicas": 1, "requestHeaderModifier": MODIFIER}],
    ),
    ("ingress routing", f"{A_CANARY}.trafficRoutings", [ROUTING], f"{B_CANARY}.trafficRoutings", [ROUTING]),
    ("gateway routing", f"{A_CANARY}.trafficRoutings", [GATEWAY], f"{B_CANARY}.trafficRoutings", [GATEWAY]),
    ("custom routing", f"{A_CANARY}.trafficRoutings", [CUSTOM], f"{B_CANARY}.trafficRoutings", [CUSTOM]),
    ("failureThreshold", f"{A_CANARY}.failureThreshold", "20%", f"{B_CANARY}.failureThreshold", "20%"),
    (
        "patchPodTemplateMetadata",
        f"{A_CANARY}.patchPodTemplateMetadata",
        {"labels": {"canary": "yes"}, "annotations": {"a": "b"}},
        f"{B_CANARY}.patchPodTemplateMetadata",
        {"labels": {"canary": "yes"}, "annotations": {"a": "b"}},
    ),
    (
        "disableGenerateCanaryService",
        f"{A_CANARY}.disableGenerateCanaryService",
        True,
        f"{B_CANARY}.disableGenerateCanaryService",
        True,
    ),
    (
        "rolling style canary",
        f"metadata.annotations:{ROLLING_STYLE}",
        "canary",
        f"{B_CANARY}.enableExtraWorkloadForCanary",
        True,
    ),
    (
        "trafficRoutingRef",
        f"metadata.annotations:{TRAFFIC_ROUTING}",
        "tr-demo",
        f"{B_CANARY}.trafficRoutingRef",
        "tr-demo",
    ),
    ("status", "status", STATUS, "status", STATUS),
]


@pytest.mark.parametrize(
    ("a_path", "a_value", "b_path", "b_value"), [f[1:] for f in FIELDS], ids=[f[0] for f in FIELDS]
)
def test_field_converts_both_ways_and_round_trips(
    a_path: str, a_value: Any, b_path: str, b_value: Any
) -> None:
    a = put(alpha(), a_path, a_value)
    b = put(beta(), b_path, b_value)
    assert get(to_v1beta1(a), b_path) == b_value
    assert get(to_v1alpha1(b), a_path) == a_value
    assert to_v1alpha1(to_v1beta1(a)) == a
    assert to_v1beta1(to_v1alpha1(b)) == b


def test_whole_objects_convert_to_each_other() -> None:
    a = put(put(alpha(), A_STEPS, [{"weight": 20, "replicas": 1, "pause": {}}]), "status", STATUS)
    b = put(put(beta(), B_STEPS, [{"traffic": "20%", "replicas": 1, "pause": {}}]), "status", STATUS)
    assert to_v1beta1(a) == b
    assert to_v1alpha1(b) == a


def test_weight_without_replicas_sizes_the_canary_as_in_kruise() -> None:
    """v1alpha1's weight alone also set the canary's size; v1beta1 says both."""
    b = to_v1beta1(put(alpha(), A_STEPS, [{"weight": 20}]))
    assert get(b, B_STEPS) == [{"traffic": "20%", "replicas": "20%"}]
    assert get(to_v1alpha1(b), A_STEPS) == [{"weight": 20, "replicas": "20%"}]


def test_no_rolling_style_annotation_is_the_canary_style_as_in_kruise() -> None:
    a = alpha()
    del a["metadata"]["annotations"]
    b = to_v1beta1(a)
    assert get(b, f"{B_CANARY}.enableExtraWorkloadForCanary") is True
    assert to_v1alpha1(b)["metadata"]["annotations"] == {ROLLING_STYLE: "canary"}


def test_rollout_id_has_no_v1beta1_home_and_survives_a_round_trip() -> None:
    """Kruise drops v1alpha1's spec.rolloutID; here it rides on the stored object as an annotation."""
    a = put(alpha(), "spec.rolloutID", "release-7")
    b = to_v1beta1(a)
    assert "rolloutID" not in b["spec"]
    assert b["metadata"]["annotations"][ROLLOUT_ID] == "release-7"
    assert to_v1alpha1(b) == a


def test_blue_green_has_no_v1alpha1_home_and_survives_a_round_trip() -> None:
    b = beta()
    b["spec"]["strategy"] = {"blueGreen": {"steps": [{"replicas": "100%"}]}}
    a = to_v1alpha1(b)
    assert "blueGreen" not in a["spec"]["strategy"]
    assert to_v1beta1(a) == b


def test_percent_traffic_rounds_up_to_a_weight() -> None:
    b = put(beta(), B_STEPS, [{"traffic": "12.5%", "replicas": 1}])
    assert get(to_v1alpha1(b), A_STEPS) == [{"weight": 13, "replicas": 1}]


def test_review_converts_every_object_and_keeps_the_uid() -> None:
    review = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {"uid": "u1", "desiredAPIVersion": V1ALPHA1, "objects": [beta(), alpha()]},
    }
    response = convert_review(review)["response"]
    assert response["uid"] == "u1" and response["result"] == {"status": "Success"}
    assert response["convertedObjects"] == [alpha(), alpha()]


def test_review_of_something_else_fails_with_a_reason() -> None:
    review = {"request": {"uid": "u2", "desiredAPIVersion": "rollouts.kruise.io/v2", "objects": [beta()]}}
    response = convert_review(review)["response"]
    assert response["result"]["status"] == "Failure"
    assert "rollouts.kruise.io/v2" in response["result"]["message"]
    with pytest.raises(ConversionError):
        convert({**beta(), "kind": "BatchRelease"}, V1ALPHA1)
