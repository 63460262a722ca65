"""kubesim's writes: create, update (main resource, /status, /scale) and the four patch types, with the
registry's create-time normalisation, defaults, admission webhooks, validation and managedFields."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from aiohttp import web

from kubesim import admission, bodies, conversion, crd, defaults, errors, patch, validation
from kubesim.resources import ResourceType
from kubesim.rest import RequestInfo, bad_request, json_response, scale_of, with_type
from kubesim.store import Obj, Store, now_rfc3339

PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


class Writes:
    """The write handlers on one ``Store``; Services get their ClusterIP from ``allocate_cluster_ip``."""

    def __init__(self, store: Store, allocate_cluster_ip: Callable[[], str]) -> None:
        self.store = store
        self.allocate_cluster_ip = allocate_cluster_ip

    def _prepare_new(self, rt: ResourceType, obj: Obj, namespace: str) -> None:
        """Create-time normalisation: namespace, defaults, status reset (the registry's PrepareForCreate)."""
        meta = obj["metadata"]
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
            if self.store.peek("namespaces", "", namespace) is None:
                raise errors.not_found("namespaces", namespace)
        else:
            meta.pop("namespace", None)
        if meta.get("resourceVersion"):
            raise errors.ApiError(
                500, "resourceVersion should not be set on objects to be created", "InternalError"
            )
        for key in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "selfLink",
        ):
            meta.pop(key, None)
        self._apply_defaults(rt, obj)
        if rt.key == "deployments.apps":
            obj["status"] = {}
        elif rt.key == "replicasets.apps":
            obj["status"] = {"replicas": 0}
        elif rt.key == "pods":
            obj["status"] = {"phase": "Pending", "qosClass": _qos_class(obj)}
        elif rt.key == "services":
            obj["status"] = {"loadBalancer": {}}
        elif rt.key == crd.CRD_KEY:
            obj["status"] = crd.accepted_status(obj)
        elif rt.key == "namespaces":
            obj["status"] = {"phase": "Active"}
            spec: Obj = obj["spec"] if isinstance(obj.get("spec"), dict) else {}
            obj["spec"] = spec
            if "kubernetes" not in (spec.get("finalizers") or []):  # required on create (PrepareForCreate)
                spec["finalizers"] = [*(spec.get("finalizers") or []), "kubernetes"]
            name = meta.get("name") or ""
            if name:
                meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name

    def _apply_defaults(self, rt: ResourceType, obj: Obj) -> None:
        if crd.is_custom(rt):
            crd.apply_defaults(rt, obj)
            return
        defaults.apply_defaults(rt.key, obj, self.allocate_cluster_ip)

    async def _admit(
        self,
        request: web.Request,
        rt: ResourceType,
        subresource: str,
        operation: str,
        obj: Obj,
        old: Obj | None,
        dry_run: bool,
    ) -> Obj:
        """Run the mutating, then the validating admission webhooks (kubesim/admission.py) on the object."""
        meta = obj.get("metadata") or {}
        attrs = admission.Attributes(
            rt,
            subresource,
            operation,
            meta.get("namespace", ""),
            meta.get("name", ""),
            with_type(rt, obj),
            with_type(rt, old) if old is not None else None,
            bodies.manager(request),
            dry_run,
        )
        if self.store.list(admission.MWC_KEY):
            result = await admission.mutate(self.store, attrs)
            obj = result if result is not None else obj
        if self.store.list(admission.VWC_KEY):
            await admission.validate(self.store, replace(attrs, obj=with_type(rt, obj)))
        return obj

    @staticmethod
    async def _as(rt: ResourceType, obj: Obj) -> Obj:
        """The stored object in the version the client addressed."""
        return (await conversion.to_version(rt, [obj]))[0]

    def _validate(self, rt: ResourceType, obj: Obj, old: Obj | None) -> None:
        causes = validation.validate(rt.key, obj, old)
        if rt.key == crd.CRD_KEY:
            causes += [(f, m, "FieldValueInvalid") for f, m in crd.validate_crd(obj)]
        if causes:
            raise errors.invalid(rt.kind, (obj.get("metadata") or {}).get("name") or "", causes, rt.group)

    async def create(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        assert info.rt is not None
        rt = info.rt
        raw = await bodies.read_body(request)
        obj = bodies.check_type(rt, bodies.decode(raw, request=request))
        bodies.check_json_types(rt, obj)
        warnings = bodies.field_validation(request, rt, obj)
        dry_run = bodies.dry_run(request)
        stored_rt, obj = await conversion.to_storage(rt, obj)
        created = await self._create(request, stored_rt, obj, info.namespace, dry_run, "Update")
        return json_response(await self._as(rt, created), 201, warnings=warnings)

    async def _create(
        self, request: web.Request, rt: ResourceType, obj: Obj, namespace: str, dry_run: bool, operation: str
    ) -> Obj:
        self._prepare_new(rt, obj, namespace)
        meta = obj["metadata"]
        if not meta.get("name") and not meta.get("generateName"):
            raise errors.invalid(
                rt.kind,
                "",
                [("metadata.name", "Required value: name or generateName is required", "FieldValueRequired")],
                rt.group,
            )
        obj = await self._admit(request, rt, "", "CREATE", obj, None, dry_run)
        self._validate(rt, obj, None)
        _touch_managed(obj, bodies.manager(request), operation, rt.group_version, "")
        return self.store.create(rt.key, obj, dry_run=dry_run)

    async def update(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        assert info.rt is not None
        rt = info.rt
        raw = await bodies.read_body(request)
        obj = bodies.check_type(rt, bodies.decode(raw, request=request), info.subresource)
        bodies.check_json_types(rt, obj, info.subresource)
        warnings = bodies.field_validation(request, rt, obj, subresource=info.subresource)
        dry_run = bodies.dry_run(request)
        meta = obj["metadata"]
        if meta.get("name") and meta["name"] != info.name:
            raise bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({info.name})"
            )
        if rt.namespaced and meta.get("namespace") and meta["namespace"] != info.namespace:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        meta["name"] = info.name
        current = self.store.peek(rt.key, info.namespace, info.name)
        if current is None:
            raise errors.not_found(rt.plural, info.name, rt.group)
        if info.subresource == "scale":
            return json_response(self._write_scale(rt, current, obj, dry_run), warnings=warnings)
        stored_rt, obj = await conversion.to_storage(rt, obj)
        result = await self._write(request, stored_rt, info, obj, current, dry_run, "Update")
        return json_response(await self._as(rt, result), warnings=warnings)

    async def _write(
        self,
        request: web.Request,
        rt: ResourceType,
        info: RequestInfo,
        obj: Obj,
        current: Obj,
        dry_run: bool,
        operation: str,
    ) -> Obj:
        """Validate and store an updated object (main resource or /status)."""
        meta = obj.setdefault("metadata", {})
        if rt.namespaced:
            meta["namespace"] = info.namespace
        if info.subresource != "status":
            if rt.key == "services":
                _keep_allocated(obj, current)
            self._apply_defaults(rt, obj)
            obj = await self._admit(request, rt, "", "UPDATE", obj, current, dry_run)
            meta = obj.setdefault("metadata", {})
            self._validate(rt, obj, current)
        else:  # webhooks whose rules name the subresource (``rollouts/status``) see it, as in Kubernetes
            obj = await self._admit(request, rt, "status", "UPDATE", obj, current, dry_run)
            merged = dict(current)
            merged["status"] = obj.get("status")
            self._validate(rt, merged, current)
        if info.subresource == "status":
            # Store.update takes only status (plus the rv precondition) from a /status write.
            managed = copy.deepcopy(current["metadata"].get("managedFields") or [])
            slim_meta = {
                "name": info.name,
                "namespace": info.namespace,
                "managedFields": managed,
                "resourceVersion": meta.get("resourceVersion"),
            }
            _touch_managed(
                {"metadata": slim_meta}, bodies.manager(request), operation, rt.group_version, "status"
            )
            slim = {"metadata": slim_meta, "status": obj.get("status")}
            return self.store.update(rt.key, slim, subresource="status", dry_run=dry_run)
        # managedFields is carried from the stored object unless the client sent its own.
        if "managedFields" not in meta and current["metadata"].get("managedFields"):
            meta["managedFields"] = copy.deepcopy(current["metadata"]["managedFields"])
        _touch_managed(obj, bodies.manager(request), operation, rt.group_version, "")
        return self.store.update(rt.key, obj, dry_run=dry_run)

    def _write_scale(self, rt: ResourceType, current: Obj, scale: Obj, dry_run: bool) -> Obj:
        name = current["metadata"]["name"]
        want_rv = (scale.get("metadata") or {}).get("resourceVersion")
        if want_rv and str(want_rv) != current["metadata"]["resourceVersion"]:
            raise errors.conflict(rt.plural, name, rt.group)
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid(
                "Scale",
                name,
                [("spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0")],
                "autoscaling",
            )
        new = copy.deepcopy(current)
        new.setdefault("spec", {})["replicas"] = replicas
        new["metadata"].pop("resourceVersion", None)
        result = self.store.update(rt.key, new, dry_run=dry_run)
        return scale_of(rt, result)

    async def patch(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        assert info.rt is not None
        rt = info.rt
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip()
        if ctype not in PATCH_TYPES:
            raise errors.ApiError(
                415,
                "the body of the request was in an unknown format - accepted "
                "media types "
                "include: " + ", ".join(PATCH_TYPES),
                "UnsupportedMediaType",
            )
        is_apply = ctype == "application/apply-patch+yaml"
        force = request.query.get("force")
        if force is not None and not is_apply:
            raise errors.invalid(
                "PatchOptions",
                "",
                [("force", f"Invalid value: {force}: may not be specified for non-apply patch")],
                "meta.k8s.io",
            )
        if is_apply and not request.query.get("fieldManager"):
            raise bad_request(
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is '
                "required for apply patch"
            )
        raw = await bodies.read_body(request)
        body = bodies.decode(raw, yaml_ok=is_apply, request=request)
        dry_run = bodies.dry_run(request)
        warnings: list[str] = []
        if ctype != "application/json-patch+json":
            if not isinstance(body, dict):
                raise bad_request("the patch body must be a JSON object")
            warnings = bodies.field_validation(request, rt, body, is_patch=True, subresource=info.subresource)
        current = self.store.peek(rt.key, info.namespace, info.name)
        if current is None:
            if is_apply and not info.subresource:
                obj = bodies.check_type(rt, body)
                bodies.check_json_types(rt, obj)
                meta = obj["metadata"]
                if meta.get("name") and meta["name"] != info.name:
                    raise bad_request(
                        f"the name of the object ({meta['name']}) does not match the name "
                        f"on the "
                        f"URL ({info.name})"
                    )
                meta["name"] = info.name
                stored_rt, obj = await conversion.to_storage(rt, obj)
                created = await self._create(request, stored_rt, obj, info.namespace, dry_run, "Apply")
                return json_response(await self._as(rt, created), 201, warnings=warnings)
            raise errors.not_found(rt.plural, info.name, rt.group)
        if info.subresource == "scale":
            base = scale_of(rt, current)
        else:  # the patch applies to the object in the version the client addressed
            base = copy.deepcopy((await conversion.to_version(rt, [with_type(rt, current)]))[0])
        patched = _apply_patch(ctype, base, body)
        patched = bodies.check_type(rt, patched, info.subresource)
        bodies.check_json_types(rt, patched, info.subresource)
        if ctype == "application/json-patch+json":
            warnings = bodies.field_validation(request, rt, patched, subresource=info.subresource)
        meta = patched["metadata"]
        if meta.get("name") != info.name:
            raise bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on "
                f"the URL "
                f"({info.name})"
            )
        if info.subresource == "scale":
            return json_response(self._write_scale(rt, current, patched, dry_run), warnings=warnings)
        stored_rt, patched = await conversion.to_storage(rt, patched)
        result = await self._write(
            request, stored_rt, info, patched, current, dry_run, "Apply" if is_apply else "Update"
        )
        return json_response(await self._as(rt, result), warnings=warnings)


def _apply_patch(ctype: str, base: Obj, body: Any) -> Obj:
    """The object after a patch of this media type; a bad patch is a 400, one that cannot apply a 422."""
    try:
        if ctype == "application/json-patch+json":
            return patch.json_patch(base, body)
        if ctype == "application/merge-patch+json":
            return patch.merge_patch(base, body)
        return patch.strategic_merge(base, body)  # strategic merge, and apply treated as one
    except patch.PatchError as exc:
        if exc.code == 400:
            raise bad_request(exc.message) from None
        raise errors.ApiError(422, exc.message, "Invalid") from None


def _touch_managed(obj: Obj, manager: str, operation: str, api_version: str, subresource: str) -> None:
    """Record a coarse managedFields entry for ``manager`` (kubectl hides these by default)."""
    meta = obj.setdefault("metadata", {})
    entries = [e for e in (meta.get("managedFields") or []) if isinstance(e, dict)]
    entry = {
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": now_rfc3339(),
        "fieldsType": "FieldsV1",
        "fieldsV1": {},
    }
    if subresource:
        entry["subresource"] = subresource
    for i, old in enumerate(entries):
        if (
            old.get("manager") == manager
            and old.get("operation") == operation
            and old.get("subresource", "") == subresource
        ):
            entries[i] = {**old, "time": entry["time"]}
            break
    else:
        entries.append(entry)
    meta["managedFields"] = entries


def _keep_allocated(obj: Obj, current: Obj) -> None:
    """A Service update that omits allocated values keeps them (patchAllocatedValues)."""
    spec, old = obj.get("spec"), current.get("spec") or {}
    if not isinstance(spec, dict):
        return
    for key in ("clusterIP", "clusterIPs"):
        if not spec.get(key) and old.get(key):
            spec[key] = copy.deepcopy(old[key])
    old_ports = {(p.get("port"), p.get("protocol")): p for p in old.get("ports") or []}
    for port in spec.get("ports") or []:
        prev = old_ports.get((port.get("port"), port.get("protocol")))
        if prev and "nodePort" in prev and "nodePort" not in port:
            port["nodePort"] = prev["nodePort"]


def _qos_class(pod: Obj) -> str:
    containers = ((pod.get("spec") or {}).get("containers")) or []
    resources = [c.get("resources") or {} for c in containers if isinstance(c, dict)]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(
        r.get("limits")
        and (not r.get("requests") or r.get("requests") == r.get("limits"))
        and {"cpu", "memory"} <= set(r["limits"])
        for r in resources
    )
    return "Guaranteed" if guaranteed else "Burstable"
