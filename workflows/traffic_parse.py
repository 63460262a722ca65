"""Traffic routing input: ``--steps``/``--match``/routing flags and Kruise manifest parsing, and validation.

Pure (no I/O). The models, the per-step plan and the status text are in ``workflows/traffic.py``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from workflows.errors import TrafficSpecError
from workflows.model import (
    DEFAULT_GRACE_PERIOD_SECONDS,
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
    MAX_MATCHES,
    PARTITION_PERCENT_LIMIT_WITH_TRAFFIC,
    has_traffic,
    is_cookie_match,
)

__all__ = [
    "apply_matches",
    "parse_match",
    "parse_weight",
    "routing_from_flags",
    "routing_from_manifest",
    "split_steps_traffic",
    "step_traffic_from_manifest",
    "validate_routing",
    "validate_steps_traffic",
]


# --- parsing: weights -------------------------------------------------------------------------------------

_PERCENT = re.compile(r"^(\d+)%$")


def parse_weight(text: str) -> int:
    """Parse a traffic percentage ``"N%"`` (0 < N <= 100), like Kruise's canary-strategy webhook."""
    m = _PERCENT.match(text.strip())
    if not m or not 0 < int(m.group(1)) <= 100:
        raise TrafficSpecError(
            f'invalid traffic {text!r}: traffic must be percentage with "0%" < traffic <= "100%"'
        )
    return int(m.group(1))


def split_steps_traffic(steps: str) -> tuple[list[str], list[StepTraffic | None]]:
    """Split ``--steps`` of the form ``<replicas>[:<traffic>]`` (e.g. ``1:5%,50%:50%,100%``).

    Returns the replicas tokens (for the engine's own step parser) and each step's traffic (None when the
    token has no ``:<traffic>`` part).
    """
    replicas: list[str] = []
    traffic: list[StepTraffic | None] = []
    for token in steps.split(","):
        token = token.strip()
        head, sep, tail = token.partition(":")
        replicas.append(head.strip())
        if not sep:
            traffic.append(None)
        elif not tail.strip():
            raise TrafficSpecError(f"invalid step {token!r}: expected <replicas>:<traffic%>")
        else:
            traffic.append(StepTraffic(weight=parse_weight(tail)))
    return replicas, traffic


# --- parsing: --match -------------------------------------------------------------------------------------

_MATCH_STEP = re.compile(r"^(\d+)(?:-(\d+))?@(.*)$", re.S)


def parse_match(text: str) -> tuple[list[int], HttpRouteMatch]:
    """Parse one ``--match [STEP[-STEP]@]KIND:SPEC``; returns the 1-based steps it applies to and the match.

    KIND:SPEC is ``header:NAME=VALUE`` (exact), ``header:NAME~REGEX`` (regular expression),
    ``cookie:NAME`` or ``cookie:NAME=always`` (nginx canary-by-cookie semantics), ``query:NAME=VALUE`` /
    ``query:NAME~REGEX``, ``path:/prefix`` / ``path:=/exact`` / ``path:~REGEX``. Without a step prefix the
    match applies to step 1.
    """
    steps = [1]
    body = text.strip()
    m = _MATCH_STEP.match(body)
    if m:
        first, last = int(m.group(1)), int(m.group(2) or m.group(1))
        if first < 1 or last < first:
            raise TrafficSpecError(f"invalid --match {text!r}: step range must be N or N-M with 1 <= N <= M")
        steps, body = list(range(first, last + 1)), m.group(3)
    kind, sep, spec = body.partition(":")
    kind = kind.strip().lower()
    if not sep or not spec:
        raise TrafficSpecError(f"invalid --match {text!r}: expected KIND:SPEC, e.g. header:X-Canary=true")
    if kind == "path":
        if spec.startswith("="):
            return steps, HttpRouteMatch(path=PathMatch(type="Exact", value=spec[1:]))
        if spec.startswith("~"):
            return steps, HttpRouteMatch(path=PathMatch(type="RegularExpression", value=spec[1:]))
        return steps, HttpRouteMatch(path=PathMatch(type="PathPrefix", value=spec))
    if kind == "cookie":
        name, _, value = spec.partition("=")
        if not name or (value and value != "always"):
            raise TrafficSpecError(
                f'invalid --match {text!r}: cookie:NAME[=always] (a request whose cookie NAME is "always" '
                "goes to the canary)"
            )
        return steps, HttpRouteMatch(headers=[HeaderMatch(name=COOKIE_HEADER_NAME, value=name)])
    if kind not in ("header", "query"):
        raise TrafficSpecError(f"invalid --match {text!r}: KIND must be header, cookie, query or path")
    eq, tilde = spec.find("="), spec.find("~")
    cut = min(i for i in (eq, tilde, len(spec)) if i >= 0)
    name, op, value = spec[:cut], spec[cut : cut + 1], spec[cut + 1 :]
    if not name or not op or not value:
        raise TrafficSpecError(f"invalid --match {text!r}: expected {kind}:NAME=VALUE or {kind}:NAME~REGEX")
    mtype: Literal["Exact", "RegularExpression"] = "Exact" if op == "=" else "RegularExpression"
    if kind == "header":
        return steps, HttpRouteMatch(headers=[HeaderMatch(type=mtype, name=name, value=value)])
    return steps, HttpRouteMatch(query_params=[QueryParamMatch(type=mtype, name=name, value=value)])


def apply_matches(traffic: list[StepTraffic | None], matches: list[str]) -> list[StepTraffic | None]:
    """Attach ``--match`` flags to the per-step traffic from ``split_steps_traffic`` (returns a new list)."""
    out = [t.model_copy(deep=True) if t else None for t in traffic]
    for text in matches:
        steps, match = parse_match(text)
        for step in steps:
            if step > len(out):
                raise TrafficSpecError(f"invalid --match {text!r}: there are only {len(out)} steps")
            current = out[step - 1] or StepTraffic()
            current.matches.append(match)
            out[step - 1] = current
    return out


def routing_from_flags(
    *,
    service: str | None,
    ingress: str | None = None,
    httproute: str | None = None,
    grace_period_seconds: int | None = None,
    ingress_class: str = "nginx",
) -> TrafficRoutingRef | None:
    """Build the routing from ``--service SVC --ingress ING --httproute ROUTE [--grace-period S]``."""
    if not service:
        if ingress or httproute:
            raise TrafficSpecError("--ingress/--httproute need --service (the stable Service they route to)")
        return None
    routing = TrafficRoutingRef(
        service=service,
        grace_period_seconds=DEFAULT_GRACE_PERIOD_SECONDS
        if grace_period_seconds is None
        else grace_period_seconds,
        ingress=IngressRef(class_type=ingress_class, name=ingress) if ingress else None,
        gateway=GatewayRef(http_route_name=httproute) if httproute else None,
    )
    validate_routing(routing)
    return routing


# --- parsing: Kruise manifest -----------------------------------------------------------------------------


def _str_field(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise TrafficSpecError(f"{where}.{key} must be a string")
    return value


def routing_from_manifest(canary: dict[str, Any]) -> TrafficRoutingRef | None:
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
    grace = raw.get("gracePeriodSeconds", DEFAULT_GRACE_PERIOD_SECONDS)
    if not isinstance(grace, int) or isinstance(grace, bool):
        raise TrafficSpecError(f"{where}.gracePeriodSeconds must be an integer")
    ingress = gateway = None
    if raw.get("ingress") is not None:
        ing = raw["ingress"]
        if not isinstance(ing, dict):
            raise TrafficSpecError(f"{where}.ingress must be an object")
        ingress = IngressRef(class_type=str(ing.get("classType") or "nginx"), name=str(ing.get("name") or ""))
    if raw.get("gateway") is not None:
        gw = raw["gateway"]
        if not isinstance(gw, dict):
            raise TrafficSpecError(f"{where}.gateway must be an object")
        gateway = GatewayRef(http_route_name=str(gw.get("httpRouteName") or ""))
    routing = TrafficRoutingRef(
        service=str(raw.get("service") or ""), grace_period_seconds=grace, ingress=ingress, gateway=gateway
    )
    validate_routing(routing)
    return routing


def _match_from_manifest(raw: Any, where: str) -> HttpRouteMatch:
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
        path = PathMatch(type=ptype, value=str(p.get("value", "/")))
    headers: list[HeaderMatch] = []
    queries: list[QueryParamMatch] = []
    for key, out in (("headers", headers), ("queryParams", queries)):
        for i, h in enumerate(raw.get(key) or []):
            hw = f"{where}.{key}[{i}]"
            if not isinstance(h, dict):
                raise TrafficSpecError(f"{hw} must be an object")
            htype = h.get("type", "Exact")
            if htype not in ("Exact", "RegularExpression"):
                raise TrafficSpecError(f"{hw}.type must be Exact or RegularExpression")
            name, value = _str_field(h, "name", hw), _str_field(h, "value", hw)
            cls = HeaderMatch if key == "headers" else QueryParamMatch
            out.append(cls(type=htype, name=name, value=value))  # type: ignore[arg-type]
    return HttpRouteMatch(path=path, headers=headers, query_params=queries)


def step_traffic_from_manifest(step: dict[str, Any], index: int) -> StepTraffic | None:
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
    traffic = StepTraffic(weight=weight, matches=matches)
    return None if traffic.is_empty else traffic


# --- validation -------------------------------------------------------------------------------------------


def validate_routing(routing: TrafficRoutingRef) -> None:
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


def _validate_matches_for(routing: TrafficRoutingRef, traffic: StepTraffic, where: str) -> None:
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
    routing: TrafficRoutingRef | None, replicas: list[str | int], traffic: list[StepTraffic | None]
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
