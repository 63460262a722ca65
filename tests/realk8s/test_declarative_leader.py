"""Two ``rollout-controller`` processes on the real control plane (issue 23): the leader is SIGKILLed
mid-release, the other takes the Lease within the lease duration and approves the pending step once,
and both replicas serve the apiserver's webhook calls with the certificate of the shared Secret
(tests/helpers/leader.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s
from temporalio.client import Client

from realk8s.testing import RealK8sProcess
from tests.helpers.kubectl import Kubectl
from tests.helpers.leader import LEASE_SECONDS, leader_killed_the_other_takes_over, replicas_on
from tests.realk8s.test_declarative_identity import admin  # noqa: F401 - the CRD + cleanup fixture

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
def kubectl(realk8s: RealK8sProcess, tmp_path: Path) -> Iterator[Kubectl]:
    ns = f"leader-{uuid.uuid4().hex[:6]}"
    home = tmp_path / "home"
    home.mkdir()
    k = Kubectl(realk8s, tmp_path, ns, home)
    k.run("create", "namespace", ns)
    yield k


async def test_leader_killed_on_the_real_control_plane(
    admin: k8s.ApiClient,  # noqa: F811 - the fixture imported above
    realk8s: RealK8sProcess,
    kubectl: Kubectl,
    temporal_client: Client,  # noqa: F811
    tmp_path: Path,
) -> None:
    from worker import build_worker

    queue = f"rollouts-leader-{kubectl.namespace}"
    async with build_worker(temporal_client, admin, queue):
        with replicas_on(realk8s, admin, temporal_client, queue, tmp_path) as replicas:
            took_over = await leader_killed_the_other_takes_over(replicas, kubectl, admin, temporal_client)
    print(f"real: take-over {took_over:.1f}s after the SIGKILL (lease {LEASE_SECONDS}s)")
