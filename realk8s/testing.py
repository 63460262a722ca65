"""Start the real control plane (``realk8s/bin/realk8s serve``) for tests and the dev stack.

``start_realk8s`` mirrors ``kubesim.testing.start_kubesim``: it returns a handle with ``url``, ``kubeconfig``,
``pid``, ``stop()`` and ``pod_metrics_url`` (the fake kubelet's ``/kubesim/pod-metrics``, as kubesim
serves it). The apiserver's audit log (writes and reads, no watches) is parsed into the same entry shape
as kubesim's ``/kubesim/audit`` so a test can ask "which writes happened since X" on either cluster.
Fault injection is kubesim-only: the real apiserver has no such knob.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from kubesim.testing import ServerProcess, spawn_logged, wait_for_line

REALK8S_DIR = Path(__file__).resolve().parent
BINARY = REALK8S_DIR / "bin" / "realk8s"
CRDS = REALK8S_DIR / "crds"
READY = "realk8s ready: "
POD_METRICS = "realk8s pod metrics: "
# Requests of the control plane's own components (KCM, the fake kubelet, the apiserver's loopback client):
# kubesim runs its controllers in-process, so its audit log has only outside callers. Dropping these makes
# "which writes did the command make" mean the same on both clusters.
INTERNAL_AGENTS = ("kube-controller-manager/", "realk8s/", "kube-apiserver/")


class RealK8sUnavailable(RuntimeError):
    """The binary is not built (``make realk8s``) or cannot start."""


def binary() -> Path:
    """The built binary, or a one-line error saying how to build it."""
    if not BINARY.exists():
        raise RealK8sUnavailable(f"{BINARY} is not built: run `make realk8s` (needs Go >= 1.26)")
    return BINARY


class RealK8sProcess(ServerProcess):
    """A running ``realk8s serve``: ``url``, ``kubeconfig``, ``pid``, ``stop()``, ``audit()``,
    ``pod_metrics_url``."""

    stop_timeout = 20.0

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        url: str,
        kubeconfig: Path,
        log_path: Path,
        audit_path: Path | None,
        pod_metrics_url: str,
    ) -> None:
        super().__init__(proc, url, kubeconfig, log_path)
        self.pod_metrics_url = pod_metrics_url
        self.audit_path = audit_path
        self._audit_cache: list[dict[str, Any]] = []
        self._audit_offset = 0
        self._audit_lines = 0

    # -- audit log in kubesim's entry shape --------------------------------------------------------------

    def audit(self, since: int | None = None) -> list[dict[str, Any]]:
        """Audit entries (``seq`` counts lines of the log) newer than ``since``."""
        if self.audit_path is None:
            raise RuntimeError("this realk8s was started without an audit log")
        self._read_audit()
        if since is None:
            return list(self._audit_cache)
        return [e for e in self._audit_cache if e["seq"] > since]

    def _read_audit(self) -> None:
        assert self.audit_path is not None
        try:
            with open(self.audit_path, "rb") as fh:
                fh.seek(self._audit_offset)
                chunk = fh.read()
        except FileNotFoundError:
            return
        end = chunk.rfind(b"\n")
        if end < 0:
            return
        self._audit_offset += end + 1
        for line in chunk[: end + 1].splitlines():
            self._audit_lines += 1
            if not line.strip():
                continue
            event = json.loads(line)
            if str(event.get("userAgent", "")).startswith(INTERNAL_AGENTS):
                continue
            self._audit_cache.append(audit_entry(event, self._audit_lines))


def audit_entry(event: dict[str, Any], seq: int) -> dict[str, Any]:
    """One apiserver audit event (audit.k8s.io/v1) as a kubesim audit entry."""
    ref = event.get("objectRef") or {}
    uri = str(event.get("requestURI", ""))
    path, _, query = uri.partition("?")
    return {
        "seq": seq,
        "ts": _epoch(str(event.get("stageTimestamp") or event.get("requestReceivedTimestamp") or "")),
        "verb": event.get("verb", ""),
        "method": "",
        "path": path,
        "query": query,
        "resource": ref.get("resource", ""),
        "group": ref.get("apiGroup", ""),
        "subresource": ref.get("subresource", ""),
        "namespace": ref.get("namespace", ""),
        "name": ref.get("name", ""),
        "userAgent": event.get("userAgent", ""),
        "code": int((event.get("responseStatus") or {}).get("code") or 0),
        "dryRun": "dryRun=All" in query,
    }


def _epoch(rfc3339: str) -> float:
    """``2026-12-07T02:03:04.123456Z`` -> seconds since the epoch (kubesim's ``ts``)."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def start_realk8s(
    workdir: Path,
    *,
    ready_delay: float = 0.1,
    port: int = 0,
    data_dir: Path | None = None,
    audit: bool = True,
    startup_timeout: float = 240.0,
    install_crds: bool = True,
    extra_args: list[str] | None = None,
) -> RealK8sProcess:
    """Start ``realk8s serve`` (kubeconfig, log and audit log under ``workdir``); wait for its ready line.

    The process exits by itself if this one dies (it watches its parent); tests still stop it by PID.
    """
    exe = binary()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    kubeconfig = workdir / "kubeconfig"
    stamp = time.monotonic_ns()
    log_path = workdir / f"realk8s-{stamp}.log"
    audit_path = workdir / f"audit-{stamp}.log" if audit else None
    cmd = [
        str(exe),
        "serve",
        "--port",
        str(port),
        "--kubeconfig",
        str(kubeconfig),
        "--ready-delay",
        str(ready_delay),
    ]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    if audit_path is not None:
        cmd += ["--audit-log", str(audit_path)]
    cmd += extra_args or []
    env = dict(os.environ)
    env.setdefault("GOMEMLIMIT", "768MiB")
    proc = spawn_logged(cmd, env, workdir, log_path)
    deadline = time.monotonic() + startup_timeout
    url = wait_for_line(
        proc,
        log_path,
        READY,
        startup_timeout,
        what="realk8s",
        poll=0.1,
        error=RealK8sUnavailable,
        tail_lines=20,
    )
    # Printed before the ready line, so it is in the log by now.
    metrics = wait_for_line(
        proc, log_path, POD_METRICS, 5.0, what="realk8s", poll=0.1, error=RealK8sUnavailable
    )
    handle = RealK8sProcess(proc, url, kubeconfig, log_path, audit_path, metrics)
    if install_crds:
        try:
            apply_crds(str(kubeconfig), deadline - time.monotonic())
        except BaseException:
            handle.stop()
            raise
    return handle


def apply_crds(kubeconfig: str, timeout: float = 60.0) -> None:
    """Create the CRDs in ``realk8s/crds`` (the Gateway API HTTPRoute) and wait until they are served."""
    import yaml
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    with client.ApiClient(cfg) as api:
        ext = client.ApiextensionsV1Api(api)
        names = []
        for path in sorted(CRDS.glob("*.yaml")):
            body = yaml.safe_load(path.read_text())
            names.append(body["metadata"]["name"])
            try:
                ext.create_custom_resource_definition(body)
            except client.ApiException as exc:
                if exc.status != 409:
                    raise
        deadline = time.monotonic() + timeout
        for name in names:
            while True:
                crd = ext.read_custom_resource_definition(name)
                status = crd.status
                conds = {c.type: c.status for c in ((status.conditions if status else None) or [])}
                if conds.get("Established") == "True":
                    break
                if time.monotonic() > deadline:
                    raise RealK8sUnavailable(f"CRD {name} not established within {timeout:.0f}s")
                time.sleep(0.1)
