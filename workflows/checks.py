"""Pure precondition checks, shared by the CLI and the activities so both refuse with the same words.

Each check takes objects already read (raw dicts as the API server returns them) and answers ``None`` or
a ``Refusal``: one line in the user's words plus the named error type. The CLI turns a refusal into a
one-line ``CommandError`` before anything is written or started; an activity turns it into a
non-retryable ``ApplicationError`` (the objects may have changed since the CLI looked).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kube.names import HASH_LABEL, LABEL_STABLE_REVISION
from kube.objects import find_replica_set_for_template, owned_replica_sets, templates_equal
from workflows import errors
from workflows.model import TrafficRoutingRef
from workflows.traffic_objects import httproute_routes_to, ingress_routes_to, is_ours, original_selector

__all__ = ["Refusal", "TrafficObjects", "check_takeover", "check_traffic_objects", "stable_by_revision"]

Obj = dict[str, Any]


@dataclass(frozen=True)
class Refusal:
    """Why a request cannot succeed: ``message`` (one line), ``error_type`` (a ``workflows.errors`` name)."""

    message: str
    error_type: str

    def __str__(self) -> str:
        return self.message


def _target(dep: Obj) -> str:
    md = dep.get("metadata") or {}
    return f"{md.get('namespace', '')}/{md.get('name', '')}"


def check_takeover(dep: Obj, replica_sets: list[Obj], template: Obj) -> Refusal | None:
    """Can a rollout to ``template`` take the (not yet taken over) Deployment ``dep`` over?

    It needs replicas, no pause by its owner, a template change, and a settled Deployment: exactly one
    active ReplicaSet (or none), running the current template (that one becomes the stable revision).
    """
    target, spec = _target(dep), dep.get("spec") or {}
    if int(spec.get("replicas") or 0) <= 0:
        return Refusal(
            f"deployment {target} has 0 replicas; scale it up before a rollout", errors.INVALID_ROLLOUT_SPEC
        )
    if spec.get("paused"):
        return Refusal(
            f"deployment {target} is paused; resume it first (kubectl rollout resume)",
            errors.INVALID_ROLLOUT_SPEC,
        )
    current = spec.get("template") or {}
    if templates_equal(current, template):
        return Refusal(
            f"deployment {target} already runs this pod template; nothing to roll out",
            errors.INVALID_ROLLOUT_SPEC,
        )
    stable = find_replica_set_for_template(dep, replica_sets, current)
    active = [
        rs["metadata"]["name"]
        for rs in owned_replica_sets(dep, replica_sets)
        if int((rs.get("spec") or {}).get("replicas") or 0) > 0
    ]
    if stable is None or active not in ([stable["metadata"]["name"]], []):
        return Refusal(
            f"deployment {target} is still rolling out ({len(active)} active ReplicaSets); "
            "wait for `kubectl rollout status` to succeed",
            errors.STABLE_NOT_FOUND,
        )
    return None


def stable_by_revision(dep: Obj, replica_sets: list[Obj]) -> tuple[Obj | None, Refusal | None]:
    """The stable ReplicaSet of a taken-over Deployment (by our stable-revision label), or why it is gone."""
    revision = (dep["metadata"].get("labels") or {}).get(LABEL_STABLE_REVISION, "")
    for rs in owned_replica_sets(dep, replica_sets):
        if (rs["metadata"].get("labels") or {}).get(HASH_LABEL) == revision:
            return rs, None
    return None, Refusal(f"stable ReplicaSet {revision!r} of {_target(dep)} is gone", errors.STABLE_NOT_FOUND)


@dataclass
class TrafficObjects:
    """The traffic objects as read (``None``: not found); only those the routing names are read."""

    service: Obj | None
    canary_service: Obj | None = None
    ingress: Obj | None = None
    canary_ingress: Obj | None = None
    http_route: Obj | None = None


def _not_found(kind: str, ns: str, name: str, hint: str = "") -> Refusal:
    return Refusal(f"{kind} {ns}/{name} not found{hint}", errors.TRAFFIC_OBJECT_NOT_FOUND)


def _conflict(kind: str, ns: str, name: str) -> Refusal:
    return Refusal(
        f"{kind} {ns}/{name} already exists and is not managed by temporal-rollouts; "
        "rename or delete it, or route traffic through another Service/Ingress",
        errors.TRAFFIC_OBJECT_CONFLICT,
    )


def check_traffic_objects(ns: str, routing: TrafficRoutingRef, objs: TrafficObjects) -> Refusal | None:
    """Do the Service, Ingress and HTTPRoute exist and route to the Service; are the -canary names free?"""
    svc = objs.service
    if svc is None:
        return _not_found("Service", ns, routing.service, " (--service / trafficRoutings.service)")
    if not (original_selector(svc) or (svc.get("spec") or {}).get("selector")):
        return Refusal(
            f"Service {ns}/{routing.service} has no selector; traffic routing needs a Service "
            "selecting the Deployment's pods",
            errors.TRAFFIC_OBJECT_INVALID,
        )
    if objs.canary_service is not None and not is_ours(objs.canary_service):
        return _conflict("Service", ns, routing.canary_service)
    if routing.ingress is not None:
        if objs.ingress is None:
            return _not_found("Ingress", ns, routing.ingress.name)
        if not ingress_routes_to(objs.ingress, routing.service):
            return Refusal(
                f"Ingress {ns}/{routing.ingress.name} has no path with backend Service {routing.service}",
                errors.TRAFFIC_OBJECT_INVALID,
            )
        if objs.canary_ingress is not None and not is_ours(objs.canary_ingress):
            return _conflict("Ingress", ns, str(routing.canary_ingress))
    if routing.gateway is not None:
        name = routing.gateway.http_route_name
        if objs.http_route is None:
            return _not_found("HTTPRoute", ns, name)
        if not httproute_routes_to(objs.http_route, routing.service):
            return Refusal(
                f"HTTPRoute {ns}/{name} has no rule with backendRef Service {routing.service}",
                errors.TRAFFIC_OBJECT_INVALID,
            )
    return None
