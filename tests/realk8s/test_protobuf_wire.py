"""``application/vnd.kubernetes.protobuf`` on both clusters: the protobuf answer of every kind kubesim serves
decodes to exactly its JSON answer, a protobuf body is accepted, errors and watch events come back in
protobuf, and both clusters agree on all of it.

On the real cluster this checks kubesim's codec (kubesim/protobuf.py) against the apiserver's own encoder;
on kubesim it checks the negotiation and the encoder against the decoder."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from differential import Cluster, complete, dep_path, deployment, eventually

from kubesim import protobuf

Obj = dict[str, Any]
PB = protobuf.PROTOBUF_CT
ACCEPT_PB = f"{PB}, application/json"
_ns = itertools.count(1)


def _raw(
    c: Cluster,
    method: str,
    path: str,
    *,
    accept: str,
    body: bytes | None = None,
    content_type: str | None = None,
    query: dict[str, str] | None = None,
    timeout: float = 10,
) -> Any:
    headers = {"Accept": accept}
    if content_type:
        headers["Content-Type"] = content_type
    params = c.api.param_serialize(
        method=method,
        resource_path=path,
        query_params=list((query or {}).items()),
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    return c.api.call_api(*params, _request_timeout=timeout)


def _decoded(c: Cluster, path: str) -> tuple[str, Obj]:
    resp = _raw(c, "GET", path, accept=ACCEPT_PB)
    assert resp.status == 200, resp.read()
    return resp.getheader("Content-Type"), protobuf.codec().decode(resp.read())


def _namespace(c: Cluster) -> str:
    ns = f"pb-{next(_ns)}"
    c.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
    return ns


def _objects(ns: str) -> dict[str, tuple[str, Obj]]:
    return {
        "configmap": (
            f"/api/v1/namespaces/{ns}/configmaps",
            {
                "metadata": {"name": "cfg", "labels": {"app": "web"}},
                "data": {"a": "1"},
                "binaryData": {"b": "AAE="},
                "immutable": False,
            },
        ),
        "secret": (
            f"/api/v1/namespaces/{ns}/secrets",
            {"metadata": {"name": "s"}, "type": "Opaque", "stringData": {"password": "hunter2"}},
        ),
        "service": (
            f"/api/v1/namespaces/{ns}/services",
            {
                "metadata": {"name": "web"},
                "spec": {
                    "selector": {"app": "web"},
                    "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
                },
            },
        ),
        "ingress": (
            f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses",
            {
                "metadata": {"name": "web"},
                "spec": {
                    "ingressClassName": "nginx",
                    "rules": [
                        {
                            "host": "a.example.com",
                            "http": {
                                "paths": [
                                    {
                                        "path": "/",
                                        "pathType": "Prefix",
                                        "backend": {"service": {"name": "web", "port": {"number": 80}}},
                                    }
                                ]
                            },
                        }
                    ],
                },
            },
        ),
    }


def test_protobuf_answers_decode_to_the_json_answers(clusters: list[Cluster]) -> None:
    kinds: dict[str, set[str]] = {}
    for c in clusters:
        ns = _namespace(c)
        c.request("POST", dep_path(ns), deployment(ns, replicas=2))
        for collection, body in _objects(ns).values():
            c.request("POST", collection, body)
        # The Deployment's ReplicaSet and pods, each with a status, are compared too.
        asyncio.run(
            eventually(lambda c=c, ns=ns: complete(c, ns, "web", "nginx:1.26", 2), what=f"{c.name} rollout")
        )
        paths = [
            f"/api/v1/namespaces/{ns}",
            dep_path(ns, "web"),
            *(f"{collection}/{body['metadata']['name']}" for collection, body in _objects(ns).values()),
        ]
        rs = c.request("GET", f"/apis/apps/v1/namespaces/{ns}/replicasets")["items"][0]
        pod = c.request("GET", f"/api/v1/namespaces/{ns}/pods")["items"][0]
        paths += [
            f"/apis/apps/v1/namespaces/{ns}/replicasets/{rs['metadata']['name']}",
            f"/api/v1/namespaces/{ns}/pods/{pod['metadata']['name']}",
        ]
        seen: set[str] = set()
        for path in paths:
            content_type, decoded = _decoded(c, path)
            assert content_type == PB, (c.name, path, content_type)
            as_json = c.request("GET", path)
            assert decoded == as_json, (c.name, path, _diff(decoded, as_json))
            seen.add(decoded["kind"])
        listed_type, listed = _decoded(c, f"/api/v1/namespaces/{ns}/configmaps")
        assert listed_type == PB and listed["kind"] == "ConfigMapList"
        as_json = c.request("GET", f"/api/v1/namespaces/{ns}/configmaps")
        for item in as_json["items"]:  # kubesim's JSON items carry their type; protobuf items cannot
            item.pop("apiVersion", None), item.pop("kind", None)
        assert listed == as_json, (c.name, _diff(listed, as_json))
        kinds[c.name] = seen
    assert (
        kinds["kubesim"]
        == kinds["real"]
        == {"Namespace", "Deployment", "ReplicaSet", "Pod", "ConfigMap", "Secret", "Service", "Ingress"}
    )


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        missing = [f"{path}.{k}: only in one" for k in sorted(set(a) ^ set(b))]
        return missing + [d for k in sorted(set(a) & set(b)) for d in _diff(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def test_protobuf_bodies_errors_and_watch_events(clusters: list[Cluster]) -> None:
    facts: dict[str, Obj] = {}
    codec = protobuf.codec()
    for c in clusters:
        ns = _namespace(c)
        out: Obj = {}
        collection = f"/api/v1/namespaces/{ns}/configmaps"
        rv = c.request("GET", collection)["metadata"]["resourceVersion"]
        watch = _raw(
            c,
            "GET",
            collection,
            accept=ACCEPT_PB,
            timeout=30,
            query={"watch": "true", "resourceVersion": rv, "timeoutSeconds": "20"},
        )
        watch_type = watch.getheader("Content-Type")
        body = codec.encode(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"k": "v"}}
        )
        created = _raw(c, "POST", collection, accept=ACCEPT_PB, body=body, content_type=PB)
        out["create"] = (created.status, created.getheader("Content-Type"))
        created_body = created.read()
        assert created_body.startswith(protobuf.MAGIC), (c.name, created.status, created_body[:300])
        stored = codec.decode(created_body)
        out["stored data"] = stored["data"]
        frame = watch.response.read(4)
        event = codec.watch_event(watch.response.read(int.from_bytes(frame, "big")))
        watch.response.close()  # a half-read stream must not go back to the connection pool
        out["watch"] = (watch_type, event["type"], event["object"]["metadata"]["name"])
        assert event["object"] == stored
        again = _raw(c, "POST", collection, accept=ACCEPT_PB, body=body, content_type=PB)
        status = codec.decode(again.read())
        out["conflict"] = (again.status, again.getheader("Content-Type"), status["reason"], status["message"])
        missing = _raw(c, "GET", collection + "/nope", accept=ACCEPT_PB)
        status = codec.decode(missing.read())
        out["missing"] = (missing.status, status["kind"], status["reason"], status["details"])
        garbage = _raw(
            c, "POST", collection, accept="application/json", body=b"k8s\x00\xff\xff", content_type=PB
        )
        out["garbage"] = (garbage.status, json.loads(garbage.read())["reason"])
        facts[c.name] = out
    assert facts["kubesim"] == facts["real"]
    assert facts["kubesim"]["watch"] == (f"{PB};stream=watch", "ADDED", "cfg")
    assert facts["kubesim"]["conflict"][:3] == (409, PB, "AlreadyExists")
