"""openkruise/rollouts' validating webhook tables, ported: ``TestRolloutValidateCreate`` and
``TestRolloutValidateUpdate`` (pkg/webhook/rollout/validating/rollout_create_update_handler_test.go at
openkruise/rollouts commit 9dd6279dff3549d10a26c33e9f5a537320d29d2d), run against
``declarative/validation.py``. Case names and expected outcomes are upstream's; the inputs are their
fixture Rollout with each case's change. The upstream test leaves ``PartitionReplicasLimitWithTraffic``
at 30 after its first case (it restores 30, not the flag's 50), so the ``replicasLimitWithTraffic``
cases run with the limit they really ran with.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from declarative.validation import aggregate, validate_create, validate_update

Obj = dict[str, Any]


def base() -> Obj:
    """Upstream's fixture ``rollout`` (v1beta1)."""
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": "rollout-demo", "namespace": "namespace-unit-test", "annotations": {}},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "deployment-demo"},
            "strategy": {
                "canary": {
                    "steps": [
                        {"traffic": "10%", "replicas": 1, "pause": {}},
                        {"traffic": "10%", "replicas": 3, "pause": {"duration": 86400}},
                        {"traffic": "30%", "replicas": 10, "pause": {"duration": 604800}},
                        {"traffic": "100%", "replicas": 20},
                    ],
                    "trafficRoutings": [
                        {
                            "service": "service-demo",
                            "ingress": {"classType": "nginx", "name": "ingress-nginx-demo"},
                        }
                    ],
                }
            },
        },
        "status": {"canaryStatus": {"currentStepState": "Completed"}},
    }


def change(fn: Callable[[Obj], None]) -> Obj:
    obj = base()
    fn(obj)
    return obj


def canary(obj: Obj) -> Obj:
    return obj["spec"]["strategy"]["canary"]  # type: ignore[no-any-return]


def named(rollout: str, **ref: str) -> Obj:
    obj = base()
    obj["metadata"]["name"] = rollout
    obj["spec"]["workloadRef"].update(ref)
    return obj


def _set(path: list[Any], value: Any) -> Callable[[Obj], None]:
    def fn(obj: Obj) -> None:
        target = obj
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return fn


STEPS = ["spec", "strategy", "canary", "steps"]
LAST = 3
CLONESET_API = "apps.kruise.io/v1alpha1"


def last_replicas(value: str) -> Obj:
    return change(_set([*STEPS, LAST, "replicas"], value))


# (upstream case name, expected to succeed, the object, the other Rollouts, partition limit)
CREATE: list[tuple[str, bool, Obj, list[Obj], int]] = [
    ("Normal case", True, base(), [], 50),
    ("Canary is nil", False, change(_set(["spec", "strategy", "canary"], None)), [], 30),
    (
        "Service name is empty",
        False,
        change(lambda o: canary(o)["trafficRoutings"][0].update(service="")),
        [],
        30,
    ),
    (
        "Nginx ingress name is empty",
        False,
        change(lambda o: canary(o)["trafficRoutings"][0]["ingress"].update(name="")),
        [],
        30,
    ),
    ("Steps is empty", False, change(_set(STEPS, [])), [], 30),
    (
        "WorkloadRef is not Deployment kind",
        True,
        change(
            _set(
                ["spec", "workloadRef"], {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "whatever"}
            )
        ),
        [],
        30,
    ),
    ("Steps.Traffic is a decreasing sequence", False, change(_set([*STEPS, 2, "traffic"], "%5")), [], 30),
    ("Steps.Replicas is illegal value, '50'", False, change(_set([*STEPS, 1, "replicas"], "50")), [], 30),
    ("Steps.Replicas is illegal value, '101%'", False, change(_set([*STEPS, 1, "replicas"], "101%")), [], 30),
    ("Steps.Replicas is illegal value, '0%'", False, change(_set([*STEPS, 1, "replicas"], "0%")), [], 30),
    ("Steps.Traffic is illegal value, 0", False, change(_set([*STEPS, 1, "traffic"], "0%")), [], 30),
    ("Steps.Traffic is illegal value, 101", False, change(_set([*STEPS, 1, "traffic"], "101%")), [], 30),
    (
        "Canary rolling style",
        True,
        change(lambda o: canary(o).update(enableExtraWorkloadForCanary=True)),
        [],
        30,
    ),
    ("Partition rolling style", True, base(), [], 30),
    (
        "matched rolling style",
        True,
        change(
            lambda o: (
                canary(o).update(enableExtraWorkloadForCanary=True),
                o["spec"]["workloadRef"].update(apiVersion=CLONESET_API, kind="CloneSet"),
            )
        ),
        [],
        30,
    ),
    ("test with replicasLimitWithTraffic - 1", True, last_replicas("30%"), [], 30),
    ("test with replicasLimitWithTraffic - 2", False, last_replicas("31%"), [], 30),
    (
        "test with replicasLimitWithTraffic - 2 - canary style",
        True,
        change(
            lambda o: (
                canary(o).update(enableExtraWorkloadForCanary=True),
                _set([*STEPS, LAST, "replicas"], "31%")(o),
            )
        ),
        [],
        30,
    ),
    (
        "test with replicasLimitWithTraffic - 2 - cloneset",
        False,
        change(
            lambda o: (
                _set(
                    ["spec", "workloadRef"],
                    {"apiVersion": CLONESET_API, "kind": "CloneSet", "name": "whatever"},
                )(o),
                _set([*STEPS, LAST, "replicas"], "31%")(o),
            )
        ),
        [],
        30,
    ),
    ("test with replicasLimitWithTraffic - 3", True, last_replicas("100%"), [], 100),
    ("test with replicasLimitWithTraffic - 4", False, last_replicas("51%"), [], 50),
    (
        "Without conflict",
        True,
        base(),
        [
            base(),
            named("object-1", name="another"),
            named("object-2", apiVersion="another"),
            named("object-3", kind="another"),
        ],
        30,
    ),
    (
        "With conflict",
        False,
        base(),
        [
            base(),
            named("object-1", name="another"),
            named("object-2", apiVersion="another"),
            named("object-3", kind="another"),
            named("object-4"),
        ],
        30,
    ),
]


@pytest.mark.parametrize(("case", "succeed", "obj", "others", "limit"), CREATE, ids=[c[0] for c in CREATE])
def test_rollout_validate_create(case: str, succeed: bool, obj: Obj, others: list[Obj], limit: int) -> None:
    errors = validate_create(obj, others, partition_percent_limit=limit)
    assert (not errors) == succeed, errors


def progressing(obj: Obj, phase: str = "Progressing") -> Obj:
    obj["status"]["phase"] = phase
    return obj


UPDATE: list[tuple[str, bool, Obj, Obj]] = [
    ("Normal case", True, base(), change(_set([*STEPS, 0, "traffic"], "5%"))),
    (
        "Rollout is progressing, but spec not changed",
        True,
        progressing(base()),
        change(lambda o: (progressing(o), o["status"]["canaryStatus"].update(currentStepIndex=1))),
    ),
    (
        "Rollout is progressing, and spec changed",
        True,
        progressing(base()),
        change(lambda o: (progressing(o), _set([*STEPS, 0, "traffic"], "5%")(o))),
    ),
    (
        "Rollout is progressing, and rolling style changed",
        False,
        progressing(base()),
        change(lambda o: (progressing(o), canary(o).update(enableExtraWorkloadForCanary=True))),
    ),
    (
        "Rollout is terminating, and spec changed",
        False,
        progressing(base(), "Terminating"),
        change(
            lambda o: (
                progressing(o, "Terminating"),
                canary(o)["trafficRoutings"][0]["ingress"].update(classType="alb"),
            )
        ),
    ),
    (
        "Rollout is initial, and spec changed",
        True,
        progressing(base(), "Initial"),
        change(lambda o: (progressing(o, "Initial"), _set([*STEPS, 0, "traffic"], "5%")(o))),
    ),
    (
        "Rollout is healthy, and spec changed",
        True,
        progressing(base(), "Healthy"),
        change(lambda o: (progressing(o, "Healthy"), _set([*STEPS, 0, "traffic"], "5%")(o))),
    ),
    (
        "Rollout canary state: paused -> completed",
        True,
        change(lambda o: o["status"]["canaryStatus"].update(currentStepState="StepPaused")),
        base(),
    ),
    ("Rollout canary state: completed -> completed", True, base(), base()),
]


@pytest.mark.parametrize(("case", "succeed", "old", "new"), UPDATE, ids=[c[0] for c in UPDATE])
def test_rollout_validate_update(case: str, succeed: bool, old: Obj, new: Obj) -> None:
    errors = validate_update(old, new, [old])
    assert (not errors) == succeed, errors


# Our own: the texts (Kruise's words, field paths and the apiserver's aggregate).
TEXTS: list[tuple[str, Obj, list[Obj], str]] = [
    (
        "conflict",
        base(),
        [named("first")],
        'Conflict Checker: Invalid value: "rollout-demo": This rollout conflict with '
        "Rollout(namespace-unit-test/first), one workload only have less than one Rollout",
    ),
    (
        "replicas",
        change(_set([*STEPS, 1, "replicas"], "101%")),
        [],
        'Spec.Strategy.Canary.Steps[1].Replicas: Invalid value: "101%": replicas must be positive number, '
        'or a percentage with "0%" < canaryReplicas <= "100%"',
    ),
    (
        "decreasing",
        change(lambda o: canary(o).update(steps=[{"replicas": "50%"}, {"replicas": "20%"}])),
        [],
        "Spec.Strategy.Canary.Steps.CanaryReplicas: Invalid value: "
        '[{"replicas":"50%"},{"replicas":"20%"}]: Steps.CanaryReplicas must be a non decreasing sequence',
    ),
    (
        "two errors",
        change(lambda o: canary(o)["trafficRoutings"][0].update(service="", ingress=None)),
        [],
        '[Spec.Strategy.Canary.TrafficRouting.Service: Invalid value: "": TrafficRouting.Service cannot '
        "be empty, Spec.Strategy.Canary.TrafficRouting.TrafficRoutings: Invalid value: null: "
        "TrafficRoutings are not set]",
    ),
]


@pytest.mark.parametrize(("case", "obj", "others", "text"), TEXTS, ids=[c[0] for c in TEXTS])
def test_refusal_texts(case: str, obj: Obj, others: list[Obj], text: str) -> None:
    assert aggregate(validate_create(obj, others)) == text


def test_frozen_while_progressing_texts() -> None:
    old = progressing(base())
    fewer = copy.deepcopy(old)
    canary(fewer)["steps"] = canary(fewer)["steps"][:3]
    assert validate_update(old, fewer, []) == [
        "Spec.Strategy.Canary|BlueGreen: Forbidden: Amount of Rollout steps are immutable"
    ]
    moved = copy.deepcopy(old)
    moved["spec"]["workloadRef"]["name"] = "other"
    assert validate_update(old, moved, []) == [
        "Spec.ObjectRef: Forbidden: Rollout 'ObjectRef' field is immutable"
    ]
