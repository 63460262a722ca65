"""Traffic routing: constants, the per-step plan of traffic operations and the status text.

Payloads (``TrafficRoutingRef``, ``StepTraffic``, ``TrafficInput``, ...) live in ``workflows/model.py``,
parsing in ``kruise/traffic.py`` (manifests, Kruise's rules) and ``cli/traffic_flags.py`` (flags), error
types in ``errors.py``.

Pure and deterministic (no I/O, no kubernetes or activity imports), so workflow code may import it. The
objects written to the cluster are computed in ``workflows/traffic_objects.py``; the activities that write
them live in ``activities/traffic.py``.

Vocabulary follows Kruise (reference kruise-rollouts.md sections 1.2, 1.3 and 4): the *stable* Service is
the user's Service, ``<service>-canary`` selects the canary pod-template-hash, a step's ``traffic`` is a
canary weight in percent and its ``matches`` route requests by header, cookie, query parameter or path.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from workflows.model import (
    HeaderMatch,
    HttpRouteMatch,
    StepTraffic,
    TrafficRoutingRef,
)

# --- constants --------------------------------------------------------------------------------------------

# Kruise's convention: a header match with this name is an nginx canary-by-cookie match; its value is the
# cookie name (a request whose cookie has the value "always" goes to the canary).
COOKIE_HEADER_NAME = "canary-by-cookie"
MAX_MATCHES = 16  # Kruise CRD limit
# Kruise's partition-style limit (--partition-percent-limit): a step with traffic may use at most 50%.
PARTITION_PERCENT_LIMIT_WITH_TRAFFIC = 50


def has_traffic(traffic: StepTraffic | None) -> bool:
    """Whether a step carries a traffic weight or matches."""
    return traffic is not None and not traffic.is_empty


def is_cookie_match(header: HeaderMatch) -> bool:
    """Kruise encodes an nginx cookie match as a header named ``canary-by-cookie``."""
    return header.name == COOKIE_HEADER_NAME


# --- plan: which traffic operations run when --------------------------------------------------------------


class TrafficOp(StrEnum):
    """One traffic operation; each maps to one activity (``traffic_flow.ACTIVITY_FOR_OP``)."""

    ROUTE_STABLE_SERVICE = "route_stable_service"
    ENSURE_CANARY_SERVICE = "ensure_canary_service"
    SET_TRAFFIC = "set_traffic"
    RESTORE_STABLE_SERVICE = "restore_stable_service"
    RESTORE_ROUTES = "restore_routes"
    DELETE_CANARY_SERVICE = "delete_canary_service"


# Everything back to the user's objects: stable selector first (so the stable Service selects every ready
# pod before the Ingress/HTTPRoute send all traffic to it), then routes, then the canary Service.
RESTORE_ALL: tuple[TrafficOp, ...] = (
    TrafficOp.RESTORE_STABLE_SERVICE,
    TrafficOp.RESTORE_ROUTES,
    TrafficOp.DELETE_CANARY_SERVICE,
)


def plan_step_start(
    routing: TrafficRoutingRef | None, traffic: StepTraffic | None, *, desired_canary: int, replicas: int
) -> list[TrafficOp]:
    """Operations before a step scales (Kruise ``BeforeStepUpgrade``).

    A step without traffic restores everything first (traffic then follows pods through the user's
    Service). A step whose canary reaches every replica un-isolates the stable Service instead, because
    its stable pods are about to disappear (Kruise's ingress-nginx#9635 workaround). Otherwise the stable
    Service is narrowed to the stable pod-template-hash, before any canary pod of this step exists.
    """
    if routing is None:
        return []
    if routing.service_only:
        # No router: every step pins the stable Service (unless no stable pod will be left).
        if desired_canary >= replicas:
            return [TrafficOp.RESTORE_STABLE_SERVICE]
        return [TrafficOp.ROUTE_STABLE_SERVICE]
    if not has_traffic(traffic):
        return list(RESTORE_ALL)
    if desired_canary >= replicas:
        return [TrafficOp.RESTORE_STABLE_SERVICE]
    return [TrafficOp.ROUTE_STABLE_SERVICE]


def plan_step_ready(routing: TrafficRoutingRef | None, traffic: StepTraffic | None) -> list[TrafficOp]:
    """Operations after the step's canary batch is ready and before it pauses (Kruise StepTrafficRouting)."""
    if routing is not None and routing.service_only:
        return [TrafficOp.ENSURE_CANARY_SERVICE]
    if routing is None or not has_traffic(traffic):
        return []
    return [TrafficOp.ENSURE_CANARY_SERVICE, TrafficOp.SET_TRAFFIC]


def plan_finalize(routing: TrafficRoutingRef | None) -> list[TrafficOp]:
    """Operations at completion, before the final scale to 100% canary."""
    return list(RESTORE_ALL) if routing else []


def plan_undo_start(routing: TrafficRoutingRef | None) -> list[TrafficOp]:
    """Undo, before any replica moves: traffic back to the stable Service (still selecting stable only)."""
    return [TrafficOp.RESTORE_ROUTES] if routing else []


def plan_undo_end(routing: TrafficRoutingRef | None) -> list[TrafficOp]:
    """Undo, after stable is back to full and canary is at 0: the user's Service and no canary Service."""
    return [TrafficOp.RESTORE_STABLE_SERVICE, TrafficOp.DELETE_CANARY_SERVICE] if routing else []


# --- status -----------------------------------------------------------------------------------------------


def describe_match(match: HttpRouteMatch) -> str:
    """One match as text, e.g. ``header X-Canary=true`` or ``cookie canary`` (conditions joined by ``&``)."""
    parts: list[str] = []
    if match.path is not None:
        op = {"Exact": "=", "PathPrefix": "", "RegularExpression": "~"}[match.path.type]
        parts.append(f"path {op}{match.path.value}")
    for h in match.headers:
        if is_cookie_match(h):
            parts.append(f"cookie {h.value}")
        else:
            parts.append(f"header {h.name}{'=' if h.type == 'Exact' else '~'}{h.value}")
    for q in match.query_params:
        parts.append(f"query {q.name}{'=' if q.type == 'Exact' else '~'}{q.value}")
    return " & ".join(parts)


def traffic_summary(traffic: StepTraffic | None) -> str:
    """Status/UI text: ``weight 5%``, ``header X-Canary=true``, both joined by ``, ``; empty when none."""
    if traffic is None:
        return ""
    parts = [f"weight {traffic.weight}%"] if traffic.weight is not None else []
    parts += [describe_match(m) for m in traffic.matches]
    return ", ".join(parts)


def traffic_status(traffic: StepTraffic | None) -> dict[str, Any]:
    """camelCase status fields for the current traffic: ``trafficWeight``, ``trafficMatches``, ``traffic``."""
    return {
        "trafficWeight": traffic.weight if traffic else None,
        "trafficMatches": [describe_match(m) for m in traffic.matches] if traffic else [],
        "traffic": traffic_summary(traffic),
    }
