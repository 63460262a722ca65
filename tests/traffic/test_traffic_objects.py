"""Pure tables for workflows/traffic_objects.py: desired Services, canary Ingress, HTTPRoute, restores."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from kube.names import CANARY_OF_ANNOTATION, MANAGED_BY_LABEL, ORIGINAL_SELECTOR_ANNOTATION
from workflows.model import HeaderMatch, HttpRouteMatch, PathMatch, QueryParamMatch
from workflows.traffic import COOKIE_HEADER_NAME
from workflows.traffic_objects import (
    canary_ingress,
    canary_service,
    httproute_routes_to,
    httproute_with_canary,
    ingress_routes_to,
    is_ours,
    nginx_canary_annotations,
    original_selector,
    restored_httproute,
    restored_stable_service,
    stable_service,
)

Obj = dict[str, Any]
NG = "nginx.ingress.kubernetes.io/"


def service() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "nginx",
            "namespace": "default",
            "resourceVersion": "7",
            "uid": "u1",
            "labels": {"app": "nginx"},
            "annotations": {"team": "web", "kubectl.kubernetes.io/last-applied-configuration": "{}"},
        },
        "spec": {
            "type": "NodePort",
            "selector": {"app": "nginx"},
            "clusterIP": "10.96.0.10",
            "clusterIPs": ["10.96.0.10"],
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "externalIPs": ["1.2.3.4"],
            "sessionAffinity": "None",
            "ports": [{"name": "http", "port": 80, "targetPort": 80, "protocol": "TCP", "nodePort": 30080}],
        },
        "status": {"loadBalancer": {}},
    }


def ingress() -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "resourceVersion": "9",
            "labels": {"app": "nginx"},
            "annotations": {NG + "rewrite-target": "/", NG + "canary-weight": "33"},
        },
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": ["web.example.com"], "secretName": "web-tls"}],
            "rules": [
                {
                    "host": "web.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "nginx", "port": {"number": 80}}},
                            },
                            {
                                "path": "/api",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "api", "port": {"number": 8080}}},
                            },
                        ]
                    },
                },
                {
                    "host": "other.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "other", "port": {"number": 80}}},
                            }
                        ]
                    },
                },
            ],
        },
    }


def route() -> Obj:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "web", "namespace": "default", "resourceVersion": "11"},
        "spec": {
            "parentRefs": [{"name": "gw"}],
            "hostnames": ["web.example.com"],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [{"name": "nginx", "port": 80}],
                },
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                    "backendRefs": [{"name": "api", "port": 8080}],
                },
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/mix"}}],
                    "backendRefs": [
                        {"name": "nginx", "port": 80, "weight": 3},
                        {"name": "legacy", "port": 80, "weight": 1},
                    ],
                },
            ],
        },
    }


HEADER = HttpRouteMatch(headers=[HeaderMatch(name="X-Canary", value="true")])
REGEX = HttpRouteMatch(
    headers=[HeaderMatch(type="RegularExpression", name="User-Agent", value=".*Android.*")]
)
COOKIE = HttpRouteMatch(headers=[HeaderMatch(name=COOKIE_HEADER_NAME, value="canary")])


# --- stable Service ---------------------------------------------------------------------------------------


def test_stable_service_adds_hash_and_parks_selector() -> None:
    src = service()
    out = stable_service(src, "abc123")
    assert out["spec"]["selector"] == {"app": "nginx", "pod-template-hash": "abc123"}
    assert json.loads(out["metadata"]["annotations"][ORIGINAL_SELECTOR_ANNOTATION]) == {"app": "nginx"}
    assert original_selector(out) == {"app": "nginx"}
    assert src == service()  # input not mutated
    # Idempotent: a second call keeps the user's selector parked, not the narrowed one.
    again = stable_service(out, "abc123")
    assert again == out
    # Everything but selector and our annotation is untouched.
    for o in (out, src):
        o["spec"].pop("selector")
        o["metadata"]["annotations"].pop(ORIGINAL_SELECTOR_ANNOTATION, None)
    assert out == src


def test_restored_stable_service_is_byte_equal() -> None:
    src = service()
    narrowed = stable_service(src, "abc123")
    restored = restored_stable_service(narrowed, {"app": "nginx"})
    assert json.dumps(restored, sort_keys=False) == json.dumps(src, sort_keys=False)
    assert original_selector(restored) is None


def test_restored_stable_service_drops_empty_annotations() -> None:
    src = service()
    del src["metadata"]["annotations"]
    restored = restored_stable_service(stable_service(src, "h"), {"app": "nginx"})
    assert restored == src


# --- canary Service ---------------------------------------------------------------------------------------


def test_canary_service_copy_without_allocated_fields() -> None:
    owner = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "nginx", "uid": "d1"}
    out = canary_service(service(), "def456", owner=owner)
    assert out["metadata"]["name"] == "nginx-canary"
    assert out["metadata"]["namespace"] == "default"
    assert out["metadata"]["labels"] == {"app": "nginx", MANAGED_BY_LABEL: "temporal-rollouts"}
    assert out["metadata"]["annotations"] == {"team": "web", CANARY_OF_ANNOTATION: "nginx"}
    assert out["metadata"]["ownerReferences"] == [owner]
    assert "resourceVersion" not in out["metadata"] and "uid" not in out["metadata"]
    assert out["spec"] == {
        "type": "NodePort",
        "selector": {"app": "nginx", "pod-template-hash": "def456"},
        "sessionAffinity": "None",
        "ports": [{"name": "http", "port": 80, "targetPort": 80, "protocol": "TCP"}],
    }
    assert "status" not in out
    assert is_ours(out) and not is_ours(service())


def test_canary_service_from_narrowed_stable_uses_original_selector() -> None:
    narrowed = stable_service(service(), "abc")
    out = canary_service(narrowed, "def")
    assert out["spec"]["selector"] == {"app": "nginx", "pod-template-hash": "def"}
    assert ORIGINAL_SELECTOR_ANNOTATION not in out["metadata"]["annotations"]
    assert "ownerReferences" not in out["metadata"]


# --- nginx canary Ingress ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "weight,matches,expected",
    [
        (5, [], {"canary": "true", "canary-weight": "5"}),
        (None, [], {"canary": "true", "canary-weight": "0"}),
        (0, [], {"canary": "true", "canary-weight": "0"}),
        (
            None,
            [HEADER],
            {"canary": "true", "canary-by-header": "X-Canary", "canary-by-header-value": "true"},
        ),
        (
            None,
            [REGEX],
            {"canary": "true", "canary-by-header": "User-Agent", "canary-by-header-pattern": ".*Android.*"},
        ),
        (None, [COOKIE], {"canary": "true", "canary-by-cookie": "canary"}),
        (
            20,
            [HEADER, COOKIE],
            {
                "canary": "true",
                "canary-weight": "20",
                "canary-by-header": "X-Canary",
                "canary-by-header-value": "true",
                "canary-by-cookie": "canary",
            },
        ),
    ],
)
def test_nginx_canary_annotations(
    weight: int | None, matches: list[HttpRouteMatch], expected: dict[str, str]
) -> None:
    assert nginx_canary_annotations(weight, matches) == {NG + k: v for k, v in expected.items()}


def test_canary_ingress_keeps_only_stable_paths_retargeted() -> None:
    src = ingress()
    out = canary_ingress(src, "nginx", 5, [])
    assert src == ingress()
    assert out["metadata"]["name"] == "web-canary"
    assert out["metadata"]["labels"] == {"app": "nginx", MANAGED_BY_LABEL: "temporal-rollouts"}
    # The source's own canary-weight is dropped; its other annotations are copied.
    assert out["metadata"]["annotations"] == {
        NG + "rewrite-target": "/",
        CANARY_OF_ANNOTATION: "web",
        NG + "canary": "true",
        NG + "canary-weight": "5",
    }
    assert out["spec"] == {
        "ingressClassName": "nginx",
        "tls": [{"hosts": ["web.example.com"], "secretName": "web-tls"}],
        "rules": [
            {
                "host": "web.example.com",
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "nginx-canary", "port": {"number": 80}}},
                        }
                    ]
                },
            }
        ],
    }
    assert ingress_routes_to(src, "nginx") and not ingress_routes_to(src, "missing")


def test_canary_ingress_header_match() -> None:
    out = canary_ingress(ingress(), "nginx", None, [HEADER])
    notes = out["metadata"]["annotations"]
    assert notes[NG + "canary-by-header"] == "X-Canary" and notes[NG + "canary-by-header-value"] == "true"
    assert NG + "canary-weight" not in notes


# --- HTTPRoute --------------------------------------------------------------------------------------------


def test_httproute_weight_mode() -> None:
    src = route()
    out = httproute_with_canary(src, "nginx", 5, [])
    assert src == route()
    rules = out["spec"]["rules"]
    assert rules[0]["backendRefs"] == [
        {"name": "nginx", "port": 80, "weight": 95},
        {"name": "nginx-canary", "port": 80, "weight": 5},
    ]
    assert rules[1] == route()["spec"]["rules"][1]  # rule without the stable Service untouched
    # Shared rule: legacy keeps its exact 1/4 share; nginx's 3/4 is split 95/5.
    assert rules[2]["backendRefs"] == [
        {"name": "nginx", "port": 80, "weight": 285},
        {"name": "nginx-canary", "port": 80, "weight": 15},
        {"name": "legacy", "port": 80, "weight": 100},
    ]
    assert len(rules) == 3
    assert {k: v for k, v in out.items() if k != "spec"} == {k: v for k, v in src.items() if k != "spec"}
    assert out["spec"]["parentRefs"] == src["spec"]["parentRefs"]


def test_httproute_weight_100_and_zero() -> None:
    full = httproute_with_canary(route(), "nginx", 100, [])
    assert full["spec"]["rules"][0]["backendRefs"] == [
        {"name": "nginx", "port": 80, "weight": 0},
        {"name": "nginx-canary", "port": 80, "weight": 100},
    ]
    assert httproute_with_canary(route(), "nginx", 0, []) == route()
    assert httproute_with_canary(route(), "nginx", None, []) == route()


def test_httproute_match_mode_appends_canary_rules() -> None:
    out = httproute_with_canary(
        route(), "nginx", None, [HEADER, HttpRouteMatch(path=PathMatch(value="/beta"))]
    )
    rules = out["spec"]["rules"]
    assert rules[:3] == route()["spec"]["rules"]  # original rules untouched, no weights in match mode
    assert rules[3] == {
        "matches": [
            {
                "path": {"type": "PathPrefix", "value": "/"},
                "headers": [{"type": "Exact", "name": "X-Canary", "value": "true"}],
            },
            {"path": {"type": "PathPrefix", "value": "/beta"}},
        ],
        "backendRefs": [{"name": "nginx-canary", "port": 80}],
    }
    assert rules[4]["backendRefs"] == [{"name": "nginx-canary", "port": 80}]  # from the /mix rule
    assert rules[4]["matches"][0]["path"]["value"] == "/mix"
    assert len(rules) == 5


def test_httproute_weight_and_matches_together() -> None:
    q = HttpRouteMatch(query_params=[QueryParamMatch(name="beta", value="1")])
    rules = httproute_with_canary(route(), "nginx", 20, [q])["spec"]["rules"]
    assert rules[0]["backendRefs"][1] == {"name": "nginx-canary", "port": 80, "weight": 20}
    assert rules[3]["matches"] == [
        {
            "path": {"type": "PathPrefix", "value": "/"},
            "queryParams": [{"type": "Exact", "name": "beta", "value": "1"}],
        }
    ]


def test_httproute_cookie_becomes_cookie_header_regex() -> None:
    rules = httproute_with_canary(route(), "nginx", None, [COOKIE])["spec"]["rules"]
    header = rules[3]["matches"][0]["headers"][0]
    assert header["name"] == "Cookie" and header["type"] == "RegularExpression"
    pattern = re.compile(header["value"])
    assert pattern.fullmatch("canary=always")
    assert pattern.fullmatch("a=1; canary=always; b=2")
    assert not pattern.fullmatch("canary=never")
    assert not pattern.fullmatch("xcanary=always")


def test_httproute_rule_without_matches_and_with_name() -> None:
    src = {
        "spec": {
            "rules": [{"name": "main", "backendRefs": [{"name": "nginx", "kind": "Service", "port": 80}]}]
        }
    }
    rules = httproute_with_canary(src, "nginx", None, [HEADER])["spec"]["rules"]
    assert rules[1] == {
        "matches": [{"headers": [{"type": "Exact", "name": "X-Canary", "value": "true"}]}],
        "backendRefs": [{"name": "nginx-canary", "kind": "Service", "port": 80}],
    }
    assert httproute_routes_to(src, "nginx")
    # A backendRef of another kind with the same name is not the Service.
    other = {"spec": {"rules": [{"backendRefs": [{"name": "nginx", "kind": "ServiceImport", "group": "x"}]}]}}
    assert not httproute_routes_to(other, "nginx")
    assert httproute_with_canary(other, "nginx", 50, [HEADER]) == other


@pytest.mark.parametrize("weight,matches", [(5, []), (50, [HEADER]), (None, [COOKIE]), (100, [])])
def test_restored_httproute_is_byte_equal(weight: int | None, matches: list[HttpRouteMatch]) -> None:
    src = route()
    changed = httproute_with_canary(src, "nginx", weight, matches)
    changed["metadata"]["resourceVersion"] = "12"
    restored = restored_httproute(changed, copy.deepcopy(src["spec"]))
    assert json.dumps(restored["spec"]) == json.dumps(src["spec"])
    assert restored["metadata"]["resourceVersion"] == "12"  # keeps the live object's precondition
