"""One cluster's API down (kubesim answers every prod request with 503): the prod target fails at its
progress deadline instead of retrying forever, the failure policy applies, and the other clusters see
no rollout write unless the policy asks for a rollback."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import PendingActivityState

from connect import WORKER_USER_AGENT
from kubesim.testing import api_client_for
from tests.helpers.cluster import Kit
from tests.helpers.poll import assert_eventually
from tests.helpers.release import Fleet, active_hashes, release_yaml
from tests.helpers.release_safety import start_fast
from tests.helpers.worker import in_process_worker
from workflows.model import Phase, ReleasePhase, RolloutStatus, StepState, TargetState, task_queue_for

DEADLINE = 3
DOWN = {"errorRate": 1.0, "errorCodes": [503]}


def _wave(name: str, cluster: str, ns: str) -> dict[str, object]:
    return {"name": name, "targets": [{"cluster": cluster, "namespace": ns, "deployment": "nginx"}]}


def _rs_writes(fleet: Fleet, cluster: str, ns: str, since: float = 0) -> list[dict[str, object]]:
    return [
        e
        for e in fleet.worker_writes(cluster, ns)
        if e["resource"] == "replicasets" and float(e["ts"]) > since  # type: ignore[arg-type]
    ]


@pytest.mark.parametrize(("rollback", "phase"), [("none", "Failed"), ("previousWaves", "RolledBack")])
async def test_one_cluster_api_down_fails_its_target_at_the_deadline(
    fleet: Fleet, tmp_path: Path, rollback: str, phase: str
) -> None:
    ns = fleet.namespace(f"down-{rollback.lower()}")
    for cluster in ("dev", "staging"):
        await fleet.deploy(cluster, ns)
    # Ready in 1.5 s, well within the deadline: only the outage can make this step miss it.
    await fleet.deploy("prod", ns, pod_annotations={"kubesim.io/ready-delay": "1.5"})
    before = {c: active_hashes(fleet, c, ns) for c in ("dev", "staging", "prod")}
    doc = release_yaml(
        "down",
        [_wave("dev", "dev", ns), _wave("prod", "prod", ns), _wave("staging", "staging", ns)],
        failurePolicy={"onTargetFailure": "halt", "rollback": rollback},
    )
    doc["spec"]["defaults"]["progressDeadline"] = f"{DEADLINE}s"
    rid = f"down-{ns}"
    queue = f"release-down-{uuid.uuid4().hex[:8]}"
    child = fleet.client.get_workflow_handle(f"rollout/prod/{ns}/nginx")
    apis = {n: api_client_for(str(s.kubeconfig), WORKER_USER_AGENT) for n, s in fleet.sims.items()}
    prod = fleet.sims["prod"]
    try:
        async with (
            in_process_worker(fleet.client, apis["dev"], queue),
            in_process_worker(fleet.client, apis["dev"], task_queue_for("dev", queue)),
            in_process_worker(fleet.client, apis["staging"], task_queue_for("staging", queue)),
            in_process_worker(fleet.client, apis["prod"], task_queue_for("prod", queue)),
        ):
            await start_fast(fleet, doc, rid, tmp_path / "r.yaml", queue)

            async def prod_mid_batch() -> bool:
                try:
                    st = await child.query(
                        "status", result_type=RolloutStatus, rpc_timeout=timedelta(seconds=3)
                    )
                    desc = await child.describe()
                except Exception:  # noqa: BLE001 - the prod child has not started yet
                    return False
                started = PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
                return st.step_state == StepState.STEP_UPGRADE and any(
                    p.activity_type.name == "converge_step" and p.state == started
                    for p in desc.raw_description.pending_activities
                )

            await assert_eventually(prod_mid_batch, timeout=60, interval=0.05, message="prod mid-batch")
            prod.set_faults(**DOWN)
            down_at = time.time()

            async def failed_at_deadline() -> RolloutStatus | None:
                st = await child.query("status", result_type=RolloutStatus)
                text = st.message.lower()
                return st if "timed out progressing" in text or "rolled back" in text else None

            st = await assert_eventually(
                failed_at_deadline, timeout=DEADLINE + 20, interval=0.1, message="prod past its deadline"
            )
            seen_at = time.time()
            assert st.phase != Phase.COMPLETED, st.message
            # Still down: the release waits for the prod child's rollback; nothing else moved.
            assert (await fleet.status(rid)).waves[2].targets[0].state == TargetState.PENDING
            assert _rs_writes(fleet, "dev", ns, down_at) == []
            prod.clear_faults()
            final = await fleet.wait_phase(rid, ReleasePhase.FAILED, ReleasePhase.ROLLED_BACK, timeout=90)
    finally:
        prod.clear_faults()
        for api in apis.values():
            api.close()
    print(f"\nprod API down -> target past its {DEADLINE} s deadline: {seen_at - down_at:.1f} s")
    assert seen_at - down_at < DEADLINE + 12  # the deadline, plus at most one retry interval (10 s)
    assert final.phase.value == phase, final.message
    target = final.waves[1].targets[0]
    assert target.state == TargetState.FAILED and "rolled back" in target.message, target.message
    assert "timed out progressing" in target.message and f"after {DEADLINE} seconds" in target.message
    assert active_hashes(fleet, "prod", ns) == before["prod"]
    Kit.assert_handed_back(fleet.deployment("prod", ns), "nginx:1.26")
    # staging never started: handed back untouched, no ReplicaSet write.
    assert final.waves[2].targets[0].state == TargetState.SKIPPED
    assert _rs_writes(fleet, "staging", ns) == []
    assert active_hashes(fleet, "staging", ns) == before["staging"]
    Kit.assert_handed_back(fleet.deployment("staging", ns), "nginx:1.26")
    dev_after = _rs_writes(fleet, "dev", ns, down_at)
    if rollback == "none":
        assert dev_after == [], dev_after  # dev keeps the new template: untouched by the failure
        assert final.waves[0].targets[0].state == TargetState.COMPLETED
        assert active_hashes(fleet, "dev", ns) != before["dev"]
        Kit.assert_handed_back(fleet.deployment("dev", ns), "nginx:1.27")
    else:
        assert dev_after != []
        assert final.waves[0].targets[0].state == TargetState.ROLLED_BACK
        assert active_hashes(fleet, "dev", ns) == before["dev"]
        Kit.assert_handed_back(fleet.deployment("dev", ns), "nginx:1.26")
