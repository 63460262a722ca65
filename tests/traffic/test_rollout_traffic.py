"""Traffic routing through the real rollout: CLI functions + session worker + kubesim + Temporal dev server.

At every step: Service selectors and Endpoints (the canary Service lists only canary pod IPs), the canary
Ingress annotations, the HTTPRoute weights and match rules, and the status fields. After completion and
after an undo every object is the user's original again (byte-equal spec for the HTTPRoute and the stable
Service) and the canary objects are gone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.helpers.traffic import (
    canonical,
    endpoint_ips,
    get_route,
    make_ingress,
    make_route,
    make_service,
    raw,
)
from workflows.model import Phase, workflow_id_for

NG = "nginx.ingress.kubernetes.io/"


def _service(api: client.ApiClient, ns: str, name: str) -> dict[str, Any] | None:
    return raw(client.CoreV1Api(api).read_namespaced_service, name, ns)


def _ingress(api: client.ApiClient, ns: str, name: str) -> dict[str, Any] | None:
    return raw(client.NetworkingV1Api(api).read_namespaced_ingress, name, ns)


def _canary_annotations(api: client.ApiClient, ns: str, name: str) -> dict[str, str] | None:
    ing = _ingress(api, ns, name)
    if ing is None:
        return None
    return {k: v for k, v in ing["metadata"]["annotations"].items() if k.startswith(NG + "canary")}


def _ready_ips(api: client.ApiClient, ns: str, pod_hash: str) -> set[str]:
    pods = raw(client.CoreV1Api(api).list_namespaced_pod, ns) or {}
    out = set()
    for pod in pods.get("items") or []:
        if (pod["metadata"].get("labels") or {}).get("pod-template-hash") != pod_hash:
            continue
        if pod["metadata"].get("deletionTimestamp"):
            continue
        conds = (pod.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds):
            out.add(pod["status"]["podIP"])
    return out


async def _endpoints_match(kit: Any, service: str, pod_hash: str, count: int) -> set[str]:
    """Wait until the Service's Endpoints are exactly the ``count`` ready pods of ``pod_hash``."""
    api, ns = kit.api_client, kit.namespace

    def check() -> set[str] | None:
        ips = _ready_ips(api, ns, pod_hash)
        return ips if len(ips) == count and endpoint_ips(api, ns, service) == ips else None

    return await kit.eventually(check, timeout=20, message=f"Endpoints {service} = {count} {pod_hash} pods")


@pytest.mark.clusters
async def test_rollout_with_service_and_nginx_ingress(kit: Any, rollout_worker: None) -> None:
    ns, api = kit.namespace, kit.api_client
    await kit.create(kit.seed())
    original_svc = make_service(api, ns, "nginx", {"app": "nginx"})
    original_ing = make_ingress(api, ns, "nginx", "nginx")
    seq = kit.audit_seq()
    rc, out, err = await kit.cli(
        "start",
        "nginx",
        "--image",
        "nginx=nginx:1.27",
        "--steps",
        "1:5%,50%:50%,100%",
        "--service",
        "nginx",
        "--ingress",
        "nginx",
        "--grace-period",
        "0",
        "--match",
        "2@header:X-Canary=true",
    )
    assert rc == 0, err

    # Step 1: 1 canary pod, weight 5%.
    st = await kit.wait_phase("nginx", Phase.PAUSED, 1)
    stable, canary = st.stable_revision, st.canary_revision
    assert (st.traffic_weight, st.traffic_matches, st.traffic) == (5, [], "weight 5%")
    svc = _service(api, ns, "nginx")
    assert svc is not None and svc["spec"]["selector"] == {"app": "nginx", "pod-template-hash": stable}
    canary_svc = _service(api, ns, "nginx-canary")
    assert canary_svc is not None
    assert canary_svc["spec"]["selector"] == {"app": "nginx", "pod-template-hash": canary}
    assert canary_svc["spec"]["clusterIP"] != svc["spec"]["clusterIP"]
    assert _canary_annotations(api, ns, "nginx-canary") == {NG + "canary": "true", NG + "canary-weight": "5"}
    await _endpoints_match(kit, "nginx-canary", canary, 1)
    await _endpoints_match(kit, "nginx", stable, 9)
    # The stable Service was narrowed before any canary pod existed (before the canary RS first scaled).
    writes = kit.writes_since(seq)
    narrowed = next(e["seq"] for e in writes if e["resource"] == "services" and e["name"] == "nginx")
    first_scale = next(
        e["seq"]
        for e in writes
        if e["resource"] == "replicasets" and e["name"] == f"nginx-{canary}" and e["verb"] == "update"
    )
    assert narrowed < first_scale
    # Status JSON and the Temporal UI show the traffic.
    rc, out, err = await kit.cli("status", "nginx", "-o", "json")
    data = json.loads(out)
    assert (data["trafficWeight"], data["trafficMatches"], data["traffic"]) == (5, [], "weight 5%")
    handle = kit.ctx.client.get_workflow_handle(workflow_id_for(ns, "nginx"))
    metadata = await handle.query("__temporal_workflow_metadata")
    assert "traffic to canary: weight 5%" in metadata.current_details

    # Step 2: 5 canary pods, weight 50% plus requests with X-Canary: true.
    rc, _, err = await kit.cli("approve", "nginx")
    assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.PAUSED, 2)
    assert st.traffic == "weight 50%, header X-Canary=true"
    assert st.traffic_matches == ["header X-Canary=true"]
    assert _canary_annotations(api, ns, "nginx-canary") == {
        NG + "canary": "true",
        NG + "canary-weight": "50",
        NG + "canary-by-header": "X-Canary",
        NG + "canary-by-header-value": "true",
    }
    await _endpoints_match(kit, "nginx-canary", canary, 5)
    await _endpoints_match(kit, "nginx", stable, 5)
    ing = _ingress(api, ns, "nginx-canary")
    assert ing is not None
    assert ing["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "temporal-rollouts"
    paths = ing["spec"]["rules"][0]["http"]["paths"]
    assert [(p["path"], p["backend"]["service"]["name"]) for p in paths] == [("/", "nginx-canary")]

    # Step 3 (100%, no traffic) and completion: every object is the user's again.
    rc, _, err = await kit.cli("approve", "nginx")
    assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.COMPLETED)
    assert (st.traffic_weight, st.traffic) == (None, "")
    svc = _service(api, ns, "nginx")
    assert svc is not None
    assert canonical(svc["spec"]) == canonical(original_svc["spec"])
    assert svc["metadata"].get("annotations") == original_svc["metadata"].get("annotations")
    assert _service(api, ns, "nginx-canary") is None
    assert _ingress(api, ns, "nginx-canary") is None
    ing = _ingress(api, ns, "nginx")
    assert ing is not None and canonical(ing["spec"]) == canonical(original_ing["spec"])
    assert ing["metadata"]["annotations"] == original_ing["metadata"]["annotations"]
    await _endpoints_match(kit, "nginx", canary, 10)
    kit.assert_handed_back(kit.deployment(), "nginx:1.27")


@pytest.mark.clusters
async def test_rollout_with_httproute_then_undo(kit: Any, rollout_worker: None) -> None:
    ns, api = kit.namespace, kit.api_client
    await kit.create(kit.seed(replicas=4))
    original_svc = make_service(api, ns, "nginx", {"app": "nginx"})
    original_route = make_route(api, ns, "nginx", "nginx")
    rc, _, err = await kit.cli(
        "start",
        "nginx",
        "--image",
        "nginx=nginx:1.27",
        "--steps",
        "1:20%,2:50%,100%",
        "--service",
        "nginx",
        "--httproute",
        "nginx",
        "--grace-period",
        "1",
        "--match",
        "2@header:X-Canary=true",
        "--match",
        "2@cookie:beta",
    )
    assert rc == 0, err

    st = await kit.wait_phase("nginx", Phase.PAUSED, 1)
    stable, canary = st.stable_revision, st.canary_revision
    assert st.traffic == "weight 20%"
    rules = get_route(api, ns, "nginx")["spec"]["rules"]
    assert [(r["name"], r["weight"]) for r in rules[0]["backendRefs"]] == [
        ("nginx", 80),
        ("nginx-canary", 20),
    ]
    assert canonical(rules[1]) == canonical(original_route["spec"]["rules"][1])  # the other backend's rule
    assert len(rules) == 2
    await _endpoints_match(kit, "nginx-canary", canary, 1)
    await _endpoints_match(kit, "nginx", stable, 3)

    rc, _, err = await kit.cli("approve", "nginx")
    assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.PAUSED, 2)
    assert st.traffic_matches == ["header X-Canary=true", "cookie beta"]
    rules = get_route(api, ns, "nginx")["spec"]["rules"]
    assert [(r["name"], r["weight"]) for r in rules[0]["backendRefs"]] == [
        ("nginx", 50),
        ("nginx-canary", 50),
    ]
    assert len(rules) == 3  # the user's two rules plus one match rule routing only to the canary
    assert [r["name"] for r in rules[2]["backendRefs"]] == ["nginx-canary"]
    assert [m["headers"] for m in rules[2]["matches"]] == [
        [{"type": "Exact", "name": "X-Canary", "value": "true"}],
        [{"type": "RegularExpression", "name": "Cookie", "value": "(^|.*;\\s*)beta=always(\\s*;.*|$)"}],
    ]
    assert all(m["path"] == {"type": "PathPrefix", "value": "/"} for m in rules[2]["matches"])
    await _endpoints_match(kit, "nginx-canary", canary, 2)
    await _endpoints_match(kit, "nginx", stable, 2)

    # Undo: the HTTPRoute goes back to the user's spec before any replica moves.
    seq = kit.audit_seq()
    rc, _, err = await kit.cli("undo", "nginx", "--reason", "5xx")
    assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.ROLLED_BACK)
    assert st.traffic == "" and st.traffic_weight is None
    writes = [e for e in kit.writes_since(seq) if e["resource"] in ("httproutes", "replicasets")]
    assert writes[0]["resource"] == "httproutes", writes
    route = get_route(api, ns, "nginx")
    assert canonical(route["spec"]) == canonical(original_route["spec"])
    svc = _service(api, ns, "nginx")
    assert svc is not None and canonical(svc["spec"]) == canonical(original_svc["spec"])
    assert svc["metadata"].get("annotations") == original_svc["metadata"].get("annotations")
    assert _service(api, ns, "nginx-canary") is None
    assert kit.images() == {"nginx:1.27": (0, 0), "nginx:1.26": (4, 4)}
    await _endpoints_match(kit, "nginx", stable, 4)
    kit.assert_handed_back(kit.deployment(), "nginx:1.26")
    # Grace period: each traffic change is followed by gracePeriodSeconds before the next write.
    undo_writes = [e for e in kit.writes_since(seq) if e["resource"] in ("httproutes", "services")]
    assert [(e["resource"], e["verb"]) for e in undo_writes] == [
        ("httproutes", "update"),  # routes back to stable first
        ("services", "update"),  # then (after the replicas) the user's selector
        ("services", "delete"),  # and the canary Service
    ]
    gaps = [b["ts"] - a["ts"] for a, b in zip(undo_writes, undo_writes[1:], strict=False)]
    assert min(gaps) >= 0.9, gaps


@pytest.mark.clusters
async def test_seed_services_follow_a_real_rollout(kit: Any, rollout_worker: None, tmp_path: Path) -> None:
    """The seed's own pattern (section 5): user-owned ``nginx``, ``nginx-stable``, ``nginx-canary`` Services
    selecting a ``version`` label; without --service the rollout never touches them and their Endpoints match
    the seed's table (canary empty before, stable empty after)."""
    ns, api = kit.namespace, kit.api_client
    old = kit.seed()
    old["spec"]["template"]["metadata"]["labels"]["version"] = "1.26"
    await kit.create(old)
    make_service(api, ns, "nginx", {"app": "nginx"})
    make_service(api, ns, "nginx-stable", {"app": "nginx", "version": "1.26"})
    make_service(api, ns, "nginx-canary", {"app": "nginx", "version": "1.27"})
    before = {name: _service(api, ns, name) for name in ("nginx", "nginx-stable", "nginx-canary")}
    (stable_hash,) = [rs["metadata"]["labels"]["pod-template-hash"] for rs in kit.kube.list_replica_sets(ns)]
    await _endpoints_match(kit, "nginx-stable", stable_hash, 10)
    await kit.eventually(lambda: endpoint_ips(api, ns, "nginx-canary") == set(), message="canary empty")

    new = kit.seed(image="nginx:1.27")
    new["spec"]["template"]["metadata"]["labels"]["version"] = "1.27"
    path = tmp_path / "deployment.yaml"
    path.write_text(yaml.safe_dump(new))
    rc, _, err = await kit.cli("start", "-f", str(path), "--steps", "1,50%,100%")
    assert rc == 0, err
    for step, canary_pods in ((1, 1), (2, 5)):
        st = await kit.wait_phase("nginx", Phase.PAUSED, step)
        canary_ips = await _endpoints_match(kit, "nginx-canary", st.canary_revision, canary_pods)
        stable_ips = await _endpoints_match(kit, "nginx-stable", st.stable_revision, 10 - canary_pods)
        await kit.eventually(
            lambda c=canary_ips, s=stable_ips: endpoint_ips(api, ns, "nginx") == c | s,  # type: ignore[misc]
            message=f"nginx Endpoints = every pod at step {step}",
        )
        rc, _, err = await kit.cli("approve", "nginx")
        assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.COMPLETED)
    await _endpoints_match(kit, "nginx-canary", st.canary_revision, 10)
    await _endpoints_match(kit, "nginx", st.canary_revision, 10)
    await kit.eventually(lambda: endpoint_ips(api, ns, "nginx-stable") == set(), message="stable empty")
    for name, svc in before.items():  # never written by the rollout
        now = _service(api, ns, name)
        assert now is not None and svc is not None
        assert now["metadata"]["resourceVersion"] == svc["metadata"]["resourceVersion"], name
