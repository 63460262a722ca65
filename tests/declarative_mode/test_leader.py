"""Two ``rollout-controller`` processes on kubesim (issue 23): kill the leader mid-release, the other
takes over within the lease duration and approves the pending step once (tests/helpers/leader.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s
from temporalio.client import Client

from kubesim.testing import KubeSimProcess
from tests.helpers.kubectl import Kubectl
from tests.helpers.leader import LEASE_SECONDS, Replicas, leader_killed_the_other_takes_over, replicas_on

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
def replicas(
    dsim: KubeSimProcess, temporal_client: Client, dqueue: str, tmp_path: Path, dapi: k8s.ApiClient
) -> Iterator[Replicas]:
    with replicas_on(dsim, dapi, temporal_client, dqueue, tmp_path) as r:
        yield r


async def test_leader_killed_the_other_takes_over_and_approves_once(
    replicas: Replicas,
    kubectl: Kubectl,
    dapi: k8s.ApiClient,
    temporal_client: Client,
    crd: None,
    dworker: None,
) -> None:
    took_over = await leader_killed_the_other_takes_over(replicas, kubectl, dapi, temporal_client)
    print(f"kubesim: take-over {took_over:.1f}s after the SIGKILL (lease {LEASE_SECONDS}s)")
