"""Differential harness: run one scripted Deployment history on a cluster and reduce what happened to the
facts a rollout depends on, so the same history on kubesim and on the real control plane can be compared
with ``==``.

ReplicaSets are named by their pod template's image (plus the annotation that distinguishes variants),
never by name: kubesim's pod-template-hash is not upstream's (see ``test_differential.py``), so
names are compared for their shape only (``<deployment>-<hash>`` in upstream's alphabet).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from kube.client import Kube
from tests.helpers.poll import assert_eventually

Obj = dict[str, Any]
HASH_RE = re.compile(r"^[bcdfghjklmnpqrstvwxz2456789]{1,10}$")


@dataclass
class Cluster:
    """One cluster under test: its name, kubeconfig and a raw JSON client."""

    name: str
    kubeconfig: str
    api: k8s.ApiClient

    @property
    def kube(self) -> Kube:
        return Kube(self.api)

    def request(self, method: str, path: str, body: Any = None, **kw: Any) -> Obj:
        return self.kube.request(method, path, body, **kw)

    def error(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, str, list[str]]:
        """Expect an error: ``(code, reason, sorted cause fields)`` of the Status body."""
        import json

        try:
            self.request(method, path, body, **kw)
        except ApiException as exc:
            status = json.loads(exc.body or "{}")
            details = status.get("details") or {}
            causes = sorted(f"{c.get('reason', '')}:{c.get('field', '')}" for c in details.get("causes", []))
            return int(exc.status), str(status.get("reason", "")), causes
        raise AssertionError(f"{self.name}: {method} {path} succeeded")


def deployment(
    ns: str,
    name: str = "web",
    *,
    replicas: int = 10,
    image: str = "nginx:1.26",
    strategy: Obj | None = None,
    paused: bool = False,
    annotations: dict[str, str] | None = None,
    progress_deadline: int | None = None,
) -> Obj:
    template_md: Obj = {"labels": {"app": name}}
    if annotations:
        template_md["annotations"] = annotations
    spec: Obj = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "strategy": strategy
        or {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
        "template": {"metadata": template_md, "spec": {"containers": [{"name": "nginx", "image": image}]}},
    }
    if paused:
        spec["paused"] = True
    if progress_deadline is not None:
        spec["progressDeadlineSeconds"] = progress_deadline
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def dep_path(ns: str, name: str = "") -> str:
    return f"/apis/apps/v1/namespaces/{ns}/deployments" + (f"/{name}" if name else "")


def rs_path(ns: str, name: str = "") -> str:
    return f"/apis/apps/v1/namespaces/{ns}/replicasets" + (f"/{name}" if name else "")


async def eventually(check: Callable[[], Any], *, timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns a truthy value; in a thread, because the checks make blocking
    client calls while both clusters are driven at once."""
    return await assert_eventually(lambda: asyncio.to_thread(check), timeout=timeout, message=what)


def image_of(obj: Obj) -> str:
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])


def replica_sets(c: Cluster, ns: str) -> list[Obj]:
    return list(c.request("GET", rs_path(ns)).get("items") or [])


def rs_by_image(c: Cluster, ns: str) -> dict[str, Obj]:
    return {image_of(rs): rs for rs in replica_sets(c, ns)}


def complete(c: Cluster, ns: str, name: str, image: str, replicas: int) -> bool:
    """The Deployment finished rolling out ``image`` (upstream's `kubectl rollout status` rule) and the old
    ReplicaSets are drained."""
    d = c.request("GET", dep_path(ns, name))
    st = d.get("status") or {}
    if d["metadata"].get("generation") != st.get("observedGeneration"):
        return False
    if image_of(d) != image:
        return False
    counts = (
        st.get("updatedReplicas", 0),
        st.get("replicas", 0),
        st.get("availableReplicas", 0),
        st.get("readyReplicas", 0),
    )
    if counts != (replicas, replicas, replicas, replicas) or st.get("terminatingReplicas", 0):
        return False
    others = [rs for rs in replica_sets(c, ns) if image_of(rs) != image]
    return all(int((rs.get("status") or {}).get("replicas") or 0) == 0 for rs in others)


def settled(c: Cluster, ns: str, name: str = "web") -> bool:
    """Controllers have caught up: generations observed, every ReplicaSet has its pods, pods that can become
    Ready are Ready, and the Deployment's status adds up."""
    d = c.request("GET", dep_path(ns, name))
    if d["metadata"].get("generation") != (d.get("status") or {}).get("observedGeneration"):
        return False
    total = ready = available = 0
    for rs in replica_sets(c, ns):
        st, want = rs.get("status") or {}, int(rs["spec"].get("replicas") or 0)
        if st.get("observedGeneration") != rs["metadata"].get("generation") or st.get("replicas", 0) != want:
            return False
        never = (rs["spec"]["template"]["metadata"].get("annotations") or {}).get("kubesim.io/never-ready")
        if not never and st.get("readyReplicas", 0) != want:
            return False
        total += want
        ready += int(st.get("readyReplicas") or 0)
        available += int(st.get("availableReplicas") or 0)
        if st.get("terminatingReplicas"):
            return False
    dst = d.get("status") or {}
    return (
        int(dst.get("replicas") or 0),
        int(dst.get("readyReplicas") or 0),
        int(dst.get("availableReplicas") or 0),
        int(dst.get("terminatingReplicas") or 0),
    ) == (total, ready, available, 0)


def rs_facts(rs: Obj, deployment_name: str) -> Obj:
    md, spec, st = rs["metadata"], rs["spec"], rs.get("status") or {}
    ann = md.get("annotations") or {}
    h = (md.get("labels") or {}).get("pod-template-hash", "")
    refs = md.get("ownerReferences") or []
    owners = [(o.get("kind"), o.get("name"), bool(o.get("controller"))) for o in refs]
    return {
        "nameShape": md["name"] == f"{deployment_name}-{h}" and bool(HASH_RE.match(h)),
        "selectorHasHash": (spec.get("selector") or {}).get("matchLabels", {}).get("pod-template-hash") == h,
        "revision": ann.get("deployment.kubernetes.io/revision"),
        "revisionHistory": ann.get("deployment.kubernetes.io/revision-history"),
        "desired": ann.get("deployment.kubernetes.io/desired-replicas"),
        "max": ann.get("deployment.kubernetes.io/max-replicas"),
        "replicas": spec.get("replicas"),
        "status": {
            k: st.get(k, 0)
            for k in (
                "replicas",
                "readyReplicas",
                "availableReplicas",
                "fullyLabeledReplicas",
                "terminatingReplicas",
            )
        },
        "owners": owners,
    }


def conditions(obj: Obj) -> dict[str, tuple[str, str]]:
    conds = (obj.get("status") or {}).get("conditions") or []
    return {c["type"]: (c["status"], c.get("reason", "")) for c in conds}


def deployment_facts(c: Cluster, ns: str, name: str) -> Obj:
    d = c.request("GET", dep_path(ns, name))
    st = d.get("status") or {}
    return {
        "generation": d["metadata"].get("generation"),
        "revision": (d["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision"),
        "status": {
            k: st.get(k, 0)
            for k in (
                "observedGeneration",
                "replicas",
                "updatedReplicas",
                "readyReplicas",
                "availableReplicas",
                "unavailableReplicas",
                "terminatingReplicas",
            )
        },
        "conditions": conditions(d),
        "replicaSets": {image_of(rs): rs_facts(rs, name) for rs in replica_sets(c, ns)},
    }


def event_reasons(c: Cluster, ns: str) -> dict[str, list[str]]:
    """``{involved kind: sorted distinct reasons}`` in the namespace."""
    out: dict[str, set[str]] = {}
    for e in c.request("GET", f"/api/v1/namespaces/{ns}/events").get("items") or []:
        kind = (e.get("involvedObject") or {}).get("kind", "")
        out.setdefault(kind, set()).add(str(e.get("reason", "")))
    return {k: sorted(v) for k, v in sorted(out.items())}


def scaling_messages(c: Cluster, ns: str, rs_names: dict[str, str]) -> list[str]:
    """The Deployment's ScalingReplicaSet messages in order, ReplicaSet names replaced by their image."""
    items = [
        e
        for e in c.request("GET", f"/api/v1/namespaces/{ns}/events").get("items") or []
        if e.get("reason") == "ScalingReplicaSet"
    ]
    items.sort(key=lambda e: (e.get("firstTimestamp") or e.get("eventTime") or "", e["metadata"]["name"]))
    out = []
    for e in items:
        msg = str(e.get("message", ""))
        for rs_name, image in rs_names.items():
            msg = msg.replace(rs_name, f"<{image}>")
        out.append(msg)
    return out
