"""Pure precondition checks, shared by the CLI and the activities so both refuse with the same words.

Each check takes objects already read (raw dicts as the API server returns them) and answers ``None`` or
a ``Refusal``: one line in the user's words plus the named error type. The CLI turns a refusal into a
one-line ``CommandError`` before anything is written or started; an activity turns it into a
non-retryable ``ApplicationError`` (the objects may have changed since the CLI looked).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from kube.names import ANN_ORIGINAL_STRATEGY, ANN_WORKFLOW_ID, HASH_LABEL, LABEL_STABLE_REVISION
from kube.objects import find_replica_set_for_template, owned_replica_sets, template_hash, templates_equal
from workflows import errors
from workflows.model import TrafficRoutingRef
from workflows.traffic_objects import httproute_routes_to, ingress_routes_to, is_ours, original_selector

__all__ = [
    "Refusal",
    "TrafficObjects",
    "check_held",
    "check_template_ref",
    "check_takeover",
    "check_traffic_objects",
    "held_for_rollout",
    "stable_by_revision",
]

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


def held_for_rollout(dep: Obj, template: Obj, workflow_id: str, stable_revision: str) -> Obj:
    """The Deployment as ``rollout start`` writes it, with the caller's credentials, in one write:
    the new pod template, held (paused, Recreate, the strategy parked in an annotation), the stable
    revision labelled and the rollout's workflow ID. The native controller makes no ReplicaSet for a
    paused Deployment; the worker then only creates the canary ReplicaSet of what was written."""
    out = copy.deepcopy(dep)
    md, spec = out["metadata"], out["spec"]
    annotations = md.get("annotations") or {}
    parked = annotations.get(ANN_ORIGINAL_STRATEGY) if annotations.get(ANN_WORKFLOW_ID) else None
    # Already held (a closed run's hold, taken over): its parked strategy is the original, not Recreate.
    native = spec.get("strategy") or {"type": "RollingUpdate"}
    original = json.loads(parked) if parked else copy.deepcopy(native)
    md["annotations"] = {
        **annotations,
        ANN_WORKFLOW_ID: workflow_id,
        ANN_ORIGINAL_STRATEGY: json.dumps(original, sort_keys=True),
    }
    md["labels"] = {**(md.get("labels") or {}), LABEL_STABLE_REVISION: stable_revision}
    spec["template"] = copy.deepcopy(template)
    spec["paused"] = True
    spec["strategy"] = {"type": "Recreate"}
    out.pop("status", None)
    return out


def check_held(dep: Obj, workflow_id: str, expected_hash: str) -> Refusal | None:
    """Does the Deployment hold, for ``workflow_id``, the pod template the rollout's reference names?

    The worker rolls out only a template someone wrote into the cluster with their own credentials;
    a template that differs from the reference (edited since, or never written) is refused.
    """
    target, md, spec = _target(dep), dep.get("metadata") or {}, dep.get("spec") or {}
    annotations = md.get("annotations") or {}
    if annotations.get(ANN_WORKFLOW_ID) != workflow_id or not spec.get("paused"):
        return Refusal(
            f"deployment {target} is not held for rollout {workflow_id}; `rollout start` writes the "
            "new template and the hold with the caller's own Kubernetes credentials",
            errors.NOT_HELD,
        )
    return check_template_ref(dep, workflow_id, expected_hash)


def check_template_ref(dep: Obj, workflow_id: str, expected_hash: str) -> Refusal | None:
    """Is the Deployment's pod template the one the rollout's reference (its template hash) names?"""
    target, spec = _target(dep), dep.get("spec") or {}
    if not expected_hash:
        return Refusal(f"rollout {workflow_id} names no template (templateHash)", errors.TEMPLATE_MISMATCH)
    found = template_hash(spec.get("template") or {})
    if found != expected_hash:
        return Refusal(
            f"the pod template of deployment {target} ({found}) is not the one rollout {workflow_id} "
            f"was started for ({expected_hash}); start the rollout again",
            errors.TEMPLATE_MISMATCH,
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
