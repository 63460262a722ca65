"""The minimal OpenAPI v3 documents kubectl needs for ``apply``/``create``/``replace`` (reference 1.6).

kubectl's query-param verifier looks, per group-version document, for a PATCH operation whose
``x-kubernetes-group-version-kind`` matches the manifest and which declares a ``fieldValidation`` query
parameter. If it finds one, it leaves validation to the server (``fieldValidation=Strict``) instead of
validating client-side against full schemas, which kubesim does not serve. The operations deliberately
carry no ``requestBody``: kubectl then builds client-side-apply patches from its compiled-in Go types
(correct merge keys) rather than from schemas we do not have.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from kubesim.discovery import GIT_VERSION
from kubesim.resources import RESOURCES, ResourceType


def _gv_path(rt: ResourceType) -> str:
    """Root key of a group-version document: "api/v1" or "apis/<group>/<version>"."""
    return f"api/{rt.version}" if not rt.group else f"apis/{rt.group}/{rt.version}"


def _gv_paths() -> list[str]:
    seen: list[str] = []
    for rt in RESOURCES:
        p = _gv_path(rt)
        if p not in seen:
            seen.append(p)
    return seen


def _object_path(rt: ResourceType) -> str:
    base = "/" + _gv_path(rt)
    if rt.namespaced:
        return f"{base}/namespaces/{{namespace}}/{rt.plural}/{{name}}"
    return f"{base}/{rt.plural}/{{name}}"


def _patch_operation(rt: ResourceType) -> dict[str, Any]:
    params = [
        {
            "name": "name",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "uniqueItems": True},
        },
    ]
    if rt.namespaced:
        params.append(
            {
                "name": "namespace",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "uniqueItems": True},
            }
        )
    for q in ("dryRun", "fieldManager", "fieldValidation", "force", "pretty"):
        params.append(
            {
                "name": q,
                "in": "query",
                "schema": {"type": "boolean" if q == "force" else "string", "uniqueItems": True},
            }
        )
    return {
        "patch": {
            "description": f"partially update the specified {rt.kind}",
            "operationId": f"patch{rt.kind}",
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {
                "group": rt.group,
                "version": rt.version,
                "kind": rt.kind,
            },
            "parameters": params,
            "responses": {"200": {"description": "OK"}, "201": {"description": "Created"}},
        }
    }


def _build_doc(gv_path: str) -> dict[str, Any] | None:
    rts = [rt for rt in RESOURCES if _gv_path(rt) == gv_path]
    if not rts:
        return None
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": {_object_path(rt): _patch_operation(rt) for rt in rts},
        "components": {"schemas": {}},
    }


def _hash(doc: dict[str, Any]) -> str:
    # kubectl caches documents by URL, so the hash must change whenever the document does.
    return hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest().upper()


_DOCS: dict[str, dict[str, Any]] = {}
for _p in _gv_paths():
    _d = _build_doc(_p)
    if _d is not None:
        _DOCS[_p] = _d
_HASHES: dict[str, str] = {p: _hash(d) for p, d in _DOCS.items()}


def openapi_v3_root(base_url: str = "") -> dict[str, Any]:
    """Body of ``GET /openapi/v3``: one relative URL (with a content hash) per served group-version.

    ``base_url`` is accepted for symmetry with the server; the URLs are server-relative, as on a real
    apiserver.
    """
    del base_url
    return {"paths": {p: {"serverRelativeURL": f"/openapi/v3/{p}?hash={_HASHES[p]}"} for p in _DOCS}}


def openapi_v3_doc(path: str) -> dict[str, Any] | None:
    """Body of ``GET /openapi/v3/<path>`` for path "api/v1" or "apis/<g>/<v>"; None if not served (404)."""
    doc = _DOCS.get(path.strip("/"))
    return copy.deepcopy(doc) if doc is not None else None
