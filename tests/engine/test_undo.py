"""Undo: while paused, mid-scale, and refused after completion."""

from __future__ import annotations

from typing import Any

import pytest

from cli.context import CommandError
from cli.running import update_or_signal
from tests.helpers.cluster import start_mid_step_2
from workflows.contract import SIGNAL_UNDO, UPDATE_UNDO_NOW
from workflows.model import Phase, RolloutStatus, StepState, UndoSignal


@pytest.mark.clusters
async def test_undo_while_paused_at_step_1(kit: Any, rollout_worker: None) -> None:
    ns = kit.namespace
    await kit.create(kit.seed())
    with kit.sampler() as sampler:
        rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,50%,100%")
        assert rc == 0, err
        await kit.wait_phase("nginx", Phase.PAUSED, 1)
        assert kit.images() == {"nginx:1.27": (1, 1), "nginx:1.26": (9, 9)}
        rc, out, err = await kit.cli("undo", "nginx", "--reason", "bad metrics")
        assert rc == 0, err
        assert "undo requested" in out
        st = await kit.wait_phase("nginx", Phase.ROLLED_BACK)
        assert st.step_state == StepState.COMPLETED
        assert kit.images() == {"nginx:1.27": (0, 0), "nginx:1.26": (10, 10)}
    dep = kit.deployment()
    kit.assert_handed_back(dep, "nginx:1.26")
    code, out, err = kit.kubectl("rollout", "status", "deployment/nginx", "-n", ns, "--timeout=30s")
    assert code == 0, err
    assert sampler.error is None
    assert len(sampler.samples) > 3, "the watch saw the rollout"
    assert [s for s in sampler.samples if s[0] > 13 or s[1] < 8] == []


@pytest.mark.clusters
async def test_undo_mid_scale_of_step_2(kit: Any, rollout_worker: None) -> None:
    """Slow pods (1.5 s to Ready) keep step 2 scaling long enough to undo in the middle of it."""
    ns = kit.namespace
    await kit.create(kit.seed(pod_annotations={"kubesim.io/ready-delay": "1.5"}))
    with kit.sampler() as sampler:
        await start_mid_step_2(kit)
        counts = kit.images()
        assert counts["nginx:1.27"][0] < 5 or counts["nginx:1.26"][0] > 5  # really mid-scale
        rc, _, err = await kit.cli("undo", "nginx")
        assert rc == 0, err
        await kit.wait_phase("nginx", Phase.ROLLED_BACK)
        assert kit.images() == {"nginx:1.27": (0, 0), "nginx:1.26": (10, 10)}
    kit.assert_handed_back(kit.deployment(), "nginx:1.26")
    assert sampler.error is None
    assert len(sampler.samples) > 3, "the watch saw the rollout"
    assert [s for s in sampler.samples if s[0] > 13 or s[1] < 8] == []
    code, _, err = kit.kubectl("rollout", "status", "deployment/nginx", "-n", ns, "--timeout=30s")
    assert code == 0, err


async def test_undo_after_completion_is_refused(kit: Any, rollout_worker: None) -> None:
    ns = kit.namespace
    await kit.create(kit.seed(replicas=3))
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "100%")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.COMPLETED)
    seq = kit.audit_seq()
    rc, out, err = await kit.cli("undo", "nginx")
    assert rc != 0
    assert out == ""
    assert err.count("\n") == 1
    assert f"rollout rollout/{ns}/nginx already finished (Completed); nothing to undo" in err
    writes = kit.writes_since(seq)
    assert writes == []
    assert kit.images() == {"nginx:1.27": (3, 3), "nginx:1.26": (0, 0)}


async def test_a_verb_racing_the_end_of_the_run_gets_one_line(kit: Any, rollout_worker: None) -> None:
    """The run closes between the verb's lookup and its update: a CommandError, not the server's RPCError."""
    await kit.create(kit.seed(replicas=3))
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "100%")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.COMPLETED)
    handle = kit.ctx.client.get_workflow_handle(f"rollout/{kit.namespace}/nginx")
    with pytest.raises(CommandError) as info:
        await update_or_signal(handle, UPDATE_UNDO_NOW, SIGNAL_UNDO, UndoSignal(by="t"), RolloutStatus)
    assert str(info.value).startswith(f"rollout rollout/{kit.namespace}/nginx finished while the request")
    assert "\n" not in str(info.value)
