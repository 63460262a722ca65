"""Fixtures of the differential tests: the session kubesim and the session realk8s, side by side."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from differential import Cluster

from kubesim.testing import api_client_for


@pytest.fixture(scope="module")
def clusters(sim: Any, realk8s: Any) -> Iterator[list[Cluster]]:
    """kubesim first, then the real control plane; each with its own raw JSON client."""
    out = [
        Cluster("kubesim", sim.kubeconfig, api_client_for(sim.kubeconfig)),
        Cluster("real", realk8s.kubeconfig, api_client_for(realk8s.kubeconfig)),
    ]
    try:
        yield out
    finally:
        for c in out:
            c.api.close()
