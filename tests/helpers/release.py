"""Release tests: the fleet of three clusters (kubesim, or prod on realk8s), Release files, the CLI, and
per-cluster audits."""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from temporalio.client import Client, WorkflowExecutionStatus

from cli.release import release_status
from devstack import clusters
from kube.client import Kube
from kubesim.testing import KubeSimProcess
from realk8s.testing import RealK8sProcess
from tests.helpers.cluster import WRITE_VERBS, create_deployment, seed_deployment
from tests.helpers.poll import assert_eventually
from workflows.model import ReleasePhase, ReleaseStatus

CLUSTERS = ("dev", "staging", "prod")
_ns = itertools.count(1)


def merged_kubeconfig(kubeconfigs: dict[str, str | Path], path: Path) -> Path:
    """One kubeconfig with one context per cluster, named after it (``kubectl --context prod``): the dev
    stack's own (``devstack.clusters.merged_kubeconfig``)."""
    path.write_text(clusters.merged_kubeconfig({name: Path(p) for name, p in kubeconfigs.items()}))
    return path


def release_yaml(name: str, waves: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    """A Release document: ``waves`` as written in the file; ``spec`` adds defaults/failurePolicy."""
    body: dict[str, Any] = {
        "change": {"images": {"nginx": "nginx:1.27"}},
        "defaults": {"steps": "1,100%", "pause": 0, "progressDeadline": "30s", "autoRollback": True},
        "waves": waves,
    }
    body.update(spec)
    return {
        "apiVersion": "rollouts.temporal.io/v1alpha1",
        "kind": "Release",
        "metadata": {"name": name},
        "spec": body,
    }


@dataclass
class Fleet:
    """Three clusters, their workers, and the CLI pointed at them. ``sims`` are the kubesim clusters (fault
    injection), ``real`` the clusters served by the real control plane; both audits read the same."""

    client: Client
    sims: dict[str, KubeSimProcess]
    apis: dict[str, k8s.ApiClient]
    kubeconfig: str
    task_queue: str
    real: dict[str, RealK8sProcess] = field(default_factory=dict)

    def audit(self, cluster: str) -> list[dict[str, Any]]:
        """That cluster's audit entries (kubesim's shape; realk8s' own components left out), oldest first."""
        server: KubeSimProcess | RealK8sProcess = self.real.get(cluster) or self.sims[cluster]
        return server.audit()

    def namespace(self, base: str) -> str:
        """A fresh namespace of that name in every cluster."""
        name = f"r{next(_ns)}-{base}"[:50].rstrip("-")
        for api in self.apis.values():
            Kube(api).request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
        return name

    async def deploy(
        self,
        cluster: str,
        namespace: str,
        name: str = "nginx",
        replicas: int = 2,
        pod_annotations: dict[str, str] | None = None,
    ) -> None:
        body = seed_deployment(namespace, name=name, replicas=replicas, pod_annotations=pod_annotations)
        await create_deployment(self.apis[cluster], body)

    def deployment(self, cluster: str, namespace: str, name: str = "nginx") -> dict[str, Any]:
        return Kube(self.apis[cluster]).get_deployment(namespace, name)

    def image(self, cluster: str, namespace: str, name: str = "nginx") -> str:
        dep = self.deployment(cluster, namespace, name)
        return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])

    def write(self, path: Path, doc: dict[str, Any]) -> str:
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return str(path)

    async def cli(self, *argv: str) -> tuple[int, str, str]:
        """``rollout release ...`` in-process against the fleet's kubeconfig and release queue."""
        import starter

        out, err = io.StringIO(), io.StringIO()
        rc = await starter.run(
            [*argv, "--kubeconfig", self.kubeconfig, "--task-queue", self.task_queue],
            client=self.client,
            out=out,
            err=err,
        )
        return rc, out.getvalue(), err.getvalue()

    async def status(self, rid: str) -> ReleaseStatus:
        st, _ = await release_status(self.client, rid)
        return st

    async def wait_phase(self, rid: str, *phases: ReleasePhase, timeout: float = 90) -> ReleaseStatus:
        async def check() -> ReleaseStatus | None:
            st = await self.status(rid)
            return st if st.phase in phases else None

        return await assert_eventually(
            check, timeout=timeout, interval=0.3, message=f"release {rid} in {phases}"
        )

    def worker_writes(self, cluster: str, namespace: str) -> list[dict[str, Any]]:
        """The worker's writes in that cluster's namespace (audit), oldest first."""
        return [
            e
            for e in self.audit(cluster)
            if e["verb"] in WRITE_VERBS
            and e["namespace"] == namespace
            and str(e["userAgent"]).startswith("rollout-worker")
        ]

    def writes(self, cluster: str, namespace: str) -> list[dict[str, Any]]:
        """Every write in that cluster's namespace (the CLI's hold included)."""
        audit = self.audit(cluster)
        return [e for e in audit if e["verb"] in WRITE_VERBS and e["namespace"] == namespace]


def active_hashes(fleet: Fleet, cluster: str, namespace: str) -> set[str]:
    """pod-template-hash of every ReplicaSet of the namespace that has replicas."""
    return {
        rs["metadata"]["labels"].get("pod-template-hash", "")
        for rs in Kube(fleet.apis[cluster]).list_replica_sets(namespace)
        if int((rs.get("spec") or {}).get("replicas") or 0) > 0
    }


HISTORIES = Path(__file__).resolve().parents[1] / "release" / "histories"


async def capture(fleet: Fleet, workflow_id: str, name: str) -> None:
    """Write the closed run's history to ``tests/release/histories/<name>.json`` (a replay test's input)."""

    async def closed() -> bool:
        desc = await fleet.client.get_workflow_handle(workflow_id).describe()
        return desc.status != WorkflowExecutionStatus.RUNNING

    await assert_eventually(closed, timeout=60, message=f"{workflow_id} closed")
    history = await fleet.client.get_workflow_handle(workflow_id).fetch_history()
    (HISTORIES / f"{name}.json").write_text(history.to_json())
