"""The controllers through the real HTTP API: real kubectl and the real kubernetes client against a kubesim
subprocess (the seed's session, the rolling-update invariants seen by watchers, paused proportional scaling,
adoption of an externally created ReplicaSet, and the progress deadline)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch

from kubesim.testing import api_client_for
from tests.helpers.kubectl import (
    Kubectl,
    deployment_manifest,
    service_manifest,
    wait_for,
)

HASH = re.compile(r"^[4-9bcdf]{1,10}$")
ROLLING = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}


@pytest.fixture(scope="module")
def api(sim: Any) -> Iterator[client.ApiClient]:
    c = api_client_for(sim.kubeconfig)
    try:
        yield c
    finally:
        c.close()


def _ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


class PodWatcher(threading.Thread):
    """Watches the namespace's pods from ``rv`` and records (total, ready) after every event; stops once all
    ``replicas`` pods run ``image`` and are ready."""

    def __init__(self, core: Any, ns: str, rv: str, replicas: int, image: str) -> None:
        super().__init__(daemon=True)
        self.core, self.ns, self.rv, self.replicas, self.image = core, ns, rv, replicas, image
        self.pods: dict[str, Any] = {}
        self.samples: list[tuple[int, int]] = []
        self.done = False

    def run(self) -> None:
        for pod in self.core.list_namespaced_pod(self.ns).items:
            self.pods[pod.metadata.name] = pod
        w = watch.Watch()
        for event in w.stream(
            self.core.list_namespaced_pod, self.ns, resource_version=self.rv, timeout_seconds=60
        ):
            pod = event["object"]
            if event["type"] == "DELETED":
                self.pods.pop(pod.metadata.name, None)
            else:
                self.pods[pod.metadata.name] = pod
            pods = list(self.pods.values())
            self.samples.append((len(pods), sum(1 for p in pods if _ready(p))))
            if len(pods) == self.replicas and all(
                _ready(p) and p.spec.containers[0].image == self.image for p in pods
            ):
                self.done = True
                w.stop()


class RsWatcher(threading.Thread):
    """Watches ReplicaSets and records (Σ spec.replicas, Σ status.replicas, Σ readyReplicas) per event."""

    def __init__(self, apps: Any, ns: str, rv: str, replicas: int, image: str) -> None:
        super().__init__(daemon=True)
        self.apps, self.ns, self.rv, self.replicas, self.image = apps, ns, rv, replicas, image
        self.rss: dict[str, Any] = {}
        self.samples: list[tuple[int, int, int]] = []
        self.done = False

    def run(self) -> None:
        for rs in self.apps.list_namespaced_replica_set(self.ns).items:
            self.rss[rs.metadata.name] = rs
        w = watch.Watch()
        for event in w.stream(
            self.apps.list_namespaced_replica_set, self.ns, resource_version=self.rv, timeout_seconds=60
        ):
            rs = event["object"]
            self.rss[rs.metadata.name] = rs
            rss = list(self.rss.values())
            self.samples.append(
                (
                    sum(r.spec.replicas or 0 for r in rss),
                    sum(r.status.replicas or 0 for r in rss),
                    sum(r.status.ready_replicas or 0 for r in rss),
                )
            )
            new = [r for r in rss if r.spec.template.spec.containers[0].image == self.image]
            old = [r for r in rss if r not in new]
            if (
                new
                and new[0].status.ready_replicas == self.replicas
                and all((r.spec.replicas or 0) == 0 and (r.status.replicas or 0) == 0 for r in old)
            ):
                self.done = True
                w.stop()


def test_seed_rolling_update_through_kubectl(kubectl: Kubectl, api: client.ApiClient) -> None:
    ns = kubectl.namespace
    out = kubectl.apply(
        deployment_manifest("nginx", replicas=10, extra_spec={"strategy": ROLLING}), service_manifest("nginx")
    )
    assert "deployment.apps/nginx created" in out
    kubectl.wait_available("nginx")
    table = kubectl.out("get", "rs", "-L", "pod-template-hash").splitlines()
    assert table[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE", "POD-TEMPLATE-HASH"]
    cells = table[1].split()
    assert cells[1:4] == ["10", "10", "10"]
    assert HASH.match(cells[-1]) and cells[0] == f"nginx-{cells[-1]}"

    core: Any = client.CoreV1Api(api)
    apps: Any = client.AppsV1Api(api)
    rv = core.list_namespaced_pod(ns).metadata.resource_version
    pod_watch = PodWatcher(core, ns, rv, 10, "nginx:1.27")
    rs_watch = RsWatcher(apps, ns, rv, 10, "nginx:1.27")
    pod_watch.start()
    rs_watch.start()
    assert "deployment.apps/nginx image updated" in kubectl.out(
        "set", "image", "deployment", "nginx", "nginx=nginx:1.27"
    )
    status = kubectl.out("rollout", "status", "deployment", "nginx", "--timeout=60s", timeout=90)
    assert 'deployment "nginx" successfully rolled out' in status
    pod_watch.join(timeout=60)
    rs_watch.join(timeout=60)
    assert pod_watch.done and rs_watch.done
    assert max(total for total, _ in pod_watch.samples) <= 13
    assert min(ready for _, ready in pod_watch.samples) >= 8
    assert max(spec for spec, _, _ in rs_watch.samples) <= 13
    assert max(actual for _, actual, _ in rs_watch.samples) <= 13
    assert min(ready for _, _, ready in rs_watch.samples) >= 8

    d = kubectl.deployment("nginx")
    assert d["metadata"]["generation"] == 2
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    ready_ips = {p.status.pod_ip for p in core.list_namespaced_pod(ns).items if _ready(p)}
    ep = kubectl.out("get", "endpoints", "nginx").splitlines()
    assert ep[0].split()[:2] == ["NAME", "ENDPOINTS"]
    shown = [cell.split(":")[0] for cell in ep[1].split()[1].split(",")]
    assert shown and set(shown) <= ready_ips
    endpoints = core.read_namespaced_endpoints("nginx", ns)
    assert {a.ip for s in endpoints.subsets for a in s.addresses} == ready_ips
    events = kubectl.out("get", "events", "--field-selector", "reason=ScalingReplicaSet")
    assert "Scaled up replica set nginx-" in events and "from 0 to 3" in events


def _rs_sizes(kubectl: Kubectl, selector: str = "app=nginx") -> dict[str, int]:
    return {
        rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs["spec"]["replicas"]
        for rs in kubectl.replicasets(selector)
    }


def test_paused_deployment_scales_proportionally_with_kubectl(kubectl: Kubectl) -> None:
    kubectl.apply(deployment_manifest("nginx", replicas=10, extra_spec={"strategy": ROLLING}))
    kubectl.wait_available("nginx")
    # A canary image that never becomes ready: the rollout stalls at stable 8 / canary 5.
    kubectl.out(
        "patch",
        "deployment",
        "nginx",
        "--type",
        "merge",
        "-p",
        '{"spec":{"template":{"metadata":{"annotations":{"kubesim.io/never-ready":"true"}},'
        '"spec":{"containers":[{"name":"nginx","image":"nginx:1.27"}]}}}}',
    )
    wait_for(lambda: _rs_sizes(kubectl) == {"nginx:1.26": 8, "nginx:1.27": 5}, what="stalled 8/5", timeout=20)
    kubectl.out("rollout", "pause", "deployment/nginx")
    wait_for(
        lambda: any(
            c["reason"] == "DeploymentPaused" for c in kubectl.deployment("nginx")["status"]["conditions"]
        ),
        timeout=20,
    )
    assert "deployment.apps/nginx scaled" in kubectl.out("scale", "deployment", "nginx", "--replicas=20")
    wait_for(lambda: _rs_sizes(kubectl) == {"nginx:1.26": 15, "nginx:1.27": 10}, what="15/10", timeout=20)
    kubectl.out("scale", "deployment", "nginx", "--replicas=5")
    wait_for(lambda: _rs_sizes(kubectl) == {"nginx:1.26": 4, "nginx:1.27": 3}, what="4/3", timeout=20)
    # Paused: a further template change creates no ReplicaSet.
    kubectl.out("set", "image", "deployment", "nginx", "nginx=nginx:1.28")
    wait_for(
        lambda: (
            kubectl.deployment("nginx")["status"].get("observedGeneration")
            == kubectl.deployment("nginx")["metadata"]["generation"]
        ),
        timeout=20,
    )
    assert len(kubectl.replicasets()) == 2
    assert kubectl.deployment("nginx")["status"].get("updatedReplicas", 0) == 0


def test_external_replicaset_adopted_on_resume(kubectl: Kubectl, api: client.ApiClient) -> None:
    ns = kubectl.namespace
    kubectl.apply(deployment_manifest("nginx", replicas=4, extra_spec={"strategy": ROLLING}))
    kubectl.wait_available("nginx")
    kubectl.out("rollout", "pause", "deployment/nginx")
    kubectl.out("set", "image", "deployment", "nginx", "nginx=nginx:1.27")
    apps: Any = client.AppsV1Api(api)
    d = apps.read_namespaced_deployment("nginx", ns)
    template = api.sanitize_for_serialization(d.spec.template)
    template["metadata"]["labels"]["pod-template-hash"] = "canary"
    apps.create_namespaced_replica_set(
        ns,
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "nginx-canary", "labels": dict(template["metadata"]["labels"])},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "nginx", "pod-template-hash": "canary"}},
                "template": template,
            },
        },
    )
    wait_for(
        lambda: any(
            r.controller
            for r in apps.read_namespaced_replica_set("nginx-canary", ns).metadata.owner_references or []
        ),
        what="adoption",
        timeout=20,
    )
    kubectl.out("rollout", "resume", "deployment/nginx")
    assert "successfully rolled out" in kubectl.out(
        "rollout", "status", "deployment/nginx", "--timeout=60s", timeout=90
    )
    names = sorted(rs["metadata"]["name"] for rs in kubectl.replicasets())
    assert len(names) == 2 and "nginx-canary" in names
    canary = apps.read_namespaced_replica_set("nginx-canary", ns)
    assert canary.spec.replicas == 4
    assert canary.metadata.annotations["deployment.kubernetes.io/revision"] == "2"


def test_rollout_status_reports_progress_deadline(kubectl: Kubectl) -> None:
    kubectl.apply(deployment_manifest("nginx", replicas=2, extra_spec={"progressDeadlineSeconds": 2}))
    kubectl.wait_available("nginx")
    kubectl.out(
        "patch",
        "deployment",
        "nginx",
        "--type",
        "merge",
        "-p",
        '{"spec":{"template":{"metadata":{"annotations":{"kubesim.io/never-ready":"true"}}}}}',
    )
    proc = kubectl.run("rollout", "status", "deployment/nginx", "--timeout=30s", check=False, timeout=60)
    assert proc.returncode != 0
    assert 'deployment "nginx" exceeded its progress deadline' in proc.stderr + proc.stdout
    conds = {c["type"]: c for c in kubectl.deployment("nginx")["status"]["conditions"]}
    assert conds["Progressing"]["status"] == "False"
    assert conds["Progressing"]["reason"] == "ProgressDeadlineExceeded"


def test_crash_loop_shows_in_kubectl_get_pods(kubectl: Kubectl) -> None:
    kubectl.apply(deployment_manifest("nginx", replicas=1, annotations={"kubesim.io/crash-loop": "true"}))

    def restarts() -> int:
        items = kubectl.json("get", "pods", "-l", "app=nginx")["items"]
        return (
            int(items[0]["status"]["containerStatuses"][0]["restartCount"])
            if items and items[0]["status"].get("containerStatuses")
            else 0
        )

    wait_for(lambda: restarts() >= 2, what="restarts", timeout=20)
    row = kubectl.out("get", "pods", "-l", "app=nginx").splitlines()[1].split()
    assert row[1] == "0/1" and row[2] == "CrashLoopBackOff"
