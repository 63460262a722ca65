"""Where the dev stack keeps its files, which ports it uses, and its one-line failure (``DevError``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from workflows.errors import CommandError
from workflows.model import task_queue_for

__all__ = [
    "CLUSTERS",
    "COMPONENTS",
    "NAMESPACE",
    "TASK_QUEUE",
    "DevError",
    "KubeServer",
    "Layout",
    "kind",
    "stop_order",
]

TASK_QUEUE = "rollouts"
NAMESPACE = "default"
SEARCH_ATTRIBUTES = (
    "RolloutTarget=Keyword",
    "RolloutPhase=Keyword",
    "RolloutStep=Int",
    "ReleaseId=Keyword",
    "ReleaseWave=Int",
    "Cluster=Keyword",
)
# Stop order: the controller and the workers first (they talk to both), Prometheus (optional), then
# the clusters (kubesim saves its state), then Temporal. With `--clusters`, a component of one cluster
# is named KIND-CLUSTER (`kubesim-prod`, `worker-prod`) and stops with its kind.
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
REALK8S_POD_METRICS = "realk8s pod metrics: "  # the fake kubelet's /kubesim/pod-metrics URL
STOP_GRACE_S = 15.0


class DevError(CommandError):
    """A one-line, user-facing failure of the dev stack (``rollout dev`` prints it as ``error: ...``)."""


def kind(component: str) -> str:
    """The kind of a component name: `kubesim-prod` -> `kubesim` (kinds hold no dash)."""
    return component.partition("-")[0]


def stop_order(names: list[str] | tuple[str, ...]) -> list[str]:
    """`names` in the order they stop: by kind as COMPONENTS lists them, then as given."""
    return sorted(names, key=lambda n: COMPONENTS.index(kind(n)) if kind(n) in COMPONENTS else 0)


@dataclass(frozen=True)
class KubeServer:
    """One cluster of the stack: a kubesim or realk8s process, its port and its own kubeconfig."""

    component: str  # `kubesim`, or `kubesim-NAME` with --clusters
    port: int
    kubeconfig: Path  # the one the server writes (the stack's merged one names it as context NAME)
    data: Path  # kubesim's state file or realk8s's data dir
    context: str | None  # the cluster name with --clusters, else None
    real: bool

    @property
    def url(self) -> str:
        return f"{'https' if self.real else 'http'}://127.0.0.1:{self.port}"


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
    # `--clusters dev,staging,prod`: one server and one worker per name; the first is on kube_port.
    clusters: tuple[str, ...] = ()
    cluster_ports: dict[str, int] = field(default_factory=dict)

    def use_recorded(self, ports: dict[str, int], cluster: str, clusters: tuple[str, ...] = ()) -> None:
        """Take the ports and clusters that a running stack recorded (``pids.json``)."""
        self.cluster = cluster
        self.temporal_port = ports.get("temporal", self.temporal_port)
        self.ui_port = ports.get("ui", self.ui_port)
        self.kube_port = ports.get("kube", self.kube_port)
        self.prometheus = "prometheus" in ports
        self.prometheus_port = ports.get("prometheus", self.prometheus_port)
        self.clusters = clusters
        self.cluster_ports = {c: ports.get(f"kube-{c}", 0) for c in clusters}

    def kube_servers(self) -> list[KubeServer]:
        """The cluster processes: one, or one per `--clusters` name (the first is the default context)."""
        real, base = self.cluster == "real", CLUSTERS[self.cluster]
        if not self.clusters:
            data = self.state_dir / ("realk8s" if real else "kubesim-state.json")
            return [KubeServer(base, self.kube_port, self.kubeconfig, data, None, real)]
        servers = []
        for name in self.clusters:
            comp = f"{base}-{name}"
            data = self.state_dir / (comp if real else f"{comp}-state.json")
            port = self.cluster_ports.get(name, 0)
            servers.append(KubeServer(comp, port, self.state_dir / f"kubeconfig-{name}", data, name, real))
        return servers

    def workers(self) -> dict[str, str]:
        """Worker component -> the task queue it serves: the base queue (single rollouts and releases)
        and, with `--clusters`, one `rollout-worker --cluster NAME` per cluster."""
        return {"worker": TASK_QUEUE, **{f"worker-{c}": task_queue_for(c, TASK_QUEUE) for c in self.clusters}}

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def kube_component(self) -> str:
        """The default cluster's component (the first of `--clusters`)."""
        return self.kube_servers()[0].component

    @property
    def required(self) -> tuple[str, ...]:
        """The processes a running stack must have (Prometheus is optional)."""
        kube = tuple(s.component for s in self.kube_servers())
        return ("controller", *self.workers(), *kube, "temporal")

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
        """The default cluster's URL (the first of `--clusters`)."""
        scheme = "https" if self.cluster == "real" else "http"
        return f"{scheme}://127.0.0.1:{self.kube_port}"

    def log(self, component: str) -> Path:
        return self.state_dir / f"{component}.log"

    @property
    def controller_ready(self) -> Path:
        return self.state_dir / "controller.ready"
