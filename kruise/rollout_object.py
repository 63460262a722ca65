"""The Kruise Rollout object in the cluster: reading one, which Rollout owns a Deployment, Kruise's texts.

Pure (no I/O): the declarative controller, its webhook and its tests share them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kruise.manifest import KruisePlan, parse_kruise_rollout
from kube.names import ANN_HAND_BACK, ROLLOUT_FINALIZER
from workflows.errors import InputError

__all__ = [
    "DISABLED",
    "FINALIZER",
    "NOT_FOUND",
    "RolloutRef",
    "conflict_message",
    "in_progress_value",
    "owners",
    "read_rollout",
]

# Kruise's finalizer: the Rollout stays until the Deployment is handed back.
FINALIZER = ROLLOUT_FINALIZER

# Kruise's status messages of a Rollout with no release running.
NOT_FOUND = "Workload Not Found"
DISABLED = "Rollout is disabled"


@dataclass(frozen=True)
class RolloutRef:
    """One Rollout object, read: where it is, what it targets, and its plan (or why it has none)."""

    namespace: str
    name: str
    deployment: str
    plan: KruisePlan | None
    error: str
    disabled: bool
    paused: bool
    deleting: bool
    generation: int
    created: str
    back_to_stable: bool = False  # ANN_HAND_BACK: stable (deleted/disabled mid-rollout -> roll back)


def read_rollout(obj: dict[str, Any]) -> RolloutRef:
    """Read a Rollout object; an invalid spec gives ``plan=None`` and the reason in ``error``."""
    md = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    ns, name = md.get("namespace", ""), md.get("name", "")
    ref = spec.get("workloadRef") or {}
    strategy = spec.get("strategy") or {}
    plan: KruisePlan | None = None
    error = ""
    if not spec.get("disabled"):
        doc = {**obj, "spec": {**spec, "disabled": False, "strategy": _without_unrouted_traffic(strategy)}}
        doc = {k: v for k, v in doc.items() if k in ("apiVersion", "kind", "metadata", "spec", "status")}
        try:
            plan = parse_kruise_rollout(doc, f"rollout {ns}/{name}")
        except InputError as exc:
            error = str(exc)
    return RolloutRef(
        namespace=ns,
        name=name,
        deployment=str(ref.get("name") or ""),
        plan=plan,
        error=error,
        disabled=bool(spec.get("disabled")),
        paused=bool(strategy.get("paused")),
        deleting=bool(md.get("deletionTimestamp")),
        generation=int(md.get("generation") or 0),
        created=str(md.get("creationTimestamp") or ""),
        back_to_stable=((md.get("annotations") or {}).get(ANN_HAND_BACK) == "stable"),
    )


def _without_unrouted_traffic(strategy: dict[str, Any]) -> dict[str, Any]:
    """Kruise ignores a step's ``traffic``/``matches`` when the canary has no ``trafficRoutings`` (no
    provider to route with: traffic follows the pods); so does declarative mode, instead of refusing
    the Rollout and leaving the Deployment unprotected."""
    canary = strategy.get("canary")
    if not isinstance(canary, dict) or canary.get("trafficRoutings"):
        return strategy
    steps = [
        {k: v for k, v in step.items() if k not in ("traffic", "matches")} if isinstance(step, dict) else step
        for step in canary.get("steps") or []
    ]
    return {**strategy, "canary": {**canary, "steps": steps}}


def conflict_message(other: str) -> str:
    """Kruise's validating webhook text for a second Rollout on one workload (``other``: namespace/name)."""
    return f"This rollout conflict with Rollout({other}), one workload only have less than one Rollout"


def owners(rollouts: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(namespace, deployment) -> the one Rollout that may act on it: the oldest that names it.

    Kruise refuses a second Rollout for a workload at admission; one that got in anyway (created
    while the validating webhook was away) is ignored here whatever its state - disabled, deleted,
    invalid - so it never touches the first one's release. The owner keeps the Deployment even while
    it is disabled or being deleted.
    """
    out: dict[tuple[str, str], str] = {}

    def age(o: dict[str, Any]) -> tuple[str, str]:
        return (str(o["metadata"].get("creationTimestamp", "")), str(o["metadata"]["name"]))

    for obj in sorted(rollouts, key=age):
        md = obj.get("metadata") or {}
        name = ((obj.get("spec") or {}).get("workloadRef") or {}).get("name")
        if name:
            out.setdefault((str(md.get("namespace", "")), str(name)), str(md.get("name", "")))
    return out


def in_progress_value(rollout: str) -> str:
    """Kruise's in-progress annotation value on a Deployment held for ``rollout``."""
    return json.dumps({"rolloutName": rollout}, separators=(",", ":"))
