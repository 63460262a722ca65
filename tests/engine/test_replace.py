"""Continuous release: a newer template while a rollout runs is refused, unless ``--replace`` is given."""

from __future__ import annotations

from typing import Any

import pytest

from workflows.model import Phase, StepState


@pytest.mark.clusters
async def test_start_while_running_is_refused_then_replace(kit: Any, rollout_worker: None) -> None:
    ns = kit.namespace
    await kit.create(kit.seed(replicas=4))
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,50%,100%")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)
    rc, _, err = await kit.cli("approve", "nginx")
    assert rc == 0, err
    first = await kit.wait_phase("nginx", Phase.PAUSED, 2)
    assert kit.images() == {"nginx:1.27": (2, 2), "nginx:1.26": (2, 2)}

    # Without --replace: refused, naming the running rollout; nothing written.
    seq = kit.audit_seq()
    rc, out, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.28")
    assert rc != 0 and out == "" and err.count("\n") == 1
    assert f"already under rollout rollout/{ns}/nginx" in err and "--replace" in err
    assert kit.writes_since(seq) == []

    # With --replace: the 1.27 canary goes to 0, 1.28 starts at step 1, the stable revision stays.
    rc, out, err = await kit.cli(
        "start", "nginx", "--image", "nginx=nginx:1.28", "--steps", "1,100%", "--replace"
    )
    assert rc == 0, err
    assert f"rollout rollout/{ns}/nginx retargeted" in out

    async def retargeted() -> Any:
        st = await kit.status("nginx")
        return st if st.superseded_revisions and st.phase == Phase.PAUSED else None

    st = await kit.eventually(retargeted, timeout=60, message="paused at step 1 of the replacement")
    assert st.current_step_index == 1 and st.total_steps == 2 and st.step_state == StepState.STEP_PAUSED
    assert st.superseded_revisions == [first.canary_revision]
    assert st.stable_revision == first.stable_revision
    assert st.canary_revision != first.canary_revision
    assert st.canary_images == {"nginx": "nginx:1.28"} and st.stable_images == {"nginx": "nginx:1.26"}
    assert kit.images() == {"nginx:1.28": (1, 1), "nginx:1.27": (0, 0), "nginx:1.26": (3, 3)}

    # The same template again is refused (it is already rolling out).
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.28", "--replace")
    assert rc != 0 and "already rolling out this template" in err
    # The stable template is refused too: that is an undo.
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.26", "--replace")
    assert rc != 0 and "is the stable revision" in err and "rollout undo" in err

    rc, _, err = await kit.cli("approve", "nginx")
    assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.COMPLETED)
    assert st.superseded_revisions == [first.canary_revision]
    assert kit.images() == {"nginx:1.28": (4, 4), "nginx:1.27": (0, 0), "nginx:1.26": (0, 0)}
    kit.assert_handed_back(kit.deployment(), "nginx:1.28")
    code, _, kerr = kit.kubectl("rollout", "status", "deployment/nginx", "-n", ns, "--timeout=30s")
    assert code == 0, kerr
    assert len(kit.images()) == 3  # no ReplicaSet created twice


async def test_replace_then_undo_returns_to_stable(kit: Any, rollout_worker: None) -> None:
    await kit.create(kit.seed(replicas=3))
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,100%")
    assert rc == 0, err
    first = await kit.wait_phase("nginx", Phase.PAUSED, 1)
    rc, _, err = await kit.cli(
        "start", "nginx", "--image", "nginx=nginx:1.28", "--steps", "1,100%", "--replace"
    )
    assert rc == 0, err

    async def replaced() -> Any:
        st = await kit.status("nginx")
        return st if st.superseded_revisions and st.phase == Phase.PAUSED else None

    st = await kit.eventually(replaced, timeout=60, message="paused at step 1 of the replacement")
    assert st.superseded_revisions == [first.canary_revision]
    rc, _, err = await kit.cli("undo", "nginx")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.ROLLED_BACK)
    assert kit.images() == {"nginx:1.28": (0, 0), "nginx:1.27": (0, 0), "nginx:1.26": (3, 3)}
    kit.assert_handed_back(kit.deployment(), "nginx:1.26")
