"""Pure functions computing the desired Services, canary Ingress and HTTPRoute for a traffic step.

Inputs and outputs are plain JSON dicts as the API server returns them (camelCase). Nothing here mutates
its arguments. Restore functions give back the user's original objects, not Kruise's approximation (Kruise
resets the HTTPRoute stable weight to 1; we put back the exact original rules).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from kube.names import (
    CANARY_OF_ANNOTATION,
    CANARY_SUFFIX,
    HASH_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    NGINX_ANNOTATION_PREFIX,
    ORIGINAL_SELECTOR_ANNOTATION,
)
from workflows.model import HeaderMatch, HttpRouteMatch
from workflows.traffic import is_cookie_match

Obj = dict[str, Any]

# Metadata that belongs to the source object and must not be copied onto ours.
_SKIP_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
# Service spec fields the API server allocates per Service (Kruise createCanaryService clears the same).
_ALLOCATED_SERVICE_FIELDS = (
    "clusterIP",
    "clusterIPs",
    "externalIPs",
    "ipFamilies",
    "ipFamilyPolicy",
    "loadBalancerIP",
    "healthCheckNodePort",
)
NGINX_CANARY_KEYS = tuple(
    NGINX_ANNOTATION_PREFIX + k
    for k in (
        "canary",
        "canary-weight",
        "canary-by-header",
        "canary-by-header-value",
        "canary-by-header-pattern",
        "canary-by-cookie",
    )
)


def is_ours(obj: Obj | None) -> bool:
    """Whether an object carries our managed-by label (we never touch or delete other objects)."""
    labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
    return labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE


def _our_metadata(source: Obj, name: str, *, annotations: dict[str, str] | None = None) -> Obj:
    meta = source.get("metadata") or {}
    labels = dict(meta.get("labels") or {})
    labels[MANAGED_BY_LABEL] = MANAGED_BY_VALUE
    notes = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in _SKIP_ANNOTATIONS}
    notes.update(annotations or {})
    notes[CANARY_OF_ANNOTATION] = str(meta.get("name", ""))
    out: Obj = {"name": name, "labels": labels, "annotations": notes}
    if meta.get("namespace"):
        out["namespace"] = meta["namespace"]
    return out


# --- Services -----------------------------------------------------------------------------------------


def stable_service(original_svc: Obj, stable_hash: str) -> Obj:
    """The stable Service narrowed to the stable pods: selector + ``pod-template-hash=<stable_hash>``.

    The original selector is parked in an annotation so a later run can restore it even without the
    workflow's snapshot.
    """
    svc = copy.deepcopy(original_svc)
    spec = svc.setdefault("spec", {})
    selector = dict(spec.get("selector") or {})
    meta = svc.setdefault("metadata", {})
    notes = dict(meta.get("annotations") or {})
    if ORIGINAL_SELECTOR_ANNOTATION not in notes:
        notes[ORIGINAL_SELECTOR_ANNOTATION] = json.dumps(selector, sort_keys=True, separators=(",", ":"))
    meta["annotations"] = notes
    selector[HASH_LABEL] = stable_hash
    spec["selector"] = selector
    return svc


def original_selector(svc: Obj) -> dict[str, str] | None:
    """The user's selector parked by ``stable_service``, or None if the Service is not narrowed by us."""
    raw = ((svc.get("metadata") or {}).get("annotations") or {}).get(ORIGINAL_SELECTOR_ANNOTATION)
    if raw is None:
        return None
    value = json.loads(raw)
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else None


def restored_stable_service(current_svc: Obj, selector: dict[str, str]) -> Obj:
    """The stable Service with the user's ``selector`` back and our annotation removed."""
    svc = copy.deepcopy(current_svc)
    svc.setdefault("spec", {})["selector"] = dict(selector)
    meta = svc.setdefault("metadata", {})
    notes = dict(meta.get("annotations") or {})
    notes.pop(ORIGINAL_SELECTOR_ANNOTATION, None)
    if notes:
        meta["annotations"] = notes
    else:
        meta.pop("annotations", None)
    return svc


def canary_service(original_svc: Obj, canary_hash: str, *, owner: Obj | None = None) -> Obj:
    """``<svc>-canary``: a copy of the stable Service selecting ``pod-template-hash=<canary_hash>``.

    Allocated fields (cluster IPs, node ports, load balancer IP) are dropped so the API server allocates
    fresh ones; labels/annotations are copied and marked ours; ``owner`` (e.g. the Deployment) makes the
    garbage collector remove it with its owner.
    """
    meta = original_svc.get("metadata") or {}
    spec = copy.deepcopy(original_svc.get("spec") or {})
    for field in _ALLOCATED_SERVICE_FIELDS:
        spec.pop(field, None)
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.pop("nodePort", None)
    selector = original_selector(original_svc) or dict(spec.get("selector") or {})
    selector[HASH_LABEL] = canary_hash
    spec["selector"] = selector
    metadata = _our_metadata(original_svc, str(meta.get("name", "")) + CANARY_SUFFIX)
    metadata["annotations"].pop(ORIGINAL_SELECTOR_ANNOTATION, None)
    if owner:
        metadata["ownerReferences"] = [owner]
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}


# --- nginx Ingress ------------------------------------------------------------------------------------


def nginx_canary_annotations(weight: int | None, matches: list[HttpRouteMatch]) -> dict[str, str]:
    """The nginx canary annotations for a weight and header/cookie matches (Kruise's nginx.lua).

    nginx evaluates header, then cookie, then weight, so a matched request always reaches the canary and the
    rest is split by weight. Without weight and matches the canary Ingress carries weight 0.
    """
    p = NGINX_ANNOTATION_PREFIX
    out = {p + "canary": "true"}
    if weight is not None or not matches:
        out[p + "canary-weight"] = str(weight or 0)
    for match in matches:
        if not match.headers:
            continue
        header: HeaderMatch = match.headers[0]
        if is_cookie_match(header):
            out[p + "canary-by-cookie"] = header.value
        else:
            out[p + "canary-by-header"] = header.name
            regex = header.type == "RegularExpression"
            out[p + ("canary-by-header-pattern" if regex else "canary-by-header-value")] = header.value
    return out


def _retarget_ingress_rules(rules: list[Obj], service: str) -> list[Obj]:
    out: list[Obj] = []
    for rule in rules:
        paths = []
        for path in (rule.get("http") or {}).get("paths") or []:
            backend_svc = (path.get("backend") or {}).get("service") or {}
            if backend_svc.get("name") != service:
                continue
            p = copy.deepcopy(path)
            p["backend"]["service"]["name"] = service + CANARY_SUFFIX
            paths.append(p)
        if paths:
            r = {k: copy.deepcopy(v) for k, v in rule.items() if k != "http"}
            r["http"] = {"paths": paths}
            out.append(r)
    return out


def ingress_routes_to(ingress: Obj, service: str) -> bool:
    """Whether any rule path of the Ingress has the stable Service as backend."""
    return bool(_retarget_ingress_rules((ingress.get("spec") or {}).get("rules") or [], service))


def canary_ingress(original_ing: Obj, service: str, weight: int | None, matches: list[HttpRouteMatch]) -> Obj:
    """``<ingress>-canary``: the paths of the user's Ingress that reach ``service``, sent to ``<svc>-canary``.

    Copies ingressClassName, TLS, labels and annotations (minus any nginx canary keys of the source) and
    sets the canary annotations for ``weight`` / ``matches``.
    """
    meta = original_ing.get("metadata") or {}
    metadata = _our_metadata(original_ing, str(meta.get("name", "")) + CANARY_SUFFIX)
    for key in NGINX_CANARY_KEYS:
        metadata["annotations"].pop(key, None)
    metadata["annotations"].update(nginx_canary_annotations(weight, matches))
    src = original_ing.get("spec") or {}
    spec: Obj = {}
    for key in ("ingressClassName", "tls"):
        if key in src:
            spec[key] = copy.deepcopy(src[key])
    spec["rules"] = _retarget_ingress_rules(src.get("rules") or [], service)
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": metadata, "spec": spec}


# --- Gateway API HTTPRoute ----------------------------------------------------------------------------


def _is_service_ref(ref: Obj, name: str) -> bool:
    # The Gateway CRD defaults kind to Service and group to "" (core).
    return (
        ref.get("name") == name
        and ref.get("kind", "Service") == "Service"
        and ref.get("group", "") in ("", "core")
    )


def _rule_has_backend(rule: Obj, service: str) -> bool:
    return any(_is_service_ref(ref, service) for ref in rule.get("backendRefs") or [])


def httproute_routes_to(route: Obj, service: str) -> bool:
    """Whether any rule of the HTTPRoute has the stable Service as backend."""
    return any(_rule_has_backend(r, service) for r in (route.get("spec") or {}).get("rules") or [])


def _weighted_backends(refs: list[Obj], service: str, weight: int) -> list[Obj]:
    """The rule's backendRefs plus a canary ref taking ``weight``% of the stable ref's share.

    With the stable Service as the only backend the weights are stable 100-w / canary w, like Kruise. With
    other backends too, every weight is scaled by 100 so the other backends keep their exact share.
    """
    shared = any(not _is_service_ref(r, service) for r in refs)
    out: list[Obj] = []
    for ref in refs:
        base = int(ref.get("weight", 1)) if shared else 1
        if not _is_service_ref(ref, service):
            other = copy.deepcopy(ref)
            other["weight"] = base * 100
            out.append(other)
            continue
        stable = copy.deepcopy(ref)
        stable["weight"] = base * (100 - weight)
        canary = copy.deepcopy(ref)  # filters on the stable ref apply to the canary ref too
        canary["name"] = service + CANARY_SUFFIX
        canary["weight"] = base * weight
        out += [stable, canary]
    return out


def _header_for_gateway(h: HeaderMatch) -> Obj:
    if is_cookie_match(h):
        # nginx's canary-by-cookie: the cookie named h.value equal to "always". Gateway API has no cookie
        # match, so match the Cookie header with a regular expression instead.
        name = re.escape(h.value)
        pattern = f"(^|.*;\\s*){name}=always(\\s*;.*|$)"
        return {"type": "RegularExpression", "name": "Cookie", "value": pattern}
    return {"type": h.type, "name": h.name, "value": h.value}


def _combined_matches(rule: Obj, matches: list[HttpRouteMatch]) -> list[Obj]:
    """Each step match ANDed onto each existing match of the rule (Kruise gateway match mode)."""
    existing = rule.get("matches") or [{}]
    out: list[Obj] = []
    for step_match in matches:
        for base in existing:
            m = copy.deepcopy(base)
            if step_match.path is not None:
                m["path"] = {"type": step_match.path.type, "value": step_match.path.value}
            if step_match.headers:
                extra_headers = [_header_for_gateway(h) for h in step_match.headers]
                m["headers"] = list(m.get("headers") or []) + extra_headers
            if step_match.query_params:
                m["queryParams"] = list(m.get("queryParams") or []) + [
                    {"type": q.type, "name": q.name, "value": q.value} for q in step_match.query_params
                ]
            out.append(m)
    return out


def httproute_rules_with_canary(
    rules: list[Obj], service: str, weight: int | None, matches: list[HttpRouteMatch]
) -> list[Obj]:
    """The HTTPRoute rules for a step, computed from the user's original ``rules``.

    Weight: every rule routing to ``service`` gets a ``<svc>-canary`` backendRef (stable 100-w / canary w).
    Matches: for every such rule an extra rule routing 100% to the canary is appended, whose matches are the
    rule's matches ANDed with each step match (Gateway API gives more specific matches precedence).
    """
    out: list[Obj] = []
    for rule in rules:
        r = copy.deepcopy(rule)
        if weight and _rule_has_backend(rule, service):
            r["backendRefs"] = _weighted_backends(rule.get("backendRefs") or [], service, weight)
        out.append(r)
    if matches:
        for rule in rules:
            if not _rule_has_backend(rule, service):
                continue
            stable_ref = next(ref for ref in rule["backendRefs"] if _is_service_ref(ref, service))
            canary_ref = copy.deepcopy(stable_ref)
            canary_ref["name"] = service + CANARY_SUFFIX
            canary_ref.pop("weight", None)
            # Rule names must be unique within a route, so the extra rule carries none.
            extra = {
                k: copy.deepcopy(v) for k, v in rule.items() if k not in ("backendRefs", "matches", "name")
            }
            extra["matches"] = _combined_matches(rule, matches)
            extra["backendRefs"] = [canary_ref]
            out.append(extra)
    return out


def httproute_with_canary(
    original_route: Obj, service: str, weight: int | None, matches: list[HttpRouteMatch]
) -> Obj:
    """The user's HTTPRoute with the step's canary weight / match rules applied (see rules function)."""
    route = copy.deepcopy(original_route)
    spec = route.setdefault("spec", {})
    spec["rules"] = httproute_rules_with_canary(
        (original_route.get("spec") or {}).get("rules") or [], service, weight, matches
    )
    return route


def restored_httproute(current_route: Obj, original_spec: Obj) -> Obj:
    """The current HTTPRoute object (metadata, resourceVersion) with the user's original spec, byte-equal."""
    route = copy.deepcopy(current_route)
    route["spec"] = copy.deepcopy(original_spec)
    return route
