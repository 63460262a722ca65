"""Cluster helpers for the engine, CLI, traffic and durability tests: seed Deployments, ReplicaSet counts,
a ReplicaSet watch sampler, the real kubectl, and ``Kit`` (what the ``kit`` fixture hands a test)."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

from cli.commands import RolloutContext
from kube.client import Kube
from kubesim.testing import KubeSimProcess
from realk8s.testing import RealK8sProcess
from tests.helpers.poll import assert_eventually
from workflows.model import Phase, RolloutStatus, StepState

KUBECTL_BIN = str(Path(sys.executable).parent / "kubectl")


def seed_deployment(
    namespace: str,
    *,
    name: str = "nginx",
    replicas: int = 10,
    image: str = "nginx:1.26",
    pod_annotations: dict[str, str] | None = None,
    strategy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The seed's Deployment (10 x nginx:1.26, RollingUpdate 25%/25%)."""
    template_md: dict[str, Any] = {"labels": {"app": name}}
    if pod_annotations:
        template_md["annotations"] = pod_annotations
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": strategy
            or {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": template_md,
                "spec": {
                    "containers": [
                        {
                            "name": "nginx",
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        }
                    ]
                },
            },
        },
    }


async def create_deployment(
    api_client: k8s.ApiClient, body: dict[str, Any], *, ready: bool = True
) -> dict[str, Any]:
    """Create a Deployment through the real client and (by default) wait until it is fully ready."""
    kube = Kube(api_client)
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    await asyncio.to_thread(kube.request, "POST", kube.deployment_path(ns), body)
    replicas = int(body["spec"]["replicas"])
    if not ready:
        return await asyncio.to_thread(kube.get_deployment, ns, name)

    async def _ready() -> dict[str, Any] | None:
        dep = await asyncio.to_thread(kube.get_deployment, ns, name)
        st = dep.get("status") or {}
        if st.get("readyReplicas", 0) == replicas and st.get("updatedReplicas", 0) == replicas:
            return dep
        return None

    return await assert_eventually(_ready, timeout=30, message=f"deployment {ns}/{name} ready")


def replica_sets(api_client: k8s.ApiClient, namespace: str) -> list[dict[str, Any]]:
    """Raw ReplicaSets of a namespace."""
    return Kube(api_client).list_replica_sets(namespace)


def rs_counts(api_client: k8s.ApiClient, namespace: str) -> dict[str, tuple[str, int, int]]:
    """``{pod-template-hash: (image, spec.replicas, status.readyReplicas)}``."""
    out = {}
    for rs in replica_sets(api_client, namespace):
        h = rs["metadata"]["labels"].get("pod-template-hash", "")
        image = rs["spec"]["template"]["spec"]["containers"][0]["image"]
        out[h] = (
            image,
            int(rs["spec"].get("replicas") or 0),
            int((rs.get("status") or {}).get("readyReplicas") or 0),
        )
    return out


def images_counts(api_client: k8s.ApiClient, namespace: str) -> dict[str, tuple[int, int]]:
    """``{image: (spec.replicas, readyReplicas)}`` over the namespace's ReplicaSets."""
    return {img: (spec, ready) for img, spec, ready in rs_counts(api_client, namespace).values()}


class ReplicaSetSampler:
    """Lists a namespace's ReplicaSets, then watches them in a thread and records totals after every event.

    ``samples`` holds ``(sum spec.replicas, sum status.readyReplicas, {name: (spec, ready)})``: the
    listed state first, then one sample per watch event.

    The watch resumes from the LIST's resourceVersion, then from the last event's. Never from the last
    object of a watch begun without one: its initial ADDED events come in list order, not in
    resourceVersion order, so resuming from the last of them replays the history of every object
    listed before it (old states, e.g. a ReplicaSet's 0 ready pods at its creation, seen as current).
    """

    def __init__(self, api_client: k8s.ApiClient, namespace: str) -> None:
        self.api = k8s.AppsV1Api(api_client)
        self.namespace = namespace
        self.samples: list[tuple[int, int, dict[str, tuple[int, int]]]] = []
        self._state: dict[str, tuple[int, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> ReplicaSetSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _record(self, name: str, rs: Any | None) -> None:
        if rs is None:
            self._state.pop(name, None)
        else:
            self._state[name] = (int(rs.spec.replicas or 0), int(rs.status.ready_replicas or 0))

    def _sample(self) -> None:
        total = sum(s for s, _ in self._state.values())
        ready = sum(r for _, r in self._state.values())
        self.samples.append((total, ready, dict(self._state)))

    def _list(self) -> str:
        """The listed state (retried over transient API errors) and the list's resourceVersion."""
        for attempt in range(40):
            try:
                listed = self.api.list_namespaced_replica_set(self.namespace)
                break
            except ApiException as exc:
                if attempt == 39 or not (exc.status in (409, 429) or (exc.status or 0) >= 500):
                    raise
                self._stop.wait(0.05)
        for rs in listed.items:
            self._record(rs.metadata.name, rs)
        if self._state:
            self._sample()
        return str(listed.metadata.resource_version)

    def _run(self) -> None:
        try:
            rv = self._list()
            while not self._stop.is_set():
                w = k8s_watch.Watch()
                kwargs: dict[str, Any] = {"timeout_seconds": 1, "resource_version": rv}
                for event in w.stream(self.api.list_namespaced_replica_set, self.namespace, **kwargs):
                    obj = event["object"]
                    if event["type"] == "BOOKMARK":
                        continue
                    rv = obj.metadata.resource_version
                    self._record(obj.metadata.name, None if event["type"] == "DELETED" else obj)
                    self._sample()
                    if self._stop.is_set():
                        break
        except BaseException as exc:  # noqa: BLE001 - surfaced by the test
            self.error = exc


def kubectl(kubeconfig: str, *args: str, timeout: float = 60) -> tuple[int, str, str]:
    """Run the real kubectl against kubesim."""
    import subprocess

    proc = subprocess.run(
        [KUBECTL_BIN, "--kubeconfig", kubeconfig, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "KUBECONFIG": kubeconfig},
    )
    return proc.returncode, proc.stdout, proc.stderr


# --- the test kit (one fixture, so test modules never import conftest) -----------------------------

WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


class Kit:
    """Per-test helpers bound to the test's namespace, clients and cluster (kubesim or realk8s)."""

    def __init__(
        self, ctx: RolloutContext, sim: KubeSimProcess | RealK8sProcess, api_client: k8s.ApiClient
    ) -> None:
        self.ctx = ctx
        self.sim = sim
        self.api_client = api_client
        self.namespace = ctx.namespace
        self.kube = Kube(api_client)

    eventually = staticmethod(assert_eventually)

    async def cli(self, *argv: str) -> tuple[int, str, str]:
        """Run the ``rollout`` CLI in-process on the test's namespace and task queue."""
        import io

        import starter

        out, err = io.StringIO(), io.StringIO()
        rc = await starter.run(
            [*argv, "-n", self.namespace, "--task-queue", self.ctx.task_queue],
            client=self.ctx.client,
            api_client=self.api_client,
            out=out,
            err=err,
        )
        return rc, out.getvalue(), err.getvalue()

    async def status(self, name: str = "nginx") -> RolloutStatus:
        """The rollout status via the command function."""
        from cli import commands

        return await commands.get_status(self.ctx, name)

    async def wait_phase(
        self, name: str, phase: Phase, step: int | None = None, timeout: float = 60
    ) -> RolloutStatus:
        """Poll ``status`` until the rollout is in ``phase`` (at ``step``)."""

        async def check() -> RolloutStatus | None:
            st = await self.status(name)
            if st.phase == phase and (step is None or st.current_step_index == step):
                return st
            return None

        return await assert_eventually(
            check, timeout=timeout, interval=0.2, message=f"{phase.value} at step {step}"
        )

    def seed(self, **kw: Any) -> dict[str, Any]:
        """The seed Deployment in the test's namespace (see ``seed_deployment``)."""
        return seed_deployment(self.namespace, **kw)

    async def create(self, body: dict[str, Any], *, ready: bool = True) -> dict[str, Any]:
        """Create a Deployment and wait until it is ready."""
        return await create_deployment(self.api_client, body, ready=ready)

    def images(self) -> dict[str, tuple[int, int]]:
        """``{image: (spec.replicas, readyReplicas)}`` of the namespace's ReplicaSets."""
        return images_counts(self.api_client, self.namespace)

    def sampler(self) -> ReplicaSetSampler:
        """A ReplicaSet watch sampler on the namespace (use as a context manager)."""
        return ReplicaSetSampler(self.api_client, self.namespace)

    def kubectl(self, *args: str) -> tuple[int, str, str]:
        """The real kubectl against kubesim."""
        return kubectl(self.sim.kubeconfig, *args)

    def deployment(self, name: str = "nginx") -> dict[str, Any]:
        """The Deployment as the API server returns it."""
        return self.kube.get_deployment(self.namespace, name)

    def audit_seq(self) -> int:
        """The latest kubesim audit sequence number."""
        return max((e["seq"] for e in self.sim.audit()), default=0)

    def writes_since(self, seq: int) -> list[dict[str, Any]]:
        """Writes (create/update/patch/delete) to the test's namespace after ``seq``."""
        return [
            e
            for e in self.sim.audit(since=seq)
            if e["verb"] in WRITE_VERBS and e["namespace"] == self.namespace
        ]

    @staticmethod
    def assert_handed_back(dep: dict[str, Any], image: str) -> None:
        """Runs ``image``, unpaused, RollingUpdate 25%/25% back, none of our metadata."""
        assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == image
        assert not dep["spec"].get("paused")
        assert dep["spec"]["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
        }
        md = dep["metadata"]
        keys = [*(md.get("annotations") or {}), *(md.get("labels") or {})]
        assert [k for k in keys if k.startswith("rollouts.temporal.io/")] == []


async def start_mid_step_2(kit: Kit) -> None:
    """With slow pods (1.5 s to Ready): start 1,50%,100%, approve step 1, return while step 2 is scaling.

    Step 2's moves run inside one activity, so the cluster (not the status, which the workflow updates
    per step) shows that the canary has begun to grow.
    """
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,50%,100%")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)
    rc, _, err = await kit.cli("approve", "nginx")
    assert rc == 0, err

    async def mid_scale() -> bool:
        st = await kit.status("nginx")
        counts = kit.images()
        canary, stable = counts.get("nginx:1.27", (0, 0))[0], counts.get("nginx:1.26", (0, 0))[0]
        upgrading = st.current_step_index == 2 and st.step_state == StepState.STEP_UPGRADE
        return upgrading and canary > 1 and stable > 5

    await kit.eventually(mid_scale, timeout=30, interval=0.05, message="step 2 scaling")
