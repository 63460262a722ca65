"""Other writers: a kubectl edit of the pod template under our rollout pauses it (no silent overwrite).

Then ``approve`` writes the rollout's template back and goes on, ``start --replace`` (no image) adopts
the edited template, and ``undo`` rolls back to the stable template.
"""

from __future__ import annotations

from typing import Any

import pytest

from workflows.model import Phase, Reason, StepState, WaitingFor

DRIFT = Reason.DRIFT.format(what="container nginx image nginx:1.27 -> nginx:1.30")


async def _edited_mid_step(kit: Any) -> Any:
    """Start 1.27 in steps 1,100%, wait for the step-1 pause, then `kubectl set image` 1.30; return status."""
    await kit.create(kit.seed(replicas=3))
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,100%")
    assert rc == 0, err
    first = await kit.wait_phase("nginx", Phase.PAUSED, 1)
    code, _, kerr = kit.kubectl("set", "image", "deployment/nginx", "nginx=nginx:1.30", "-n", kit.namespace)
    assert code == 0, kerr

    async def noticed() -> Any:
        st = await kit.status("nginx")
        return st if st.message.startswith(DRIFT) else None

    st = await kit.eventually(noticed, timeout=30, message="template change noticed")
    assert st.phase == Phase.PAUSED and st.step_state == StepState.STEP_PAUSED
    assert st.waiting_for == WaitingFor.DRIFT
    assert st.message == DRIFT
    # No silent overwrite: the edit stays, and (the Deployment being paused) no 1.30 ReplicaSet exists.
    dep = kit.deployment()
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.30"
    assert kit.images() == {"nginx:1.27": (1, 1), "nginx:1.26": (2, 2)}
    return first


@pytest.mark.clusters
async def test_edit_then_approve_restores_our_template(kit: Any, rollout_worker: None) -> None:
    await _edited_mid_step(kit)
    rc, out, err = await kit.cli("approve", "nginx")
    assert rc == 0, err
    assert "writes its pod template back over the outside change" in out

    async def restored() -> Any:
        st = await kit.status("nginx")
        return st if st.phase == Phase.PAUSED and st.message.startswith("Rollout is in step(1/2)") else None

    st = await kit.eventually(restored, timeout=30, message="back to the step-1 pause")
    assert st.approvals == []  # approving the overwrite is not approving the step
    assert kit.deployment()["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    rc, _, err = await kit.cli("approve", "nginx")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.COMPLETED)
    assert kit.images() == {"nginx:1.27": (3, 3), "nginx:1.26": (0, 0)}
    kit.assert_handed_back(kit.deployment(), "nginx:1.27")


async def test_edit_then_replace_adopts_the_edit(kit: Any, rollout_worker: None) -> None:
    first = await _edited_mid_step(kit)
    rc, _, err = await kit.cli("start", "nginx", "--replace", "--steps", "1,100%")
    assert rc == 0, err

    async def adopted() -> Any:
        st = await kit.status("nginx")
        return st if st.superseded_revisions and st.phase == Phase.PAUSED else None

    st = await kit.eventually(adopted, timeout=60, message="paused at step 1 of the adopted template")
    assert st.superseded_revisions == [first.canary_revision]
    assert st.canary_images == {"nginx": "nginx:1.30"} and st.stable_revision == first.stable_revision
    assert kit.images() == {"nginx:1.30": (1, 1), "nginx:1.27": (0, 0), "nginx:1.26": (2, 2)}
    rc, _, err = await kit.cli("approve", "nginx")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.COMPLETED)
    kit.assert_handed_back(kit.deployment(), "nginx:1.30")


async def test_edit_then_undo_restores_stable(kit: Any, rollout_worker: None) -> None:
    await _edited_mid_step(kit)
    rc, _, err = await kit.cli("undo", "nginx")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.ROLLED_BACK)
    assert kit.images() == {"nginx:1.27": (0, 0), "nginx:1.26": (3, 3)}
    kit.assert_handed_back(kit.deployment(), "nginx:1.26")


@pytest.mark.clusters
async def test_edit_mid_scale_is_noticed_at_the_next_read(kit: Any, rollout_worker: None) -> None:
    """Slow pods (1.5 s to Ready) keep step 2 scaling; an edit then pauses it instead of being overwritten."""
    await kit.create(kit.seed(replicas=4, pod_annotations={"kubesim.io/ready-delay": "1.5"}))
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,50%,100%")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)
    rc, _, err = await kit.cli("approve", "nginx")
    assert rc == 0, err

    async def scaling() -> bool:
        st = await kit.status("nginx")
        return st.current_step_index == 2 and st.step_state == StepState.STEP_UPGRADE

    await kit.eventually(scaling, timeout=30, interval=0.05, message="step 2 scaling")
    code, _, kerr = kit.kubectl("set", "image", "deployment/nginx", "nginx=nginx:1.30", "-n", kit.namespace)
    assert code == 0, kerr

    async def noticed() -> Any:
        st = await kit.status("nginx")
        return st if st.message.startswith(DRIFT) else None

    st = await kit.eventually(noticed, timeout=30, message="template change noticed")
    assert st.current_step_index == 2 and st.phase == Phase.PAUSED
    assert kit.deployment()["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.30"
    rc, _, err = await kit.cli("approve", "nginx")  # keep the rollout's template: step 2 goes on
    assert rc == 0, err
    want = Reason.MANUAL.format(i=2, n=3)

    async def step_2_paused() -> Any:
        st = await kit.status("nginx")
        return st if st.phase == Phase.PAUSED and st.message == want else None

    await kit.eventually(step_2_paused, timeout=60, message="step 2 paused for approval")
    assert kit.images()["nginx:1.27"] == (2, 2) and "nginx:1.30" not in kit.images()
    rc, _, err = await kit.cli("undo", "nginx")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.ROLLED_BACK, timeout=60)
    kit.assert_handed_back(kit.deployment(), "nginx:1.26")
