"""The seed's own kubectl session against kubesim, end to end (reference 5.2, issue 2 "Done when").

apply a 10-replica nginx:1.26 Deployment and its Service, inspect it with get/describe, roll it to nginx:1.27
with ``set image``, follow ``rollout status``, look at history, undo, scale, and delete it.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from tests.helpers.kubectl import (
    Kubectl,
    Streamer,
    deployment_manifest,
    header_and_rows,
    service_manifest,
    wait_for,
)

HASH = re.compile(r"^[4-9bcdf]{1,10}$")
REVISION = "deployment.kubernetes.io/revision"


def _watched(lines: list[str]) -> dict[str, tuple[int, int]]:
    """Latest (DESIRED, READY) per ReplicaSet from `kubectl get rs -w` output (header first)."""
    state: dict[str, tuple[int, int]] = {}
    for line in lines[1:]:
        name, desired, _current, ready, _age = line.split()
        state[name] = (int(desired), int(ready))
    return state


def _rs_by_image(k: Kubectl) -> dict[str, dict[str, Any]]:
    return {rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs for rs in k.replicasets()}


def test_seed_session(kubectl: Kubectl) -> None:
    k = kubectl
    out = k.apply(deployment_manifest(replicas=10), service_manifest())
    assert "deployment.apps/nginx created" in out
    assert "service/nginx created" in out

    k.wait_available()
    header, lines = header_and_rows(k.out("get", "deploy"))
    assert header == "NAME READY UP-TO-DATE AVAILABLE AGE"
    assert lines[0].split()[:4] == ["nginx", "10/10", "10", "10"]

    # get rs -L pod-template-hash: the label column is filled from rows[].object.metadata.labels.
    header, lines = header_and_rows(k.out("get", "rs", "-L", "pod-template-hash"))
    assert header == "NAME DESIRED CURRENT READY AGE POD-TEMPLATE-HASH"
    assert len(lines) == 1
    cells = lines[0].split()
    assert cells[1:4] == ["10", "10", "10"]
    pod_hash = cells[5]
    assert HASH.match(pod_hash), pod_hash
    assert cells[0] == f"nginx-{pod_hash}"

    header, lines = header_and_rows(k.out("get", "pods", "-o", "wide"))
    assert header == "NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES"
    assert len(lines) == 10
    for line in lines:
        name, ready, status, restarts, _age, ip, node, nominated, gates = line.split()
        assert re.match(rf"^nginx-{pod_hash}-[a-z0-9]{{5}}$", name)
        assert (ready, status, restarts) == ("1/1", "Running", "0")
        assert re.match(r"^\d+\.\d+\.\d+\.\d+$", ip)
        assert node != "<none>"
        assert (nominated, gates) == ("<none>", "<none>")

    # Endpoints of the Service: 10 ready pods, printed as 3 + "7 more...".
    proc = k.run("get", "endpoints")
    assert (
        "Warning: v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice" in proc.stderr
    )
    header, lines = header_and_rows(proc.stdout)
    assert header == "NAME ENDPOINTS AGE"
    assert re.match(
        r"^nginx\s+(\d+\.\d+\.\d+\.\d+:80,){2}\d+\.\d+\.\d+\.\d+:80 \+ 7 more\.\.\.\s+\S+$", lines[0]
    )

    # The native rolling update.
    before = k.deployment()
    assert before["metadata"]["generation"] == 1
    old_rs = f"nginx-{pod_hash}"
    watch = Streamer(k, "get", "rs", "-w", "--request-timeout=120s")
    try:
        wait_for(lambda: any(line.startswith(old_rs) for line in watch.snapshot()), what="initial rs list")
        out = k.out("set", "image", "deployment", "nginx", "nginx=nginx:1.27")
        assert out.strip() == "deployment.apps/nginx image updated"
        rollout = k.run("rollout", "status", "deployment/nginx", "--timeout=90s", timeout=120)
        assert 'deployment "nginx" successfully rolled out' in rollout.stdout
        wait_for(lambda: _watched(watch.snapshot()).get(old_rs) == (0, 0), what="old rs at 0 in the watch")
    finally:
        watch.stop()
    # 25%/25% of 10: maxSurge 3, maxUnavailable 2, so at most 13 desired and at least 8 ready at every event.
    lines = watch.snapshot()
    for i in range(2, len(lines) + 1):
        state = _watched(lines[:i])
        assert sum(d for d, _ in state.values()) <= 13, lines[:i]
        assert sum(r for _, r in state.values()) >= 8, lines[:i]
    new_desired = [int(line.split()[1]) for line in lines[1:] if not line.startswith(old_rs + " ")]
    assert new_desired[0] == 3 and new_desired[-1] == 10, lines  # created at maxSurge, ends at 10
    after = k.deployment()
    assert after["metadata"]["generation"] == 2
    assert after["metadata"]["annotations"][REVISION] == "2"
    assert after["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    by_image = _rs_by_image(k)
    assert by_image["nginx:1.26"]["spec"]["replicas"] == 0
    assert by_image["nginx:1.27"]["spec"]["replicas"] == 10

    header, lines = header_and_rows(k.out("rollout", "history", "deployment/nginx"))
    assert header == "deployment.apps/nginx"
    assert [ln.split()[0] for ln in lines] == ["REVISION", "1", "2"]

    out = k.out("rollout", "undo", "deployment/nginx")
    assert out.strip() == "deployment.apps/nginx rolled back"
    k.wait_available()
    undone = k.deployment()
    assert undone["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    assert undone["metadata"]["annotations"][REVISION] == "3"

    out = k.out("scale", "deployment", "nginx", "--replicas=5")
    assert out.strip() == "deployment.apps/nginx scaled"
    wait_for(
        lambda: (
            k.deployment().get("status", {}).get("availableReplicas") == 5
            and k.deployment()["status"].get("replicas") == 5
        ),
        what="5 available replicas",
    )
    header, lines = header_and_rows(k.out("get", "deploy"))
    assert lines[0].split()[:4] == ["nginx", "5/5", "5", "5"]

    out = k.out("delete", "deployment", "nginx")
    assert re.match(r'^deployment\.apps "nginx" deleted', out.strip())
    # Garbage collection removes the ReplicaSets and their pods.
    wait_for(lambda: k.out("get", "rs,pods", "-o", "name").strip() == "", what="owned objects collected")


def test_describe_and_output_formats(kubectl: Kubectl) -> None:
    k = kubectl
    k.apply(deployment_manifest(replicas=3))
    k.wait_available()

    desc = k.out("describe", "deployment", "nginx")
    assert re.search(r"Replicas:\s+3 desired \| 3 updated \| 3 total \| 3 available \| 0 unavailable", desc)
    assert re.search(r"StrategyType:\s+RollingUpdate", desc)
    assert re.search(r"RollingUpdateStrategy:\s+25% max unavailable, 25% max surge", desc)
    assert re.search(r"Available\s+True\s+MinimumReplicasAvailable", desc)
    assert re.search(r"Progressing\s+True\s+NewReplicaSetAvailable", desc)
    m = re.search(r"NewReplicaSet:\s+nginx-(\S+) \(3/3 replicas created\)", desc)
    assert m and HASH.match(m.group(1)), desc
    assert "Events:" in desc and "<none>" not in desc.split("Events:")[1].splitlines()[0]
    assert re.search(
        rf"Normal\s+ScalingReplicaSet\s+\S+\s+deployment-controller\s+"
        rf"Scaled up replica set nginx-{m.group(1)} from 0 to 3",
        desc,
    ), desc

    as_json = json.loads(k.out("get", "deployment", "nginx", "-o", "json"))
    assert as_json["kind"] == "Deployment" and as_json["apiVersion"] == "apps/v1"
    assert as_json["spec"]["template"]["spec"]["containers"][0]["ports"] == [
        {"containerPort": 80, "protocol": "TCP"}
    ]
    assert as_json["status"]["readyReplicas"] == 3
    as_yaml = yaml.safe_load(k.out("get", "deployment", "nginx", "-o", "yaml"))
    assert as_yaml["metadata"]["uid"] == as_json["metadata"]["uid"]
    pods = json.loads(k.out("get", "pods", "-o", "json"))
    assert pods["kind"] == "List" and len(pods["items"]) == 3
    phases = k.out("get", "pods", "-o", "jsonpath={.items[*].status.phase}").split()
    assert phases == ["Running"] * 3


def test_tables_for_every_kind(kubectl: Kubectl) -> None:
    """Server-side Tables: the column set kubectl shows for each served kind (reference 1.7)."""
    k = kubectl
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "nginx"},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": "nginx.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "nginx", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ],
        },
    }
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "nginx"},
        "spec": {
            "hostnames": ["nginx.example.com"],
            "rules": [{"backendRefs": [{"name": "nginx", "port": 80, "weight": 100}]}],
        },
    }
    k.apply(deployment_manifest(replicas=2), service_manifest(), ingress, route)
    k.wait_available()

    header, rows = header_and_rows(k.out("get", "svc"))
    assert header == "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE"
    cells = rows[0].split()
    assert cells[0:2] == ["nginx", "ClusterIP"] and cells[3:5] == ["<none>", "80/TCP"]
    assert re.match(r"^\d+\.\d+\.\d+\.\d+$", cells[2])
    header, rows = header_and_rows(k.out("get", "svc", "-o", "wide"))
    assert header.endswith("AGE SELECTOR") and rows[0].split()[-1] == "app=nginx"

    def slice_row() -> list[str] | None:
        header, rows = header_and_rows(k.out("get", "endpointslices"))
        assert header == "NAME ADDRESSTYPE PORTS ENDPOINTS AGE"
        cells = rows[0].split() if rows else []
        return cells if len(cells) == 5 and len(cells[3].split(",")) == 2 else None

    cells = wait_for(slice_row, what="an EndpointSlice with both pod IPs")
    assert cells[0].startswith("nginx-") and cells[1:3] == ["IPv4", "80"]

    header, rows = header_and_rows(k.out("get", "ingress"))
    assert header == "NAME CLASS HOSTS ADDRESS PORTS AGE"
    assert rows[0].split()[:3] == ["nginx", "nginx", "nginx.example.com"]
    header, rows = header_and_rows(k.out("get", "httproutes"))
    assert header == "NAME HOSTNAMES AGE"
    assert rows[0].split()[:2] == ["nginx", '["nginx.example.com"]']

    header, rows = header_and_rows(k.out("get", "ns", k.namespace))
    assert header == "NAME STATUS AGE" and rows[0].split()[:2] == [k.namespace, "Active"]

    header, rows = header_and_rows(k.out("get", "events"))
    assert header == "LAST SEEN TYPE REASON OBJECT MESSAGE"
    scaled = [r for r in rows if "ScalingReplicaSet" in r]
    assert scaled and re.match(
        r"^\S+\s+Normal\s+ScalingReplicaSet\s+deployment/nginx\s+"
        r"Scaled up replica set nginx-\S+ from 0 to 2$",
        scaled[0],
    ), rows
