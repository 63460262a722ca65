"""SIGKILL of a cluster's worker (``rollout-worker --cluster prod``, a separate process) during a batch,
during a pause and during a bake: the release completes, no step is applied twice, no child twice."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client

from connect import WORKER_USER_AGENT
from kube.client import Kube
from kubesim.testing import api_client_for
from tests.helpers.cluster import Kit, ReplicaSetSampler
from tests.helpers.durability import WorkerLauncher, WorkerProcess
from tests.helpers.poll import assert_eventually
from tests.helpers.release import Fleet, release_yaml
from tests.helpers.release_safety import child_starts, converge_summaries, history, runs, start_fast
from tests.helpers.worker import in_process_worker
from workflows.model import Phase, ReleasePhase, RolloutStatus, StepState, TargetState

NAMES = ("web-a", "web-b")
PROD = {"ROLLOUT_CLUSTER": "prod"}  # `rollout-worker --cluster prod`: queue <base>-prod, context prod


async def _status(client: Client, wid: str) -> RolloutStatus | None:
    try:
        st: RolloutStatus = await client.get_workflow_handle(wid).query(
            "status", result_type=RolloutStatus, rpc_timeout=timedelta(seconds=3)
        )
        return st
    except Exception:  # noqa: BLE001 - not started yet, or no worker answers (killed)
        return None


async def test_sigkill_of_a_cluster_worker_during_batch_pause_and_bake(fleet: Fleet, tmp_path: Path) -> None:
    ns = fleet.namespace("kill")
    slow = {"kubesim.io/ready-delay": "1"}  # each batch waits for its pods: a kill lands mid-batch
    for name in NAMES:
        await fleet.deploy("prod", ns, name=name, replicas=4, pod_annotations=slow)
    queue = f"release-kill-{uuid.uuid4().hex[:8]}"
    doc = release_yaml(
        "kill",
        [
            {
                "name": "a",
                "targets": [{"cluster": "prod", "namespace": ns, "deployment": "web-a"}],
                "bake": "3s",
            },
            {
                "name": "b",
                "steps": "100%",
                "targets": [{"cluster": "prod", "namespace": ns, "deployment": "web-b"}],
            },
        ],
    )
    doc["spec"]["defaults"].update(steps="1,50%,100%", pause="2s")
    rid = f"kill-{ns}"
    wid = {n: f"rollout/prod/{ns}/{n}" for n in NAMES}
    address = str(fleet.client.service_client.config.target_host)
    launcher = WorkerLauncher(address, fleet.kubeconfig, tmp_path)
    release_api = api_client_for(str(fleet.sims["dev"].kubeconfig), WORKER_USER_AGENT)
    kills: list[str] = []

    began = time.monotonic()

    async def kill_and_replace(worker: WorkerProcess, when: str) -> WorkerProcess:
        worker.kill()
        kills.append(f"{when} at {time.monotonic() - began:.1f} s")
        return await launcher.start(queue, PROD)

    try:
        async with in_process_worker(fleet.client, release_api, queue):  # the release's own queue
            worker = await launcher.start(queue, PROD)
            with ReplicaSetSampler(fleet.apis["prod"], ns) as sampler:
                await start_fast(fleet, doc, rid, tmp_path / "r.yaml", queue)

                async def mid_batch() -> int | None:
                    st = await _status(fleet.client, wid["web-a"])
                    if st is None or st.step_state != StepState.STEP_UPGRADE or st.current_step_index < 1:
                        return None
                    desc = await fleet.client.get_workflow_handle(wid["web-a"]).describe()
                    started = PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
                    busy = any(
                        p.activity_type.name == "converge_step" and p.state == started
                        for p in desc.raw_description.pending_activities
                    )
                    return st.current_step_index if busy else None

                step = await assert_eventually(
                    mid_batch, timeout=60, interval=0.05, message="web-a mid-batch"
                )
                worker = await kill_and_replace(worker, f"batch of step {step}")

                async def paused() -> int | None:
                    st = await _status(fleet.client, wid["web-a"])
                    return st.current_step_index if st and st.phase == Phase.PAUSED else None

                step = await assert_eventually(paused, timeout=60, interval=0.05, message="web-a paused")
                worker = await kill_and_replace(worker, f"pause after step {step}")
                st = await fleet.wait_phase(rid, ReleasePhase.BAKING, timeout=90)
                assert st.current_wave == 1, st
                worker = await kill_and_replace(worker, "bake of wave a")
                final = await fleet.wait_phase(rid, ReleasePhase.COMPLETED, ReleasePhase.FAILED, timeout=120)
    finally:
        launcher.stop_all()
        release_api.close()
    print(
        f"\nkilled `rollout-worker --cluster prod` during: {kills}; done at {time.monotonic() - began:.1f} s"
    )
    assert final.phase == ReleasePhase.COMPLETED, final.message
    assert [t.state for w in final.waves for t in w.targets] == [TargetState.COMPLETED] * 2
    for name in NAMES:
        Kit.assert_handed_back(fleet.deployment("prod", ns, name), "nginx:1.27")
    # The API audit: one canary ReplicaSet per Deployment, created once (a POST names no object in its
    # path, so the count is per namespace); the ReplicaSets listed: each Deployment's stable and canary.
    creates = [
        e
        for e in fleet.worker_writes("prod", ns)
        if e["verb"] == "create" and e["resource"] == "replicasets" and e["code"] == 201
    ]
    assert len(creates) == len(NAMES), creates
    rss = Kube(fleet.apis["prod"]).list_replica_sets(ns)
    assert sorted(rs["metadata"]["name"].rsplit("-", 1)[0] for rs in rss) == [
        "web-a",
        "web-a",
        "web-b",
        "web-b",
    ]
    # No step applied twice: each step's converge was scheduled once, in step order, and web-a's canary
    # only ever grew (a step applied again after a later one would shrink it back).
    for name, expected in (("web-a", ["step 1", "step 2", "step 3"]), ("web-b", ["step 1"])):
        steps = converge_summaries(await history(fleet.client, wid[name]))
        assert [s.split(" for ")[-1].split(":")[0] for s in steps] == expected, steps
    canary = next(rs["metadata"]["name"] for rs in rss if rs["metadata"]["name"].startswith("web-a-")
                  and rs["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27")  # fmt: skip
    sizes = [state[canary][0] for _, _, state in sampler.samples if canary in state]
    assert sampler.error is None and sizes, sampler.error
    assert sizes == sorted(sizes), sizes
    # No duplicate child: one start command per target in the release's history, one run of each.
    assert sorted(child_starts(await history(fleet.client, f"release/{rid}"))) == sorted(wid.values())
    for w in wid.values():
        assert await runs(fleet.client, w) == 1, w
    assert len(kills) == 3
