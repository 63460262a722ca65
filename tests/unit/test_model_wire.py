"""Every payload crosses the wire in camelCase and still decodes the snake_case of older histories."""

from __future__ import annotations

from workflows.model import RolloutSpec, StepTraffic, TrafficInput, TrafficRoutingRef


def test_traffic_payloads_are_camel_case_on_the_wire() -> None:
    routing = TrafficRoutingRef(service="web", grace_period_seconds=0, gateway={"http_route_name": "r"})
    inp = TrafficInput(namespace="ns", routing=routing, stable_hash="s1", canary_hash="c1")
    wire = inp.model_dump(mode="json")
    assert wire["stableHash"] == "s1" and wire["canaryHash"] == "c1"
    assert wire["routing"] == {
        "service": "web",
        "gracePeriodSeconds": 0,
        "ingress": None,
        "gateway": {"httpRouteName": "r"},
    }
    step = StepTraffic.model_validate(
        {"weight": 5, "matches": [{"queryParams": [{"name": "a", "value": "b"}]}]}
    )
    assert step.model_dump(mode="json")["matches"][0]["queryParams"] == [
        {"type": "Exact", "name": "a", "value": "b"}
    ]


def test_snake_case_input_from_committed_histories_still_decodes() -> None:
    spec = RolloutSpec.model_validate(
        {
            "namespace": "ns",
            "name": "web",
            "template": {},
            "steps": [
                {
                    "replicas": 1,
                    "traffic": {"weight": 5, "matches": [{"query_params": [{"name": "a", "value": "b"}]}]},
                }
            ],
            "traffic_routing": {
                "service": "web",
                "grace_period_seconds": 0,
                "ingress": {"class_type": "nginx", "name": "i"},
            },
        }
    )
    assert spec.traffic_routing is not None and spec.traffic_routing.grace_period_seconds == 0
    assert spec.traffic_routing.ingress is not None and spec.traffic_routing.ingress.class_type == "nginx"
    traffic = spec.steps[0].traffic
    assert traffic is not None and traffic.matches[0].query_params[0].name == "a"
    # and the camelCase form round-trips to the same model
    assert RolloutSpec.model_validate(spec.model_dump(mode="json")) == spec
