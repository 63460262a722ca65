"""Pure tables for traffic: CLI flags (cli/traffic_flags.py), manifest parsing and validation
(kruise/traffic.py), per-step plans and status text (workflows/traffic.py)."""

from __future__ import annotations

import pytest

from cli.traffic_flags import apply_matches, parse_match, routing_from_flags, split_steps_traffic
from kruise.traffic import (
    parse_weight,
    routing_from_manifest,
    step_traffic_from_manifest,
    validate_steps_traffic,
)
from workflows.errors import TrafficSpecError
from workflows.model import (
    GatewayRef,
    HeaderMatch,
    HttpRouteMatch,
    IngressRef,
    PathMatch,
    QueryParamMatch,
    StepTraffic,
    TrafficRoutingRef,
)
from workflows.traffic import (
    COOKIE_HEADER_NAME,
    RESTORE_ALL,
    TrafficOp,
    plan_finalize,
    plan_step_ready,
    plan_step_start,
    plan_undo_end,
    plan_undo_start,
    traffic_status,
    traffic_summary,
)

NGINX = TrafficRoutingRef(service="nginx", ingress=IngressRef(name="nginx"))
GATEWAY = TrafficRoutingRef(service="nginx", gateway=GatewayRef(http_route_name="nginx"))


# --- weights and --steps ------------------------------------------------------------------------------


@pytest.mark.parametrize("text,weight", [("5%", 5), ("100%", 100), (" 1% ", 1)])
def test_parse_weight(text: str, weight: int) -> None:
    assert parse_weight(text) == weight


@pytest.mark.parametrize("text", ["0%", "101%", "5", "5.5%", "-5%", "%", "abc"])
def test_parse_weight_rejects(text: str) -> None:
    with pytest.raises(TrafficSpecError, match="traffic must be percentage"):
        parse_weight(text)


def test_split_steps_traffic_seed_example() -> None:
    replicas, traffic = split_steps_traffic("1:5%,50%:50%,100%")
    assert replicas == ["1", "50%", "100%"]
    assert traffic == [StepTraffic(weight=5), StepTraffic(weight=50), None]


def test_split_steps_without_traffic() -> None:
    assert split_steps_traffic("1,50%,100%") == (["1", "50%", "100%"], [None, None, None])


@pytest.mark.parametrize("steps", ["1:,100%", "1:0%", "1:5", "1:150%"])
def test_split_steps_rejects_bad_traffic(steps: str) -> None:
    with pytest.raises(TrafficSpecError):
        split_steps_traffic(steps)


# --- --match ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,steps,match",
    [
        ("header:X-Canary=true", [1], HttpRouteMatch(headers=[HeaderMatch(name="X-Canary", value="true")])),
        (
            "2@header:User-Agent~.*Android.*",
            [2],
            HttpRouteMatch(
                headers=[HeaderMatch(type="RegularExpression", name="User-Agent", value=".*Android.*")]
            ),
        ),
        (
            "1-3@cookie:canary",
            [1, 2, 3],
            HttpRouteMatch(headers=[HeaderMatch(name=COOKIE_HEADER_NAME, value="canary")]),
        ),
        (
            "cookie:canary=always",
            [1],
            HttpRouteMatch(headers=[HeaderMatch(name=COOKIE_HEADER_NAME, value="canary")]),
        ),
        ("query:beta=1", [1], HttpRouteMatch(query_params=[QueryParamMatch(name="beta", value="1")])),
        (
            "query:beta~^(1|yes)$",
            [1],
            HttpRouteMatch(
                query_params=[QueryParamMatch(type="RegularExpression", name="beta", value="^(1|yes)$")]
            ),
        ),
        ("path:/beta", [1], HttpRouteMatch(path=PathMatch(type="PathPrefix", value="/beta"))),
        ("path:=/beta/x", [1], HttpRouteMatch(path=PathMatch(type="Exact", value="/beta/x"))),
        ("path:~^/b.*", [1], HttpRouteMatch(path=PathMatch(type="RegularExpression", value="^/b.*"))),
        ("header:X-A=a=b", [1], HttpRouteMatch(headers=[HeaderMatch(name="X-A", value="a=b")])),
    ],
)
def test_parse_match(text: str, steps: list[int], match: HttpRouteMatch) -> None:
    assert parse_match(text) == (steps, match)


@pytest.mark.parametrize(
    "text",
    [
        "header",
        "header:",
        "header:X",
        "header:=v",
        "cookie:c=yes",
        "cookie:",
        "foo:a=b",
        "0@header:a=b",
        "3-2@header:a=b",
    ],
)
def test_parse_match_rejects(text: str) -> None:
    with pytest.raises(TrafficSpecError):
        parse_match(text)


def test_apply_matches_attaches_to_steps() -> None:
    _, traffic = split_steps_traffic("1,2:20%,100%")
    out = apply_matches(traffic, ["header:X-Canary=true", "2@cookie:canary"])
    assert out[0] == StepTraffic(
        matches=[HttpRouteMatch(headers=[HeaderMatch(name="X-Canary", value="true")])]
    )
    assert out[1] == StepTraffic(
        weight=20, matches=[HttpRouteMatch(headers=[HeaderMatch(name=COOKIE_HEADER_NAME, value="canary")])]
    )
    assert out[2] is None
    assert traffic[1] == StepTraffic(weight=20)  # input untouched
    with pytest.raises(TrafficSpecError, match="only 3 steps"):
        apply_matches(traffic, ["4@header:a=b"])


# --- routing: flags and manifest ----------------------------------------------------------------------


def test_routing_from_flags() -> None:
    assert routing_from_flags(service=None) is None
    r = routing_from_flags(service="nginx", ingress="web", httproute="route", grace_period_seconds=0)
    assert r == TrafficRoutingRef(
        service="nginx",
        grace_period_seconds=0,
        ingress=IngressRef(name="web"),
        gateway=GatewayRef(http_route_name="route"),
    )
    assert r is not None and r.canary_service == "nginx-canary" and r.canary_ingress == "web-canary"
    with pytest.raises(TrafficSpecError, match="need --service"):
        routing_from_flags(service=None, ingress="web")
    alone = routing_from_flags(service="nginx")
    assert alone is not None and alone.service_only and alone.canary_service == "nginx-canary"
    with pytest.raises(TrafficSpecError, match="cannot be negative"):
        routing_from_flags(service="nginx", ingress="web", grace_period_seconds=-1)


def test_routing_from_manifest() -> None:
    canary = {
        "trafficRoutings": [
            {
                "service": "echo",
                "gracePeriodSeconds": 10,
                "ingress": {"name": "echo"},
                "gateway": {"httpRouteName": "r"},
            }
        ]
    }
    assert routing_from_manifest(canary) == TrafficRoutingRef(
        service="echo",
        grace_period_seconds=10,
        ingress=IngressRef(class_type="nginx", name="echo"),
        gateway=GatewayRef(http_route_name="r"),
    )
    assert routing_from_manifest({}) is None
    defaulted = routing_from_manifest({"trafficRoutings": [{"service": "e", "ingress": {"name": "i"}}]})
    assert defaulted is not None and defaulted.grace_period_seconds == 3


@pytest.mark.parametrize(
    "routings,message",
    [
        (
            [{"service": "a", "ingress": {"name": "a"}}, {"service": "b", "ingress": {"name": "b"}}],
            "only support single TrafficRouting",
        ),
        ([{"service": "", "ingress": {"name": "a"}}], "Service cannot be empty"),
        ([{"service": "a", "ingress": {"name": ""}}], "Ingress.Ingress cannot be empty"),
        ([{"service": "a", "ingress": {"name": "a", "classType": "higress"}}], "not supported"),
        ([{"service": "a", "gateway": {}}], "must set the name of HTTPRoute"),
        ([{"service": "a", "gracePeriodSeconds": -1, "ingress": {"name": "a"}}], "cannot be negative"),
        ([{"service": "a", "customNetworkRefs": [{"kind": "VirtualService"}]}], "unsupported field"),
    ],
)
def test_routing_from_manifest_rejects(routings: list[dict], message: str) -> None:
    with pytest.raises(TrafficSpecError, match=message):
        routing_from_manifest({"trafficRoutings": routings})


def test_step_traffic_from_manifest() -> None:
    step = {
        "replicas": 1,
        "traffic": "5%",
        "matches": [
            {"headers": [{"type": "Exact", "name": "user-agent", "value": "pc"}]},
            {"queryParams": [{"name": "q", "value": "1"}]},
            {"path": {"value": "/pc"}},
        ],
    }
    assert step_traffic_from_manifest(step, 1) == StepTraffic(
        weight=5,
        matches=[
            HttpRouteMatch(headers=[HeaderMatch(name="user-agent", value="pc")]),
            HttpRouteMatch(query_params=[QueryParamMatch(name="q", value="1")]),
            HttpRouteMatch(path=PathMatch(type="PathPrefix", value="/pc")),
        ],
    )
    assert step_traffic_from_manifest({"replicas": "50%"}, 2) is None


@pytest.mark.parametrize(
    "step,message",
    [
        ({"traffic": 5}, "percentage string"),
        ({"traffic": "0%"}, "traffic must be percentage"),
        ({"requestHeaderModifier": {"set": []}}, "requestHeaderModifier is not supported"),
        ({"matches": [{"headers": [{"name": "a"}]}]}, "value must be a string"),
        (
            {"matches": [{"headers": [{"name": "a", "value": "b", "type": "Prefix"}]}]},
            "Exact or RegularExpression",
        ),
        ({"matches": [{"method": "GET"}]}, "unsupported field"),
    ],
)
def test_step_traffic_from_manifest_rejects(step: dict, message: str) -> None:
    with pytest.raises(TrafficSpecError, match=message):
        step_traffic_from_manifest(step, 1)


# --- validation of steps against the routing ---------------------------------------------------------

HEADER = HttpRouteMatch(headers=[HeaderMatch(name="X-Canary", value="true")])
COOKIE = HttpRouteMatch(headers=[HeaderMatch(name=COOKIE_HEADER_NAME, value="canary")])


def test_validate_accepts_seed_example_and_ab_test() -> None:
    _, traffic = split_steps_traffic("1:5%,50%:50%,100%")
    validate_steps_traffic(NGINX, ["1", "50%", "100%"], traffic)
    validate_steps_traffic(NGINX, [1, "100%"], [StepTraffic(matches=[HEADER, COOKIE]), None])
    validate_steps_traffic(
        GATEWAY,
        [1],
        [
            StepTraffic(
                matches=[
                    HttpRouteMatch(
                        path=PathMatch(value="/b"),
                        headers=[HeaderMatch(name="a", value="b")],
                        query_params=[QueryParamMatch(name="q", value="1")],
                    )
                ]
            )
        ],
    )
    validate_steps_traffic(None, [1, "100%"], [None, None])


@pytest.mark.parametrize(
    "routing,replicas,traffic,message",
    [
        (None, [1], [StepTraffic(weight=5)], "no traffic routing is configured"),
        (NGINX, ["60%"], [StepTraffic(weight=60)], "partition-percent-limit"),
        (NGINX, ["100%"], [StepTraffic(matches=[HEADER])], "partition-percent-limit"),
        (
            NGINX,
            [1],
            [StepTraffic(matches=[HttpRouteMatch(path=PathMatch(value="/x"))])],
            "only matches of exactly",
        ),
        (
            NGINX,
            [1],
            [StepTraffic(matches=[HttpRouteMatch(query_params=[QueryParamMatch(name="a", value="b")])])],
            "only matches of exactly",
        ),
        (
            NGINX,
            [1],
            [
                StepTraffic(
                    matches=[
                        HttpRouteMatch(
                            headers=[HeaderMatch(name="a", value="1"), HeaderMatch(name="b", value="2")]
                        )
                    ]
                )
            ],
            "only matches of exactly",
        ),
        (NGINX, [1], [StepTraffic(matches=[HEADER, HEADER])], "at most one header match"),
        (GATEWAY, [1], [StepTraffic(matches=[HttpRouteMatch()])], "is empty"),
        (GATEWAY, [1], [StepTraffic(matches=[HEADER] * 17)], "at most 16 matches"),
        (GATEWAY, [1], [StepTraffic(weight=0)], "traffic must be percentage"),
    ],
)
def test_validate_rejects(
    routing: TrafficRoutingRef | None,
    replicas: list[str | int],
    traffic: list[StepTraffic | None],
    message: str,
) -> None:
    with pytest.raises(TrafficSpecError, match=message):
        validate_steps_traffic(routing, replicas, traffic)


def test_validate_allows_integer_replicas_above_half() -> None:
    # Kruise checks the 50% partition limit only for percentage replicas.
    validate_steps_traffic(NGINX, [9], [StepTraffic(weight=90)])


# --- plans ---------------------------------------------------------------------------------------------


def test_plan_step_start() -> None:
    five = StepTraffic(weight=5)
    assert plan_step_start(None, five, desired_canary=1, replicas=10) == []
    assert plan_step_start(NGINX, five, desired_canary=1, replicas=10) == [TrafficOp.ROUTE_STABLE_SERVICE]
    assert plan_step_start(NGINX, five, desired_canary=10, replicas=10) == [TrafficOp.RESTORE_STABLE_SERVICE]
    assert plan_step_start(NGINX, None, desired_canary=10, replicas=10) == list(RESTORE_ALL)
    assert plan_step_start(NGINX, StepTraffic(), desired_canary=5, replicas=10) == list(RESTORE_ALL)


def test_plan_service_alone() -> None:
    alone = TrafficRoutingRef(service="web")
    assert alone.service_only and not NGINX.service_only
    assert plan_step_start(alone, None, desired_canary=1, replicas=10) == [TrafficOp.ROUTE_STABLE_SERVICE]
    assert plan_step_start(alone, None, desired_canary=10, replicas=10) == [TrafficOp.RESTORE_STABLE_SERVICE]
    assert plan_step_ready(alone, None) == [TrafficOp.ENSURE_CANARY_SERVICE]
    assert plan_finalize(alone) == list(RESTORE_ALL)
    assert plan_undo_end(alone) == [TrafficOp.RESTORE_STABLE_SERVICE, TrafficOp.DELETE_CANARY_SERVICE]
    with pytest.raises(TrafficSpecError, match="step 2 sets traffic 50%, but --service web alone"):
        validate_steps_traffic(alone, [1, "50%"], [None, StepTraffic(weight=50)])
    with pytest.raises(TrafficSpecError, match="step 1 sets request matches"):
        validate_steps_traffic(alone, [1], [StepTraffic(matches=[HEADER])])
    validate_steps_traffic(alone, [1, "100%"], [None, None])


def test_plan_step_ready_finalize_undo() -> None:
    assert plan_step_ready(NGINX, StepTraffic(weight=5)) == [
        TrafficOp.ENSURE_CANARY_SERVICE,
        TrafficOp.SET_TRAFFIC,
    ]
    assert plan_step_ready(NGINX, None) == []
    assert plan_step_ready(None, StepTraffic(weight=5)) == []
    assert plan_finalize(GATEWAY) == [
        TrafficOp.RESTORE_STABLE_SERVICE,
        TrafficOp.RESTORE_ROUTES,
        TrafficOp.DELETE_CANARY_SERVICE,
    ]
    assert plan_undo_start(GATEWAY) == [TrafficOp.RESTORE_ROUTES]
    assert plan_undo_end(GATEWAY) == [TrafficOp.RESTORE_STABLE_SERVICE, TrafficOp.DELETE_CANARY_SERVICE]
    assert plan_finalize(None) == plan_undo_start(None) == plan_undo_end(None) == []


# --- status -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "traffic,text",
    [
        (None, ""),
        (StepTraffic(weight=5), "weight 5%"),
        (StepTraffic(matches=[HEADER]), "header X-Canary=true"),
        (StepTraffic(weight=20, matches=[COOKIE]), "weight 20%, cookie canary"),
        (
            StepTraffic(
                matches=[
                    HttpRouteMatch(
                        path=PathMatch(type="Exact", value="/b"),
                        headers=[HeaderMatch(type="RegularExpression", name="UA", value="x.*")],
                        query_params=[QueryParamMatch(name="q", value="1")],
                    )
                ]
            ),
            "path =/b & header UA~x.* & query q=1",
        ),
    ],
)
def test_traffic_summary(traffic: StepTraffic | None, text: str) -> None:
    assert traffic_summary(traffic) == text


def test_traffic_status() -> None:
    assert traffic_status(StepTraffic(weight=5, matches=[HEADER])) == {
        "trafficWeight": 5,
        "trafficMatches": ["header X-Canary=true"],
        "traffic": "weight 5%, header X-Canary=true",
    }
    assert traffic_status(None) == {"trafficWeight": None, "trafficMatches": [], "traffic": ""}


def test_models_round_trip_json() -> None:
    """Payloads cross Temporal as JSON (pydantic data converter)."""
    t = StepTraffic(weight=5, matches=[HEADER, HttpRouteMatch(path=PathMatch(value="/x"))])
    assert StepTraffic.model_validate_json(t.model_dump_json()) == t
    assert TrafficRoutingRef.model_validate_json(GATEWAY.model_dump_json()) == GATEWAY
