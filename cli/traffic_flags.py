"""``rollout start``'s traffic flags (pure: no cluster): ``--steps`` tokens ``<replicas>[:<traffic%>]``,
``--match``, and the routing of ``--service``/``--ingress``/``--httproute``/``--grace-period``.

Our own syntax, so it lives with the CLI; what it builds is judged by the same Kruise rules as a
manifest's ``trafficRoutings`` (``kruise/traffic.py``).
"""

from __future__ import annotations

import re
from typing import Literal

from kruise.traffic import parse_weight, validate_routing
from workflows import model
from workflows.errors import TrafficSpecError
from workflows.traffic import COOKIE_HEADER_NAME

__all__ = ["apply_matches", "parse_match", "routing_from_flags", "split_steps_traffic"]


def split_steps_traffic(steps: str) -> tuple[list[str], list[model.StepTraffic | None]]:
    """Split ``--steps`` of the form ``<replicas>[:<traffic>]`` (e.g. ``1:5%,50%:50%,100%``).

    Returns the replicas tokens (for the engine's own step parser) and each step's traffic (None when the
    token has no ``:<traffic>`` part).
    """
    replicas: list[str] = []
    traffic: list[model.StepTraffic | None] = []
    for token in steps.split(","):
        token = token.strip()
        head, sep, tail = token.partition(":")
        replicas.append(head.strip())
        if not sep:
            traffic.append(None)
        elif not tail.strip():
            raise TrafficSpecError(f"invalid step {token!r}: expected <replicas>:<traffic%>")
        else:
            traffic.append(model.StepTraffic(weight=parse_weight(tail)))
    return replicas, traffic


# --- --match ------------------------------------------------------------------------------------------------

_MATCH_STEP = re.compile(r"^(\d+)(?:-(\d+))?@(.*)$", re.S)


def parse_match(text: str) -> tuple[list[int], model.HttpRouteMatch]:
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
            return steps, model.HttpRouteMatch(path=model.PathMatch(type="Exact", value=spec[1:]))
        if spec.startswith("~"):
            return steps, model.HttpRouteMatch(path=model.PathMatch(type="RegularExpression", value=spec[1:]))
        return steps, model.HttpRouteMatch(path=model.PathMatch(type="PathPrefix", value=spec))
    if kind == "cookie":
        name, _, value = spec.partition("=")
        if not name or (value and value != "always"):
            raise TrafficSpecError(
                f'invalid --match {text!r}: cookie:NAME[=always] (a request whose cookie NAME is "always" '
                "goes to the canary)"
            )
        return steps, model.HttpRouteMatch(headers=[model.HeaderMatch(name=COOKIE_HEADER_NAME, value=name)])
    if kind not in ("header", "query"):
        raise TrafficSpecError(f"invalid --match {text!r}: KIND must be header, cookie, query or path")
    eq, tilde = spec.find("="), spec.find("~")
    cut = min(i for i in (eq, tilde, len(spec)) if i >= 0)
    name, op, value = spec[:cut], spec[cut : cut + 1], spec[cut + 1 :]
    if not name or not op or not value:
        raise TrafficSpecError(f"invalid --match {text!r}: expected {kind}:NAME=VALUE or {kind}:NAME~REGEX")
    mtype: Literal["Exact", "RegularExpression"] = "Exact" if op == "=" else "RegularExpression"
    if kind == "header":
        return steps, model.HttpRouteMatch(headers=[model.HeaderMatch(type=mtype, name=name, value=value)])
    return steps, model.HttpRouteMatch(
        query_params=[model.QueryParamMatch(type=mtype, name=name, value=value)]
    )


def apply_matches(
    traffic: list[model.StepTraffic | None], matches: list[str]
) -> list[model.StepTraffic | None]:
    """Attach ``--match`` flags to the per-step traffic from ``split_steps_traffic`` (returns a new list)."""
    out = [t.model_copy(deep=True) if t else None for t in traffic]
    for text in matches:
        steps, match = parse_match(text)
        for step in steps:
            if step > len(out):
                raise TrafficSpecError(f"invalid --match {text!r}: there are only {len(out)} steps")
            current = out[step - 1] or model.StepTraffic()
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
) -> model.TrafficRoutingRef | None:
    """Build the routing from ``--service SVC --ingress ING --httproute ROUTE [--grace-period S]``."""
    if not service:
        if ingress or httproute:
            raise TrafficSpecError("--ingress/--httproute need --service (the stable Service they route to)")
        return None
    routing = model.TrafficRoutingRef(
        service=service,
        grace_period_seconds=model.DEFAULT_GRACE_PERIOD_SECONDS
        if grace_period_seconds is None
        else grace_period_seconds,
        ingress=model.IngressRef(class_type=ingress_class, name=ingress) if ingress else None,
        gateway=model.GatewayRef(http_route_name=httproute) if httproute else None,
    )
    validate_routing(routing)
    return routing
