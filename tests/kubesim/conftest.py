"""kubectl fixtures for the kubesim tests (the session kubesim itself comes from ``tests/conftest.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers.kubectl import Kubectl, kubectl_for_test


@pytest.fixture(scope="module")
def kube_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kubectl's HOME (discovery cache) for one module."""
    return tmp_path_factory.mktemp("kubectl-home")


@pytest.fixture
def kubectl(sim: Any, tmp_path: Path, request: pytest.FixtureRequest, kube_home: Path) -> Kubectl:
    """The real kubectl, bound to a fresh namespace named after the test."""
    return kubectl_for_test(sim, tmp_path, request.node.name, kube_home)
