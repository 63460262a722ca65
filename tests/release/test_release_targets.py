"""`rollout status|approve|undo|history --cluster` on the targets of a release (see docs/releases.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from temporalio.service import RPCError

from tests.helpers.cluster import Kit
from tests.helpers.poll import assert_eventually
from tests.helpers.release import Fleet, capture, release_yaml
from workflows.model import Phase, ReleasePhase, RolloutStatus, TargetState


async def test_target_verbs_by_cluster_and_undo_of_one_target(fleet: Fleet, tmp_path: Path) -> None:
    ns = fleet.namespace("verbs")
    names = ["web-a", "web-b"]
    for name in names:
        await fleet.deploy("prod", ns, name=name)
    doc = release_yaml(
        "verbs",
        [{"name": "prod", "targets": [{"cluster": "prod", "namespace": ns, "deployment": n} for n in names]}],
    )
    doc["spec"]["defaults"]["pause"] = "10m"  # each target waits at step 1 until approved
    rid = f"verbs-{ns}"
    rc, _, err = await fleet.cli("release", "start", "-f", fleet.write(tmp_path / "r.yaml", doc), "--id", rid)
    assert rc == 0, err

    async def paused(name: str) -> bool:
        try:
            st = await fleet.client.get_workflow_handle(f"rollout/prod/{ns}/{name}").query(
                "status", result_type=RolloutStatus
            )
        except RPCError:  # not started yet
            return False
        return st.phase == Phase.PAUSED and st.current_step_index == 1

    for name in names:
        await assert_eventually(lambda n=name: paused(n), timeout=60, message=f"{name} paused at step 1")

    rc, out, err = await fleet.cli("status", "web-a", "-n", ns, "--cluster", "prod")
    assert rc == 0, err
    assert f"Rollout:   rollout/prod/{ns}/web-a" in out
    assert f"Release:   part of release {rid}, wave 1 (prod)" in out
    rc, out, err = await fleet.cli("status", "web-a", "-n", ns, "--cluster", "prod", "-o", "json")
    assert rc == 0, err
    assert json.loads(out)["release"] == {"id": rid, "wave": 1, "waveName": "prod"}
    # Without --cluster the default ID rollout/<ns>/<name> is meant, as before: there is none.
    rc, _, err = await fleet.cli("status", "web-a", "-n", ns, "--context", "prod")
    assert rc == 1 and f"(workflow rollout/{ns}/web-a)" in err, err

    rc, out, err = await fleet.cli("approve", "web-a", "-n", ns, "--cluster", "prod", "--by", "dana")
    assert rc == 0, err
    assert f"approved step 1/2 of rollout rollout/prod/{ns}/web-a (part of release {rid}, wave 1" in out

    async def a_held() -> bool:
        st = await fleet.status(rid)
        return st.waves[0].targets[0].state == TargetState.HELD

    await assert_eventually(a_held, timeout=60, message="web-a held at 100%")

    # Undo of one target: that target alone rolls back, and the release counts it as failed
    # (maxFailures 0, rollback none: the release fails, web-a is handed back on the new template).
    rc, out, err = await fleet.cli("undo", "web-b", "-n", ns, "--cluster", "prod", "--by", "dana")
    assert rc == 0, err
    assert f"undo requested for rollout rollout/prod/{ns}/web-b" in out
    assert f"part of release {rid}, wave 1 (prod): the release counts it as a failed target" in out
    st = await fleet.wait_phase(rid, ReleasePhase.FAILED, ReleasePhase.COMPLETED, ReleasePhase.ROLLED_BACK)
    assert st.phase == ReleasePhase.FAILED
    a, b = st.waves[0].targets
    assert (a.state, b.state) == (TargetState.COMPLETED, TargetState.FAILED)
    assert b.message == "rolled back by `rollout undo`"
    Kit.assert_handed_back(fleet.deployment("prod", ns, "web-b"), "nginx:1.26")
    Kit.assert_handed_back(fleet.deployment("prod", ns, "web-a"), "nginx:1.27")

    if os.environ.get("ROLLOUT_CAPTURE_RELEASE"):  # recapture the committed replay history (by hand)
        await capture(fleet, f"release/{rid}", "release_user_undo")
    rc, _, err = await fleet.cli("undo", "web-b", "-n", ns, "--cluster", "prod", "--to-revision", "1")
    assert rc == 1 and "--to-revision starts a new plain rollout" in err, err
    rc, out, err = await fleet.cli("history", "web-b", "-n", ns, "--cluster", "prod")
    assert rc == 0, err
    assert "nginx=nginx:1.26->nginx:1.27" in out and len(out.splitlines()) == 2
