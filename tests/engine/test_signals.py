"""Signals from the `temporal` CLI, a deleted Deployment, a second rollout after completion, and replay."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.model import Phase, workflow_id_for
from workflows.rollout import RolloutWorkflow

TEMPORAL = str(Path(sys.executable).parent / "temporal")


async def _temporal(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        TEMPORAL, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=30)
    return proc.returncode or 0, out.decode()


async def test_approve_and_undo_from_the_temporal_cli(kit: Any, rollout_worker: None) -> None:
    """Plain JSON signals (what `temporal workflow signal` and the UI's "Send a Signal" send) work."""
    await kit.create(kit.seed(replicas=4))
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,50%,100%")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)
    address = kit.ctx.client.service_client.config.target_host
    wid = workflow_id_for(kit.namespace, "nginx")
    common = ["--address", address, "--workflow-id", wid]
    code, out = await _temporal(
        "workflow", "signal", *common, "--name", "approve", "--input", '{"step": 1, "by": "ui"}'
    )
    assert code == 0, out
    st = await kit.wait_phase("nginx", Phase.PAUSED, 2)
    assert [(a.step, a.by) for a in st.approvals] == [(1, "ui")]
    code, out = await _temporal("workflow", "query", *common, "--name", "status")
    assert code == 0 and '"currentStepIndex": 2' in out.replace(":2", ": 2"), out
    code, out = await _temporal("workflow", "signal", *common, "--name", "undo", "--input", '{"by": "ui"}')
    assert code == 0, out
    await kit.wait_phase("nginx", Phase.ROLLED_BACK)
    assert kit.images() == {"nginx:1.27": (0, 0), "nginx:1.26": (4, 4)}


async def test_raw_signal_without_by_records_the_sender_identity(kit: Any, rollout_worker: None) -> None:
    await kit.create(kit.seed(replicas=2))
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,100%")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)
    address = kit.ctx.client.service_client.config.target_host
    wid = workflow_id_for(kit.namespace, "nginx")
    common = ["--address", address, "--workflow-id", wid, "--identity", "alice@laptop"]
    code, out = await _temporal("workflow", "signal", *common, "--name", "approve", "--input", '{"step": 1}')
    assert code == 0, out
    st = await kit.wait_phase("nginx", Phase.COMPLETED)
    assert [(a.step, a.by) for a in st.approvals] == [(1, "alice@laptop")]
    rc, out, err = await kit.cli("history", "nginx", "-o", "json")
    assert rc == 0, err
    assert [a["by"] for a in json.loads(out)[0]["approvals"]] == ["alice@laptop"]


async def test_deployment_deleted_mid_rollout_fails_cleanly(kit: Any, rollout_worker: None) -> None:
    await kit.create(kit.seed(replicas=2))
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,100%")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)
    code, _, kerr = kit.kubectl("delete", "deployment", "nginx", "-n", kit.namespace)
    assert code == 0, kerr
    st = await kit.wait_phase("nginx", Phase.FAILED, timeout=30)
    assert 'deployment "nginx" not found' in st.message


async def test_new_rollout_after_completion_and_replay(kit: Any, rollout_worker: None) -> None:
    """The workflow ID is reusable once a rollout finished; both histories replay on the current code."""
    await kit.create(kit.seed(replicas=3))
    for image in ("nginx:1.27", "nginx:1.28"):
        rc, _, err = await kit.cli(
            "start", "nginx", "--image", f"nginx={image}", "--steps", "1,100%", "--pause-duration", "0"
        )
        assert rc == 0, err
        st = await kit.wait_phase("nginx", Phase.COMPLETED, timeout=60)
        assert st.canary_images == {"nginx": image}
    assert kit.images() == {"nginx:1.26": (0, 0), "nginx:1.27": (0, 0), "nginx:1.28": (3, 3)}
    kit.assert_handed_back(kit.deployment(), "nginx:1.28")

    replayer = Replayer(workflows=[RolloutWorkflow], data_converter=pydantic_data_converter)
    query = f'WorkflowId = "{workflow_id_for(kit.namespace, "nginx")}"'

    async def both_listed() -> list[Any] | None:
        found = [h async for h in kit.ctx.client.list_workflows(query).map_histories()]
        return found if len(found) == 2 else None

    histories = await kit.eventually(both_listed, timeout=20, message="two runs listed")
    for history in histories:
        await replayer.replay_workflow(history)  # raises on any nondeterminism


async def test_approve_update_validator(kit: Any, rollout_worker: None) -> None:
    """The `approve_step` update rejects a step that is not paused, and approves the paused one."""
    from temporalio.client import WorkflowUpdateFailedError

    from workflows.model import ApproveSignal, RolloutStatus

    await kit.create(kit.seed(replicas=2))
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,100%")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)
    handle = kit.ctx.client.get_workflow_handle(workflow_id_for(kit.namespace, "nginx"))
    try:
        await handle.execute_update("approve_step", ApproveSignal(step=2, by="x"), result_type=RolloutStatus)
        raise AssertionError("update for step 2 was accepted")
    except WorkflowUpdateFailedError as exc:
        assert "step 2 of rollout" in str(exc.cause) and "is not paused (step 1/2 is StepPaused)" in str(
            exc.cause
        )
    st = await handle.execute_update("approve_step", ApproveSignal(step=1, by="x"), result_type=RolloutStatus)
    assert [a.step for a in st.approvals] == [1]
    await kit.wait_phase("nginx", Phase.COMPLETED)


async def test_undo_update_rolls_back_and_a_repeat_is_accepted(kit: Any, rollout_worker: None) -> None:
    """The `undo_now` update (validator: ``contract.undo_refusal``) rolls a paused rollout back; a second
    one while rolling back is accepted and changes nothing."""
    from workflows.contract import UPDATE_UNDO_NOW
    from workflows.model import RolloutStatus, UndoSignal

    await kit.create(kit.seed(replicas=2))
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,100%")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)
    handle = kit.ctx.client.get_workflow_handle(workflow_id_for(kit.namespace, "nginx"))
    first = await handle.execute_update(
        UPDATE_UNDO_NOW, UndoSignal(by="x", reason="r"), result_type=RolloutStatus
    )
    again = await handle.execute_update(UPDATE_UNDO_NOW, UndoSignal(by="y"), result_type=RolloutStatus)
    assert first.current_step_index == again.current_step_index == 1
    await kit.wait_phase("nginx", Phase.ROLLED_BACK)
    images = kit.images()
    assert images["nginx:1.26"] == (2, 2)
    assert images.get("nginx:1.27", (0, 0))[0] == 0
