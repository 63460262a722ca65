"""Kruise's validating admission rules for Rollout objects, with Kruise's texts (pure; no I/O).

The rules of OpenKruise Rollouts' validating webhook (``vrollout.kb.io``) for v1beta1 Rollouts:
the spec (strategy set, steps, traffic, trafficRoutings), one Rollout per workload, and - while the
stored Rollout is ``Progressing`` or ``Terminating`` - an unchanged workloadRef, trafficRoutings,
rolling style and number of steps. Each refusal is a Kubernetes field error string
(``<path>: Invalid value: <value>: <detail>`` / ``<path>: Forbidden: <detail>``) and several are
joined as the apiserver's aggregate (``[a, b]``). One difference: a complex value is printed as JSON,
where Kruise (Go) prints a struct dump no reader can use.
"""

from __future__ import annotations

import json
import re
from typing import Any

from kruise.rollout_object import conflict_message

__all__ = ["PARTITION_PERCENT_LIMIT", "aggregate", "validate_create", "validate_update"]

Obj = dict[str, Any]
# Kruise's --partition-percent-limit default: the largest percentage step with traffic or matches in
# partition style (more would overload the few stable pods when traffic goes back to stable).
PARTITION_PERCENT_LIMIT = 50
_PERCENT = re.compile(r"^(-?\d+)%$")
_REPLICAS = 'replicas must be positive number, or a percentage with "0%" < canaryReplicas <= "100%"'
_LIMIT = (
    "For partition style rollout: step[x].replicas must not greater than partition-percent-limit if "
    "traffic specified"
)
_TRAFFIC_BLUE_GREEN = 'traffic must be percentage with "0%" <= traffic <= "100%" in blueGreen strategy'
_TRAFFIC_CANARY = 'traffic must be percentage with "0%" < traffic <= "100%" in canary strategy'
_DECREASING = "Steps.CanaryReplicas must be a non decreasing sequence"


def _value(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    return json.dumps(v, separators=(",", ":"), sort_keys=True)


def _invalid(path: str, value: Any, detail: str) -> str:
    return f"{path}: Invalid value: {_value(value)}: {detail}"


def _forbidden(path: str, detail: str) -> str:
    return f"{path}: Forbidden: {detail}"


def aggregate(errors: list[str]) -> str:
    """The apiserver's aggregate error text: one error as is, several de-duplicated in brackets."""
    seen = list(dict.fromkeys(errors))
    return seen[0] if len(seen) == 1 else "[" + ", ".join(seen) + "]"


def _scaled(value: Any) -> tuple[int | None, bool]:
    """Kruise's ``GetScaledValueFromIntOrPercent(v, 100, true)``: (the value, None if invalid; is percent)."""
    if isinstance(value, bool):
        return None, False
    if isinstance(value, int):
        return value, False
    if isinstance(value, str):
        m = _PERCENT.match(value)
        return (int(m.group(1)) if m else None), True
    return None, False


def _strategy(spec: Obj) -> Obj:
    return spec.get("strategy") or {}


def _style(spec: Obj) -> str:
    strategy = _strategy(spec)
    if strategy.get("blueGreen") is not None:
        return "BlueGreen"
    canary = strategy.get("canary")
    if canary is None:
        return ""
    return "Canary" if canary.get("enableExtraWorkloadForCanary") else "Partition"


def _steps_errors(style: str, steps: list[Any], path: str, limit: int) -> list[str]:
    if not steps:
        return [_invalid(path, steps, "The number of Canary.Steps cannot be empty")]
    for i, step in enumerate(steps):
        step = step if isinstance(step, dict) else {}
        if step.get("replicas") is None:
            return [_invalid(f"{path}[{i}].steps", steps, "replicas cannot be empty")]
        replicas, percent = _scaled(step["replicas"])
        if replicas is None or replicas <= 0 or (percent and replicas > 100):
            return [_invalid(f"{path}[{i}].Replicas", step["replicas"], _REPLICAS)]
        traffic, matches = step.get("traffic"), step.get("matches") or []
        if traffic is None and not matches:
            continue
        if style == "Partition" and percent and replicas > limit:
            return [_invalid(f"{path}[{i}].steps", steps, _LIMIT)]
        if traffic is None:
            continue
        weight, _ = _scaled(str(traffic))
        if style == "BlueGreen":
            if weight is None or weight < 0 or weight > 100:
                return [_invalid(f"{path}[{i}].steps", steps, _TRAFFIC_BLUE_GREEN)]
        elif weight is None or weight <= 0 or weight > 100:
            return [_invalid(f"{path}[{i}].steps", steps, _TRAFFIC_CANARY)]
    for prev, curr in zip(steps, steps[1:], strict=False):
        (p, p_pct), (c, c_pct) = _scaled(prev.get("replicas")), _scaled(curr.get("replicas"))
        if p_pct != c_pct:
            continue  # an absolute number and a percentage are not compared
        if (c or 0) < (p or 0):
            return [_invalid(f"{path}.CanaryReplicas", steps, _DECREASING)]
    return []


def _traffic_errors(routing: Obj, path: str) -> list[str]:
    out: list[str] = []
    service = routing.get("service") or ""
    if int(routing.get("gracePeriodSeconds") or 0) < 0:
        out.append(
            _invalid(
                f"{path}.GracePeriodSeconds", service, "TrafficRouting.GracePeriodSeconds cannot be negative"
            )
        )
    if not service:
        out.append(_invalid(f"{path}.Service", service, "TrafficRouting.Service cannot be empty"))
    ingress, gateway = routing.get("ingress"), routing.get("gateway")
    if gateway is None and ingress is None and routing.get("customNetworkRefs") is None:
        out.append(_invalid(f"{path}.TrafficRoutings", ingress, "TrafficRoutings are not set"))
    if ingress is not None and not ingress.get("name"):
        out.append(_invalid(f"{path}.Ingress", ingress, "TrafficRouting.Ingress.Ingress cannot be empty"))
    if gateway is not None and not gateway.get("httpRouteName"):
        out.append(
            _invalid(
                f"{path}.Gateway",
                gateway,
                "TrafficRouting.Gateway must set the name of HTTPRoute or HTTPsRoute",
            )
        )
    return out


def _spec_errors(spec: Obj, limit: int) -> list[str]:
    if spec.get("workloadRef") is None:
        return [_invalid("Spec.ObjectRef.WorkloadRef", None, "WorkloadRef is required")]
    strategy = _strategy(spec)
    canary, blue_green = strategy.get("canary"), strategy.get("blueGreen")
    if canary is None and blue_green is None:
        return [_invalid("Spec.Strategy", None, "Canary and BlueGreen cannot both be empty")]
    if canary is not None and blue_green is not None:
        return [_invalid("Spec.Strategy", None, "Canary and BlueGreen cannot both be set")]
    name, body = ("BlueGreen", blue_green) if blue_green is not None else ("Canary", canary)
    body = body if isinstance(body, dict) else {}
    path = f"Spec.Strategy.{name}"
    out = _steps_errors(_style(spec), list(body.get("steps") or []), f"{path}.Steps", limit)
    routings = list(body.get("trafficRoutings") or [])
    if len(routings) > 1:
        out.append(_invalid(path, routings, "Rollout currently only support single TrafficRouting."))
    for routing in routings:
        out.extend(_traffic_errors(routing if isinstance(routing, dict) else {}, f"{path}.TrafficRouting"))
    return out


def _conflict(obj: Obj, others: list[Obj]) -> list[str]:
    md = obj.get("metadata") or {}
    ref = (obj.get("spec") or {}).get("workloadRef")
    for other in others:
        omd = other.get("metadata") or {}
        if omd.get("name") == md.get("name") or ref is None:
            continue
        if (other.get("spec") or {}).get("workloadRef") == ref:
            key = f"{omd.get('namespace', '')}/{omd.get('name', '')}"
            return [_invalid("Conflict Checker", md.get("name", ""), conflict_message(key))]
    return []


def validate_create(
    obj: Obj, others: list[Obj], partition_percent_limit: int = PARTITION_PERCENT_LIMIT
) -> list[str]:
    """Kruise's ``validateRollout``: the spec, then the conflict with ``others`` (the namespace's Rollouts).

    ``partition_percent_limit`` is Kruise's ``--partition-percent-limit`` flag."""
    return _spec_errors(obj.get("spec") or {}, partition_percent_limit) + _conflict(obj, others)


def _routings(spec: Obj) -> Any:
    strategy = _strategy(spec)
    body = strategy.get("canary") if strategy.get("canary") is not None else strategy.get("blueGreen")
    return (body or {}).get("trafficRoutings") or None


def _steps(spec: Obj) -> list[Any]:
    strategy = _strategy(spec)
    body = strategy.get("canary") if strategy.get("canary") is not None else strategy.get("blueGreen")
    return list((body or {}).get("steps") or [])


def validate_update(old: Obj, new: Obj, others: list[Obj]) -> list[str]:
    """Kruise's ``validateRolloutUpdate``: ``validate_create``, then the fields frozen while the stored
    Rollout (``old``) is Progressing or Terminating."""
    errors = validate_create(new, others)
    if errors:
        return errors
    if ((old.get("status") or {}).get("phase")) not in ("Progressing", "Terminating"):
        return []
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    if old_spec.get("workloadRef") != new_spec.get("workloadRef"):
        return [_forbidden("Spec.ObjectRef", "Rollout 'ObjectRef' field is immutable")]
    if _routings(old_spec) != _routings(new_spec):
        return [
            _forbidden(
                "Spec.Strategy.Canary|BlueGreen.TrafficRoutings",
                "Rollout 'Strategy.Canary|BlueGreen.TrafficRoutings' field is immutable",
            )
        ]
    if _style(old_spec) != _style(new_spec):
        return [
            _forbidden(
                "Spec.Strategy.Canary|BlueGreen",
                "Rollout style and enableExtraWorkloadForCanary are immutable",
            )
        ]
    if len(_steps(old_spec)) != len(_steps(new_spec)):
        return [_forbidden("Spec.Strategy.Canary|BlueGreen", "Amount of Rollout steps are immutable")]
    return []
