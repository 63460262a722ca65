"""Helpers for the declarative tests: kubectl in a thread (the webhook shares the loop), polls."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from kubernetes import client as k8s

from tests.declarative_mode.conftest import images_counts
from tests.helpers.kubectl import Kubectl
from tests.helpers.poll import assert_eventually

APPROVE = '{"status":{"canaryStatus":{"currentStepState":"StepReady"}}}'
MANUAL = "Rollout is in step({i}/3), and you need manually confirm to enter the next step"


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
    await assert_eventually(lambda: images_counts(dapi, ns) == want, timeout=timeout,
                            message=f"ReplicaSets {want}")


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
