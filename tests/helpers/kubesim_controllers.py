"""Helpers for in-process controller tests: a Store with the controllers running on the test's loop."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from typing import Any, TypeVar

from kubesim.controllers import Controllers, start_controllers
from kubesim.resources import DEPLOYMENTS, PODS, REPLICASETS
from kubesim.store import Store

T = TypeVar("T")
NS = "default"


async def until(fn: Callable[[], Any], *, timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``fn`` on the loop until truthy (returned) or ``timeout`` (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {value!r}")
        await asyncio.sleep(0.01)


def deployment(
    name: str = "nginx",
    *,
    replicas: int = 10,
    image: str = "nginx:1.26",
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    template: dict[str, Any] = {
        "metadata": {"labels": {"app": name}},
        "spec": {
            "containers": [
                {"name": "nginx", "image": image, "ports": [{"name": "http", "containerPort": 80}]}
            ]
        },
    }
    if annotations:
        template["metadata"]["annotations"] = dict(annotations)
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": template,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        },
    }
    body["spec"].update(spec)
    return body


def edit(store: Store, resource: str, name: str, fn: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Read-modify-write of an object (like ``kubectl edit``)."""
    obj = store.get(resource, NS, name)
    fn(obj)
    return store.update(resource, obj)


def set_image(store: Store, name: str, image: str) -> dict[str, Any]:
    def change(d: dict[str, Any]) -> None:
        d["spec"]["template"]["spec"]["containers"][0]["image"] = image

    return edit(store, DEPLOYMENTS, name, change)


def owned_rss(store: Store, name: str) -> list[dict[str, Any]]:
    d = store.peek(DEPLOYMENTS, NS, name)
    uid = d["metadata"]["uid"] if d else ""
    return [
        rs
        for rs in store.list(REPLICASETS, NS)
        if any(r.get("uid") == uid for r in rs["metadata"].get("ownerReferences") or [])
    ]


def rs_with_image(store: Store, name: str, image: str) -> dict[str, Any] | None:
    for rs in owned_rss(store, name):
        if rs["spec"]["template"]["spec"]["containers"][0]["image"] == image:
            return rs
    return None


def is_ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def pods_of(store: Store, app: str) -> list[dict[str, Any]]:
    return [p for p in store.list(PODS, NS) if (p["metadata"].get("labels") or {}).get("app") == app]


def rolled_out(store: Store, name: str) -> bool:
    """kubectl rollout status's success rule."""
    d = store.peek(DEPLOYMENTS, NS, name)
    if d is None:
        return False
    st = d.get("status") or {}
    replicas = d["spec"].get("replicas", 1)
    return (
        st.get("observedGeneration", 0) >= d["metadata"]["generation"]
        and st.get("updatedReplicas", 0) == replicas
        and st.get("replicas", 0) == replicas
        and st.get("availableReplicas", 0) == replicas
    )


def condition(store: Store, name: str, type_: str) -> dict[str, Any] | None:
    d = store.peek(DEPLOYMENTS, NS, name) or {}
    for cond in (d.get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return dict(cond)
    return None


class Sim:
    """A store plus running controllers."""

    def __init__(self, store: Store, controllers: Controllers) -> None:
        self.store = store
        self.controllers = controllers


async def start_sim(ready_delay: float = 0.05) -> Sim:
    store = Store()
    return Sim(store, start_controllers(store, ready_delay=ready_delay))


__all__ = ["copy", "NS"]
