"""Discovery documents and ``/version`` (reference 1.3 and 1.5), derived from the resource registry.

kubectl 1.37 asks ``/api`` and ``/apis`` for the aggregated ``apidiscovery.k8s.io/v2`` list; the Python
``DynamicClient`` only understands the legacy ``APIVersions``/``APIGroupList``/``APIResourceList`` format.
Both are built here from :data:`kubesim.resources.RESOURCES`, so a new resource type shows up everywhere at
once.
"""

from __future__ import annotations

import re
from typing import Any

from kubesim.resources import RESOURCES, ResourceType

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

# Keep the minor version equal to the kubectl the project ships, so kubectl prints no version-skew warning.
KUBE_MAJOR = "1"
KUBE_MINOR = "37"
GIT_VERSION = "v1.37.1-kubesim"

_ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
# Namespaces cannot be deleted as a collection on a real apiserver.
_NAMESPACE_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")
_SUBRESOURCE_VERBS = ("get", "patch", "update")


def parse_accept(accept: str) -> list[tuple[str, dict[str, str]]]:
    """Split an Accept header into ``(media type, params)`` pairs, lower-cased, in the client's order."""
    out: list[tuple[str, dict[str, str]]] = []
    for media_range in (accept or "").split(","):
        parts = [p.strip() for p in media_range.split(";")]
        if not parts[0]:
            continue
        params: dict[str, str] = {}
        for p in parts[1:]:
            if "=" in p:
                k, v = p.split("=", 1)
                params[k.strip().lower()] = v.strip().strip('"')
        out.append((parts[0].lower(), params))
    return out


def wants_aggregated(accept: str) -> bool:
    """True if the Accept header asks for the aggregated v2 discovery list (kubectl 1.37 does)."""
    for media, params in parse_accept(accept):
        if (
            media == "application/json"
            and params.get("g") == "apidiscovery.k8s.io"
            and params.get("v") == "v2"
            and params.get("as") == "APIGroupDiscoveryList"
        ):
            return True
    return False


def verbs(rt: ResourceType) -> list[str]:
    """The verbs discovery advertises for ``rt`` (sorted, as the apiserver does)."""
    return list(_NAMESPACE_VERBS if rt.plural == "namespaces" else _ALL_VERBS)


def subresource_kind(rt: ResourceType, subresource: str) -> tuple[str, str, str]:
    """(group, version, kind) a subresource answers with: Scale is autoscaling/v1, status is the object."""
    if subresource == "scale":
        return ("autoscaling", "v1", "Scale")
    return (rt.group, rt.version, rt.kind)


def _groups() -> list[str]:
    """Non-core groups in registry order (first appearance), which is the order discovery lists them."""
    seen: list[str] = []
    for rt in RESOURCES:
        if rt.group and rt.group not in seen:
            seen.append(rt.group)
    return seen


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes' version order (GA, then beta, then alpha; higher numbers first; others last by name):
    the first is the group's preferred version (a CRD serving v1alpha1 and v1beta1 prefers v1beta1)."""
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if m is None:
        return (3, 0, 0, version)
    level = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    return (level, -int(m.group(1)), -int(m.group(3) or 0), "")


def _versions(group: str) -> list[str]:
    seen: list[str] = []
    for rt in RESOURCES:
        if rt.group == group and rt.version not in seen:
            seen.append(rt.version)
    return sorted(seen, key=version_priority)


def _in_gv(group: str, version: str) -> list[ResourceType]:
    return [rt for rt in RESOURCES if rt.group == group and rt.version == version]


def _singular(rt: ResourceType) -> str:
    return rt.singular or rt.kind.lower()


# ----------------------------------------------------------------------------------------------------
# Aggregated discovery (apidiscovery.k8s.io/v2)
# ----------------------------------------------------------------------------------------------------


def _aggregated_resource(rt: ResourceType) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": _singular(rt),
        "verbs": verbs(rt),
    }
    if rt.short_names:
        res["shortNames"] = list(rt.short_names)
    if rt.categories:
        res["categories"] = list(rt.categories)
    subs = []
    for sub in rt.subresources:
        g, v, k = subresource_kind(rt, sub)
        subs.append(
            {
                "subresource": sub,
                "responseKind": {"group": g, "version": v, "kind": k},
                "verbs": list(_SUBRESOURCE_VERBS),
            }
        )
    if subs:
        res["subresources"] = subs
    return res


def _aggregated_group(group: str) -> dict[str, Any]:
    return {
        "metadata": {"name": group, "creationTimestamp": None},
        "versions": [
            {
                "version": v,
                "resources": [_aggregated_resource(rt) for rt in _in_gv(group, v)],
                "freshness": "Current",
            }
            for v in _versions(group)
        ],
    }


def aggregated_discovery(prefix: str) -> dict[str, Any]:
    """``APIGroupDiscoveryList`` for ``/api`` (prefix "api": the core group only) or ``/apis`` ("apis")."""
    groups = [""] if prefix.strip("/") == "api" else _groups()
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": [_aggregated_group(g) for g in groups],
    }


# ----------------------------------------------------------------------------------------------------
# Legacy discovery
# ----------------------------------------------------------------------------------------------------


def legacy_api_versions(server_address: str = "127.0.0.1:0") -> dict[str, Any]:
    """``APIVersions`` for ``GET /api``; ``server_address`` is ``host:port`` of this server."""
    return {
        "kind": "APIVersions",
        "versions": _versions(""),
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def legacy_group_list() -> dict[str, Any]:
    """``APIGroupList`` for ``GET /apis`` (every non-core group, first version preferred)."""
    groups = []
    for g in _groups():
        gvs = [{"groupVersion": f"{g}/{v}", "version": v} for v in _versions(g)]
        groups.append({"name": g, "versions": gvs, "preferredVersion": gvs[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    """``APIResourceList`` for ``/api/v1`` (group "") or ``/apis/<group>/<version>``; None if not served."""
    rts = _in_gv(group, version)
    if not rts:
        return None
    resources: list[dict[str, Any]] = []
    for rt in rts:
        entry: dict[str, Any] = {
            "name": rt.plural,
            "singularName": _singular(rt),
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": verbs(rt),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        resources.append(entry)
        for sub in rt.subresources:
            g, v, k = subresource_kind(rt, sub)
            sub_entry: dict[str, Any] = {
                "name": f"{rt.plural}/{sub}",
                "singularName": "",
                "namespaced": rt.namespaced,
            }
            # group/version only appear when the subresource answers in another group (Scale).
            if (g, v) != (rt.group, rt.version):
                sub_entry["group"] = g
                sub_entry["version"] = v
            sub_entry["kind"] = k
            sub_entry["verbs"] = list(_SUBRESOURCE_VERBS)
            resources.append(sub_entry)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": rts[0].group_version,
        "resources": resources,
    }


def version_info() -> dict[str, Any]:
    """Body of ``GET /version`` (``kubectl version`` prints gitVersion as the server version)."""
    return {
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "emulationMajor": KUBE_MAJOR,
        "emulationMinor": KUBE_MINOR,
        "minCompatibilityMajor": KUBE_MAJOR,
        "minCompatibilityMinor": str(int(KUBE_MINOR) - 1),
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-11-27T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }
