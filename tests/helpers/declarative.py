"""Declarative mode test helpers: the controller + webhook harness in the test's event loop, the seed's
manifests, kubectl in a thread (the webhook shares the loop) and polls on the Rollout's status.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from temporalio.client import Client

from declarative.certs import make_serving_cert, server_context
from declarative.controller import Controller
from declarative.main import ensure_webhook_configuration, list_rollouts, make_resolver
from declarative.webhook import PATH, WebhookServer
from kube.client import Kube
from tests.helpers.cluster import ReplicaSetSampler, images_counts
from tests.helpers.kubectl import Kubectl
from tests.helpers.poll import assert_eventually
from workflows.model import Reason, RolloutTimings

CRD = Path(__file__).resolve().parents[2] / "deploy" / "declarative" / "crd-rollouts.yaml"


def install_crd(kubectl: Kubectl) -> None:
    """Create, or replace, the shipped Rollout CRD, and wait until it is served (the real apiserver
    serves a new CRD only once it is Established). Not ``kubectl apply``: an earlier module's
    controller pointed the conversion webhook at its URL, and a three-way merge of the shipped Service
    reference onto that asks for both (the API server refuses: exactly one of url or service)."""
    exists = kubectl.run("get", "crd", "rollouts.rollouts.kruise.io", "--ignore-not-found").stdout.strip()
    kubectl.run("replace" if exists else "create", "-f", str(CRD))
    kubectl.run("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRD))


__all__ = [
    "APPROVE",
    "MANUAL",
    "SEED_ROLLOUT",
    "ReplicaSetSampler",
    "Stack",
    "approve",
    "deployment",
    "field_is",
    "images_counts",
    "kc",
    "keep_history",
    "phase_is",
    "rollout_status",
    "seed_deployment",
    "wait_images",
    "wait_step",
]


class Stack:
    """The controller and its webhook, in this event loop; each can be stopped and started again."""

    def __init__(self, client: Client, api: k8s.ApiClient, queue: str) -> None:
        self.client, self.api, self.queue = client, api, queue
        self.kube = Kube(api)
        self.webhook: WebhookServer | None = None
        self.controller: Controller | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    async def start_webhook(self) -> None:
        cert = make_serving_cert(["127.0.0.1"])
        self.webhook = WebhookServer(
            make_resolver(self.kube),
            server_context(cert.cert_pem, cert.key_pem),
            port=self.port,
            list_rollouts=list_rollouts(self.kube),
        )
        self.port = await self.webhook.start()
        await asyncio.to_thread(
            ensure_webhook_configuration, self.kube, cert.ca_pem, f"https://127.0.0.1:{self.port}{PATH}", None
        )

    async def stop_webhook(self) -> None:
        if self.webhook is not None:
            await self.webhook.stop()
            self.webhook = None

    async def drop_validation(self) -> None:
        """Remove the ValidatingWebhookConfiguration (as if it was never installed); ``start_webhook``
        puts it back."""
        from declarative.main import VWC_PATH, WEBHOOK_CONFIG_NAME

        await asyncio.to_thread(self.kube.request, "DELETE", f"{VWC_PATH}/{WEBHOOK_CONFIG_NAME}")

    def start_controller(self) -> None:
        self._stop = asyncio.Event()
        self.controller = Controller(
            self.client,
            self.api,
            task_queue=self.queue,
            timings=RolloutTimings(poll_interval_seconds=0.2),
            resync_seconds=2.0,
        )
        self._task = asyncio.create_task(self.controller.run(self._stop))

    async def stop_controller(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, 30)
            self._task = None


@contextlib.asynccontextmanager
async def running_stack(client: Client, api: k8s.ApiClient, queue: str) -> AsyncIterator[Stack]:
    """The webhook and the controller, started for the ``async with`` block and stopped after it."""
    s = Stack(client, api, queue)
    await s.start_webhook()
    s.start_controller()
    try:
        yield s
    finally:
        await s.stop_controller()
        await s.stop_webhook()


def seed_deployment(replicas: int = 10, image: str = "nginx:1.26") -> dict[str, Any]:
    """The seed's Deployment, word for word."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"labels": {"app": "nginx"}, "name": "nginx"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "nginx"}},
            "strategy": {
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                "type": "RollingUpdate",
            },
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {
                    "containers": [
                        {
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "name": "nginx",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        }
                    ]
                },
            },
        },
    }


SEED_ROLLOUT = """apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata:
  name: rollouts-nginx
spec:
  workloadRef:
    apiVersion: apps/v1
    kind: Deployment
    name: nginx
  strategy:
    canary:
      enableExtraWorkloadForCanary: false
      steps:
      - replicas: 1
      - replicas: 50%
      - replicas: 100%
"""


APPROVE = '{"status":{"canaryStatus":{"currentStepState":"StepReady"}}}'
MANUAL = Reason.MANUAL.replace("{n}", "3")  # the 3-step seed Rollout's manual pause; format(i=step)


async def kc(kubectl: Kubectl, *args: str, **kw: Any) -> str:
    """kubectl in a thread: the webhook and the controller share this event loop."""
    return (await asyncio.to_thread(kubectl.run, *args, **kw)).stdout


async def rollout_status(kubectl: Kubectl) -> dict[str, Any]:
    obj = json.loads(await kc(kubectl, "get", "rollout", "rollouts-nginx", "-o", "json"))
    return obj.get("status") or {}


async def deployment(kubectl: Kubectl) -> dict[str, Any]:
    return json.loads(await kc(kubectl, "get", "deployment", "nginx", "-o", "json"))  # type: ignore[no-any-return]


async def field_is(kubectl: Kubectl, key: str, value: Any) -> bool:
    return (await rollout_status(kubectl)).get(key) == value


async def phase_is(kubectl: Kubectl, phase: str) -> bool:
    return await field_is(kubectl, "phase", phase)


async def wait_images(
    dapi: k8s.ApiClient, ns: str, want: dict[str, tuple[int, int]], timeout: float = 60
) -> None:
    await assert_eventually(
        lambda: images_counts(dapi, ns) == want, timeout=timeout, message=f"ReplicaSets {want}"
    )


async def wait_step(
    kubectl: Kubectl, step: int, state: str = "StepPaused", timeout: float = 60
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        st = await rollout_status(kubectl)
        canary = st.get("canaryStatus") or {}
        ok = canary.get("currentStepIndex") == step and canary.get("currentStepState") == state
        return st if ok else None

    result: dict[str, Any] = await assert_eventually(check, timeout=timeout, message=f"step {step} {state}")
    return result


async def approve(kubectl: Kubectl, name: str = "rollouts-nginx") -> None:
    """What ``kubectl-kruise rollout approve`` sends: a merge patch of the status subresource."""
    await kc(kubectl, "patch", "rollout", name, "--subresource=status", "--type=merge", "-p", APPROVE)


async def keep_history(client: Any, workflow_id: str, name: str) -> None:
    """Replay the run's history against the current code; with DECLARATIVE_CAPTURE=1 also write it to
    tests/replay/histories/<name>.json (the committed histories ``tests/replay`` replays)."""
    import os
    from pathlib import Path

    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Replayer

    from workflows.rollout import RolloutWorkflow

    history = await client.get_workflow_handle(workflow_id).fetch_history()
    replayer = Replayer(workflows=[RolloutWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
    if os.environ.get("DECLARATIVE_CAPTURE") == "1":
        out = Path(__file__).resolve().parents[1] / "replay" / "histories" / f"{name}.json"
        out.write_text(history.to_json())
