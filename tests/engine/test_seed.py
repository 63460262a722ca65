"""The seed scenario end to end: kubesim + real Temporal dev server + the CLI functions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from workflows.model import Phase, Reason, StepState, WaitingFor, workflow_id_for


@pytest.mark.clusters
async def test_seed_scenario(kit: Any, rollout_worker: None) -> None:
    ns = kit.namespace
    await kit.create(kit.seed())
    with kit.sampler() as sampler:
        rc, out, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,50%,100%")
        assert rc == 0, err
        assert f"rollout/{ns}/nginx" in out
        assert f"http://localhost:8233/namespaces/default/workflows/rollout%2F{ns}%2Fnginx" in out

        st = await kit.wait_phase("nginx", Phase.PAUSED, 1)
        assert st.step_state == StepState.STEP_PAUSED
        assert st.waiting_for == WaitingFor.APPROVAL and not st.finalizing
        assert kit.images() == {"nginx:1.27": (1, 1), "nginx:1.26": (9, 9)}
        assert (
            st.canary_replicas,
            st.canary_ready_replicas,
            st.stable_replicas,
            st.stable_ready_replicas,
        ) == (
            1,
            1,
            9,
            9,
        )
        assert st.message == Reason.MANUAL.format(i=1, n=3)
        # The Temporal UI: static summary, and current details that say how to approve.
        handle = kit.ctx.client.get_workflow_handle(workflow_id_for(ns, "nginx"))
        desc = await handle.describe()
        assert await desc.static_summary() == (
            f"Rollout {ns}/nginx: nginx: nginx:1.26 -> nginx:1.27 in steps 1, 50%, 100%"
        )
        metadata = await handle.query("__temporal_workflow_metadata")
        assert f"`rollout approve nginx -n {ns}`" in metadata.current_details
        assert "step 1/3" in metadata.current_details
        code, table, _ = kit.kubectl("get", "rs", "-n", ns, "-L", "pod-template-hash")
        assert code == 0 and st.canary_revision in table and st.stable_revision in table

        rc, out, err = await kit.cli("approve", "nginx", "--comment", "looks good")
        assert rc == 0, err
        assert "approved step 1/3" in out
        st = await kit.wait_phase("nginx", Phase.PAUSED, 2)
        assert kit.images() == {"nginx:1.27": (5, 5), "nginx:1.26": (5, 5)}

        rc, out, err = await kit.cli("approve", "nginx")
        assert rc == 0, err
        st = await kit.wait_phase("nginx", Phase.COMPLETED)
        assert st.step_state == StepState.COMPLETED
        assert kit.images() == {"nginx:1.27": (10, 10), "nginx:1.26": (0, 0)}
        assert [a.step for a in st.approvals] == [1, 2]
        assert st.approvals[0].comment == "looks good"

    # The Deployment is handed back exactly as it was, on the new image.
    code, out, _ = kit.kubectl("get", "deployment", "nginx", "-n", ns, "-o", "json")
    dep = json.loads(out)
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert not dep["spec"].get("paused")
    assert dep["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
    }
    ours = [
        k
        for k in {**dep["metadata"].get("annotations", {}), **dep["metadata"].get("labels", {})}
        if k.startswith("rollouts.temporal.io/")
    ]
    assert ours == []
    code, out, err = kit.kubectl("rollout", "status", "deployment/nginx", "-n", ns, "--timeout=30s")
    assert code == 0, err
    assert "successfully rolled out" in out
    # The native controller adopted our canary ReplicaSet: no third ReplicaSet appeared.
    assert len(kit.images()) == 2

    # Surge / availability bounds at every sample of the ReplicaSet watch: <= 10 + 3 pods, >= 10 - 2 ready.
    assert sampler.error is None
    assert len(sampler.samples) > 5
    over = [s for s in sampler.samples if s[0] > 13]
    assert over == []
    under = [s for s in sampler.samples if s[1] < 8]
    assert under == []

    rc, out, err = await kit.cli("status", "nginx", "-o", "json")
    assert rc == 0, err
    data = json.loads(out)
    assert data["phase"] == "Completed" and data["currentStepIndex"] == 3 and data["totalSteps"] == 3
    assert data["canaryReplicas"] == 10 and data["stableReplicas"] == 0

    # Heartbeating waits keep the history small.
    history = await handle.fetch_history()
    assert len(history.events) < 250, len(history.events)
