"""``kubectl create <kind>``, the first commands people type, on kubesim and on the real control plane.

kubectl's typed create commands send protobuf bodies and prefer protobuf answers, and ``kubectl describe``
reads in protobuf; kubesim has to speak it (kubesim/protobuf.py). Each command runs on both clusters in a
fresh namespace; the stored objects (without what a server picks itself: uids, times, IPs, node ports),
``kubectl get`` tables and the refusals must be the same.
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import pytest
from differential import Cluster

from declarative.certs import make_serving_cert
from tests.helpers.kubectl import Kubectl

Obj = dict[str, Any]
_ns = itertools.count(1)

# (kind, name, kubectl create arguments): every create generator for a kind kubesim serves.
CREATES: list[tuple[str, str, list[str]]] = [
    ("deployment", "web", ["deployment", "web", "--image=nginx:1.27", "--port=80", "--replicas=2"]),
    ("deployment", "multi", ["deployment", "multi", "--image=nginx", "--image=busybox:1.36", "--replicas=0"]),
    ("service", "web", ["service", "clusterip", "web", "--tcp=80:8080", "--tcp=443:8443"]),
    ("service", "headless", ["service", "clusterip", "headless", "--clusterip=None"]),
    ("service", "np", ["service", "nodeport", "np", "--tcp=8080:80"]),
    ("service", "lb", ["service", "loadbalancer", "lb", "--tcp=443:8443"]),
    ("service", "en", ["service", "externalname", "en", "--external-name=example.com"]),
    (
        "configmap",
        "cfg",
        ["configmap", "cfg", "--from-literal=a=1", "--from-literal=b.txt=two words", "--from-file=app.conf"],
    ),
    ("secret", "pw", ["secret", "generic", "pw", "--from-literal=password=hunter2"]),
    (
        "secret",
        "basic",
        ["secret", "generic", "basic", "--type=kubernetes.io/basic-auth", "--from-literal=username=u"],
    ),
    ("secret", "tls", ["secret", "tls", "tls", "--cert=tls.crt", "--key=tls.key"]),
    (
        "secret",
        "reg",
        [
            "secret",
            "docker-registry",
            "reg",
            "--docker-server=registry.example.com",
            "--docker-username=u",
            "--docker-password=p",
        ],
    ),
    (
        "ingress",
        "ing",
        [
            "ingress",
            "ing",
            "--class=nginx",
            "--rule=foo.com/bar=web:80,tls=tls",
            "--default-backend=web:http",
        ],
    ),
]


class _Handle:
    def __init__(self, c: Cluster) -> None:
        self.kubeconfig, self.url = c.kubeconfig, ""


def _kubectl(c: Cluster, tmp_path: Path, home: Path) -> Kubectl:
    ns = f"kcreate-{next(_ns)}"
    workdir = tmp_path / c.name
    workdir.mkdir()
    k = Kubectl(_Handle(c), workdir, ns, home)
    k.run("create", "namespace", ns)
    serving = make_serving_cert(["example.com"])
    (workdir / "tls.crt").write_bytes(serving.cert_pem)
    (workdir / "tls.key").write_bytes(serving.key_pem)
    (workdir / "app.conf").write_text("listen 80;\n")
    return k


def _stored(obj: Obj) -> Obj:
    """The object without what each server picks for itself."""
    obj = copy.deepcopy(obj)
    meta = obj["metadata"]
    for key in ("uid", "resourceVersion", "creationTimestamp", "managedFields", "namespace"):
        meta.pop(key, None)
    spec = obj.get("spec") or {}
    if obj["kind"] == "Service":
        for key in ("clusterIP", "clusterIPs"):
            if key in spec:
                spec[key] = "None" if spec[key] in ("None", ["None"]) else "<allocated>"
        for port in spec.get("ports") or []:
            if "nodePort" in port:
                port["nodePort"] = "<allocated>"
    if obj["kind"] in ("Deployment", "Ingress", "Service"):
        obj.pop("status", None)  # progress and load balancers are timing, compared elsewhere
    if obj["kind"] == "Secret" and obj.get("type") == "kubernetes.io/tls":
        obj["data"] = sorted(obj.get("data") or {})  # each cluster got its own fresh certificate
    return obj


def _table(text: str) -> list[list[str]]:
    """``kubectl get`` rows without the AGE column, the per-server IPs/ports and the rollout's progress."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    header = lines[0]
    timing = ("AGE", "CLUSTER-IP", "PORT(S)", "READY", "UP-TO-DATE", "AVAILABLE")
    keep = [i for i, h in enumerate(header) if h not in timing]
    return [[row[i] for i in keep if i < len(row)] for row in lines]


def _session(c: Cluster, tmp_path: Path, home: Path) -> Obj:
    k = _kubectl(c, tmp_path, home)
    facts: Obj = {}
    for kind, name, args in CREATES:
        facts[f"create {' '.join(args[:2])} {name}"] = k.out("create", *args).strip()
        facts[f"{kind}/{name}"] = _stored(k.json("get", kind, name))
    for kind in ("deployment", "service", "configmap", "secret", "ingress"):
        facts[f"get {kind}"] = _table(k.out("get", kind))
    facts["describe configmap"] = [
        line
        for line in k.out("describe", "configmap", "cfg").splitlines()
        if not line.startswith("Namespace:")
    ]
    again = k.run("create", "configmap", "cfg", "--from-literal=a=1", check=False)
    facts["create again"] = (again.returncode, again.stderr.strip())
    k.run("create", "secret", "generic", "imm", "--from-literal=a=1")
    k.run("patch", "secret", "imm", "-p", '{"immutable": true}')
    changed = k.run("patch", "secret", "imm", "-p", '{"stringData": {"a": "2"}}', check=False)
    facts["immutable secret"] = (changed.returncode, changed.stderr.strip())
    retyped = k.run("patch", "secret", "pw", "-p", '{"type": "kubernetes.io/ssh-auth"}', check=False)
    facts["secret type change"] = (retyped.returncode, retyped.stderr.strip())
    bad_tls = k.run(
        "create",
        "secret",
        "generic",
        "half-tls",
        "--type=kubernetes.io/tls",
        "--from-literal=tls.crt=x",
        check=False,
    )
    facts["tls without key"] = (bad_tls.returncode, bad_tls.stderr.strip())
    return facts


def test_kubectl_create_generators_on_both_clusters(
    clusters: list[Cluster], tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("kubectl-create-home")
    facts = {c.name: _session(c, tmp_path, home) for c in clusters}
    kubesim, real = facts["kubesim"], facts["real"]
    diffs = {
        k: {"kubesim": kubesim.get(k), "real": real.get(k)}
        for k in sorted(set(kubesim) | set(real))
        if kubesim.get(k) != real.get(k)
    }
    assert diffs == {}, f"kubesim and the real control plane differ: {diffs}"
    assert kubesim["create deployment web web"] == "deployment.apps/web created"
    assert kubesim["configmap/cfg"]["data"] == {"a": "1", "b.txt": "two words", "app.conf": "listen 80;\n"}
    assert kubesim["create again"][1] == 'error: failed to create configmap: configmaps "cfg" already exists'
    assert "field is immutable when `immutable` is set" in kubesim["immutable secret"][1]
