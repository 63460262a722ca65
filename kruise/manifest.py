"""A Kruise ``rollouts.kruise.io/v1beta1`` Rollout as a plan: its workload, steps, traffic and extensions.

Pure (no I/O). ``rollout start -r`` and the declarative controller read manifests with the same
``parse_kruise_rollout``. Kruise fields this project does not implement are a clear error, never
silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kruise.traffic import routing_from_manifest, step_traffic_from_manifest, validate_steps_traffic
from workflows import plan
from workflows.errors import AnalysisInputError, InputError, TrafficSpecError
from workflows.model import StepSpec, TrafficRoutingRef

__all__ = ["KRUISE_API_VERSION", "KruisePlan", "manifest_step_analysis", "parse_kruise_rollout"]

KRUISE_API_VERSION = "rollouts.kruise.io/v1beta1"

# Kruise fields we know but do not implement yet (an explicit error names them).
_UNSUPPORTED_CANARY = {
    "trafficRoutingRef": "shared TrafficRouting objects",
    "patchPodTemplateMetadata": "patchPodTemplateMetadata (canary-style extra Deployment)",
    "disableGenerateCanaryService": "canary Services",
}
_UNSUPPORTED_STEP = {
    "requestHeaderModifier": "header routing",
}
# Our extensions of spec.strategy.canary (not Kruise fields): the progress deadline and auto-rollback.
_EXTENSIONS = {"progressDeadlineSeconds", "autoRollback"}
_CANARY_FIELDS = {
    "steps",
    "failureThreshold",
    "enableExtraWorkloadForCanary",
    "trafficRoutings",
    *_EXTENSIONS,
    *_UNSUPPORTED_CANARY,
}
_STEP_FIELDS = {"replicas", "pause", "traffic", "matches", "analysis", *_UNSUPPORTED_STEP}


@dataclass(frozen=True)
class KruisePlan:
    """What a Kruise Rollout asks for (``rollout start`` builds the same from its flags)."""

    deployment: str
    namespace: str | None
    steps: list[StepSpec]
    failure_threshold: int | str | None
    routing: TrafficRoutingRef | None = None
    progress_deadline_seconds: int | None = None
    auto_rollback: bool | None = None


def parse_kruise_rollout(doc: dict[str, Any], path: str) -> KruisePlan:
    """Read a Kruise v1beta1 Rollout: workloadRef, canary steps, failureThreshold, trafficRoutings.

    Steps carry replicas, pause, traffic, matches and analysis template names. Our extensions of
    ``spec.strategy.canary``: ``progressDeadlineSeconds`` (int > 0) and ``autoRollback`` (bool).
    ``path`` starts every message (a file name, or ``rollout NS/NAME``).

    Raises:
        InputError: for a wrong kind/apiVersion, unknown fields, unsupported features or bad steps.
    """
    deployment, canary = _workload_and_canary(doc, path)
    steps = [_step(raw, i, path) for i, raw in enumerate(canary.get("steps") or [])]
    try:
        plan.validate_steps(steps)
        plan.validate_failure_threshold(canary.get("failureThreshold"))
        routing = routing_from_manifest(canary)
        validate_steps_traffic(routing, [s.replicas for s in steps], [s.traffic for s in steps])
    except ValueError as exc:  # TrafficSpecError is a ValueError
        raise InputError(f"{path}: {exc}") from exc
    deadline, auto = _extensions(canary, path)
    return KruisePlan(
        deployment=deployment,
        namespace=(doc.get("metadata") or {}).get("namespace"),
        steps=steps,
        failure_threshold=canary.get("failureThreshold"),
        routing=routing,
        progress_deadline_seconds=deadline,
        auto_rollback=auto,
    )


def _check_keys(obj: dict[str, Any], allowed: set[str], where: str, path: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise InputError(f"{path}: unknown field {where}.{unknown[0]}")


def _workload_and_canary(doc: dict[str, Any], path: str) -> tuple[str, dict[str, Any]]:
    """The Deployment ``spec.workloadRef`` names and ``spec.strategy.canary``, after Kruise's shape checks."""
    if doc.get("apiVersion") != KRUISE_API_VERSION or doc.get("kind") != "Rollout":
        raise InputError(
            f"{path}: want kind Rollout of {KRUISE_API_VERSION}, "
            f"got {doc.get('kind')} of {doc.get('apiVersion')}"
        )
    _check_keys(doc, {"apiVersion", "kind", "metadata", "spec", "status"}, "", path)
    spec = doc.get("spec") or {}
    _check_keys(spec, {"workloadRef", "strategy", "disabled"}, "spec", path)
    if spec.get("disabled"):
        raise InputError(f"{path}: spec.disabled is true; nothing to roll out")
    ref = spec.get("workloadRef") or {}
    if (
        ref.get("kind") != "Deployment"
        or ref.get("apiVersion") not in ("apps/v1", None)
        or not ref.get("name")
    ):
        raise InputError(f"{path}: spec.workloadRef must name an apps/v1 Deployment")
    strategy = spec.get("strategy") or {}
    _check_keys(strategy, {"canary", "blueGreen", "paused"}, "spec.strategy", path)
    if "blueGreen" in strategy:
        raise InputError(f"{path}: spec.strategy.blueGreen is not supported yet; use canary")
    canary = strategy.get("canary")
    if not isinstance(canary, dict):
        raise InputError(f"{path}: spec.strategy.canary is required")
    _check_keys(canary, _CANARY_FIELDS, "spec.strategy.canary", path)
    for key, feature in _UNSUPPORTED_CANARY.items():
        if canary.get(key):
            raise InputError(f"{path}: spec.strategy.canary.{key} ({feature}) is not supported yet")
    if canary.get("enableExtraWorkloadForCanary"):
        raise InputError(
            f"{path}: spec.strategy.canary.enableExtraWorkloadForCanary (canary style) is not supported yet; "
            "only partition style"
        )
    return str(ref["name"]), canary


def _step(raw: Any, index: int, path: str) -> StepSpec:
    """One of ``spec.strategy.canary.steps`` (``index`` is 0-based, as Kruise's field paths)."""
    if not isinstance(raw, dict):
        raise InputError(f"{path}: step {index + 1} must be a mapping")
    _check_keys(raw, _STEP_FIELDS, f"spec.strategy.canary.steps[{index}]", path)
    for key, feature in _UNSUPPORTED_STEP.items():
        if key in raw:
            raise InputError(f"{path}: steps[{index}].{key} ({feature}) is not supported yet")
    if "replicas" not in raw:
        raise InputError(f"{path}: steps[{index}].replicas is required")
    pause = raw.get("pause") or {}
    _check_keys(pause, {"duration"}, f"spec.strategy.canary.steps[{index}].pause", path)
    try:
        traffic = step_traffic_from_manifest(raw, index + 1)
        analysis = manifest_step_analysis(raw.get("analysis"), index, path)
    except TrafficSpecError as exc:
        raise InputError(f"{path}: {exc}") from exc
    except AnalysisInputError as exc:  # its message names the path already
        raise InputError(str(exc)) from exc
    try:
        return StepSpec(
            replicas=raw["replicas"], pause_seconds=pause.get("duration"), traffic=traffic, analysis=analysis
        )
    except ValueError as exc:
        raise InputError(f"{path}: steps[{index}]: invalid replicas or pause duration") from exc


def _extensions(canary: dict[str, Any], path: str) -> tuple[int | None, bool | None]:
    """Our ``progressDeadlineSeconds`` and ``autoRollback`` (None when not set)."""
    deadline = canary.get("progressDeadlineSeconds")
    if deadline is not None and (
        not isinstance(deadline, int) or isinstance(deadline, bool) or deadline <= 0
    ):
        raise InputError(f"{path}: spec.strategy.canary.progressDeadlineSeconds must be a positive integer")
    auto = canary.get("autoRollback")
    if auto is not None and not isinstance(auto, bool):
        raise InputError(f"{path}: spec.strategy.canary.autoRollback must be true or false")
    return deadline, auto


def manifest_step_analysis(raw: Any, index: int, path: str) -> list[str]:
    """Template names of a Kruise step's ``analysis: {templates: [{templateName: x}]}`` (``index``
    0-based); the templates themselves come from ``--step-analysis`` files."""
    if raw is None:
        return []
    field = f"spec.strategy.canary.steps[{index}].analysis"
    if not isinstance(raw, dict) or set(raw) - {"templates"} or not isinstance(raw.get("templates"), list):
        raise AnalysisInputError(f"{path}: {field}: want templates: [{{templateName: NAME}}]")
    names = []
    for i, t in enumerate(raw["templates"]):
        if not isinstance(t, dict) or set(t) != {"templateName"}:
            raise AnalysisInputError(f"{path}: {field}.templates[{i}]: want exactly templateName")
        names.append(str(t["templateName"]))
    return names
