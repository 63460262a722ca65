"""Security: the worker's RBAC in ``deploy/`` is least privilege, and no secret is ever logged.

RBAC: a full rollout, an undo and a rescale while paused run with the worker as a process; every
Kubernetes request it made is in the kubesim audit log under the kubernetes client's default
User-Agent (the test and the in-process CLI use ``TEST_UA``, so they are told apart). Each
(apiGroup, resource[/subresource], verb) used must be granted by the ClusterRole in
``deploy/rbac.yaml`` and by the Role in ``deploy/rbac-namespaced.yaml``, and those grant nothing
else except ``TRAFFIC_ALLOWLIST``.
"""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any

import yaml

from tests.helpers.durability import REPO, WORKER_UA_PREFIX, Dur, WorkerLauncher, free_port
from workflows.model import Phase, UndoSignal

Grant = tuple[str, str, str]  # (apiGroup, resource or resource/subresource, verb)

# Granted for traffic routing only (activities/traffic.py), which a traffic-less rollout never calls:
# the stable/canary Services (read, create the canary one, re-point the stable selector, delete the
# canary one), the nginx canary Ingress (read, create, update weight, delete), the Gateway API
# HTTPRoute (read, update backendRefs weights), and read-only Endpoints (serving pods behind a Service).
TRAFFIC_ALLOWLIST: set[Grant] = {
    *(("", "services", v) for v in ("get", "create", "update", "delete")),
    *(("networking.k8s.io", "ingresses", v) for v in ("get", "create", "update", "delete")),
    *(("gateway.networking.k8s.io", "httproutes", v) for v in ("get", "update")),
    *(("", "endpoints", v) for v in ("get", "list", "watch")),
}


def _grants(path: Path, kind: str) -> set[Grant]:
    """Every (group, resource, verb) the ``kind`` (ClusterRole/Role) documents in ``path`` grant."""
    out: set[Grant] = set()
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == kind]
    assert docs, f"no {kind} in {path}"
    for doc in docs:
        for rule in doc.get("rules") or []:
            assert "nonResourceURLs" not in rule, rule
            for group in rule.get("apiGroups") or [""]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        assert "*" not in (group, resource, verb), f"wildcard in {path}: {rule}"
                        out.add((group, resource, verb))
    return out


def _used(entries: list[dict[str, Any]]) -> set[Grant]:
    return {
        (
            e["group"],
            e["resource"] + (f"/{e['subresource']}" if e["subresource"] else ""),
            e["verb"],
        )
        for e in entries
        if e["userAgent"].startswith(WORKER_UA_PREFIX)
    }


async def test_rbac_is_least_privilege(dur: Dur, launcher: WorkerLauncher) -> None:
    await dur.create_seed("full", replicas=4)
    await dur.create_seed("back", replicas=4)
    seq0 = dur.audit_seq()
    # As installed with rbac-namespaced.yaml: the shared Deployment watcher confined to the namespace
    # (with rbac.yaml it lists and watches Deployments cluster-wide instead, same verbs).
    await launcher.start(dur.task_queue, {"ROLLOUT_WATCH_NAMESPACES": dur.namespace})
    await dur.start_rollout("full")
    back = await dur.start_rollout("back")

    # full: rescale while paused (the shared watcher's signal and a re-scale), then approve to the end.
    await dur.wait_paused(1, "full")
    scale_path = dur.kube.deployment_path(dur.namespace, "full") + "/scale"
    scale = dur.kube.request("GET", scale_path)
    scale["spec"]["replicas"] = 6
    dur.kube.request("PUT", scale_path, scale)

    async def rescaled() -> bool:
        st = await dur.query("full")
        return bool(st and st.replicas == 6 and st.phase == Phase.PAUSED)

    await dur.eventually(rescaled, timeout=60, interval=0.1, message="full rescaled to 6 while paused")
    # back: undo while paused at step 1.
    await dur.wait_paused(1, "back")
    await back.signal("undo", UndoSignal(by="durability-tests", reason="rbac scenario"))
    full = await dur.drive("full")
    assert full.phase == Phase.COMPLETED, full.message
    assert (await back.result()).phase == Phase.ROLLED_BACK

    entries = dur.sim.audit(since=seq0)
    worker_entries = [e for e in entries if e["userAgent"].startswith(WORKER_UA_PREFIX)]
    assert worker_entries, "the worker's requests are in the audit log"
    assert {e["namespace"] for e in worker_entries} == {dur.namespace}, "no cluster-scoped or foreign calls"
    used = _used(worker_entries)
    print("\nRBAC used by the worker:", sorted(used))

    cluster = _grants(REPO / "deploy" / "rbac.yaml", "ClusterRole")
    namespaced = _grants(REPO / "deploy" / "rbac-namespaced.yaml", "Role")
    assert cluster == namespaced, "rbac.yaml and rbac-namespaced.yaml must grant the same rules"
    missing = sorted(used - cluster)
    assert missing == [], f"used but not granted: {missing}"
    excess = sorted(cluster - used - TRAFFIC_ALLOWLIST)
    assert excess == [], f"granted but never used (least privilege): {excess}"


# --- no secret in the worker's output ----------------------------------------------------------------


def _pem(label: str, marker: str) -> str:
    body = base64.b64encode(marker.encode() * 4).decode()
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


async def test_api_key_never_logged(dur: Dur, launcher: WorkerLauncher) -> None:
    """An API key on a plain connection (TEMPORAL_TLS=false): the worker runs a rollout, key unlogged."""
    secret = f"tmprl-apikey-{uuid.uuid4().hex}"
    await dur.create_seed("one", replicas=1)
    worker = await launcher.start(dur.task_queue, {"TEMPORAL_API_KEY": secret, "TEMPORAL_TLS": "false"})
    await dur.start_rollout("one", steps="100%")
    result = await dur.drive("one")
    assert result.phase == Phase.COMPLETED
    assert worker.terminate() == 0
    out = worker.output()
    assert "took over" in out  # the worker did log its work
    assert secret not in out


async def test_tls_and_api_key_never_logged(dur: Dur, launcher: WorkerLauncher, tmp_path: Path) -> None:
    """mTLS files + API key against a server that does not speak TLS: one error line, no secret in it."""
    key_marker, cert_marker, ca_marker = (f"{k}-{uuid.uuid4().hex}" for k in ("KEY", "CERT", "CA"))
    secret = f"tmprl-apikey-{uuid.uuid4().hex}"
    files = {}
    for name, label, marker in (
        ("tls.key", "PRIVATE KEY", key_marker),
        ("tls.crt", "CERTIFICATE", cert_marker),
        ("ca.crt", "CERTIFICATE", ca_marker),
    ):
        path = tmp_path / name
        path.write_text(_pem(label, marker))
        files[name] = path
    worker = launcher.spawn(
        dur.task_queue,
        {
            "TEMPORAL_API_KEY": secret,
            "TEMPORAL_TLS_CERT": str(files["tls.crt"]),
            "TEMPORAL_TLS_KEY": str(files["tls.key"]),
            "TEMPORAL_TLS_CA": str(files["ca.crt"]),
        },
    )

    async def exited() -> bool:
        return worker.proc.poll() is not None

    await dur.eventually(exited, timeout=90, interval=0.1, message="worker gives up on the TLS connection")
    assert worker.proc.returncode != 0
    out = worker.output()
    assert "rollout-worker: error:" in out
    secrets = [secret, key_marker, cert_marker, ca_marker]
    secrets += [base64.b64encode(m.encode() * 4).decode() for m in (key_marker, cert_marker, ca_marker)]
    assert [s for s in secrets if s in out] == []


async def test_worker_connect_failure_exits_cleanly(launcher: WorkerLauncher, dur: Dur) -> None:
    """A worker that cannot reach Temporal prints one error line and exits 1, every time.

    Six at once, because the failure this guards against (the interpreter aborting at exit while the
    Temporal core's threads still run: "Fatal Python error: PyGILState_Release", rc 134/139) is racy.
    """
    closed = f"127.0.0.1:{free_port()}"
    workers = [launcher.spawn(dur.task_queue, {"TEMPORAL_ADDRESS": closed}) for _ in range(6)]

    async def all_exited() -> bool:
        return all(w.proc.poll() is not None for w in workers)

    await dur.eventually(all_exited, timeout=90, interval=0.1, message="workers exit")
    outcomes = [(w.proc.returncode, w.output().strip().splitlines()) for w in workers]
    bad = [(rc, lines[:3]) for rc, lines in outcomes if rc != 1 or len(lines) != 1]
    assert bad == [], f"{len(bad)} of 6 workers did not exit cleanly: {bad}"
    assert all(lines[0].startswith("rollout-worker: error: ") for _, lines in outcomes)
