"""Step jumps and plan edits on kubesim, through the run's updates (what the declarative controller sends):
the moves Kruise makes, and the named refusals when the run cannot make them."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from tests.helpers.poll import assert_eventually
from workflows import errors
from workflows.model import Phase, Replan, RolloutStatus, StepJump, StepSpec, workflow_id_for


async def _refused(handle: Any, name: str, arg: Any, kind: str, *needles: str) -> None:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await handle.execute_update(name, arg, result_type=str)
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == kind and cause.non_retryable, cause
    for needle in needles:
        assert needle in cause.message, cause.message


async def test_jump_replan_and_refusals(kit: Any, rollout_worker: None) -> None:
    await kit.create(kit.seed())
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,2,3,100%")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)
    handle = kit.ctx.client.get_workflow_handle(workflow_id_for(kit.namespace, "nginx"))

    steps = [StepSpec(replicas=r) for r in (1, 2, 3, "100%")]
    await _refused(handle, "replan", Replan(steps=steps[:3]), errors.PLAN_CHANGE_REFUSED, "number of steps")
    backwards = [StepSpec(replicas=r) for r in (3, 2, 3, "100%")]
    await _refused(handle, "replan", Replan(steps=backwards), errors.PLAN_CHANGE_REFUSED, "non-decreasing")

    async def at(step: int, canary: int) -> bool:
        st: RolloutStatus = await handle.query("status", result_type=RolloutStatus)
        return (
            st.phase == Phase.PAUSED and st.current_step_index == step and st.canary_ready_replicas == canary
        )

    # step 1 edited to 2 pods: step 1 again, with 2 pods
    edited = [StepSpec(replicas=2), *steps[1:]]
    assert "recalculated to step 1" in await handle.execute_update(
        "replan", Replan(steps=edited), result_type=str
    )
    await assert_eventually(lambda: at(1, 2), timeout=30, message="step 1 again with 2 pods")
    answer = await handle.execute_update("jump_step", StepJump(step=3, key="a"), result_type=str)
    assert answer == "jumping from step 1/4 to step 3"
    await assert_eventually(lambda: at(3, 3), timeout=30, message="step 3 with 3 pods")
    assert "taken already" in await handle.execute_update(
        "jump_step", StepJump(step=1, key="a"), result_type=str
    )
    await handle.execute_update("jump_step", StepJump(step=1, key="b"), result_type=str)
    await assert_eventually(lambda: at(1, 3), timeout=30, message="step 1, the 3 pods kept")
    assert kit.images() == {"nginx:1.26": (7, 7), "nginx:1.27": (3, 3)}
    answer = await handle.execute_update("jump_step", StepJump(step=7, key="c"), result_type=str)
    assert "not a step of this rollout (1-4)" in answer

    rc, _, err = await kit.cli("abort", "nginx")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.ABORTED)
    await _refused(handle, "jump_step", StepJump(step=2), errors.STEP_JUMP_REFUSED, "Aborted", "refused")
    await _refused(handle, "replan", Replan(steps=steps), errors.PLAN_CHANGE_REFUSED, "Aborted")
    rc, _, err = await kit.cli("undo", "nginx")
    assert rc == 0, err
