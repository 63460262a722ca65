"""Helpers for the kubectl acceptance tests: run the real kubectl against a kubesim, poll conditions.

Each test gets its own namespace (set as the kubeconfig context's namespace), so the commands read exactly
like the seed's (``kubectl get deploy``) while tests sharing one kubesim stay independent.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml

REPO = Path(__file__).resolve().parents[2]
KUBECTL = str(REPO / ".venv" / "bin" / "kubectl")
if not Path(KUBECTL).exists():  # e.g. a venv installed elsewhere: the kubectl next to the interpreter
    KUBECTL = str(Path(sys.executable).parent / "kubectl")

T = TypeVar("T")
_counter = itertools.count(1)


def wait_for(
    fn: Callable[[], T | None], *, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"
) -> T:
    """Poll ``fn`` until it returns a truthy value (returned) or ``timeout`` passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")
        time.sleep(interval)


def namespace_for(test_name: str) -> str:
    """A unique, DNS-1123 valid namespace name derived from the test name."""
    base = re.sub(r"[^a-z0-9-]+", "-", test_name.lower().replace("_", "-")).strip("-")
    return f"kt{next(_counter)}-{base}"[:60].rstrip("-")


def deployment_manifest(
    name: str = "nginx",
    *,
    replicas: int = 3,
    image: str = "nginx:1.26",
    annotations: dict[str, str] | None = None,
    extra_spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The seed's Deployment (app=<name>, one container named like the deployment, port 80)."""
    template_meta: dict[str, Any] = {"labels": {"app": name}}
    if annotations:
        template_meta["annotations"] = dict(annotations)
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": template_meta,
            "spec": {"containers": [{"name": name, "image": image, "ports": [{"containerPort": 80}]}]},
        },
    }
    spec.update(extra_spec or {})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": spec,
    }


def service_manifest(name: str = "nginx") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP"}]},
    }


class Kubectl:
    """Runs ``.venv/bin/kubectl`` with a private HOME (discovery/OpenAPI cache) and a per-test namespace."""

    def __init__(self, sim: Any, workdir: Path, namespace: str, home: Path) -> None:
        self.sim = sim
        self.url: str = sim.url
        self.workdir = workdir
        self.namespace = namespace
        self.home = home
        config = yaml.safe_load(Path(sim.kubeconfig).read_text())
        current = config.get("current-context")
        for ctx in config.get("contexts") or []:
            if ctx.get("name") == current or current is None:
                ctx.setdefault("context", {})["namespace"] = namespace
        self.kubeconfig = workdir / "kubeconfig"
        self.kubeconfig.write_text(yaml.safe_dump(config))
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "KUBECONFIG": str(self.kubeconfig),
            "LANG": "C.UTF-8",
        }

    def run(
        self, *args: str, check: bool = True, timeout: float = 90.0, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl; with ``check`` a non-zero exit fails the test showing both streams."""
        proc = subprocess.run(
            [KUBECTL, *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    def out(self, *args: str, **kw: Any) -> str:
        return self.run(*args, **kw).stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.out(*args, "-o", "json"))

    def write(self, filename: str, *docs: dict[str, Any]) -> Path:
        """Write manifests as a multi-document YAML file in the test's workdir."""
        path = self.workdir / filename
        path.write_text(yaml.safe_dump_all(list(docs), sort_keys=False))
        return path

    def apply(self, *docs: dict[str, Any], filename: str = "manifest.yaml") -> str:
        return self.out("apply", "-f", str(self.write(filename, *docs)))

    def deployment(self, name: str = "nginx") -> dict[str, Any]:
        return self.json("get", "deployment", name)  # type: ignore[no-any-return]

    def wait_available(self, name: str = "nginx", timeout: float = 60) -> None:
        """``kubectl rollout status`` until the rollout of ``name`` has finished."""
        self.run(
            "rollout", "status", f"deployment/{name}", f"--timeout={int(timeout)}s", timeout=timeout + 30
        )

    def replicasets(self, selector: str = "app=nginx") -> list[dict[str, Any]]:
        return self.json("get", "rs", "-l", selector)["items"]  # type: ignore[no-any-return]


def rows(output: str) -> list[list[str]]:
    """Split kubectl's table output into rows of whitespace-separated cells (header included)."""
    return [line.split() for line in output.splitlines() if line.strip()]


def header_and_rows(output: str) -> tuple[str, list[str]]:
    lines = [line for line in output.splitlines() if line.strip()]
    return " ".join(lines[0].split()), lines[1:]


class Streamer:
    """Reads a long-running kubectl's stdout in a thread, so tests can wait for lines and then stop it."""

    def __init__(self, kubectl: Kubectl, *args: str) -> None:
        self.proc = subprocess.Popen(
            [KUBECTL, *args],
            env=kubectl.env,
            cwd=kubectl.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.lines)

    def stop(self) -> tuple[int, str]:
        """Terminate (if still running) and return (exit code, stderr)."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._thread.join(timeout=5)
        err = self.proc.stderr.read() if self.proc.stderr else ""
        return self.proc.returncode, err

    def __iter__(self) -> Iterator[str]:
        return iter(self.snapshot())


def kubectl_for_test(sim: Any, tmp_path: Path, test_name: str, home: Path) -> Kubectl:
    """A Kubectl bound to a fresh namespace created through kubectl itself."""
    ns = namespace_for(test_name)
    k = Kubectl(sim, tmp_path, ns, home)
    k.run("create", "namespace", ns)  # a typed command: its body is protobuf
    return k
