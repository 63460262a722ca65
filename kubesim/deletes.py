"""kubesim's deletes: DeleteOptions (propagation policy, preconditions, dryRun), orphaning and foreground
deletion of dependents, namespace contents, and the Status or object a DELETE answers with."""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from kubesim import bodies, conversion, errors
from kubesim.resources import RESOURCES, ResourceType
from kubesim.rest import RequestInfo, bad_request, json_response, matcher, with_type
from kubesim.store import Obj, Store

# Kinds whose DELETE answers with the object rather than a Status (ReturnDeletedObject in the registry).
RETURNS_DELETED_OBJECT = ("pods", "services", "namespaces")
PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")


class Deletes:
    """The delete handlers on one ``Store``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def _delete_options(self, request: web.Request) -> tuple[str, dict[str, Any], bool]:
        raw = await bodies.read_body(request)
        body: dict[str, Any] = {}
        if raw.strip():
            decoded = bodies.decode(raw)
            if not isinstance(decoded, dict):
                raise bad_request("DeleteOptions must be a JSON object")
            body = decoded
        policy = request.query.get("propagationPolicy") or body.get("propagationPolicy") or ""
        if not policy:
            orphan = request.query.get("orphanDependents") or body.get("orphanDependents")
            policy = "Orphan" if str(orphan).lower() == "true" else "Background"
        if policy not in ("Background", "Foreground", "Orphan"):
            raise errors.invalid(
                "DeleteOptions",
                "",
                [
                    (
                        "propagationPolicy",
                        f'Unsupported value: "{policy}": '
                        'supported values: "Foreground", "Background", "Orphan", "nil"',
                        "FieldValueNotSupported",
                    )
                ],
                "meta.k8s.io",
            )
        return policy, body.get("preconditions") or {}, bodies.dry_run(request, body)

    def _delete_one(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        policy: str,
        preconditions: dict[str, Any],
        dry_run: bool,
    ) -> tuple[Obj, bool]:
        """Delete with a propagation policy; returns (last state, still present)."""
        current = self.store.peek(rt.key, namespace, name)
        if current is None:
            raise errors.not_found(rt.plural, name, rt.group)
        if rt.key == "namespaces" and name in PROTECTED_NAMESPACES:
            raise errors.ApiError(
                403,
                f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                "Forbidden",
                {"name": name, "kind": "namespaces"},
            )
        uid, want_rv = preconditions.get("uid"), preconditions.get("resourceVersion")
        if dry_run:
            result = self.store.delete(
                rt.key, namespace, name, uid=uid, resource_version=want_rv, dry_run=True
            )
            return result, False
        # Check preconditions before any side effect on dependents.
        self.store.delete(rt.key, namespace, name, uid=uid, resource_version=want_rv, dry_run=True)
        owner_uid = current["metadata"].get("uid")
        if policy == "Orphan":
            self._orphan_dependents(namespace if rt.namespaced else None, owner_uid)
        if rt.key == "namespaces":
            self._delete_namespace_contents(name)
        # Foreground: finalizer foregroundDeletion + deletionTimestamp in one write; the GC finishes it.
        extra = ("foregroundDeletion",) if policy == "Foreground" else ()
        result = self.store.delete(rt.key, namespace, name, add_finalizers=extra)
        still = self.store.peek(rt.key, namespace, name) is not None
        return result, still

    def _orphan_dependents(self, namespace: str | None, owner_uid: str | None) -> None:
        for rt in RESOURCES:
            if not rt.namespaced and namespace is not None:
                continue
            for obj in self.store.list(rt.key, namespace):
                refs = obj["metadata"].get("ownerReferences") or []
                if any(r.get("uid") == owner_uid for r in refs):
                    new = copy.deepcopy(obj)
                    kept = [r for r in refs if r.get("uid") != owner_uid]
                    if kept:
                        new["metadata"]["ownerReferences"] = kept
                    else:
                        new["metadata"].pop("ownerReferences", None)
                    self.store.update(rt.key, new)

    def _delete_namespace_contents(self, namespace: str) -> None:
        for rt in RESOURCES:
            if not rt.namespaced:
                continue
            for obj in list(self.store.list(rt.key, namespace)):
                meta = obj["metadata"]
                if not meta.get("deletionTimestamp"):
                    self.store.delete(rt.key, namespace, meta["name"])

    def _deleted_response(self, rt: ResourceType, obj: Obj, still: bool) -> web.Response:
        if still or rt.key in RETURNS_DELETED_OBJECT:
            return json_response(with_type(rt, obj))
        details: dict[str, Any] = {
            "name": obj["metadata"]["name"],
            "group": rt.group,
            "kind": rt.plural,
            "uid": obj["metadata"].get("uid", ""),
        }
        if not rt.group:
            details.pop("group")
        return json_response(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
        )

    async def delete(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        assert info.rt is not None
        policy, preconditions, dry_run = await self._delete_options(request)
        obj, still = self._delete_one(info.rt, info.namespace, info.name, policy, preconditions, dry_run)
        obj = (await conversion.to_version(info.rt, [obj]))[0]
        return self._deleted_response(info.rt, obj, still)

    async def delete_collection(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        assert info.rt is not None
        rt = info.rt
        match = matcher(rt, info.namespace, request.query)
        policy, preconditions, dry_run = await self._delete_options(request)
        deleted = []
        for obj in [o for o in self.store.list(rt.key, info.namespace or None) if match(o)]:
            meta = obj["metadata"]
            result, _ = self._delete_one(rt, meta.get("namespace", ""), meta["name"], policy, {}, dry_run)
            deleted.append(with_type(rt, result))
        deleted = await conversion.to_version(rt, deleted)
        return json_response(
            {
                "kind": rt.list_kind,
                "apiVersion": rt.group_version,
                "metadata": {"resourceVersion": str(self.store.rv)},
                "items": deleted,
            }
        )
