"""Traffic routing activities: stable/canary Services, nginx canary Ingress, Gateway API HTTPRoute.

Every write is an idempotent "set to X": read the object, compute the desired one with the pure functions in
``workflows/traffic_objects.py``, and write only if it differs, with the read resourceVersion as precondition
(a 409 conflict is raised and retried by Temporal with a fresh read). Transient API errors are raised as is
so Temporal retries them; impossible requests are non-retryable ApplicationErrors with the types in
``workflows/traffic.py``. Each activity returns ``TrafficChange``; the workflow waits gracePeriodSeconds
after a change.
"""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.common import KubeActivities
from workflows.checks import TrafficObjects, check_traffic_objects
from workflows.errors import TRAFFIC_OBJECT_CONFLICT, TRAFFIC_OBJECT_INVALID, TRAFFIC_OBJECT_NOT_FOUND
from workflows.model import StepTraffic, TrafficChange, TrafficInput, TrafficRoutingRef, TrafficSnapshot
from workflows.traffic_objects import (
    canary_ingress,
    canary_service,
    httproute_rules_with_canary,
    is_ours,
    original_selector,
    restored_httproute,
    restored_stable_service,
    stable_service,
)

Obj = dict[str, Any]


def _not_found(kind: str, namespace: str, name: str) -> ApplicationError:
    return ApplicationError(
        f"{kind} {namespace}/{name} not found", type=TRAFFIC_OBJECT_NOT_FOUND, non_retryable=True
    )


def _invalid(message: str) -> ApplicationError:
    return ApplicationError(message, type=TRAFFIC_OBJECT_INVALID, non_retryable=True)


def _conflict(kind: str, namespace: str, name: str) -> ApplicationError:
    return ApplicationError(
        f"{kind} {namespace}/{name} already exists and is not managed by temporal-rollouts; "
        "rename or delete it, or route traffic through another Service/Ingress",
        type=TRAFFIC_OBJECT_CONFLICT,
        non_retryable=True,
    )


def _same(a: Obj, b: Obj) -> bool:
    """Compare the parts of two objects we manage: labels, annotations and spec."""

    def part(o: Obj) -> Obj:
        meta = o.get("metadata") or {}
        return {
            "labels": meta.get("labels") or {},
            "annotations": meta.get("annotations") or {},
            "spec": o.get("spec") or {},
        }

    return part(a) == part(b)


class TrafficActivities(KubeActivities):
    """Traffic activities on the worker's ``KubeClient`` (raw JSON in and out: nothing lost to models)."""

    INVALID_REQUEST = TRAFFIC_OBJECT_INVALID

    async def _request(self, method: str, path: str, body: Obj | None = None) -> Obj | None:
        """One request; ``None`` when the object is not there (404): a traffic op treats it as gone."""
        try:
            return await self._call(self.kube.request, method, path, body)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise  # 409 conflict, 429, 5xx: retried by Temporal with a fresh read

    async def _get_service(self, ns: str, name: str) -> Obj | None:
        return await self._request("GET", self.kube.service_path(ns, name))

    async def _get_ingress(self, ns: str, name: str) -> Obj | None:
        return await self._request("GET", self.kube.ingress_path(ns, name))

    async def _get_route(self, ns: str, name: str) -> Obj | None:
        return await self._request("GET", self.kube.httproute_path(ns, name))

    async def _replace_route(self, ns: str, name: str, body: Obj) -> None:
        await self._request("PUT", self.kube.httproute_path(ns, name), body)

    async def _owner(self, ns: str, deployment: str) -> Obj | None:
        if not deployment:
            return None
        dep = await self._request("GET", self.kube.deployment_path(ns, deployment))
        if dep is None:
            return None
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": deployment,
            "uid": dep["metadata"]["uid"],
            "blockOwnerDeletion": False,
            "controller": False,
        }

    @staticmethod
    def _snapshot(inp: TrafficInput) -> TrafficSnapshot:
        if inp.snapshot is None:
            raise _invalid("internal: traffic snapshot missing (run snapshot_traffic first)")
        return inp.snapshot

    # --- activities ------------------------------------------------------------------------------------

    @activity.defn
    async def snapshot_traffic(self, inp: TrafficInput) -> TrafficSnapshot:
        """Check every traffic object exists and routes to the Service, and record the user's originals.

        Fails fast (non-retryable) before any write: Service/Ingress/HTTPRoute missing, a Service without
        selector, an Ingress or HTTPRoute that never routes to the Service, or a ``-canary`` object that
        already exists and is not ours.
        """
        ns, routing = inp.namespace, inp.routing
        objs = TrafficObjects(service=await self._get_service(ns, routing.service))
        if objs.service is not None:
            objs.canary_service = await self._get_service(ns, routing.canary_service)
            if routing.ingress is not None:
                objs.ingress = await self._get_ingress(ns, routing.ingress.name)
                objs.canary_ingress = await self._get_ingress(ns, str(routing.canary_ingress))
            if routing.gateway is not None:
                objs.http_route = await self._get_route(ns, routing.gateway.http_route_name)
        refusal = check_traffic_objects(ns, routing, objs)
        if refusal is not None:
            raise ApplicationError(refusal.message, type=refusal.error_type, non_retryable=True)
        svc = objs.service
        assert svc is not None  # checked
        selector = original_selector(svc) or dict((svc.get("spec") or {}).get("selector") or {})
        snapshot = TrafficSnapshot(
            service=routing.service, stable_selector=selector, service_spec=dict(svc.get("spec") or {})
        )
        snapshot.service_spec["selector"] = dict(selector)
        if objs.ingress is not None:
            snapshot.ingress_spec = objs.ingress.get("spec") or {}
        if objs.http_route is not None:
            snapshot.http_route_spec = objs.http_route.get("spec") or {}
        activity.logger.info("traffic snapshot taken", extra={"snapshot": snapshot.model_dump()})
        return snapshot

    @activity.defn
    async def route_stable_service(self, inp: TrafficInput) -> TrafficChange:
        """Set the stable Service selector to also require ``pod-template-hash=<stable_hash>``."""
        ns, name = inp.namespace, inp.routing.service
        if not inp.stable_hash:
            raise _invalid("internal: route_stable_service needs stable_hash")
        svc = await self._get_service(ns, name)
        if svc is None:
            raise _not_found("Service", ns, name)
        desired = stable_service(svc, inp.stable_hash)
        if _same(desired, svc):
            return TrafficChange(changed=False, message=f"Service {name} already selects stable pods")
        await self._request("PUT", self.kube.service_path(ns, name), desired)
        return TrafficChange(
            changed=True, message=f"Service {name} now selects pod-template-hash={inp.stable_hash}"
        )

    @activity.defn
    async def ensure_canary_service(self, inp: TrafficInput) -> TrafficChange:
        """Create ``<service>-canary`` selecting the canary pods, or set its selector if it exists."""
        ns, routing = inp.namespace, inp.routing
        if not inp.canary_hash:
            raise _invalid("internal: ensure_canary_service needs canary_hash")
        svc = await self._get_service(ns, routing.service)
        if svc is None:
            raise _not_found("Service", ns, routing.service)
        desired = canary_service(svc, inp.canary_hash, owner=await self._owner(ns, inp.deployment))
        if inp.snapshot is not None:
            # The snapshot is the user's truth even if the live Service was edited mid-rollout.
            desired["spec"]["selector"] = {
                **inp.snapshot.stable_selector,
                "pod-template-hash": inp.canary_hash,
            }
        name = routing.canary_service
        current = await self._get_service(ns, name)
        if current is None:
            await self._request("POST", self.kube.service_path(ns), desired)
            return TrafficChange(changed=True, message=f"created Service {name}")
        if not is_ours(current):
            raise _conflict("Service", ns, name)
        if (current.get("spec") or {}).get("selector") == desired["spec"]["selector"]:
            return TrafficChange(changed=False, message=f"Service {name} already selects canary pods")
        current["spec"]["selector"] = desired["spec"]["selector"]
        await self._request("PUT", self.kube.service_path(ns, name), current)
        return TrafficChange(
            changed=True, message=f"Service {name} now selects pod-template-hash={inp.canary_hash}"
        )

    @activity.defn
    async def set_traffic(self, inp: TrafficInput) -> TrafficChange:
        """Route the step's weight/matches to the canary (canary Ingress and/or HTTPRoute rules)."""
        traffic = inp.traffic or StepTraffic()
        changes: list[str] = []
        if inp.routing.ingress is not None:
            msg = await self._set_ingress(inp.namespace, inp.routing, traffic)
            if msg:
                changes.append(msg)
        if inp.routing.gateway is not None:
            msg = await self._set_route(inp.namespace, inp.routing, self._snapshot(inp), traffic)
            if msg:
                changes.append(msg)
        return TrafficChange(changed=bool(changes), message="; ".join(changes) or "traffic already set")

    async def _set_ingress(self, ns: str, routing: TrafficRoutingRef, traffic: StepTraffic) -> str:
        assert routing.ingress is not None
        name = str(routing.canary_ingress)
        current = await self._get_ingress(ns, name)
        if current is not None and not is_ours(current):
            raise _conflict("Ingress", ns, name)
        if current is None and not traffic.weight and not traffic.matches:
            return ""  # weight 0 and nothing to match: no canary Ingress needed (Kruise does the same)
        source = await self._get_ingress(ns, routing.ingress.name)
        if source is None:
            raise _not_found("Ingress", ns, routing.ingress.name)
        desired = canary_ingress(source, routing.service, traffic.weight, traffic.matches)
        if current is None:
            await self._request("POST", self.kube.ingress_path(ns), desired)
            return f"created Ingress {name}"
        if _same(desired, current):
            return ""
        current["metadata"]["labels"] = desired["metadata"]["labels"]
        current["metadata"]["annotations"] = desired["metadata"]["annotations"]
        current["spec"] = desired["spec"]
        await self._request("PUT", self.kube.ingress_path(ns, name), current)
        return f"updated Ingress {name}"

    async def _set_route(
        self, ns: str, routing: TrafficRoutingRef, snapshot: TrafficSnapshot, traffic: StepTraffic
    ) -> str:
        assert routing.gateway is not None
        name = routing.gateway.http_route_name
        route = await self._get_route(ns, name)
        if route is None:
            raise _not_found("HTTPRoute", ns, name)
        original_rules = (snapshot.http_route_spec or {}).get("rules") or []
        rules = httproute_rules_with_canary(original_rules, routing.service, traffic.weight, traffic.matches)
        if (route.get("spec") or {}).get("rules") == rules:
            return ""
        route.setdefault("spec", {})["rules"] = rules
        await self._replace_route(ns, name, route)
        return f"updated HTTPRoute {name}"

    @activity.defn
    async def restore_routes(self, inp: TrafficInput) -> TrafficChange:
        """All traffic back to the stable Service: canary Ingress deleted, HTTPRoute spec back to original."""
        ns, routing = inp.namespace, inp.routing
        changes: list[str] = []
        if routing.ingress is not None:
            name = str(routing.canary_ingress)
            current = await self._get_ingress(ns, name)
            if current is not None and is_ours(current):
                await self._request("DELETE", self.kube.ingress_path(ns, name))
                changes.append(f"deleted Ingress {name}")
        if routing.gateway is not None:
            snapshot = self._snapshot(inp)
            name = routing.gateway.http_route_name
            route = await self._get_route(ns, name)
            if (
                route is not None
                and snapshot.http_route_spec is not None
                and route.get("spec") != snapshot.http_route_spec
            ):
                await self._replace_route(ns, name, restored_httproute(route, snapshot.http_route_spec))
                changes.append(f"restored HTTPRoute {name}")
        return TrafficChange(changed=bool(changes), message="; ".join(changes) or "routes already restored")

    @activity.defn
    async def restore_stable_service(self, inp: TrafficInput) -> TrafficChange:
        """Put the stable Service selector back to the user's original (snapshot, else our annotation)."""
        ns, name = inp.namespace, inp.routing.service
        svc = await self._get_service(ns, name)
        if svc is None:
            return TrafficChange(changed=False, message=f"Service {name} is gone")
        selector = inp.snapshot.stable_selector if inp.snapshot else original_selector(svc)
        if selector is None:
            return TrafficChange(changed=False, message=f"Service {name} was not changed by us")
        desired = restored_stable_service(svc, selector)
        if _same(desired, svc):
            return TrafficChange(changed=False, message=f"Service {name} already restored")
        await self._request("PUT", self.kube.service_path(ns, name), desired)
        return TrafficChange(changed=True, message=f"restored Service {name} selector")

    @activity.defn
    async def delete_canary_service(self, inp: TrafficInput) -> TrafficChange:
        """Delete ``<service>-canary`` if it exists and is ours."""
        ns, name = inp.namespace, inp.routing.canary_service
        current = await self._get_service(ns, name)
        if current is None or not is_ours(current):
            return TrafficChange(changed=False, message=f"Service {name} already gone")
        await self._request("DELETE", self.kube.service_path(ns, name))
        return TrafficChange(changed=True, message=f"deleted Service {name}")
