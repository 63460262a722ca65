"""Two ``rollout-controller`` processes on one cluster (issue 23), and the failover scenario both clusters
run (``tests/declarative_mode/test_leader.py`` on kubesim, ``tests/realk8s/test_declarative_leader.py``).

Both serve the webhooks (one port shared with SO_REUSEPORT, as replicas behind a Service) with the
certificate they share through a Secret; a Lease elects the one that reconciles. The leader is
SIGKILLed with a rollout paused and an approval pending: the other takes the Lease within the lease
duration and acts on the approval, once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from temporalio.client import Client

from kube.client import Kube
from tests.helpers.declarative import (
    SEED_ROLLOUT,
    approve,
    kc,
    phase_is,
    seed_deployment,
    wait_images,
    wait_step,
)
from tests.helpers.kubectl import Kubectl
from tests.helpers.poll import assert_eventually, wait_for
from workflows.model import workflow_id_for

__all__ = ["LEASE_SECONDS", "RETRY_SECONDS", "Replicas", "leader_killed_the_other_takes_over", "replicas_on"]

BIN = Path(sys.executable).parent
LEASE = "/apis/coordination.k8s.io/v1/namespaces/rollout-system/leases/rollout-controller"
SECRET = "/api/v1/namespaces/rollout-system/secrets/rollout-controller-webhook"
LEASE_SECONDS, RETRY_SECONDS = 4, 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Replicas:
    def __init__(self, cluster: Any, client: Client, queue: str, tmp: Path) -> None:
        self.port = _free_port()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}
        self.env = {
            **os.environ,
            "KUBECONFIG": str(cluster.kubeconfig),
            "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": client.namespace,
        }
        self.queue, self.tmp = queue, tmp

    def start(self, identity: str) -> None:
        log = self.tmp / f"{identity}.log"
        cmd = [
            str(BIN / "rollout-controller"),
            "--webhook-port",
            str(self.port),
            "--webhook-reuse-port",
            "--task-queue",
            self.queue,
            "--poll-interval",
            "0.2",
            "--trusted-user",
            "any",
            "--leader-elect",
            "--identity",
            identity,
            "--lease-duration",
            str(LEASE_SECONDS),
            "--renew-deadline",
            "3",
            "--retry-period",
            str(RETRY_SECONDS),
            "--cert-secret",
            "rollout-system/rollout-controller-webhook",
        ]
        with log.open("wb") as out:
            self.procs[identity] = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env, stdin=subprocess.DEVNULL
            )
        self.logs[identity] = log

    def log(self, identity: str) -> str:
        return self.logs[identity].read_text()

    def stop(self) -> None:
        for proc in self.procs.values():  # only the PIDs this test started
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@contextlib.contextmanager
def replicas_on(
    cluster: Any, api: k8s.ApiClient, client: Client, queue: str, tmp: Path
) -> Iterator[Replicas]:
    """Two-replica harness on ``cluster`` (kubesim or realk8s; ``rollout-system`` made if missing)."""
    try:
        Kube(api).request("POST", "/api/v1/namespaces", {"metadata": {"name": "rollout-system"}})
    except k8s.ApiException as exc:
        if exc.status != 409:
            raise
    r = Replicas(cluster, client, queue, tmp)
    try:
        yield r
    finally:
        r.stop()


def _holder(kube: Kube) -> str:
    try:
        return str((kube.request("GET", LEASE).get("spec") or {}).get("holderIdentity") or "")
    except Exception:  # noqa: BLE001 - not made yet
        return ""


def _served_cert(port: int, ca_pem: str) -> bytes:
    """One TLS handshake, verified against the shared CA; the certificate the replica presented."""
    ctx = ssl.create_default_context(cadata=ca_pem)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return tls.getpeercert(binary_form=True) or b""


async def _approve_steps(client: Client, wid: str) -> list[int]:
    from cli.runs import read_run

    desc = await client.get_workflow_handle(wid).describe()
    rec = await read_run(client, wid, desc.run_id or "", desc.status)
    return [a.step or 0 for a in rec.approvals if a.via == "signal"]


async def leader_killed_the_other_takes_over(
    replicas: Replicas, kubectl: Kubectl, dapi: k8s.ApiClient, temporal_client: Client
) -> float:
    """Returns the take-over time (s) after the SIGKILL."""
    kube = Kube(dapi)
    ns = kubectl.namespace
    replicas.start("replica-a")
    leader = await assert_eventually(lambda: _holder(kube), timeout=30, message="a leader")
    replicas.start("replica-b")
    await assert_eventually(
        lambda: "candidate" in replicas.log("replica-b"),
        timeout=30,
        message="replica-b serving as a candidate",
    )
    follower = "replica-b" if leader == "replica-a" else "replica-a"

    # Both replicas serve the one certificate of the Secret, which the caBundle trusts.
    secret = kube.request("GET", SECRET)
    ca_pem = base64.b64decode(secret["data"]["ca.crt"]).decode()
    mwc = kube.request(
        "GET", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/temporal-rollouts"
    )
    assert {h["clientConfig"]["caBundle"] for h in mwc["webhooks"]} == {secret["data"]["ca.crt"]}
    served = {await asyncio.to_thread(_served_cert, replicas.port, ca_pem) for _ in range(8)}
    assert len(served) == 1

    await asyncio.to_thread(kubectl.apply, seed_deployment())
    await asyncio.to_thread(kubectl.wait_available)
    await kc(kubectl, "apply", "-f", "-", stdin=SEED_ROLLOUT)
    await assert_eventually(lambda: phase_is(kubectl, "Healthy"), timeout=30, message="Rollout Healthy")
    await kc(kubectl, "set", "image", "deployment", "nginx", "nginx=nginx:1.27")
    await wait_images(dapi, ns, {"nginx:1.27": (1, 1), "nginx:1.26": (9, 9)})
    await wait_step(kubectl, 1)
    assert f"started rollout/{ns}/nginx" in replicas.log(leader)
    assert "started rollout/" not in replicas.log(follower)

    # The leader dies; the approval is pending while nobody leads.
    killed = time.monotonic()
    replicas.procs[leader].send_signal(signal.SIGKILL)
    replicas.procs[leader].wait(10)
    await approve(kubectl)
    await assert_eventually(
        lambda: _holder(kube) == follower,
        timeout=LEASE_SECONDS + 20,
        interval=0.1,
        message="the follower takes the Lease",
    )
    took_over = time.monotonic() - killed
    # The candidate waits one lease duration from its last sight of a renewal, then its next retry.
    assert took_over <= LEASE_SECONDS + 2 * RETRY_SECONDS + 2, took_over
    await wait_images(dapi, ns, {"nginx:1.27": (5, 5), "nginx:1.26": (5, 5)})
    await wait_step(kubectl, 2)
    wid = workflow_id_for(ns, "nginx")
    assert await _approve_steps(temporal_client, wid) == [1]
    runs = [w async for w in temporal_client.list_workflows(f'WorkflowId = "{wid}"')]
    assert len(runs) == 1
    # After the take-over the webhook still answers (only the survivor listens on the port now).
    wait_for(lambda: _served_cert(replicas.port, ca_pem) in served, timeout=10)
    return took_over
