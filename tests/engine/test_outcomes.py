"""Temporal's own statuses: a cancellation request is an undo and ends Canceled; rollbacks by analysis
or the progress deadline end Failed with a typed error; the CLI reads every outcome as before."""

from __future__ import annotations

import asyncio
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from kube.client import Kube
from tests.helpers.cluster import start_mid_step_2
from watcher import DeploymentWatcher
from workflows import errors
from workflows.model import Phase, StepState, workflow_id_for

TEMPORAL = str(Path(sys.executable).parent / "temporal")


async def _temporal(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        TEMPORAL, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=30)
    return proc.returncode or 0, out.decode()


async def _closed_status(kit: Any) -> WorkflowExecutionStatus | None:
    handle = kit.ctx.client.get_workflow_handle(workflow_id_for(kit.namespace, "nginx"))

    async def closed() -> WorkflowExecutionStatus | None:
        desc = await handle.describe()
        return desc.status if desc.status != WorkflowExecutionStatus.RUNNING else None

    status: WorkflowExecutionStatus | None = await kit.eventually(closed, timeout=30, message="run closed")
    return status


async def _cancel_request(kit: Any) -> tuple[str, str]:
    """(reason, identity) of the run's WorkflowExecutionCancelRequested event."""
    handle = kit.ctx.client.get_workflow_handle(workflow_id_for(kit.namespace, "nginx"))
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED:
            attrs = event.workflow_execution_cancel_requested_event_attributes
            return attrs.cause, attrs.identity
    raise AssertionError("no cancellation request in history")


@pytest.mark.clusters
async def test_temporal_workflow_cancel_mid_step_rolls_back_and_ends_canceled(
    kit: Any, rollout_worker: None
) -> None:
    """`temporal workflow cancel` (the UI's "Request Cancellation") mid-scale is `rollout undo`."""
    await kit.create(kit.seed(pod_annotations={"kubesim.io/ready-delay": "1.5"}))
    with kit.sampler() as sampler:  # from the start: a late watch sees the ReplicaSets one by one
        await start_mid_step_2(kit)
        address = kit.ctx.client.service_client.config.target_host
        wid = workflow_id_for(kit.namespace, "nginx")
        code, out = await _temporal(
            "workflow",
            "cancel",
            "--address",
            address,
            "--workflow-id",
            wid,
            "--identity",
            "carol@ui",
        )  # fmt: skip  (the temporal CLI sends no reason for one workflow; the sender is its identity)
        assert code == 0, out
        assert await _closed_status(kit) == WorkflowExecutionStatus.CANCELED
    assert kit.images() == {"nginx:1.27": (0, 0), "nginx:1.26": (10, 10)}
    kit.assert_handed_back(kit.deployment(), "nginx:1.26")
    assert sampler.error is None
    assert [s for s in sampler.samples if s[0] > 13 or s[1] < 8] == []  # surge and availability bounds
    st = await kit.status("nginx")
    assert (st.phase, st.step_state) == (Phase.ROLLED_BACK, StepState.COMPLETED)
    assert "undo by carol@ui" in st.message
    rc, out, err = await kit.cli("history", "nginx", "-o", "json")
    assert rc == 0, err
    row = json.loads(out)[0]
    assert (row["outcome"], row["undoBy"]) == ("RolledBack", "carol@ui")
    code, _, kerr = kit.kubectl("rollout", "status", "deployment/nginx", "-n", kit.namespace, "--timeout=30s")
    assert code == 0, kerr


async def test_rollout_undo_is_a_cancellation_with_reason_and_sender(kit: Any, rollout_worker: None) -> None:
    await kit.create(kit.seed(replicas=4))
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,50%,100%")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)
    rc, out, err = await kit.cli("undo", "nginx", "--by", "alice", "--reason", "bad metrics")
    assert rc == 0, err
    assert "undo requested" in out
    assert await _closed_status(kit) == WorkflowExecutionStatus.CANCELED
    reason, _identity = await _cancel_request(kit)
    assert reason == "rollout undo by alice: bad metrics"
    assert kit.images() == {"nginx:1.27": (0, 0), "nginx:1.26": (4, 4)}
    kit.assert_handed_back(kit.deployment(), "nginx:1.26")
    # The CLI reads a canceled run as before: phase RolledBack, exit 3 from the live view.
    rc, out, err = await kit.cli("status", "nginx", "-o", "json")
    assert rc == 0, err
    st = json.loads(out)
    assert st["phase"] == "RolledBack" and "undo by alice" in st["message"]
    rc, out, err = await kit.cli("status", "nginx", "-w")
    assert rc == 3, err
    rc, out, err = await kit.cli("list", "-o", "json")
    assert rc == 0, err
    (row,) = [r for r in json.loads(out) if r["workflowId"] == workflow_id_for(kit.namespace, "nginx")]
    assert (row["executionStatus"], row["phase"]) == ("CANCELED", "RolledBack")
    rc, out, err = await kit.cli("history", "nginx", "-o", "json")
    assert rc == 0, err
    assert (json.loads(out)[0]["outcome"], json.loads(out)[0]["undoBy"]) == ("RolledBack", "alice")


async def test_deadline_auto_rollback_ends_failed_with_a_typed_error(
    kit: Any, rollout_worker: None, tmp_path: Path
) -> None:
    await kit.create(kit.seed(replicas=4))
    never_ready = tmp_path / "deployment.yaml"
    never_ready.write_text(
        yaml.safe_dump(
            kit.seed(replicas=4, image="nginx:1.27", pod_annotations={"kubesim.io/never-ready": "true"})
        )
    )
    rc, _, err = await kit.cli(
        "start", "-f", str(never_ready), "--steps", "1,100%", "--progress-deadline", "2", "--auto-rollback"
    )
    assert rc == 0, err
    handle = kit.ctx.client.get_workflow_handle(workflow_id_for(kit.namespace, "nginx"))
    with pytest.raises(WorkflowFailureError) as failed:
        await asyncio.wait_for(handle.result(), timeout=40)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    assert (cause.type, cause.non_retryable) == (errors.PROGRESS_DEADLINE, True)
    assert "has timed out progressing: 0 of 1 canary pods" in cause.message
    assert "rolling back automatically" in cause.message
    assert kit.images() == {"nginx:1.27": (0, 0), "nginx:1.26": (4, 4)}
    kit.assert_handed_back(kit.deployment(), "nginx:1.26")
    rc, out, err = await kit.cli("status", "nginx", "-o", "json")
    assert rc == 0, err
    assert (json.loads(out)["phase"], json.loads(out)["message"]) == ("RolledBack", cause.message)
    rc, _, err = await kit.cli("status", "nginx", "-w")
    assert rc == 3, err
    rc, out, err = await kit.cli("history", "nginx", "-o", "json")
    assert rc == 0, err
    assert json.loads(out)[0]["outcome"] == "RolledBack"


@pytest.mark.clusters
async def test_terminated_mid_step_is_an_orphaned_hold_that_undo_hands_back(
    kit: Any, rollout_worker: None
) -> None:
    """`temporal workflow terminate` (no workflow code runs) leaves the Deployment held: status and list
    name the orphaned hold, and `rollout undo` hands it back in a new run."""
    await kit.create(kit.seed(pod_annotations={"kubesim.io/ready-delay": "1.5"}))
    with kit.sampler() as sampler:
        await start_mid_step_2(kit)
        address = kit.ctx.client.service_client.config.target_host
        wid = workflow_id_for(kit.namespace, "nginx")
        code, out = await _temporal("workflow", "terminate", "--address", address, "--workflow-id", wid)
        assert code == 0, out
        assert await _closed_status(kit) == WorkflowExecutionStatus.TERMINATED
        dep = kit.deployment()
        assert dep["spec"]["paused"] is True and dep["spec"]["strategy"] == {"type": "Recreate"}

        # A worker's shared watcher, started now, signals every held Deployment once: the signal finds
        # the rollout closed and the watcher names the orphaned hold.
        with ThreadPoolExecutor(4) as pool:
            watcher = DeploymentWatcher(
                kit.ctx.client, Kube(kit.api_client), executor=pool, namespace=kit.namespace
            ).start()
            try:
                key = f"{kit.namespace}/nginx"
                text = await kit.eventually(lambda: watcher.orphans.get(key), message="orphan reported")
                assert f"held by rollout {wid}, which is terminated" in text
            finally:
                await watcher.stop()

        rc, out, err = await kit.cli("status", "nginx", "-o", "json")
        assert rc == 0, err
        st = json.loads(out)
        assert st["phase"] == "Failed"
        assert f"still held by rollout {wid}, which was terminated" in st["message"]
        assert "`rollout undo nginx" in st["message"]
        rc, out, err = await kit.cli("status", "nginx", "-w")
        assert rc == 4, err
        rc, out, err = await kit.cli("list")
        assert rc == 0, err
        assert f"! deployment {kit.namespace}/nginx is still held by rollout {wid}" in out

        rc, out, err = await kit.cli("undo", "nginx", "--by", "dave")
        assert rc == 0, err
        assert "hands it back on the stable template" in out
        assert await _closed_status(kit) == WorkflowExecutionStatus.CANCELED
    assert kit.images() == {"nginx:1.27": (0, 0), "nginx:1.26": (10, 10)}
    kit.assert_handed_back(kit.deployment(), "nginx:1.26")
    assert sampler.error is None
    assert [s for s in sampler.samples if s[0] > 13 or s[1] < 8] == []
    rc, out, err = await kit.cli("history", "nginx", "-o", "json")
    assert rc == 0, err
    newest, terminated = json.loads(out)[:2]
    assert (newest["outcome"], newest["undoBy"]) == ("RolledBack", "dave")
    assert terminated["outcome"] == "Terminated"


async def test_rollout_start_takes_over_an_orphaned_hold(kit: Any, rollout_worker: None) -> None:
    """After a terminate at step 1, a new `rollout start` keeps the hold, supersedes the closed run's
    canary and rolls the new image out from step 1 in a new run."""
    await kit.create(kit.seed(replicas=4))
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,100%")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)
    handle = kit.ctx.client.get_workflow_handle(workflow_id_for(kit.namespace, "nginx"))
    await handle.terminate("by hand")
    assert kit.images() == {"nginx:1.27": (1, 1), "nginx:1.26": (3, 3)}
    rc, out, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.28", "--steps", "1,100%")
    assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.PAUSED, 1)
    assert st.superseded_revisions and st.canary_images == {"nginx": "nginx:1.28"}
    assert kit.images() == {"nginx:1.28": (1, 1), "nginx:1.27": (0, 0), "nginx:1.26": (3, 3)}
    rc, _, err = await kit.cli("approve", "nginx")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.COMPLETED)
    assert kit.images() == {"nginx:1.28": (4, 4), "nginx:1.27": (0, 0), "nginx:1.26": (0, 0)}
    kit.assert_handed_back(kit.deployment(), "nginx:1.28")
