"""kubesim's protobuf codec (kubesim/protobuf.py) on its own: the k8s\\x00 + runtime.Unknown envelope, the
Kubernetes JSON forms of the special types, embedded structs, renamed fields and Go's omitted zero values.

kubectl (a real Go client) decoding these answers and sending these bodies is covered by
``tests/realk8s/test_kubectl_create.py``; here the cases are tables."""

# Dynamic protobuf messages have no static attributes.
# mypy: disable-error-code="attr-defined"

from __future__ import annotations

import base64
from typing import Any

import pytest
from google.protobuf import json_format, message_factory

from kubesim import protobuf

Obj = dict[str, Any]


@pytest.fixture(scope="module")
def codec() -> protobuf.Codec:
    return protobuf.codec()


ROUND_TRIPS: list[Obj] = [
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "ns",
            "labels": {"app": "web"},
            "generation": 3,
            "creationTimestamp": "2026-01-02T03:04:05Z",
            "managedFields": [
                {
                    "manager": "kubectl",
                    "operation": "Update",
                    "apiVersion": "apps/v1",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:spec": {"f:replicas": {}}},
                }
            ],
        },
        "spec": {
            "replicas": 0,
            "revisionHistoryLimit": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "containers": [
                        {
                            "name": "nginx",
                            "image": "nginx:1.27",
                            "ports": [{"containerPort": 80}],
                            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 2},
                        }
                    ],
                    "volumes": [{"name": "cfg", "configMap": {"name": "web-cfg"}}],
                },
            },
        },
        "status": {
            "observedGeneration": 3,
            "replicas": 2,
            "conditions": [{"type": "Available", "status": "True", "lastUpdateTime": "2026-01-02T03:04:06Z"}],
        },
    },
    {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "type": "Opaque",
        "data": {"a": base64.b64encode(b"\x00\xffbinary").decode()},
        "immutable": False,
    },
    {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"k": "v"},
        "binaryData": {"b": "AAE="},
    },
    {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "m"},
        "webhooks": [
            {
                "name": "a.example.com",
                "clientConfig": {"url": "https://x", "caBundle": "AAAA"},
                "rules": [
                    {
                        "operations": ["CREATE"],
                        "apiGroups": ["apps"],
                        "apiVersions": ["v1"],
                        "resources": ["deployments"],
                    }
                ],
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
            }
        ],
    },
    {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "leader"},
        "spec": {
            "holderIdentity": "pod-a",
            "leaseDurationSeconds": 15,
            "leaseTransitions": 0,
            "acquireTime": "2026-01-02T03:04:05.000000Z",
            "renewTime": "2026-01-02T03:04:20.123456Z",
        },
    },
    {
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "code": 404,
        "reason": "NotFound",
        "message": 'deployments.apps "x" not found',
        "details": {"name": "x", "group": "apps", "kind": "deployments"},
    },
    {
        "apiVersion": "apps/v1",
        "kind": "DeploymentList",
        "metadata": {"resourceVersion": "7"},
        "items": [{"metadata": {"name": "a"}, "spec": {"replicas": 1, "selector": {}, "template": {}}}],
    },
]


@pytest.mark.parametrize("obj", ROUND_TRIPS, ids=lambda o: o["kind"])
def test_round_trip_keeps_the_kubernetes_json(codec: protobuf.Codec, obj: Obj) -> None:
    data = codec.encode(obj)
    assert data.startswith(b"k8s\x00")
    assert codec.decode(data) == obj


def test_the_envelope_is_runtime_unknown_around_the_message(codec: protobuf.Codec) -> None:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
    }
    unknown_cls = message_factory.GetMessageClass(
        codec.pool.FindMessageTypeByName("k8s.io.apimachinery.pkg.runtime.Unknown")
    )
    envelope = unknown_cls.FromString(codec.encode(obj)[4:])
    assert (envelope.typeMeta.apiVersion, envelope.typeMeta.kind) == ("apps/v1", "Deployment")
    deployment_cls = message_factory.GetMessageClass(
        codec.pool.FindMessageTypeByName("k8s.io.api.apps.v1.Deployment")
    )
    msg = deployment_cls.FromString(envelope.raw)
    assert msg.spec.replicas == 2 and msg.metadata.name == "web"
    assert msg.spec.template.spec.containers[0].image == "i"


def _message(codec: protobuf.Codec, name: str, fields: Obj) -> bytes:
    """An enveloped message built field by field, as a Go client marshals it (every non-pointer field set)."""
    desc = codec.pool.FindMessageTypeByName(name)
    msg = message_factory.GetMessageClass(desc)()
    json_format.ParseDict(fields, msg)
    unknown = message_factory.GetMessageClass(
        codec.pool.FindMessageTypeByName("k8s.io.apimachinery.pkg.runtime.Unknown")
    )()
    unknown.typeMeta.apiVersion, unknown.typeMeta.kind = "apps/v1", "Deployment"
    unknown.raw = msg.SerializeToString()
    return b"k8s\x00" + unknown.SerializeToString()


def test_go_zero_values_decode_as_go_json_would_encode_them(codec: protobuf.Codec) -> None:
    """Go writes non-pointer fields even when zero; its JSON omits them (omitempty) unless they are pointers
    (replicas: 0 is a choice) or have no omitempty (containerPort). Structs are written too (a zero Time is
    JSON null), unless tagged omitzero (creationTimestamp)."""
    body = _message(
        codec,
        "k8s.io.api.apps.v1.Deployment",
        {
            "metadata": {
                "name": "web",
                "generateName": "",
                "namespace": "",
                "generation": "0",
                "creationTimestamp": {},
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": 0,
                "paused": False,
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "c",
                                "image": "nginx",
                                "workingDir": "",
                                "stdin": False,
                                "ports": [{"containerPort": 0, "hostPort": 0, "name": ""}],
                            }
                        ]
                    }
                },
            },
            "status": {"conditions": [{"type": "Available", "status": "True", "lastUpdateTime": {}}]},
        },
    )
    assert codec.decode(body) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 0,
            "template": {
                "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 0}]}]}
            },
        },
        "status": {"conditions": [{"type": "Available", "status": "True", "lastUpdateTime": None}]},
    }


def test_a_body_without_the_magic_is_refused(codec: protobuf.Codec) -> None:
    with pytest.raises(protobuf.ProtobufError, match="k8s"):
        codec.decode(b'{"kind": "Deployment"}')
    with pytest.raises(protobuf.ProtobufError):
        codec.decode(b"k8s\x00\xff\xff\xff")


def test_custom_resources_have_no_message(codec: protobuf.Codec) -> None:
    assert codec.message("rollouts.kruise.io/v1beta1", "Rollout") is None
    assert codec.message("gateway.networking.k8s.io/v1", "HTTPRoute") is None
    assert codec.message("apiextensions.k8s.io/v1", "CustomResourceDefinition") is None
    assert codec.message("v1", "ConfigMap") is not None
    assert codec.message("apps/v1", "Status") is not None  # meta/v1 kinds exist in every group version


def test_watch_frames_are_length_prefixed_bare_watch_events(codec: protobuf.Codec) -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}
    frame = codec.watch_frame("ADDED", obj)
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    assert not frame[4:].startswith(b"k8s\x00")  # the stream's events are bare messages
    assert codec.watch_event(frame[4:]) == {"type": "ADDED", "object": obj}


@pytest.mark.parametrize(
    ("accept", "wanted"),
    [
        ("application/vnd.kubernetes.protobuf,application/json", True),
        ("application/vnd.kubernetes.protobuf;stream=watch", True),
        ("application/json, application/vnd.kubernetes.protobuf", False),
        ("application/json", False),
        ("*/*", False),
        ("", False),
        ("application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json", False),
    ],
)
def test_negotiation_follows_the_clients_order(accept: str, wanted: bool) -> None:
    assert protobuf.wants_protobuf(accept) is wanted
