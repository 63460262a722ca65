"""Traffic payloads: Kruise's ``trafficRoutings``, a step's ``traffic`` and ``matches``, and the traffic
activities' input and result."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from kube.names import CANARY_SUFFIX
from workflows.model.base import Model

__all__ = [
    "DEFAULT_GRACE_PERIOD_SECONDS",
    "IngressRef",
    "GatewayRef",
    "TrafficRoutingRef",
    "HeaderMatch",
    "QueryParamMatch",
    "PathMatch",
    "HttpRouteMatch",
    "StepTraffic",
    "TrafficSnapshot",
    "TrafficInput",
    "TrafficChange",
]


# Before they derived from Model these serialised in snake_case; committed histories still hold that form,
# which Model accepts on input.

DEFAULT_GRACE_PERIOD_SECONDS = 3  # Kruise CRD default


class IngressRef(Model):
    """``trafficRoutings[].ingress``: the user's Ingress in front of the stable Service."""

    class_type: str = "nginx"
    name: str


class GatewayRef(Model):
    """``trafficRoutings[].gateway``: the user's Gateway API HTTPRoute."""

    http_route_name: str


class TrafficRoutingRef(Model):
    """``trafficRoutings[0]``: stable Service plus the Ingress and/or HTTPRoute that route to it."""

    service: str
    grace_period_seconds: int = DEFAULT_GRACE_PERIOD_SECONDS
    ingress: IngressRef | None = None
    gateway: GatewayRef | None = None

    @property
    def canary_service(self) -> str:
        """Name of the canary Service we create."""
        return self.service + CANARY_SUFFIX

    @property
    def service_only(self) -> bool:
        """True when no Ingress or HTTPRoute routes to the Service (``--service`` alone): the rollout
        splits pods, not requests (the stable Service pinned to stable pods, ``<svc>-canary`` to canary)."""
        return self.ingress is None and self.gateway is None

    @property
    def canary_ingress(self) -> str | None:
        """Name of the canary Ingress we create (nginx only)."""
        return self.ingress.name + CANARY_SUFFIX if self.ingress else None


class HeaderMatch(Model):
    """Gateway API HTTPHeaderMatch (also used for a cookie, see COOKIE_HEADER_NAME)."""

    type: Literal["Exact", "RegularExpression"] = "Exact"
    name: str
    value: str


class QueryParamMatch(Model):
    """Gateway API HTTPQueryParamMatch."""

    type: Literal["Exact", "RegularExpression"] = "Exact"
    name: str
    value: str


class PathMatch(Model):
    """Gateway API HTTPPathMatch."""

    type: Literal["Exact", "PathPrefix", "RegularExpression"] = "PathPrefix"
    value: str = "/"


class HttpRouteMatch(Model):
    """One Kruise ``matches[]`` entry: its conditions are ANDed; entries of a step are ORed."""

    path: PathMatch | None = None
    headers: list[HeaderMatch] = Field(default_factory=list)
    query_params: list[QueryParamMatch] = Field(default_factory=list)


class StepTraffic(Model):
    """A step's traffic: canary ``weight`` percent and/or request ``matches`` that always go to the canary."""

    weight: int | None = None
    matches: list[HttpRouteMatch] = Field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        """True when the step routes nothing explicitly (traffic follows pods via the plain Service)."""
        return self.weight is None and not self.matches


class TrafficSnapshot(Model):
    """The user's objects before we touched them, taken once at start and kept in workflow state.

    Attributes:
        service: the stable Service name.
        stable_selector: its original ``spec.selector`` (restored byte-equal at the end).
        service_spec: its original ``spec`` (for reference and tests).
        ingress_spec: the user's Ingress ``spec`` when an Ingress is routed (we never modify it).
        http_route_spec: the user's HTTPRoute ``spec``; the canary rules are always computed from it and
            it is written back unchanged on restore.
    """

    service: str
    stable_selector: dict[str, str]
    service_spec: dict[str, Any] = Field(default_factory=dict)
    ingress_spec: dict[str, Any] | None = None
    http_route_spec: dict[str, Any] | None = None


class TrafficInput(Model):
    """Input of every traffic activity (each uses the fields it needs).

    Attributes:
        namespace: namespace of the Deployment and all traffic objects.
        routing: the rollout's traffic routing.
        snapshot: result of ``snapshot_traffic`` (needed by set_traffic for an HTTPRoute and by restores).
        stable_hash: stable pod-template-hash (route_stable_service).
        canary_hash: canary pod-template-hash (ensure_canary_service).
        traffic: the step's weight/matches (set_traffic); None or empty means weight 0.
        deployment: the Deployment name; it becomes the owner of the canary Service.
    """

    namespace: str
    routing: TrafficRoutingRef
    snapshot: TrafficSnapshot | None = None
    stable_hash: str = ""
    canary_hash: str = ""
    traffic: StepTraffic | None = None
    deployment: str = ""


class TrafficChange(Model):
    """Result of a traffic activity: ``changed`` tells the workflow to wait gracePeriodSeconds."""

    changed: bool
    message: str = ""
