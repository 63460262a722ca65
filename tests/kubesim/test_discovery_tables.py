"""Pure unit tests for kubesim discovery, OpenAPI and Table printing (reference 1.5-1.7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kubesim import discovery, openapi, tables
from kubesim.resources import (
    BY_KEY,
    DEPLOYMENTS,
    ENDPOINTS,
    ENDPOINTSLICES,
    EVENTS,
    PODS,
    REPLICASETS,
    RESOURCES,
    SERVICES,
)

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
KUBECTL_DISCOVERY_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
)
KUBECTL_TABLE_ACCEPT = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,"
    "application/json"
)


def ts(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------------------------------
# Discovery
# ----------------------------------------------------------------------------------------------------


def test_wants_aggregated_only_for_v2_discovery_accept() -> None:
    assert discovery.wants_aggregated(KUBECTL_DISCOVERY_ACCEPT)
    assert not discovery.wants_aggregated("application/json")
    assert not discovery.wants_aggregated("application/json, */*")
    assert not discovery.wants_aggregated(
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
    )
    assert discovery.AGGREGATED_CONTENT_TYPE == (
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    )


def _agg_resources(prefix: str) -> dict[tuple[str, str], dict]:
    doc = discovery.aggregated_discovery(prefix)
    assert doc["kind"] == "APIGroupDiscoveryList"
    assert doc["apiVersion"] == "apidiscovery.k8s.io/v2"
    out = {}
    for item in doc["items"]:
        for version in item["versions"]:
            assert version["freshness"] == "Current"
            for r in version["resources"]:
                out[(item["metadata"]["name"], r["resource"])] = r
    return out


def test_aggregated_core_group_only_under_api() -> None:
    doc = discovery.aggregated_discovery("api")
    assert [i["metadata"]["name"] for i in doc["items"]] == [""]
    res = _agg_resources("api")
    assert res[("", "pods")]["shortNames"] == ["po"]
    assert res[("", "pods")]["categories"] == ["all"]
    assert res[("", "namespaces")]["scope"] == "Cluster"
    assert "deletecollection" not in res[("", "namespaces")]["verbs"]
    assert res[("", "endpoints")]["shortNames"] == ["ep"]


def test_aggregated_apis_lists_every_registered_group_resource() -> None:
    res = _agg_resources("apis")
    expected = {(rt.group, rt.plural) for rt in RESOURCES if rt.group}
    assert set(res) == expected
    deploy = res[("apps", "deployments")]
    assert deploy == {
        "resource": "deployments",
        "responseKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "scope": "Namespaced",
        "singularResource": "deployment",
        "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        "shortNames": ["deploy"],
        "categories": ["all"],
        "subresources": [
            {
                "subresource": "status",
                "responseKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                "verbs": ["get", "patch", "update"],
            },
            {
                "subresource": "scale",
                "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
                "verbs": ["get", "patch", "update"],
            },
        ],
    }
    assert res[("apps", "replicasets")]["shortNames"] == ["rs"]
    assert "shortNames" not in res[("discovery.k8s.io", "endpointslices")]


def test_legacy_documents() -> None:
    api = discovery.legacy_api_versions("127.0.0.1:6443")
    assert api["kind"] == "APIVersions" and api["versions"] == ["v1"]
    assert api["serverAddressByClientCIDRs"][0]["serverAddress"] == "127.0.0.1:6443"
    groups = discovery.legacy_group_list()
    assert groups["kind"] == "APIGroupList"
    apps = next(g for g in groups["groups"] if g["name"] == "apps")
    assert apps["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    assert {g["name"] for g in groups["groups"]} == {rt.group for rt in RESOURCES if rt.group}


def test_api_resource_list_includes_subresources() -> None:
    doc = discovery.api_resource_list("apps", "v1")
    assert doc is not None
    assert doc["kind"] == "APIResourceList" and doc["groupVersion"] == "apps/v1"
    by_name = {r["name"]: r for r in doc["resources"]}
    assert by_name["deployments"]["shortNames"] == ["deploy"]
    assert by_name["deployments"]["namespaced"] is True
    assert by_name["deployments/scale"] == {
        "name": "deployments/scale",
        "singularName": "",
        "namespaced": True,
        "group": "autoscaling",
        "version": "v1",
        "kind": "Scale",
        "verbs": ["get", "patch", "update"],
    }
    assert by_name["deployments/status"]["kind"] == "Deployment"
    assert "group" not in by_name["deployments/status"]
    assert "replicasets/scale" in by_name
    core = discovery.api_resource_list("", "v1")
    assert core is not None and core["groupVersion"] == "v1"
    assert {"pods", "pods/status", "services", "endpoints", "events", "namespaces"} <= {
        r["name"] for r in core["resources"]
    }
    assert discovery.api_resource_list("apps", "v2") is None
    assert discovery.api_resource_list("nope.example.com", "v1") is None


def test_version_info() -> None:
    v = discovery.version_info()
    assert v["major"] == "1" and v["minor"] == "37"
    assert v["gitVersion"].startswith("v1.37.")
    assert v["platform"] == "linux/amd64"


# ----------------------------------------------------------------------------------------------------
# OpenAPI
# ----------------------------------------------------------------------------------------------------


def test_openapi_root_and_docs_carry_patch_with_field_validation() -> None:
    root = openapi.openapi_v3_root("http://127.0.0.1:1")
    assert set(root["paths"]) >= {"api/v1", "apis/apps/v1", "apis/discovery.k8s.io/v1"}
    url = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=")
    doc = openapi.openapi_v3_doc("apis/apps/v1")
    assert doc is not None and doc["openapi"].startswith("3.")
    op = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert op["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert {"name": "fieldValidation", "in": "query"}.items() <= next(
        p for p in op["parameters"] if p["name"] == "fieldValidation"
    ).items()
    # No requestBody: kubectl must fall back to its built-in strategic-merge metadata.
    assert "requestBody" not in op
    core = openapi.openapi_v3_doc("/api/v1")
    assert core is not None
    assert "/api/v1/namespaces/{name}" in core["paths"]
    assert "/api/v1/namespaces/{namespace}/pods/{name}" in core["paths"]
    assert openapi.openapi_v3_doc("apis/nope/v1") is None


def test_every_resource_has_a_patch_operation() -> None:
    for rt in RESOURCES:
        gv = f"api/{rt.version}" if not rt.group else f"apis/{rt.group}/{rt.version}"
        doc = openapi.openapi_v3_doc(gv)
        assert doc is not None
        gvks = [p["patch"]["x-kubernetes-group-version-kind"] for p in doc["paths"].values()]
        assert {"group": rt.group, "version": rt.version, "kind": rt.kind} in gvks


# ----------------------------------------------------------------------------------------------------
# Tables
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (125, "2m5s"),
        (600, "10m"),
        (179 * 60 + 59, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 60 * 7, "3h7m"),
        (8 * 3600 + 60 * 7, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (3 * 86400 + 5 * 3600, "3d5h"),
        (30 * 86400, "30d"),
        (800 * 86400, "2y70d"),
        (730 * 86400, "2y"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert tables.human_duration(seconds) == text


def test_wants_table() -> None:
    assert tables.wants_table(KUBECTL_TABLE_ACCEPT)
    assert not tables.wants_table("application/json")
    assert not tables.wants_table("application/json;as=Table;v=v1beta1;g=meta.k8s.io")


def _names(table: dict) -> list[str]:
    return [c["name"] for c in table["columnDefinitions"]]


def _deployment(**status: int) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "nginx",
            "namespace": "default",
            "labels": {"app": "nginx"},
            "resourceVersion": "42",
            "creationTimestamp": ts(30),
        },
        "spec": {
            "replicas": 10,
            "selector": {
                "matchLabels": {"app": "nginx"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}],
            },
            "template": {
                "spec": {
                    "containers": [
                        {"name": "nginx", "image": "nginx:1.26"},
                        {"name": "side", "image": "busybox"},
                    ]
                }
            },
        },
        "status": status,
    }


def test_deployment_table() -> None:
    t = tables.to_table(
        BY_KEY[DEPLOYMENTS],
        [_deployment(readyReplicas=7, updatedReplicas=10, availableReplicas=7)],
        list_meta={"resourceVersion": "50"},
        now=NOW,
    )
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"
    assert t["metadata"] == {"resourceVersion": "50"}
    assert _names(t) == [
        "Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector",
    ]  # fmt: skip
    assert [c["priority"] for c in t["columnDefinitions"]] == [0, 0, 0, 0, 0, 1, 1, 1]
    row = t["rows"][0]
    assert row["cells"] == [
        "nginx", "7/10", 10, 7, "30s", "nginx,side", "nginx:1.26,busybox", "app=nginx,tier in (api,web)",
    ]  # fmt: skip
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["labels"] == {"app": "nginx"}
    # No status yet: zeros, not errors.
    t2 = tables.to_table(BY_KEY[DEPLOYMENTS], [_deployment()], now=NOW)
    assert t2["rows"][0]["cells"][1:4] == ["0/10", 0, 0]
    assert t2["metadata"] == {"resourceVersion": "42"}


def test_include_object_modes() -> None:
    rt = BY_KEY[DEPLOYMENTS]
    full = tables.to_table(rt, [_deployment()], include_object="Object", now=NOW)
    assert full["rows"][0]["object"]["kind"] == "Deployment"
    assert full["rows"][0]["object"]["spec"]["replicas"] == 10
    none = tables.to_table(rt, [_deployment()], include_object="None", now=NOW)
    assert "object" not in none["rows"][0]
    no_headers = tables.to_table(rt, [_deployment()], no_headers=True, now=NOW)
    assert no_headers["columnDefinitions"] == []


def test_replicaset_table_carries_labels_for_dash_L() -> None:
    rs = {
        "metadata": {
            "name": "nginx-5d9b8c7f6",
            "labels": {"app": "nginx", "pod-template-hash": "5d9b8c7f6"},
            "creationTimestamp": ts(200),
        },
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"pod-template-hash": "5d9b8c7f6", "app": "nginx"}},
            "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.26"}]}},
        },
        "status": {"replicas": 3, "readyReplicas": 2},
    }
    t = tables.to_table(BY_KEY[REPLICASETS], [rs], now=NOW)
    assert _names(t)[:5] == ["Name", "Desired", "Current", "Ready", "Age"]
    assert t["rows"][0]["cells"] == [
        "nginx-5d9b8c7f6", 3, 3, 2, "3m20s", "nginx", "nginx:1.26", "app=nginx,pod-template-hash=5d9b8c7f6",
    ]  # fmt: skip
    assert t["rows"][0]["object"]["metadata"]["labels"]["pod-template-hash"] == "5d9b8c7f6"


def _pod(status: dict, *, deleting: bool = False, containers: int = 1) -> dict:
    meta: dict = {"name": "nginx-abc-xyz12", "creationTimestamp": ts(90)}
    if deleting:
        meta["deletionTimestamp"] = ts(1)
    return {
        "metadata": meta,
        "spec": {
            "nodeName": "kubesim-node",
            "containers": [{"name": f"c{i}", "image": "nginx"} for i in range(containers)],
        },
        "status": status,
    }


def _cs(state: dict, *, ready: bool = False, restarts: int = 0, last: dict | None = None) -> dict:
    out = {"name": "c0", "image": "nginx", "imageID": "", "ready": ready, "restartCount": restarts}
    out["state"] = state
    out["lastState"] = last or {}
    return out


def test_pod_status_column() -> None:
    rt = BY_KEY[PODS]

    def row(pod: dict) -> list:
        return tables.to_table(rt, [pod], now=NOW)["rows"][0]["cells"]

    running = _pod(
        {
            "phase": "Running",
            "podIP": "10.244.0.7",
            "podIPs": [{"ip": "10.244.0.7"}],
            "containerStatuses": [_cs({"running": {"startedAt": ts(80)}}, ready=True)],
        }
    )
    cells = row(running)
    assert cells == [
        "nginx-abc-xyz12", "1/1", "Running", "0", "90s", "10.244.0.7", "kubesim-node", "<none>", "<none>",
    ]  # fmt: skip
    assert _names(tables.to_table(rt, [], now=NOW)) == [
        "Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates",
    ]  # fmt: skip

    pending = _pod({"phase": "Pending"})
    pending["spec"].pop("nodeName")
    assert row(pending)[1:4] == ["0/1", "Pending", "0"]
    assert row(pending)[5:7] == ["<none>", "<none>"]

    creating = _pod(
        {"phase": "Pending", "containerStatuses": [_cs({"waiting": {"reason": "ContainerCreating"}})]}
    )
    assert row(creating)[1:3] == ["0/1", "ContainerCreating"]

    not_ready = _pod(
        {"phase": "Running", "containerStatuses": [_cs({"running": {"startedAt": ts(80)}}, ready=False)]}
    )
    assert row(not_ready)[1:3] == ["0/1", "Running"]

    crash = _pod(
        {
            "phase": "Running",
            "containerStatuses": [
                _cs(
                    {"waiting": {"reason": "CrashLoopBackOff"}},
                    restarts=4,
                    last={"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ts(150)}},
                )
            ],
        }
    )
    assert row(crash)[1:4] == ["0/1", "CrashLoopBackOff", "4 (2m30s ago)"]

    terminating = _pod(
        {"phase": "Running", "containerStatuses": [_cs({"running": {}}, ready=True)]}, deleting=True
    )
    assert row(terminating)[1:3] == ["1/1", "Terminating"]

    succeeded = _pod(
        {
            "phase": "Succeeded",
            "containerStatuses": [_cs({"terminated": {"exitCode": 0, "reason": "Completed"}})],
        }
    )
    t = tables.to_table(rt, [succeeded], now=NOW)
    assert t["rows"][0]["cells"][2] == "Completed"
    assert t["rows"][0]["conditions"][0]["type"] == "Completed"


def test_pod_init_containers() -> None:
    pod = _pod(
        {
            "phase": "Pending",
            "initContainerStatuses": [_cs({"waiting": {"reason": "PodInitializing"}})],
            "containerStatuses": [_cs({"waiting": {"reason": "PodInitializing"}})],
        }
    )
    pod["spec"]["initContainers"] = [{"name": "c0", "image": "busybox"}]
    cells = tables.to_table(BY_KEY[PODS], [pod], now=NOW)["rows"][0]["cells"]
    assert cells[2] == "Init:0/1"


def test_service_endpoints_and_slices() -> None:
    svc = {
        "metadata": {"name": "nginx", "creationTimestamp": ts(10)},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "10.96.0.10",
            "clusterIPs": ["10.96.0.10"],
            "ports": [{"port": 80, "protocol": "TCP"}, {"port": 443, "nodePort": 30443}],
            "selector": {"app": "nginx"},
        },
    }
    t = tables.to_table(BY_KEY[SERVICES], [svc], now=NOW)
    assert _names(t) == ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"]
    assert t["rows"][0]["cells"] == [
        "nginx", "ClusterIP", "10.96.0.10", "<none>", "80/TCP,443:30443/TCP", "10s", "app=nginx",
    ]  # fmt: skip

    ips = [f"10.244.0.{i}" for i in range(1, 6)]
    ep = {
        "metadata": {"name": "nginx", "creationTimestamp": ts(10)},
        "subsets": [{"addresses": [{"ip": ip} for ip in ips], "ports": [{"port": 80, "protocol": "TCP"}]}],
    }
    t = tables.to_table(BY_KEY[ENDPOINTS], [ep], now=NOW)
    assert _names(t) == ["Name", "Endpoints", "Age"]
    assert t["rows"][0]["cells"] == [
        "nginx",
        "10.244.0.1:80,10.244.0.2:80,10.244.0.3:80 + 2 more...",
        "10s",
    ]
    empty = {"metadata": {"name": "nginx", "creationTimestamp": ts(10)}}
    assert tables.to_table(BY_KEY[ENDPOINTS], [empty], now=NOW)["rows"][0]["cells"][1] == ""

    es = {
        "metadata": {"name": "nginx-abcde", "creationTimestamp": ts(10)},
        "addressType": "IPv4",
        "ports": [{"port": 80, "protocol": "TCP"}],
        "endpoints": [{"addresses": [ip]} for ip in ips[:2]],
    }
    t = tables.to_table(BY_KEY[ENDPOINTSLICES], [es], now=NOW)
    assert _names(t) == ["Name", "AddressType", "Ports", "Endpoints", "Age"]
    assert t["rows"][0]["cells"] == ["nginx-abcde", "IPv4", "80", "10.244.0.1,10.244.0.2", "10s"]
    bare = {"metadata": {"name": "x", "creationTimestamp": ts(10)}, "addressType": "IPv4"}
    assert tables.to_table(BY_KEY[ENDPOINTSLICES], [bare], now=NOW)["rows"][0]["cells"][2:4] == [
        "<unset>",
        "<unset>",
    ]


def test_event_namespace_ingress_httproute() -> None:
    ev = {
        "metadata": {"name": "nginx.1", "creationTimestamp": ts(5)},
        "involvedObject": {"kind": "Deployment", "name": "nginx"},
        "reason": "ScalingReplicaSet",
        "message": "Scaled up replica set nginx-5d9b8c7f6 from 0 to 10 ",
        "type": "Normal",
        "source": {"component": "deployment-controller"},
        "firstTimestamp": ts(60),
        "lastTimestamp": ts(5),
        "count": 2,
    }
    t = tables.to_table(BY_KEY[EVENTS], [ev], now=NOW)
    assert _names(t)[:4] == ["Last Seen", "Type", "Reason", "Object"]
    assert t["rows"][0]["cells"] == [
        "5s",
        "Normal",
        "ScalingReplicaSet",
        "deployment/nginx",
        "",
        "deployment-controller",
        "Scaled up replica set nginx-5d9b8c7f6 from 0 to 10",
        "60s",
        2,
        "nginx.1",
    ]
    ns = {"metadata": {"name": "default", "creationTimestamp": ts(3)}, "status": {"phase": "Active"}}
    t = tables.to_table(BY_KEY["namespaces"], [ns], now=NOW)
    assert t["rows"][0]["cells"] == ["default", "Active", "3s"]

    ing = {
        "metadata": {"name": "web", "creationTimestamp": ts(3)},
        "spec": {"ingressClassName": "nginx", "rules": [{"host": "a.example.com"}]},
    }
    t = tables.to_table(BY_KEY["ingresses.networking.k8s.io"], [ing], now=NOW)
    assert _names(t) == ["Name", "Class", "Hosts", "Address", "Ports", "Age"]
    assert t["rows"][0]["cells"] == ["web", "nginx", "a.example.com", "", "80", "3s"]

    route = {
        "metadata": {"name": "web", "creationTimestamp": ts(3)},
        "spec": {"hostnames": ["a.example.com"]},
    }
    t = tables.to_table(BY_KEY["httproutes.gateway.networking.k8s.io"], [route], now=NOW)
    assert _names(t) == ["Name", "Hostnames", "Age"]
    assert t["rows"][0]["cells"] == ["web", '["a.example.com"]', "3s"]


def test_every_registered_kind_has_a_printer() -> None:
    for rt in RESOURCES:
        assert tables.column_definitions(rt)[0]["name"] in ("Name", "Last Seen"), rt.kind
        if rt.kind != "CustomResourceDefinition":  # the apiserver prints CRDs with "Created At"
            assert "Created At" not in [c["name"] for c in tables.column_definitions(rt)], rt.kind


def test_unknown_timestamp_prints_unknown() -> None:
    t = tables.to_table(BY_KEY["namespaces"], [{"metadata": {"name": "x"}}], now=NOW)
    assert t["rows"][0]["cells"][2] == "<unknown>"
