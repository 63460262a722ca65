"""kubectl discovery and plumbing against kubesim (reference 5.2 checks 1-3, 1.3, 1.5, 1.6)."""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

import pytest

from kubesim import discovery
from tests.helpers.kubectl import Kubectl

KUBECTL_DISCOVERY_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
)


def _get(url: str, accept: str) -> tuple[str, Any]:
    req = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.headers.get("Content-Type", ""), json.loads(resp.read())


def test_version(kubectl: Kubectl) -> None:
    raw = json.loads(kubectl.out("get", "--raw", "/version"))
    assert raw["major"] == "1" and raw["minor"] == "37"
    assert raw["gitVersion"].startswith("v1.37.")
    out = kubectl.out("version")
    assert re.search(r"^Server Version: v1\.37\.\S+$", out, re.M), out
    assert "WARNING" not in out  # no version-skew warning against kubectl 1.37


def test_discovery_formats(sim: Any) -> None:
    ct, body = _get(sim.url + "/apis", KUBECTL_DISCOVERY_ACCEPT)
    assert ct == discovery.AGGREGATED_CONTENT_TYPE
    assert body["kind"] == "APIGroupDiscoveryList"
    assert "apps" in [i["metadata"]["name"] for i in body["items"]]
    ct, body = _get(sim.url + "/api", KUBECTL_DISCOVERY_ACCEPT)
    assert ct == discovery.AGGREGATED_CONTENT_TYPE
    assert [i["metadata"]["name"] for i in body["items"]] == [""]
    ct, body = _get(sim.url + "/apis", "application/json")
    assert ct.split(";")[0] == "application/json"
    assert body["kind"] == "APIGroupList"
    ct, body = _get(sim.url + "/api", "application/json")
    assert body["kind"] == "APIVersions" and body["versions"] == ["v1"]
    ct, body = _get(sim.url + "/apis/apps/v1", "application/json, */*")
    assert body["kind"] == "APIResourceList"
    assert "deployments/scale" in [r["name"] for r in body["resources"]]


def test_api_resources(kubectl: Kubectl) -> None:
    out = kubectl.out("api-resources")
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert lines[0] == "NAME SHORTNAMES APIVERSION NAMESPACED KIND"
    for expected in (
        "deployments deploy apps/v1 true Deployment",
        "replicasets rs apps/v1 true ReplicaSet",
        "pods po v1 true Pod",
        "services svc v1 true Service",
        "endpoints ep v1 true Endpoints",
        "endpointslices discovery.k8s.io/v1 true EndpointSlice",
        "namespaces ns v1 false Namespace",
        "ingresses ing networking.k8s.io/v1 true Ingress",
        "httproutes gateway.networking.k8s.io/v1 true HTTPRoute",
    ):
        assert expected in lines, (expected, out)
    # Short names and categories resolve through discovery.
    assert kubectl.run("get", "deploy,rs,po,svc,ep").returncode == 0
    assert kubectl.run("get", "all").returncode == 0


def test_openapi_served_and_v2_absent(sim: Any) -> None:
    _, root = _get(sim.url + "/openapi/v3", "application/json")
    url = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
    _, doc = _get(sim.url + url, "application/json")
    assert any(
        p.get("patch", {}).get("x-kubernetes-group-version-kind", {}).get("kind") == "Deployment"
        for p in doc["paths"].values()
    )
    req = urllib.request.Request(sim.url + "/openapi/v2")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=10)
    assert exc.value.code == 404
