"""``rollouts.kruise.io/v1alpha1`` Rollouts, converted to and from v1beta1 (the stored version).

Pure (no I/O): the controller's ``/convert`` endpoint (a CRD conversion webhook, ConversionReview v1)
answers with these. The mapping follows Kruise's own conversion:

- ``spec.objectRef.workloadRef`` (v1alpha1) is ``spec.workloadRef`` (v1beta1);
- a step's ``weight: N`` is ``traffic: "N%"``; a step with a weight and no ``replicas`` gets
  ``replicas: "N%"`` (in v1alpha1 the weight also sized the canary);
- the annotation ``rollouts.kruise.io/rolling-style`` is ``canary.enableExtraWorkloadForCanary``
  (anything but ``partition`` is the canary style), ``rollouts.kruise.io/trafficrouting`` is
  ``canary.trafficRoutingRef`` (the stored v1beta1 object keeps the field only; Kruise keeps both);
- ``status`` has the same fields in both versions and is copied.

What Kruise drops, kept here so that a round trip loses nothing: v1alpha1's ``spec.rolloutID`` rides on
the stored object as the annotation ``rollouts.temporal.io/v1alpha1-rollout-id``, and a v1beta1
``blueGreen`` strategy (no v1alpha1 home) as ``rollouts.temporal.io/v1beta1-blue-green`` (JSON); both go
back where they came from when converted the other way. ``disableGenerateCanaryService`` exists in both
versions and is kept (Kruise's conversion drops it).
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

__all__ = [
    "GROUP",
    "ROLLING_STYLE",
    "ROLLOUT_ID",
    "TRAFFIC_ROUTING",
    "V1ALPHA1",
    "V1BETA1",
    "ConversionError",
    "convert",
    "convert_review",
    "to_v1alpha1",
    "to_v1beta1",
]

Obj = dict[str, Any]
GROUP = "rollouts.kruise.io"
V1ALPHA1 = f"{GROUP}/v1alpha1"
V1BETA1 = f"{GROUP}/v1beta1"
ROLLING_STYLE = "rollouts.kruise.io/rolling-style"
TRAFFIC_ROUTING = "rollouts.kruise.io/trafficrouting"
ROLLOUT_ID = "rollouts.temporal.io/v1alpha1-rollout-id"
BLUE_GREEN = "rollouts.temporal.io/v1beta1-blue-green"
# Fields that are the same in both versions' canary strategy.
_CANARY_SHARED = (
    "trafficRoutings",
    "failureThreshold",
    "patchPodTemplateMetadata",
    "disableGenerateCanaryService",
)


class ConversionError(ValueError):
    """An object this converter cannot convert (unknown version or kind); the review answers Failure."""


def _annotations(obj: Obj) -> dict[str, str]:
    meta = obj.setdefault("metadata", {})
    if not isinstance(meta.get("annotations"), dict):
        meta["annotations"] = {}
    result: dict[str, str] = meta["annotations"]
    return result


def _drop_empty_annotations(obj: Obj) -> None:
    meta = obj.get("metadata") or {}
    if meta.get("annotations") == {}:
        del meta["annotations"]


def _weight_of(traffic: Any) -> int:
    """``"20%"`` -> 20 (rounded up, as Kruise scales a percentage of 100); anything else 0."""
    text = str(traffic).strip()
    if not text.endswith("%"):
        return 0
    try:
        return math.ceil(float(text[:-1]))
    except ValueError:
        return 0


def _step_to_v1beta1(step: Obj) -> Obj:
    out: Obj = {}
    weight = step.get("weight")
    if weight is not None:
        out["traffic"] = f"{weight}%"
    for key in ("requestHeaderModifier", "matches"):
        if key in step:
            out[key] = copy.deepcopy(step[key])
    if step.get("replicas") is not None:
        out["replicas"] = step["replicas"]
    elif weight is not None:
        out["replicas"] = f"{weight}%"
    if "pause" in step:
        out["pause"] = copy.deepcopy(step["pause"])
    return out


def _step_to_v1alpha1(step: Obj) -> Obj:
    out: Obj = {}
    if step.get("traffic") is not None:
        out["weight"] = _weight_of(step["traffic"])
    if "requestHeaderModifier" in step:
        out["requestHeaderModifier"] = copy.deepcopy(step["requestHeaderModifier"])
    if "matches" in step:  # v1alpha1 matches carry headers only
        out["matches"] = [{"headers": copy.deepcopy(m.get("headers") or [])} for m in step["matches"] or []]
    if step.get("replicas") is not None:
        out["replicas"] = step["replicas"]
    if "pause" in step:
        out["pause"] = copy.deepcopy(step["pause"])
    return out


def to_v1beta1(obj: Obj) -> Obj:
    """A v1alpha1 Rollout as v1beta1 (metadata and status copied)."""
    out = copy.deepcopy(obj)
    out["apiVersion"] = V1BETA1
    spec = out.get("spec") or {}
    annotations = _annotations(out)
    new: Obj = {}
    workload = (spec.get("objectRef") or {}).get("workloadRef")
    if workload is not None:
        new["workloadRef"] = workload
    if "disabled" in spec:
        new["disabled"] = spec["disabled"]
    if spec.get("rolloutID"):
        annotations[ROLLOUT_ID] = str(spec["rolloutID"])
    strategy = spec.get("strategy") or {}
    new_strategy: Obj = {k: strategy[k] for k in ("paused",) if k in strategy}
    blue_green = annotations.pop(BLUE_GREEN, None)
    if blue_green is not None and not strategy.get("canary"):
        new_strategy["blueGreen"] = json.loads(blue_green)
    canary = strategy.get("canary")
    if canary is not None:
        new_canary: Obj = {"steps": [_step_to_v1beta1(s) for s in canary.get("steps") or []]}
        new_canary.update({k: canary[k] for k in _CANARY_SHARED if k in canary})
        # the two annotations become fields (one home per version, so round trips are exact)
        if str(annotations.pop(ROLLING_STYLE, "")).lower() != "partition":
            new_canary["enableExtraWorkloadForCanary"] = True
        traffic_routing = annotations.pop(TRAFFIC_ROUTING, "")
        if traffic_routing:
            new_canary["trafficRoutingRef"] = traffic_routing
        new_strategy["canary"] = new_canary
    new["strategy"] = new_strategy
    if "spec" in out:
        out["spec"] = new
    _drop_empty_annotations(out)
    return out


def to_v1alpha1(obj: Obj) -> Obj:
    """A v1beta1 Rollout as v1alpha1 (metadata and status copied)."""
    out = copy.deepcopy(obj)
    out["apiVersion"] = V1ALPHA1
    spec = out.get("spec") or {}
    annotations = _annotations(out)
    new: Obj = {}
    if spec.get("workloadRef") is not None:
        new["objectRef"] = {"workloadRef": spec["workloadRef"]}
    rollout_id = annotations.pop(ROLLOUT_ID, None)
    if rollout_id:
        new["rolloutID"] = rollout_id
    if "disabled" in spec:
        new["disabled"] = spec["disabled"]
    strategy = spec.get("strategy") or {}
    new_strategy: Obj = {k: strategy[k] for k in ("paused",) if k in strategy}
    if strategy.get("blueGreen") is not None:
        annotations[BLUE_GREEN] = json.dumps(strategy["blueGreen"], separators=(",", ":"), sort_keys=True)
    canary = strategy.get("canary")
    if canary is not None:
        new_canary: Obj = {"steps": [_step_to_v1alpha1(s) for s in canary.get("steps") or []]}
        new_canary.update({k: canary[k] for k in _CANARY_SHARED if k in canary})
        annotations[ROLLING_STYLE] = "canary" if canary.get("enableExtraWorkloadForCanary") else "partition"
        if canary.get("trafficRoutingRef"):
            annotations[TRAFFIC_ROUTING] = canary["trafficRoutingRef"]
        new_strategy["canary"] = new_canary
    new["strategy"] = new_strategy
    if "spec" in out:
        out["spec"] = new
    _drop_empty_annotations(out)
    return out


def convert(obj: Obj, api_version: str) -> Obj:
    """``obj`` (a Rollout of either version) in ``api_version``; raises ``ConversionError``."""
    if obj.get("kind") != "Rollout":
        raise ConversionError(f"unsupported kind {obj.get('kind')!r}")
    have = obj.get("apiVersion")
    if have not in (V1ALPHA1, V1BETA1):
        raise ConversionError(f"unsupported apiVersion {have!r}")
    if have == api_version:
        return copy.deepcopy(obj)
    if api_version == V1BETA1:
        return to_v1beta1(obj)
    if api_version == V1ALPHA1:
        return to_v1alpha1(obj)
    raise ConversionError(f"unsupported desiredAPIVersion {api_version!r}")


def convert_review(review: Obj) -> Obj:
    """The answer to a ConversionReview v1 (``request.objects`` into ``request.desiredAPIVersion``)."""
    request = review.get("request") or {}
    response: Obj = {"uid": request.get("uid", "")}
    try:
        desired = str(request.get("desiredAPIVersion") or "")
        response["convertedObjects"] = [convert(o, desired) for o in request.get("objects") or []]
        response["result"] = {"status": "Success"}
    except (ConversionError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        response["convertedObjects"] = []
        response["result"] = {"status": "Failure", "message": f"conversion failed: {exc}"}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", "response": response}
