"""The Argo Rollouts peer in tests: its condition evaluator (``argo/bin/argo-probe``) and its controller
against a realk8s (``argo/bin/rollouts-controller``), both built by ``make argo`` (argo/build.sh).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.helpers.poll import wait_for

ARGO_DIR = Path(__file__).resolve().parents[2] / "argo"
BIN = ARGO_DIR / "bin"
VERSION = (ARGO_DIR / "VERSION").read_text().strip()

__all__ = [
    "ARGO_DIR",
    "VERSION",
    "ArgoController",
    "ArgoProbe",
    "argo_binary",
    "install_argo",
    "uninstall_argo",
]


def argo_binary(name: str) -> Path:
    """A built binary of the peer; a one-line failure saying how to build it otherwise."""
    path = BIN / name
    assert path.exists(), f"{path} is not built: run `make argo` (builds Argo Rollouts {VERSION} with Go)"
    return path


class ArgoProbe:
    """Argo's ``utils/evaluate`` in a child process: one JSON line in, one answer out."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [str(argo_binary("argo-probe"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request, allow_nan=False) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "argo-probe exited"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def condition(self, condition: str, result: Any) -> bool | str:
        """Argo's verdict: True/False, or the error text."""
        a = self.ask({"condition": condition, "result": result})
        return a["value"] if "value" in a and not a.get("error") else f"error: {a.get('error', '')}"

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # our own child, by handle
            self.proc.wait(5)


def source_dir() -> Path:
    """The Argo module's source directory (in Go's module cache) that ``make argo`` built from."""
    path = Path((BIN / "source-dir").read_text().strip())
    assert (path / "manifests" / "crds").is_dir(), f"{path}: no manifests/crds (run `make argo` again)"
    return path


def install_argo(api_client: Any, namespace: str) -> None:
    """Argo's CRDs from the module's ``manifests/crds``, the ``argo-rollouts`` namespace (its lease) and
    ``namespace`` for the test's objects; waits until the CRDs are served."""
    import yaml
    from kubernetes import client

    ext = client.ApiextensionsV1Api(api_client)
    names = []
    for path in sorted((source_dir() / "manifests" / "crds").glob("*-crd.yaml")):
        body = yaml.safe_load(path.read_text())
        names.append(body["metadata"]["name"])
        try:
            ext.create_custom_resource_definition(body)
        except client.ApiException as exc:
            if exc.status != 409:
                raise
    core = client.CoreV1Api(api_client)
    for ns in ("argo-rollouts", namespace):
        try:
            core.create_namespace({"metadata": {"name": ns}})
        except client.ApiException as exc:
            if exc.status != 409:
                raise

    def established(name: str) -> bool:
        status = ext.read_custom_resource_definition(name).status
        conds = {c.type: c.status for c in ((status.conditions if status else None) or [])}
        return conds.get("Established") == "True"

    for name in names:
        wait_for(lambda n=name: established(n), timeout=60, interval=0.1, what=f"CRD {name} established")


def uninstall_argo(api_client: Any) -> None:
    """Remove Argo's CRDs again and wait until they are gone: the session realk8s is shared, and with
    ``rollouts.argoproj.io`` served, ``kubectl get rollout`` would name Argo's Rollout, not Kruise's."""
    import yaml
    from kubernetes import client

    ext = client.ApiextensionsV1Api(api_client)
    crds = sorted((source_dir() / "manifests" / "crds").glob("*-crd.yaml"))
    names = [yaml.safe_load(path.read_text())["metadata"]["name"] for path in crds]
    for name in names:
        try:
            ext.delete_custom_resource_definition(name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise

    def gone(name: str) -> bool:
        try:
            ext.read_custom_resource_definition(name)
        except client.ApiException as exc:
            if exc.status == 404:
                return True
            raise
        return False

    for name in names:
        wait_for(lambda n=name: gone(n), timeout=60, interval=0.1, what=f"CRD {name} gone after its delete")


class ArgoController:
    """``rollouts-controller`` against a cluster, logging to ``log_path``; stopped by its PID."""

    def __init__(self, kubeconfig: str, workdir: Path, namespace: str) -> None:
        self.log_path = workdir / f"argo-controller-{time.monotonic_ns()}.log"
        env = {**os.environ, "KUBECONFIG": kubeconfig}
        cmd = [
            str(argo_binary("rollouts-controller")),
            "--kubeconfig",
            kubeconfig,
            "--namespaced",
            "--namespace",
            namespace,
            "--leader-elect=false",
            "--healthzPort",
            "0",
            "--metricsport",
            "0",
            "--controllers",
            "analysis",
            "--loglevel",
            "info",
        ]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(workdir))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
