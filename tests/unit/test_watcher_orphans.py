"""The shared watcher names a Deployment held by a closed rollout (an orphaned hold)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from kube.client import Kube
from kube.names import ANN_WORKFLOW_ID, LABEL_STABLE_REVISION
from watcher import DeploymentWatcher

WID = "rollout-shop-web"


@dataclass
class _Desc:
    status: WorkflowExecutionStatus


class _Handle:
    def __init__(self, status: WorkflowExecutionStatus | None) -> None:
        self.status = status
        self.signals = 0

    async def signal(self, name: str, payload: Any) -> None:
        self.signals += 1
        if self.status != WorkflowExecutionStatus.RUNNING:
            raise RPCError("workflow execution already completed", RPCStatusCode.NOT_FOUND, b"")

    async def describe(self) -> _Desc:
        if self.status is None:
            raise RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b"")
        return _Desc(self.status)


class _Client:
    def __init__(self, status: WorkflowExecutionStatus | None) -> None:
        self.handle = _Handle(status)

    def get_workflow_handle(self, wid: str) -> _Handle:
        assert wid == WID
        return self.handle


def _dep() -> dict[str, Any]:
    return {
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "generation": 2,
            "resourceVersion": "10",
            "labels": {LABEL_STABLE_REVISION: "abc"},
            "annotations": {ANN_WORKFLOW_ID: WID},
        },
        "spec": {"replicas": 4, "template": {"spec": {"containers": [{"name": "app", "image": "a:2"}]}}},
    }


async def _resync(status: WorkflowExecutionStatus | None) -> DeploymentWatcher:
    client = _Client(status)
    w = DeploymentWatcher(client, Kube(None), executor=ThreadPoolExecutor(1))  # type: ignore[arg-type]
    await w._on_sync([_dep()])  # a worker start: every held Deployment is signalled once
    assert client.handle.signals == 1
    return w


async def test_a_terminated_rollout_holding_its_deployment_is_reported() -> None:
    w = await _resync(WorkflowExecutionStatus.TERMINATED)
    assert list(w.orphans) == ["shop/web"]
    text = w.orphans["shop/web"]
    assert f"deployment shop/web is held by rollout {WID}, which is terminated" in text
    assert "`rollout undo web -n shop` hands it back on the stable template" in text


async def test_a_hold_by_a_rollout_temporal_does_not_know_is_reported() -> None:
    w = await _resync(None)
    assert "which is unknown to Temporal" in w.orphans["shop/web"]


async def test_a_running_rollout_is_no_orphan() -> None:
    w = await _resync(WorkflowExecutionStatus.RUNNING)
    assert w.orphans == {}
