"""Traffic in a Kruise Rollout: ``trafficRoutings``, a step's ``traffic`` and ``matches``, and Kruise's rules.

Pure (no I/O). The rules (``validate_routing``, ``validate_steps_traffic``: Kruise's canary-traffic
webhook checks plus what our providers support) judge every routing, whether it came from a manifest
here or from ``rollout start``'s traffic flags (``cli/traffic_flags.py``). The payloads are in
``workflows/model.py``; the per-step plan and the status text in ``workflows/traffic.py``.
"""

from __future__ import annotations

from typing import Any

from workflows import model
from workflows.errors import TrafficSpecError
from workflows.plan import parse_int_or_percent
from workflows.traffic import (
    MAX_MATCHES,
    PARTITION_PERCENT_LIMIT_WITH_TRAFFIC,
    has_traffic,
    is_cookie_match,
)

__all__ = [
    "parse_weight",
    "routing_from_manifest",
    "step_traffic_from_manifest",
    "validate_routing",
    "validate_steps_traffic",
]


def parse_weight(text: str) -> int:
    """Parse a traffic percentage ``"N%"`` (0 < N <= 100), like Kruise's canary-strategy webhook."""
    try:
        number, is_percent = parse_int_or_percent(text)
    except ValueError:
        number, is_percent = 0, False
    if not is_percent or not 0 < number <= 100:
        raise TrafficSpecError(
            f'invalid traffic {text!r}: traffic must be percentage with "0%" < traffic <= "100%"'
        )
    return number


# --- a Rollout's trafficRoutings and step traffic ----------------------------------------------------------


def _str_field(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise TrafficSpecError(f"{where}.{key} must be a string")
    return value


def routing_from_manifest(canary: dict[str, Any]) -> model.TrafficRoutingRef | None:
    """Parse ``spec.strategy.canary.trafficRoutings`` of a Kruise v1beta1 Rollout (None when absent)."""
    routings = canary.get("trafficRoutings")
    if not routings:
        return None
    if not isinstance(routings, list) or not all(isinstance(r, dict) for r in routings):
        raise TrafficSpecError("canary.trafficRoutings must be a list of objects")
    if len(routings) > 1:
        raise TrafficSpecError("Rollout currently only support single TrafficRouting.")
    raw = routings[0]
    where = "trafficRoutings[0]"
    unknown = set(raw) - {"service", "gracePeriodSeconds", "ingress", "gateway"}
    if unknown:
        raise TrafficSpecError(
            f"{where}: unsupported field(s) {', '.join(sorted(unknown))} "
            "(supported: service, gracePeriodSeconds, ingress, gateway)"
        )
    grace = raw.get("gracePeriodSeconds", model.DEFAULT_GRACE_PERIOD_SECONDS)
    if not isinstance(grace, int) or isinstance(grace, bool):
        raise TrafficSpecError(f"{where}.gracePeriodSeconds must be an integer")
    ingress = gateway = None
    if raw.get("ingress") is not None:
        ing = raw["ingress"]
        if not isinstance(ing, dict):
            raise TrafficSpecError(f"{where}.ingress must be an object")
        ingress = model.IngressRef(
            class_type=str(ing.get("classType") or "nginx"), name=str(ing.get("name") or "")
        )
    if raw.get("gateway") is not None:
        gw = raw["gateway"]
        if not isinstance(gw, dict):
            raise TrafficSpecError(f"{where}.gateway must be an object")
        gateway = model.GatewayRef(http_route_name=str(gw.get("httpRouteName") or ""))
    routing = model.TrafficRoutingRef(
        service=str(raw.get("service") or ""), grace_period_seconds=grace, ingress=ingress, gateway=gateway
    )
    validate_routing(routing)
    return routing


def _match_from_manifest(raw: Any, where: str) -> model.HttpRouteMatch:
    if not isinstance(raw, dict):
        raise TrafficSpecError(f"{where} must be an object")
    unknown = set(raw) - {"path", "headers", "queryParams"}
    if unknown:
        raise TrafficSpecError(f"{where}: unsupported field(s) {', '.join(sorted(unknown))}")
    path = None
    if raw.get("path") is not None:
        p = raw["path"]
        if not isinstance(p, dict):
            raise TrafficSpecError(f"{where}.path must be an object")
        ptype = p.get("type", "PathPrefix")
        if ptype not in ("Exact", "PathPrefix", "RegularExpression"):
            raise TrafficSpecError(f"{where}.path.type must be Exact, PathPrefix or RegularExpression")
        path = model.PathMatch(type=ptype, value=str(p.get("value", "/")))
    headers: list[model.HeaderMatch] = []
    queries: list[model.QueryParamMatch] = []
    for key, out in (("headers", headers), ("queryParams", queries)):
        for i, h in enumerate(raw.get(key) or []):
            hw = f"{where}.{key}[{i}]"
            if not isinstance(h, dict):
                raise TrafficSpecError(f"{hw} must be an object")
            htype = h.get("type", "Exact")
            if htype not in ("Exact", "RegularExpression"):
                raise TrafficSpecError(f"{hw}.type must be Exact or RegularExpression")
            name, value = _str_field(h, "name", hw), _str_field(h, "value", hw)
            cls = model.HeaderMatch if key == "headers" else model.QueryParamMatch
            out.append(cls(type=htype, name=name, value=value))  # type: ignore[arg-type]
    return model.HttpRouteMatch(path=path, headers=headers, query_params=queries)


def step_traffic_from_manifest(step: dict[str, Any], index: int) -> model.StepTraffic | None:
    """Parse one Kruise canary step's ``traffic`` and ``matches`` (``index`` is 1-based, for messages).

    ``requestHeaderModifier`` is rejected: Kruise's nginx provider ignores it and its Gateway code is
    commented out, so accepting it would silently do nothing.
    """
    where = f"steps[{index - 1}]"
    if step.get("requestHeaderModifier") is not None:
        raise TrafficSpecError(f"{where}.requestHeaderModifier is not supported")
    weight = None
    if step.get("traffic") is not None:
        if not isinstance(step["traffic"], str):
            raise TrafficSpecError(f'{where}.traffic must be a percentage string like "20%"')
        weight = parse_weight(step["traffic"])
    raw_matches = step.get("matches") or []
    if not isinstance(raw_matches, list):
        raise TrafficSpecError(f"{where}.matches must be a list")
    matches = [_match_from_manifest(m, f"{where}.matches[{i}]") for i, m in enumerate(raw_matches)]
    traffic = model.StepTraffic(weight=weight, matches=matches)
    return None if traffic.is_empty else traffic


# --- validation -------------------------------------------------------------------------------------------


def validate_routing(routing: model.TrafficRoutingRef) -> None:
    """Kruise's ``validateRolloutSpecCanaryTraffic`` plus what we support (nginx only for Ingress)."""
    if not routing.service:
        raise TrafficSpecError("TrafficRouting.Service cannot be empty")
    if routing.grace_period_seconds < 0:
        raise TrafficSpecError("TrafficRouting.GracePeriodSeconds cannot be negative")
    if routing.ingress is not None:
        if not routing.ingress.name:
            raise TrafficSpecError("TrafficRouting.Ingress.Ingress cannot be empty")
        if routing.ingress.class_type != "nginx":
            raise TrafficSpecError(
                f"ingress classType {routing.ingress.class_type!r} is not supported (only nginx)"
            )
    if routing.gateway is not None and not routing.gateway.http_route_name:
        raise TrafficSpecError("TrafficRouting.Gateway must set the name of HTTPRoute or HTTPsRoute")


def _validate_matches_for(routing: model.TrafficRoutingRef, traffic: model.StepTraffic, where: str) -> None:
    if len(traffic.matches) > MAX_MATCHES:
        raise TrafficSpecError(f"{where}: at most {MAX_MATCHES} matches")
    for i, match in enumerate(traffic.matches):
        if match.path is None and not match.headers and not match.query_params:
            raise TrafficSpecError(f"{where}.matches[{i}] is empty (needs headers, queryParams or path)")
    if routing.ingress is None:
        return
    # nginx has one canary-by-header (+ value or pattern) and one canary-by-cookie per canary Ingress.
    headers = cookies = 0
    for i, match in enumerate(traffic.matches):
        if match.path is not None or match.query_params or len(match.headers) != 1:
            raise TrafficSpecError(
                f"{where}.matches[{i}]: the nginx Ingress supports only matches of exactly one header or "
                "cookie (use a Gateway API HTTPRoute for path, query and multi-header matches)"
            )
        if is_cookie_match(match.headers[0]):
            cookies += 1
        else:
            headers += 1
    if headers > 1 or cookies > 1:
        raise TrafficSpecError(
            f"{where}: the nginx Ingress supports at most one header match and one cookie match per step"
        )


def validate_steps_traffic(
    routing: model.TrafficRoutingRef | None,
    replicas: list[str | int],
    traffic: list[model.StepTraffic | None],
) -> None:
    """Validate every step's traffic against the routing (Kruise webhook rules plus provider limits).

    ``replicas`` are the steps' replicas as given (``5`` or ``"20%"``); a step with traffic or matches may
    use at most 50% replicas when given as a percentage (Kruise partition style).
    """
    if len(replicas) != len(traffic):
        raise TrafficSpecError("internal: replicas and traffic lists differ in length")
    for i, (rep, step) in enumerate(zip(replicas, traffic, strict=True), start=1):
        if not has_traffic(step):
            continue
        assert step is not None
        where = f"step {i}"
        if routing is None:
            raise TrafficSpecError(
                f"{where} sets traffic/matches but no traffic routing is configured "
                "(--service with --ingress or --httproute, or trafficRoutings)"
            )
        if routing.service_only:
            what = f"traffic {step.weight}%" if step.weight is not None else "request matches"
            raise TrafficSpecError(
                f"{where} sets {what}, but --service {routing.service} alone only splits pods between "
                f"{routing.service} and {routing.canary_service}; add --ingress or --httproute to route "
                "requests by weight or match"
            )
        if step.weight is not None and not 0 < step.weight <= 100:
            raise TrafficSpecError(f'{where}: traffic must be percentage with "0%" < traffic <= "100%"')
        if isinstance(rep, str) and rep.strip().endswith("%"):
            try:
                pct = int(rep.strip()[:-1])
            except ValueError:
                pct = 0  # the engine reports malformed replicas itself
            if pct > PARTITION_PERCENT_LIMIT_WITH_TRAFFIC:
                raise TrafficSpecError(
                    f"{where}: For partition style rollout: step[x].replicas must not greater than "
                    f"partition-percent-limit ({PARTITION_PERCENT_LIMIT_WITH_TRAFFIC}%) if traffic specified"
                )
        _validate_matches_for(routing, step, where)
