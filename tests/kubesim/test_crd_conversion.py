"""kubesim: CRD versions. Objects are stored in the storage version and served in the version asked for;
``conversion.strategy: None`` only changes apiVersion, ``Webhook`` calls the webhook (an unreachable one
fails the request with the apiserver's words); discovery prefers the highest version, as the apiserver.
The webhook path end to end (Rollouts through the controller's ``/convert``) is
``tests/conformance/test_kruise_v1alpha1.py``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from kube.client import Kube
from kubesim.discovery import version_priority
from kubesim.testing import KubeSimProcess, api_client_for, start_kubesim

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
SCHEMA = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}


def crd(conversion: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "group": "example.com",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
        "scope": "Namespaced",
        "versions": [
            {"name": "v1alpha1", "served": True, "storage": False, "schema": SCHEMA},
            {"name": "v1", "served": True, "storage": True, "schema": SCHEMA},
        ],
    }
    if conversion is not None:
        spec["conversion"] = conversion
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": spec,
    }


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    proc: KubeSimProcess = start_kubesim(tmp_path_factory.mktemp("conversion-kubesim"), ready_delay=0.1)
    api = api_client_for(proc.kubeconfig)
    try:
        yield Kube(api)
    finally:
        api.close()
        proc.stop()


def widgets(version: str) -> str:
    return f"/apis/example.com/{version}/namespaces/default/widgets"


UNREACHABLE = {
    "strategy": "Webhook",
    "webhook": {
        "conversionReviewVersions": ["v1"],
        "clientConfig": {"url": "https://127.0.0.1:9/convert"},  # the discard port: nothing listens
    },
}


@pytest.fixture(scope="module")
def crd_made(kube: Kube) -> None:
    kube.request("POST", CRD_PATH, crd())


def set_conversion(kube: Kube, conversion: dict[str, Any]) -> None:
    current = kube.request("GET", f"{CRD_PATH}/widgets.example.com")
    current["spec"]["conversion"] = conversion
    kube.request("PUT", f"{CRD_PATH}/widgets.example.com", current)


def widget(kube: Kube, name: str) -> dict[str, Any]:
    """A Widget made through v1 (the storage version: no conversion on the way in)."""
    body = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": {"size": 2}}
    return kube.request("POST", widgets("v1"), body)


@pytest.mark.usefixtures("crd_made")
def test_versions_share_one_store_and_none_only_changes_the_api_version(kube: Kube) -> None:
    set_conversion(kube, {"strategy": "None"})
    made = kube.request(
        "POST",
        widgets("v1alpha1"),
        {
            "apiVersion": "example.com/v1alpha1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"size": 1},
        },
    )
    assert made["apiVersion"] == "example.com/v1alpha1"
    stored = kube.request("GET", f"{widgets('v1')}/w")
    assert stored["apiVersion"] == "example.com/v1" and stored["spec"] == {"size": 1}
    assert stored["metadata"]["uid"] == made["metadata"]["uid"]
    listed = kube.request("GET", widgets("v1alpha1"))
    assert [i["apiVersion"] for i in listed["items"]] == ["example.com/v1alpha1"]
    patched = kube.request(
        "PATCH",
        f"{widgets('v1alpha1')}/w",
        {"spec": {"size": 2}},
        content_type="application/merge-patch+json",
    )
    assert patched["apiVersion"] == "example.com/v1alpha1" and patched["spec"] == {"size": 2}
    groups = kube.request("GET", "/apis/example.com")
    assert groups["preferredVersion"]["version"] == "v1"


@pytest.mark.usefixtures("crd_made")
def test_an_unreachable_conversion_webhook_fails_reads_of_the_other_version(kube: Kube) -> None:
    set_conversion(kube, UNREACHABLE)
    widget(kube, "unreachable")
    assert kube.request("GET", f"{widgets('v1')}/unreachable")["spec"] == {
        "size": 2
    }  # stored version: no call
    with pytest.raises(ApiException) as err:
        kube.request("GET", f"{widgets('v1alpha1')}/unreachable")
    assert err.value.status == 500
    message = json.loads(err.value.body)["message"]
    assert message.startswith(
        "Internal error occurred: conversion webhook for example.com/v1, Kind=Widget failed: "
        'Post "https://127.0.0.1:9/convert"'
    ), message


def test_version_priority_is_kubernetes_order() -> None:
    versions = ["v1alpha1", "v2beta1", "v1", "foo", "v1beta2", "v2", "v1beta1", "v11alpha2"]
    assert sorted(versions, key=version_priority) == [
        "v2",
        "v1",
        "v2beta1",
        "v1beta2",
        "v1beta1",
        "v11alpha2",
        "v1alpha1",
        "foo",
    ]


@pytest.mark.usefixtures("crd_made")
def test_a_watch_of_the_other_version_fails_like_a_read_when_the_webhook_is_unreachable(kube: Kube) -> None:
    set_conversion(kube, UNREACHABLE)
    widget(kube, "watched")
    with pytest.raises(ApiException) as err:
        kube.request("GET", widgets("v1alpha1"), query={"watch": "true", "timeoutSeconds": "1"})
    assert err.value.status == 500
    assert (
        "conversion webhook for example.com/v1, Kind=Widget failed" in json.loads(err.value.body)["message"]
    )
