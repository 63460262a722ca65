"""What every ``rollout`` command shares: the context, options, the one-line error, small helpers."""

from __future__ import annotations

import asyncio
import getpass
import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from kube.client import Kube
from workflows.errors import CommandError  # the root of the CLI's one-line failures
from workflows.model import TASK_QUEUE, RolloutStatus, RolloutTimings, workflow_id_for

__all__ = [
    "CommandError",
    "RolloutContext",
    "StartOptions",
    "current_user",
    "find_rollout",
    "query_status",
    "read_with_retry",
    "running_description",
    "ui_link",
]

DEFAULT_UI = "http://localhost:8233"
_QUERY_TIMEOUT = timedelta(seconds=5)


@dataclass
class RolloutContext:
    """What every command needs: the Temporal client, the Kubernetes client, the namespace."""

    client: Client
    api_client: ApiClient
    namespace: str = "default"
    task_queue: str = TASK_QUEUE
    cluster: str = ""  # --cluster: a release target's cluster (workflow ID rollout/<cluster>/<ns>/<name>)
    ui_url: str = field(default_factory=lambda: os.environ.get("ROLLOUT_UI_URL", DEFAULT_UI))

    @property
    def kube(self) -> Kube:
        """Raw JSON access to the cluster."""
        return Kube(self.api_client)


@dataclass
class StartOptions:
    """Arguments of ``rollout start``."""

    name: str | None = None
    images: list[str] = field(default_factory=list)
    steps: str | None = None
    pause_duration: int | None = None
    rollout_file: str | None = None
    deployment_file: str | None = None
    failure_threshold: int | str | None = None
    requested_by: str = ""
    timings: RolloutTimings | None = None
    service: str | None = None
    ingress: str | None = None
    httproute: str | None = None
    grace_period: int | None = None
    matches: list[str] = field(default_factory=list)
    progress_deadline: int | None = None
    auto_rollback: bool = False
    replace: bool = False
    notify: list[str] = field(default_factory=list)
    template: dict[str, Any] | None = None  # a pod template to roll out (undo --to-revision)
    analysis_files: list[str] = field(default_factory=list)
    step_analysis_files: list[str] = field(default_factory=list)
    analysis_args: list[str] = field(default_factory=list)
    analysis_from_step: int | None = None


def ui_link(ctx: RolloutContext, workflow_id: str) -> str:
    """The Temporal UI page of a rollout (the ID is one path segment: ``rollout/ns/name`` is encoded)."""
    base = f"{ctx.ui_url.rstrip('/')}/namespaces/{ctx.client.namespace}"
    return f"{base}/workflows/{quote(workflow_id, safe='')}"


async def find_rollout(
    client: Client, namespace: str, name: str, cluster: str = ""
) -> tuple[WorkflowHandle[Any, RolloutStatus], WorkflowExecutionDescription | None]:
    """``connect.find_rollout``: the Deployment's run under its new or its legacy workflow ID; with
    ``cluster`` (a release target), the run under ``rollout/<cluster>/<ns>/<name>``."""
    if cluster:
        handle = client.get_workflow_handle(
            workflow_id_for(namespace, name, cluster), result_type=RolloutStatus
        )
        return handle, await running_description(handle)
    from connect import find_rollout as find  # lazy: keeps `rollout --help` light

    return await find(client, namespace, name)


def current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return os.environ.get("USER", "unknown")


_TRANSIENT = frozenset({429, 500, 502, 503, 504})
_READ_ATTEMPTS = 8


async def read_with_retry(fn: Any, *args: Any) -> Any:
    """A read on a worker thread; a flaky API server (429/5xx) is retried with backoff, because the
    user should not see a one-line error for what a second attempt answers."""
    delay = 0.05
    for attempt in range(1, _READ_ATTEMPTS + 1):
        try:
            return await asyncio.to_thread(fn, *args)
        except ApiException as exc:
            if exc.status not in _TRANSIENT or attempt == _READ_ATTEMPTS:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


async def running_description(handle: WorkflowHandle[Any, Any]) -> WorkflowExecutionDescription | None:
    try:
        desc = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return desc


async def query_status(handle: WorkflowHandle[Any, Any]) -> RolloutStatus:
    result: RolloutStatus = await handle.query(
        "status", result_type=RolloutStatus, rpc_timeout=_QUERY_TIMEOUT
    )
    return result
