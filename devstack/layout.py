"""Where the dev stack keeps its files, which ports it uses, and its one-line failure (``DevError``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workflows.errors import CommandError

__all__ = ["CLUSTERS", "COMPONENTS", "NAMESPACE", "TASK_QUEUE", "DevError", "Layout"]

TASK_QUEUE = "rollouts"
NAMESPACE = "default"
SEARCH_ATTRIBUTES = ("RolloutTarget=Keyword", "RolloutPhase=Keyword", "RolloutStep=Int")
# Stop order: the controller and the worker first (they talk to both), Prometheus (optional), then
# the cluster (kubesim saves its state), then Temporal.
COMPONENTS = ("controller", "worker", "prometheus", "kubesim", "realk8s", "temporal")
CLUSTERS = {"kubesim": "kubesim", "real": "realk8s"}  # --cluster value -> component name
# realk8s starts etcd, kube-apiserver and kube-controller-manager: ~10-40 s on a loaded 2-core machine.
START_DEADLINE_S = {
    "temporal": 60.0,
    "kubesim": 30.0,
    "realk8s": 240.0,
    "worker": 90.0,
    "controller": 60.0,
    "prometheus": 60.0,
}
# The Kruise Rollout CRD that `dev up` installs into the cluster (declarative mode, docs/declarative.md).
CRD_FILE = Path(__file__).resolve().parent.parent / "deploy" / "declarative" / "crd-rollouts.yaml"
REALK8S_BINARY = Path(__file__).resolve().parent.parent / "realk8s" / "bin" / "realk8s"
REALK8S_READY = "realk8s ready: "
STOP_GRACE_S = 15.0


class DevError(CommandError):
    """A one-line, user-facing failure of the dev stack (``rollout dev`` prints it as ``error: ...``)."""


@dataclass
class Layout:
    """Where the stack keeps its files and which ports it uses."""

    state_dir: Path
    temporal_port: int = 7233
    ui_port: int = 8233
    kube_port: int = 6443
    ready_delay: float | None = None
    prometheus_port: int = 9090
    prometheus: bool = False
    cluster: str = "kubesim"

    def use_recorded(self, ports: dict[str, int], cluster: str) -> None:
        """Take the ports and cluster that a running stack recorded (``pids.json``)."""
        self.cluster = cluster
        self.temporal_port = ports.get("temporal", self.temporal_port)
        self.ui_port = ports.get("ui", self.ui_port)
        self.kube_port = ports.get("kube", self.kube_port)
        self.prometheus = "prometheus" in ports
        self.prometheus_port = ports.get("prometheus", self.prometheus_port)

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def kube_component(self) -> str:
        return CLUSTERS[self.cluster]

    @property
    def required(self) -> tuple[str, ...]:
        """The processes a running stack must have (Prometheus is optional)."""
        return ("controller", "worker", self.kube_component, "temporal")

    @property
    def pids_file(self) -> Path:
        return self.state_dir / "pids.json"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def env_file(self) -> Path:
        return self.state_dir / "env"

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    @property
    def kube_url(self) -> str:
        scheme = "https" if self.cluster == "real" else "http"
        return f"{scheme}://127.0.0.1:{self.kube_port}"

    def log(self, component: str) -> Path:
        return self.state_dir / f"{component}.log"

    @property
    def controller_ready(self) -> Path:
        return self.state_dir / "controller.ready"
