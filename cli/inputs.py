"""Turn CLI arguments and YAML files into rollout inputs (pure: no cluster, no Temporal).

``--image CONTAINER=IMAGE`` and ``-f deployment.yaml`` give the new pod template; ``--steps`` or a
Kruise ``rollouts.kruise.io/v1beta1`` Rollout (``-r rollout.yaml``) give the steps. Kruise fields
this project does not implement are a clear error, never silently ignored.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cli.analysis_input import manifest_step_analysis
from kube.image_ref import image_error
from workflows import plan
from workflows.errors import TrafficSpecError
from workflows.model import StepSpec, TrafficRoutingRef
from workflows.traffic_parse import routing_from_manifest, step_traffic_from_manifest, validate_steps_traffic

__all__ = [
    "InputError",
    "KruisePlan",
    "apply_images",
    "load_single_doc",
    "parse_images",
    "parse_kruise_rollout",
    "template_from_deployment_doc",
]

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


class InputError(ValueError):
    """A bad argument or file; the message is the one line the CLI prints."""


@dataclass(frozen=True)
class KruisePlan:
    """What a Kruise Rollout manifest asks for."""

    deployment: str
    namespace: str | None
    steps: list[StepSpec]
    failure_threshold: int | str | None
    routing: TrafficRoutingRef | None = None
    progress_deadline_seconds: int | None = None
    auto_rollback: bool | None = None


def parse_images(values: list[str]) -> dict[str, str]:
    """``["nginx=nginx:1.27"]`` -> ``{"nginx": "nginx:1.27"}``."""
    out: dict[str, str] = {}
    for value in values:
        container, sep, image = value.partition("=")
        if not sep or not container.strip() or not image.strip():
            raise InputError(f"invalid --image {value!r}: want CONTAINER=IMAGE")
        if error := image_error(container.strip(), image.strip()):
            raise InputError(error)
        out[container.strip()] = image.strip()
    return out


def apply_images(template: dict[str, Any], images: dict[str, str], deployment: str) -> dict[str, Any]:
    """A copy of ``template`` with the named containers' images replaced.

    Raises:
        InputError: when a container does not exist in the template.
    """
    new = copy.deepcopy(template)
    spec = new.setdefault("spec", {})
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    names = [c.get("name") for c in containers]
    for container, image in images.items():
        matches = [c for c in containers if c.get("name") == container]
        if not matches:
            raise InputError(
                f'container "{container}" not found in deployment "{deployment}" '
                f"(containers: {', '.join(str(n) for n in names) or 'none'})"
            )
        for c in matches:
            c["image"] = image
    return new


def load_single_doc(path: str) -> dict[str, Any]:
    """Read a YAML file holding exactly one object."""
    try:
        docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if d is not None]
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from exc
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise InputError(f"{path}: want exactly one YAML object, found {len(docs)}")
    doc: dict[str, Any] = docs[0]
    return doc


def template_from_deployment_doc(doc: dict[str, Any], path: str) -> tuple[str, str | None, dict[str, Any]]:
    """``(name, namespace, spec.template)`` of a Deployment manifest."""
    if doc.get("apiVersion") != "apps/v1" or doc.get("kind") != "Deployment":
        raise InputError(f"{path}: want an apps/v1 Deployment, got {doc.get('apiVersion')}/{doc.get('kind')}")
    md = doc.get("metadata") or {}
    name = md.get("name")
    template = (doc.get("spec") or {}).get("template")
    if not name or not isinstance(template, dict):
        raise InputError(f"{path}: the Deployment needs metadata.name and spec.template")
    pod = template.get("spec") or {}
    for c in [*(pod.get("containers") or []), *(pod.get("initContainers") or [])]:
        if isinstance(c, dict) and (error := image_error(str(c.get("name")), str(c.get("image") or ""))):
            raise InputError(f"{path}: {error}")
    return str(name), md.get("namespace"), template


def _check_keys(obj: dict[str, Any], allowed: set[str], where: str, path: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise InputError(f"{path}: unknown field {where}.{unknown[0]}")


def parse_kruise_rollout(doc: dict[str, Any], path: str) -> KruisePlan:
    """Read a Kruise v1beta1 Rollout: workloadRef, canary steps, failureThreshold, trafficRoutings.

    Steps carry replicas, pause, traffic and matches. Our extensions of ``spec.strategy.canary``:
    ``progressDeadlineSeconds`` (int > 0) and ``autoRollback`` (bool).

    Raises:
        InputError: for a wrong kind/apiVersion, unknown fields, unsupported features or bad steps.
    """
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
    allowed = {
        "steps",
        "failureThreshold",
        "enableExtraWorkloadForCanary",
        "trafficRoutings",
        *_EXTENSIONS,
        *_UNSUPPORTED_CANARY,
    }
    _check_keys(canary, allowed, "spec.strategy.canary", path)
    for key, feature in _UNSUPPORTED_CANARY.items():
        if canary.get(key):
            raise InputError(f"{path}: spec.strategy.canary.{key} ({feature}) is not supported yet")
    if canary.get("enableExtraWorkloadForCanary"):
        raise InputError(
            f"{path}: spec.strategy.canary.enableExtraWorkloadForCanary (canary style) is not supported yet; "
            "only partition style"
        )
    steps: list[StepSpec] = []
    for i, raw in enumerate(canary.get("steps") or [], start=1):
        if not isinstance(raw, dict):
            raise InputError(f"{path}: step {i} must be a mapping")
        _check_keys(
            raw,
            {"replicas", "pause", "traffic", "matches", "analysis", *_UNSUPPORTED_STEP},
            f"spec.strategy.canary.steps[{i - 1}]",
            path,
        )
        for key, feature in _UNSUPPORTED_STEP.items():
            if key in raw:
                raise InputError(f"{path}: steps[{i - 1}].{key} ({feature}) is not supported yet")
        if "replicas" not in raw:
            raise InputError(f"{path}: steps[{i - 1}].replicas is required")
        pause = raw.get("pause") or {}
        _check_keys(pause, {"duration"}, f"spec.strategy.canary.steps[{i - 1}].pause", path)
        duration = pause.get("duration")
        try:
            traffic = step_traffic_from_manifest(raw, i)
        except TrafficSpecError as exc:
            raise InputError(f"{path}: {exc}") from exc
        try:
            analysis = manifest_step_analysis(raw.get("analysis"), i - 1, path)
        except ValueError as exc:
            raise InputError(str(exc)) from exc
        try:
            steps.append(
                StepSpec(replicas=raw["replicas"], pause_seconds=duration, traffic=traffic, analysis=analysis)
            )
        except ValueError as exc:
            raise InputError(f"{path}: steps[{i - 1}]: invalid replicas or pause duration") from exc
    try:
        plan.validate_steps(steps)
        plan.validate_failure_threshold(canary.get("failureThreshold"))
        routing = routing_from_manifest(canary)
        validate_steps_traffic(routing, [s.replicas for s in steps], [s.traffic for s in steps])
    except ValueError as exc:  # TrafficSpecError is a ValueError
        raise InputError(f"{path}: {exc}") from exc
    deadline = canary.get("progressDeadlineSeconds")
    if deadline is not None and (
        not isinstance(deadline, int) or isinstance(deadline, bool) or deadline <= 0
    ):
        raise InputError(f"{path}: spec.strategy.canary.progressDeadlineSeconds must be a positive integer")
    auto = canary.get("autoRollback")
    if auto is not None and not isinstance(auto, bool):
        raise InputError(f"{path}: spec.strategy.canary.autoRollback must be true or false")
    md = doc.get("metadata") or {}
    return KruisePlan(
        deployment=str(ref["name"]),
        namespace=md.get("namespace"),
        steps=steps,
        failure_threshold=canary.get("failureThreshold"),
        routing=routing,
        progress_deadline_seconds=deadline,
        auto_rollback=auto,
    )
