"""Unit tests for kubesim.defaults, kubesim.validation and kubesim.decoding (reference 2.1, 4)."""

from __future__ import annotations

import copy
from typing import Any

from kubesim.decoding import prune_unknown_fields
from kubesim.defaults import apply_defaults
from kubesim.validation import validate

TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {
        "containers": [
            {"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]},
            {"name": "side", "image": "envoy:1.30"},
        ]
    },
}


def test_templates_are_defaulted_identically() -> None:
    selector = {"matchLabels": {"app": "web"}}
    dep: dict[str, Any] = {"spec": {"selector": selector, "template": copy.deepcopy(TEMPLATE)}}
    rs: dict[str, Any] = {"spec": {"selector": selector, "template": copy.deepcopy(TEMPLATE)}}
    pod: dict[str, Any] = {"metadata": {"name": "p"}, "spec": copy.deepcopy(TEMPLATE["spec"])}
    apply_defaults("deployments.apps", dep)
    apply_defaults("replicasets.apps", rs)
    apply_defaults("pods", pod)
    assert dep["spec"]["template"] == rs["spec"]["template"]
    containers = rs["spec"]["template"]["spec"]["containers"]
    assert [c["imagePullPolicy"] for c in containers] == ["Always", "IfNotPresent"]
    assert containers[0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert pod["spec"]["containers"] == containers
    assert dep["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert (dep["spec"]["replicas"], rs["spec"]["replicas"]) == (1, 1)
    again: dict[str, Any] = copy.deepcopy(dep)
    apply_defaults("deployments.apps", again)
    assert again == dep  # idempotent


def test_recreate_gets_no_rolling_update_defaults() -> None:
    dep: dict[str, Any] = {"spec": {"strategy": {"type": "Recreate"}, "template": copy.deepcopy(TEMPLATE)}}
    apply_defaults("deployments.apps", dep)
    assert dep["spec"]["strategy"] == {"type": "Recreate"}


def test_service_defaults() -> None:
    svc: dict[str, Any] = {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}
    apply_defaults("services", svc, lambda: "10.96.0.42")
    assert svc["spec"]["clusterIP"] == "10.96.0.42" and svc["spec"]["clusterIPs"] == ["10.96.0.42"]
    assert svc["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert (svc["spec"]["type"], svc["spec"]["sessionAffinity"], svc["spec"]["ipFamilyPolicy"]) == (
        "ClusterIP",
        "None",
        "SingleStack",
    )


def test_validation_causes() -> None:
    rolling = {"maxSurge": "0%", "maxUnavailable": 0}
    dep: dict[str, Any] = {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": -1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": copy.deepcopy(TEMPLATE),
            "strategy": {"type": "RollingUpdate", "rollingUpdate": rolling},
        },
    }
    fields = [c[0] for c in validate("deployments.apps", dep)]
    assert fields == ["spec.replicas", "spec.strategy.rollingUpdate.maxUnavailable"]
    ok: dict[str, Any] = copy.deepcopy(dep)
    ok["spec"]["replicas"] = 1
    ok["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = 1
    assert validate("deployments.apps", ok) == []
    moved: dict[str, Any] = copy.deepcopy(ok)
    moved["spec"]["selector"] = {"matchLabels": {"app": "web", "x": "y"}}
    moved["spec"]["template"]["metadata"]["labels"]["x"] = "y"
    assert [c[0] for c in validate("deployments.apps", moved, ok)] == ["spec.selector"]


def test_prune_unknown_fields() -> None:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x", "labelz": {}},
        "spec": {
            "replicaz": 1,
            "template": {"spec": {"containers": [{"name": "c", "imagez": "i"}]}},
            "selector": {"matchLabels": {"any-key": "ok"}},
        },
    }
    assert prune_unknown_fields("Deployment", obj) == [
        "metadata.labelz",
        "spec.replicaz",
        "spec.template.spec.containers[0].imagez",
    ]
    assert obj["spec"] == {
        "template": {"spec": {"containers": [{"name": "c"}]}},
        "selector": {"matchLabels": {"any-key": "ok"}},
    }
    patch: dict[str, Any] = {
        "spec": {"$retainKeys": ["type"], "template": {"spec": {"$setElementOrder/containers": []}}}
    }
    assert prune_unknown_fields("Deployment", patch, is_patch=True) == []
    assert prune_unknown_fields("HTTPRoute", {"spec": {"anything": 1}}) == []
