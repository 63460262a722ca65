"""Defaulting on write (reference section 2.1), mirroring ``apps/v1`` and ``core/v1`` defaults.go.

Pod templates are defaulted by one function used for Deployment templates, ReplicaSet templates and Pods, so a
Deployment's template and its ReplicaSet's template stay equal after defaulting (the new-RS lookup needs
that).
All functions mutate the object they are given.
"""

from __future__ import annotations

import ipaddress
import zlib
from typing import Any

from kubesim import configdata

Obj = dict[str, Any]


def _image_pull_policy(image: str) -> str:
    # The tag is whatever follows the last ":" after the last "/"; a digest pins the image too.
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def default_container(container: Obj) -> None:
    container.setdefault("imagePullPolicy", _image_pull_policy(str(container.get("image") or "")))
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for env in container.get("env") or []:
        if isinstance(env, dict) and isinstance(env.get("valueFrom"), dict):
            ref = env["valueFrom"].get("fieldRef")
            if isinstance(ref, dict):
                ref.setdefault("apiVersion", "v1")


def default_pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                default_container(container)


def default_pod_template(template: Obj | None) -> None:
    if not isinstance(template, dict):
        return
    spec = template.get("spec")
    if isinstance(spec, dict):
        default_pod_spec(spec)


def default_deployment(obj: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    if isinstance(strategy, dict):
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            if isinstance(rolling, dict):
                rolling.setdefault("maxUnavailable", "25%")
                rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    default_pod_template(spec.get("template"))


def default_replicaset(obj: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("replicas", 1)
    default_pod_template(spec.get("template"))


def default_pod(obj: Obj) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict):
        default_pod_spec(spec)
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        spec.setdefault("priority", 0)


class ClusterIPAllocator:
    """Hands out Service ClusterIPs from 10.96.0.0/12, skipping addresses already in use."""

    def __init__(self) -> None:
        self._net = ipaddress.ip_network("10.96.0.0/12")
        self._next = 10  # 10.96.0.1 is the kubernetes Service and .10 kube-dns on real clusters

    def allocate(self, in_use: set[str]) -> str:
        while True:
            self._next += 1
            ip = str(self._net.network_address + self._next)
            if ip not in in_use:
                return ip


def default_service(obj: Obj, allocate_ip: Any = None) -> None:
    """``allocate_ip`` is a callable returning a fresh ClusterIP (only called when one is needed)."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if "port" in port:
                port.setdefault("targetPort", port["port"])
    if spec["type"] != "ExternalName":
        if not spec.get("clusterIP") and allocate_ip is not None:
            spec["clusterIP"] = allocate_ip()
        if spec.get("clusterIP"):
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
        for i, port in enumerate(spec.get("ports") or []):
            if isinstance(port, dict):
                seed = f"{(obj.get('metadata') or {}).get('name')}:{i}".encode()
                port.setdefault("nodePort", 30000 + zlib.crc32(seed) % 2768)


def apply_defaults(resource: str, obj: Obj, allocate_ip: Any = None) -> None:
    """Default ``obj`` of store key ``resource`` in place."""
    if resource == "deployments.apps":
        default_deployment(obj)
    elif resource == "replicasets.apps":
        default_replicaset(obj)
    elif resource == "pods":
        default_pod(obj)
    elif resource == "services":
        default_service(obj, allocate_ip)
    elif resource == "secrets":
        configdata.default_secret(obj)
