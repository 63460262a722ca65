"""Endpoints and EndpointSlice controllers (upstream ``endpoints_controller.go`` and the endpointslice
reconciler; reference 2.7). Both are driven by Services with a non-empty selector."""

from __future__ import annotations

import copy
from collections.abc import Hashable, Iterable
from typing import Any

from kubesim.controllers import podutil
from kubesim.controllers.base import Controller
from kubesim.controllers.replicaset import owner_reference
from kubesim.errors import ApiError
from kubesim.resources import ENDPOINTS, ENDPOINTSLICES, PODS, SERVICES
from kubesim.selectors import matches_map_selector
from kubesim.store import WatchEvent, now_rfc3339

Obj = dict[str, Any]

TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"
HEADLESS_LABEL = "service.kubernetes.io/headless"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
MAX_ENDPOINTS_PER_SLICE = 100


def find_port(pod: Obj, service_port: Obj) -> int | None:
    """``podutil.FindPort``: a numeric targetPort as is, a named one from the pod's container ports."""
    target = service_port.get("targetPort")
    if target is None:
        return int(service_port.get("port") or 0) or None
    if isinstance(target, int):
        return target
    protocol = service_port.get("protocol") or "TCP"
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return int(port["containerPort"])
    return None


def should_be_in_endpoints(pod: Obj, include_terminating: bool) -> bool:
    """``ShouldPodBeInEndpoints``."""
    if podutil.phase(pod) in ("Succeeded", "Failed"):
        return False
    if not (pod.get("status") or {}).get("podIP"):
        return False
    return include_terminating or not pod["metadata"].get("deletionTimestamp")


def _endpoint_port(service_port: Obj, number: int) -> Obj:
    port: Obj = {"port": number, "protocol": service_port.get("protocol") or "TCP"}
    if service_port.get("name"):
        port["name"] = service_port["name"]
    if service_port.get("appProtocol"):
        port["appProtocol"] = service_port["appProtocol"]
    return port


def _target_ref(pod: Obj) -> Obj:
    meta = pod["metadata"]
    return {
        "kind": "Pod",
        "namespace": meta.get("namespace", ""),
        "name": meta["name"],
        "uid": meta.get("uid", ""),
    }


def _port_sets(svc: Obj, pod: Obj) -> list[Obj] | None:
    """The resolved endpoint ports of ``pod`` for ``svc`` (None when a port cannot be resolved at all)."""
    ports = (svc.get("spec") or {}).get("ports") or []
    out = []
    for sp in ports:
        number = find_port(pod, sp)
        if number is not None:
            out.append(_endpoint_port(sp, number))
    return out


def _ports_key(ports: list[Obj]) -> tuple[tuple[str, int, str], ...]:
    return tuple(sorted((p.get("name", ""), p["port"], p["protocol"]) for p in ports))


def build_subsets(svc: Obj, pods: Iterable[Obj]) -> list[Obj]:
    """Endpoints subsets: one per distinct port set (``RepackSubsets``), addresses sorted by IP then uid."""
    spec = svc.get("spec") or {}
    publish = bool(spec.get("publishNotReadyAddresses"))
    headless = spec.get("clusterIP") == "None"
    groups: dict[tuple[Any, ...], tuple[list[Obj], dict[str, Obj], dict[str, Obj]]] = {}
    for pod in pods:
        if not should_be_in_endpoints(pod, publish):
            continue
        address: Obj = {"ip": pod["status"]["podIP"], "targetRef": _target_ref(pod)}
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            address["nodeName"] = node
        if not spec.get("ports"):
            if not headless:
                continue
            ports: list[Obj] = []
        else:
            ports = _port_sets(svc, pod) or []
            if not ports:
                continue
        key = _ports_key(ports)
        group = groups.setdefault(key, (ports, {}, {}))
        ready = publish or podutil.is_ready(pod)
        addr_key = f"{address['ip']}/{pod['metadata'].get('uid', '')}"
        if ready:
            group[1][addr_key] = address
            group[2].pop(addr_key, None)
        elif addr_key not in group[1]:
            group[2][addr_key] = address
    subsets = []
    for key in sorted(groups):
        ports, ready_addrs, not_ready = groups[key]
        subset: Obj = {}
        if ready_addrs:
            subset["addresses"] = sorted(ready_addrs.values(), key=_addr_sort)
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready.values(), key=_addr_sort)
        if ports:
            subset["ports"] = sorted(ports, key=lambda p: (p.get("name", ""), p["port"]))
        subsets.append(subset)
    return subsets


def _addr_sort(address: Obj) -> tuple[str, str]:
    return address["ip"], address["targetRef"]["uid"]


def build_slice_endpoints(
    svc: Obj, pods: Iterable[Obj]
) -> dict[tuple[Any, ...], tuple[list[Obj], list[Obj]]]:
    """EndpointSlice endpoints grouped by port set: ``{ports_key: (ports, endpoints)}``; terminating pods are
    listed with ``terminating: true``."""
    spec = svc.get("spec") or {}
    publish = bool(spec.get("publishNotReadyAddresses"))
    out: dict[tuple[Any, ...], tuple[list[Obj], list[Obj]]] = {}
    for pod in pods:
        if not should_be_in_endpoints(pod, True):
            continue
        ports = _port_sets(svc, pod) or []
        if spec.get("ports") and not ports:
            continue
        serving = podutil.is_ready(pod)
        terminating = bool(pod["metadata"].get("deletionTimestamp"))
        endpoint: Obj = {
            "addresses": [pod["status"]["podIP"]],
            "conditions": {
                "ready": publish or (serving and not terminating),
                "serving": serving,
                "terminating": terminating,
            },
            "targetRef": _target_ref(pod),
        }
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            endpoint["nodeName"] = node
        key = _ports_key(ports)
        out.setdefault(key, (sorted(ports, key=lambda p: (p.get("name", ""), p["port"])), []))[1].append(
            endpoint
        )
    for _, endpoints in out.values():
        endpoints.sort(key=lambda e: (e["addresses"][0], e["targetRef"]["uid"]))
    return out


def _slice_ports(ports: list[Obj]) -> list[Obj]:
    return [{"name": p.get("name", ""), "port": p["port"], "protocol": p["protocol"]} for p in ports]


class EndpointsController(Controller):
    """Keeps one Endpoints object and the managed EndpointSlices of every selector Service current."""

    name = "endpoints"
    coalesce = 0.01

    def keys(self) -> Iterable[Hashable]:
        return [(s["metadata"]["namespace"], s["metadata"]["name"]) for s in self.cache.all(SERVICES)]

    def on_event(self, event: WatchEvent, old: Obj | None) -> None:
        ns = event.obj["metadata"].get("namespace", "")
        if event.resource == SERVICES:
            self.enqueue((ns, event.obj["metadata"]["name"]))
        elif event.resource == PODS:
            labels = [event.obj["metadata"].get("labels") or {}]
            if old is not None:
                labels.append(old["metadata"].get("labels") or {})
            for svc in self.cache.in_namespace(SERVICES, ns):
                selector = (svc.get("spec") or {}).get("selector")
                if any(matches_map_selector(selector, lab) for lab in labels):
                    self.enqueue((ns, svc["metadata"]["name"]))
        elif event.resource in (ENDPOINTS, ENDPOINTSLICES) and event.type != "ADDED":
            # Someone else changed or removed what we manage: put it back.
            name = event.obj["metadata"]["name"]
            if event.resource == ENDPOINTSLICES:
                name = (event.obj["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL, "")
            if name and self.cache.get(SERVICES, ns, name) is not None:
                self.enqueue((ns, name))

    def reconcile(self, key: Any) -> None:
        ns, name = key
        svc = self.cache.get(SERVICES, ns, name)
        if svc is None:
            self._delete_endpoints(ns, name)
            return
        selector = (svc.get("spec") or {}).get("selector")
        if not selector:
            return  # endpoints of selector-less services are managed by their users
        pods = [
            p
            for p in self.cache.in_namespace(PODS, ns)
            if matches_map_selector(selector, p["metadata"].get("labels"))
        ]
        self._sync_endpoints(svc, pods)
        self._sync_slices(svc, pods)

    # ---- Endpoints -----------------------------------------------------------------------------------------

    def _labels(self, svc: Obj) -> dict[str, str]:
        labels = dict(svc["metadata"].get("labels") or {})
        if (svc.get("spec") or {}).get("clusterIP") == "None":
            labels[HEADLESS_LABEL] = ""
        return labels

    def _sync_endpoints(self, svc: Obj, pods: list[Obj]) -> None:
        meta = svc["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        subsets = build_subsets(svc, pods)
        labels = self._labels(svc)
        current = self.cache.get(ENDPOINTS, ns, name)
        if (
            current is not None
            and (current.get("subsets") or []) == subsets
            and (current["metadata"].get("labels") or {}) == labels
        ):
            return
        obj: Obj = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": name, "namespace": ns, "annotations": {TRIGGER_TIME: now_rfc3339()}},
        }
        if labels:
            obj["metadata"]["labels"] = labels
        if subsets:
            obj["subsets"] = subsets
        if current is None:
            self.store.create(ENDPOINTS, obj)
            return
        updated = copy.deepcopy(current)
        updated["metadata"]["annotations"] = dict(
            updated["metadata"].get("annotations") or {}, **obj["metadata"]["annotations"]
        )
        if labels:
            updated["metadata"]["labels"] = labels
        else:
            updated["metadata"].pop("labels", None)
        if subsets:
            updated["subsets"] = subsets
        else:
            updated.pop("subsets", None)
        self.store.update(ENDPOINTS, updated)

    def _delete_endpoints(self, ns: str, name: str) -> None:
        if self.cache.get(ENDPOINTS, ns, name) is not None:
            try:
                self.store.delete(ENDPOINTS, ns, name)
            except ApiError as exc:
                if exc.code != 404:
                    raise
        # Slices are owned by the Service; the garbage collector removes them.

    # ---- EndpointSlices ------------------------------------------------------------------------------------

    def _managed_slices(self, svc: Obj) -> list[Obj]:
        out = []
        for es in self.cache.owned(ENDPOINTSLICES, svc["metadata"]["uid"]):
            labels = es["metadata"].get("labels") or {}
            if labels.get(MANAGED_BY_LABEL) == MANAGED_BY:
                out.append(es)
        return sorted(
            out, key=lambda es: (es["metadata"].get("creationTimestamp", ""), es["metadata"]["name"])
        )

    def _sync_slices(self, svc: Obj, pods: list[Obj]) -> None:
        meta = svc["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        labels = dict(self._labels(svc))
        labels[SERVICE_NAME_LABEL] = name
        labels[MANAGED_BY_LABEL] = MANAGED_BY
        desired: list[tuple[list[Obj], list[Obj]]] = []
        groups = build_slice_endpoints(svc, pods)
        for key in sorted(groups):
            ports, endpoints = groups[key]
            for i in range(0, max(len(endpoints), 1), MAX_ENDPOINTS_PER_SLICE):
                desired.append((_slice_ports(ports), endpoints[i : i + MAX_ENDPOINTS_PER_SLICE]))
        if not groups:
            # Upstream keeps one empty placeholder slice for a Service without endpoints.
            desired.append(([], []))
        existing = self._managed_slices(svc)
        for i, (ports, endpoints) in enumerate(desired):
            current = existing[i] if i < len(existing) else None
            if (
                current is not None
                and (current.get("endpoints") or []) == endpoints
                and (current.get("ports") or []) == ports
                and (current["metadata"].get("labels") or {}) == labels
            ):
                continue
            if current is None:
                obj: Obj = {
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {
                        "generateName": f"{name}-",
                        "namespace": ns,
                        "labels": labels,
                        "annotations": {TRIGGER_TIME: now_rfc3339()},
                        "ownerReferences": [owner_reference(svc, "v1", "Service")],
                    },
                    "addressType": "IPv4",
                    "endpoints": endpoints,
                    "ports": ports,
                }
                self.store.create(ENDPOINTSLICES, obj)
                continue
            updated = copy.deepcopy(current)
            updated["metadata"]["labels"] = labels
            updated["metadata"]["annotations"] = dict(
                updated["metadata"].get("annotations") or {}, **{TRIGGER_TIME: now_rfc3339()}
            )
            updated["endpoints"] = endpoints
            updated["ports"] = ports
            self.store.update(ENDPOINTSLICES, updated)
        for extra in existing[len(desired) :]:
            try:
                self.store.delete(ENDPOINTSLICES, ns, extra["metadata"]["name"])
            except ApiError as exc:
                if exc.code != 404:
                    raise
