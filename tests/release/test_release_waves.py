"""Release waves on three kubesim clusters: order, bake, policies, approval (see docs/releases.md). The happy
path and the last-wave failure also run with prod on the real control plane (``fleet_on`` = ``real``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from temporalio.service import RPCError

from tests.helpers.cluster import Kit
from tests.helpers.poll import assert_eventually, assert_holds
from tests.helpers.release import Fleet, active_hashes, release_yaml
from workflows.model import (
    SA_CLUSTER_KEY,
    SA_RELEASE_WAVE_KEY,
    Phase,
    ReleasePhase,
    RolloutStatus,
    TargetState,
    WaveState,
)

BAKE = 2.0
HISTORIES = Path(__file__).resolve().parent / "histories"


def _wave(name: str, *targets: tuple[str, str], **extra: object) -> dict[str, object]:
    return {
        "name": name,
        "targets": [{"cluster": c, "namespace": ns, "deployment": "nginx"} for c, ns in targets],
        **extra,
    }


ON_BOTH = pytest.mark.parametrize("fleet_on", ["kubesim", "real"], indirect=True)


@ON_BOTH
async def test_happy_path_waves_in_order_with_bake(fleet_on: Fleet, tmp_path: Path) -> None:
    fleet = fleet_on
    ns = fleet.namespace("happy")
    for cluster in ("dev", "staging", "prod"):
        await fleet.deploy(cluster, ns)
    before = {c: active_hashes(fleet, c, ns) for c in ("dev", "staging", "prod")}
    doc = release_yaml(
        "happy",
        [
            _wave("dev", ("dev", ns), bake=f"{BAKE:g}s"),
            _wave("staging", ("staging", ns), bake=f"{BAKE:g}s"),
            _wave("prod", ("prod", ns)),
        ],
    )
    rid = f"happy-{ns}"
    path = fleet.write(tmp_path / "r.yaml", doc)
    rc, out, err = await fleet.cli("release", "start", "-f", path, "--id", rid)
    assert rc == 0, err
    assert f"release {rid} started: 3 waves, 3 targets" in out
    rc, out, err = await fleet.cli("release", "status", rid, "-w", "-o", "json")
    assert rc == 0, err
    final = json.loads(out.strip().splitlines()[-1])
    assert final["phase"] == "Completed"
    assert [w["state"] for w in final["waves"]] == ["Succeeded"] * 3
    assert all(t["state"] == "Completed" for w in final["waves"] for t in w["targets"])
    for cluster in ("dev", "staging", "prod"):
        dep = fleet.deployment(cluster, ns)
        Kit.assert_handed_back(dep, "nginx:1.27")
        # One live ReplicaSet per target, the new template's (not the pre-release one).
        after = active_hashes(fleet, cluster, ns)
        assert len(after) == 1 and after != before[cluster], (cluster, before[cluster], after)
    # The audit: no worker write of wave N+1 before wave N's last write plus its bake.
    first = {c: min(e["ts"] for e in fleet.worker_writes(c, ns)) for c in ("dev", "staging", "prod")}
    dev_held = max(e["ts"] for e in fleet.worker_writes("dev", ns) if e["ts"] < first["staging"])
    staging_held = max(e["ts"] for e in fleet.worker_writes("staging", ns) if e["ts"] < first["prod"])
    assert first["staging"] >= dev_held + BAKE
    assert first["prod"] >= staging_held + BAKE
    # Visibility: ReleaseId lists the release and every target, each with its Cluster and wave.

    async def listed() -> list[tuple[str, str, int]] | None:
        rows = []
        async for wf in fleet.client.list_workflows(f'ReleaseId="{rid}"'):
            sa = wf.typed_search_attributes
            rows.append((wf.id, sa.get(SA_CLUSTER_KEY) or "", sa.get(SA_RELEASE_WAVE_KEY) or 0))
        return sorted(rows) if len(rows) == 4 else None

    assert await assert_eventually(listed, timeout=20, message="ReleaseId lists 4 workflows") == [
        (f"release/{rid}", "", 3),
        (f"rollout/dev/{ns}/nginx", "dev", 1),
        (f"rollout/prod/{ns}/nginx", "prod", 3),
        (f"rollout/staging/{ns}/nginx", "staging", 2),
    ]
    # Recapture the committed replay histories (by hand), from the all-kubesim fleet only.
    if os.environ.get("ROLLOUT_CAPTURE_RELEASE") and not fleet.real:
        HISTORIES.mkdir(exist_ok=True)
        for wid, name in ((f"release/{rid}", "release_happy"), (f"rollout/dev/{ns}/nginx", "release_target")):
            history = await fleet.client.get_workflow_handle(wid).fetch_history()
            (HISTORIES / f"{name}.json").write_text(history.to_json())
    # The tree shows every wave and target.
    rc, out, err = await fleet.cli("release", "status", rid)
    assert rc == 0, err
    assert "wave dev" in out and f"prod/{ns}/nginx" in out and "Completed" in out


# The canary misses a 2 s progress deadline; stable pods stay (both kubelets honour the annotation).
SLOW = {"kubesim.io/ready-delay": "6"}


@pytest.mark.parametrize(
    ("fleet_on", "rollback", "phase", "code"),
    [
        ("kubesim", "previousWaves", "RolledBack", 3),
        ("kubesim", "none", "Failed", 4),
        ("real", "previousWaves", "RolledBack", 3),
    ],
    indirect=["fleet_on"],
)
async def test_last_wave_failure_and_the_rollback_policy(
    fleet_on: Fleet, tmp_path: Path, rollback: str, phase: str, code: int
) -> None:
    fleet = fleet_on
    ns = fleet.namespace(f"fail-{rollback.lower()}")
    await fleet.deploy("dev", ns)
    await fleet.deploy("staging", ns)
    await fleet.deploy("prod", ns, pod_annotations=SLOW)
    before = {c: active_hashes(fleet, c, ns) for c in ("dev", "staging", "prod")}
    doc = release_yaml(
        "fail",
        [
            _wave("dev", ("dev", ns), bake="1s"),
            _wave("staging", ("staging", ns), bake="1s"),
            _wave("prod", ("prod", ns)),
        ],
        failurePolicy={"onTargetFailure": "halt", "rollback": rollback},
    )
    doc["spec"]["defaults"]["progressDeadline"] = "2s"
    rid = f"fail-{ns}"
    path = fleet.write(tmp_path / "r.yaml", doc)
    rc, _, err = await fleet.cli("release", "start", "-f", path, "--id", rid)
    assert rc == 0, err
    rc, out, err = await fleet.cli("release", "status", rid, "-w", "-o", "json")
    assert rc == code, err
    assert f"release {rid} ended {phase}" in err
    final = json.loads(out.strip().splitlines()[-1])
    assert final["phase"] == phase
    prod = final["waves"][2]
    assert prod["state"] == "Failed" and prod["failures"] == 1
    assert prod["targets"][0]["state"] == "Failed"
    assert "rolled back" in prod["targets"][0]["message"]
    assert active_hashes(fleet, "prod", ns) == before["prod"]  # the failed target rolled itself back
    Kit.assert_handed_back(fleet.deployment("prod", ns), "nginx:1.26")
    for cluster in ("dev", "staging"):
        states = [w["targets"][0]["state"] for w in final["waves"] if w["targets"][0]["cluster"] == cluster]
        if rollback == "previousWaves":
            assert states == ["RolledBack"]
            assert active_hashes(fleet, cluster, ns) == before[cluster]  # the pre-release pod-template-hash
            Kit.assert_handed_back(fleet.deployment(cluster, ns), "nginx:1.26")
        else:
            assert states == ["Completed"]
            assert active_hashes(fleet, cluster, ns) != before[cluster]
            Kit.assert_handed_back(fleet.deployment(cluster, ns), "nginx:1.27")
    # The audit: the failed prod target rolls itself back before the release unwinds, then the earlier
    # waves' ReplicaSets go back newest first (staging, then dev). Under `none` their ReplicaSets stay
    # untouched once prod began; only the hand-back writes their Deployments.
    prod = [e["ts"] for e in fleet.worker_writes("prod", ns)]
    scaled = {
        c: [
            e["ts"]
            for e in fleet.worker_writes(c, ns)
            if e["resource"] == "replicasets" and e["ts"] > min(prod)
        ]
        for c in ("dev", "staging")
    }
    if rollback == "previousWaves":
        assert scaled["staging"] and scaled["dev"], scaled
        assert max(prod) < min(scaled["staging"]), (prod, scaled)
        assert max(scaled["staging"]) < min(scaled["dev"]), scaled
    else:
        assert scaled == {"dev": [], "staging": []}, scaled


async def test_max_parallel_one_runs_one_target_at_a_time(fleet: Fleet, tmp_path: Path) -> None:
    ns = fleet.namespace("parallel")
    names = ["web-a", "web-b", "web-c"]
    for name in names:
        await fleet.deploy("prod", ns, name=name)
    doc = release_yaml(
        "par",
        [
            {
                "name": "prod",
                "maxParallel": 1,
                "targets": [{"cluster": "prod", "namespace": ns, "deployment": n} for n in names],
            }
        ],
    )
    rid = f"par-{ns}"
    path = fleet.write(tmp_path / "r.yaml", doc)
    rc, _, err = await fleet.cli("release", "start", "-f", path, "--id", rid)
    assert rc == 0, err
    await fleet.wait_phase(rid, ReleasePhase.COMPLETED)
    # Each target's ReplicaSet scale writes (canary up, stable down) form one interval; the hand-back at
    # the release's end writes the Deployment only. No two intervals overlap.
    spans = []
    for name in names:
        ts = [
            e["ts"]
            for e in fleet.worker_writes("prod", ns)
            if e["resource"] == "replicasets" and str(e["name"] or "").startswith(f"{name}-")
        ]
        assert ts, f"no ReplicaSet write for {name}"
        spans.append((min(ts), max(ts)))
    spans.sort()
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start > end, spans
    for name in names:
        Kit.assert_handed_back(fleet.deployment("prod", ns, name), "nginx:1.27")


async def test_approval_gates_refusals_and_timeout(fleet: Fleet, tmp_path: Path) -> None:
    ns = fleet.namespace("approval")
    for cluster in ("dev", "staging", "prod"):
        await fleet.deploy(cluster, ns)
    staging_before = active_hashes(fleet, "staging", ns)
    gate = {"required": True, "timeout": "60s"}
    doc = release_yaml(
        "gates",
        [
            _wave("dev", ("dev", ns)),
            _wave("staging", ("staging", ns), approval=gate),
            _wave("prod", ("prod", ns), approval={"required": True}),
        ],
    )
    rid = f"gates-{ns}"
    rc, _, err = await fleet.cli("release", "start", "-f", fleet.write(tmp_path / "r.yaml", doc), "--id", rid)
    assert rc == 0, err
    st = await fleet.wait_phase(rid, ReleasePhase.WAITING_APPROVAL)
    assert st.current_wave == 2 and st.waves[0].state == WaveState.SUCCEEDED
    # Nothing touched staging but the CLI's hold: no ReplicaSet, no worker write.
    assert fleet.worker_writes("staging", ns) == []
    assert active_hashes(fleet, "staging", ns) == staging_before
    for wave, why in (
        ("prod", "is not waiting for approval (wave staging waits for approval)"),
        ("dev", "needs no approval"),
        ("qa", "has no wave 'qa'"),
    ):
        rc, out, err = await fleet.cli("release", "approve", rid, "--wave", wave)
        assert rc == 1 and out == "", (wave, err)
        assert why in err and err.count("\n") == 1, err
    rc, out, err = await fleet.cli("release", "approve", rid, "--wave", "staging", "--by", "alice")
    assert rc == 0, err
    assert "wave staging of release" in out
    rc, _, err = await fleet.cli("release", "approve", rid, "--wave", "staging")
    assert rc == 1 and "already approved by alice" in err
    st = await fleet.wait_phase(rid, ReleasePhase.WAITING_APPROVAL, ReleasePhase.COMPLETED)
    await fleet.wait_phase(rid, ReleasePhase.WAITING_APPROVAL)
    assert fleet.worker_writes("prod", ns) == []
    rc, _, err = await fleet.cli("release", "approve", rid, "--wave", "prod")
    assert rc == 0, err
    st = await fleet.wait_phase(rid, ReleasePhase.COMPLETED)
    assert [w.approved_by for w in st.waves][1:] != ["", ""]


async def test_approval_timeout_halts_late_approval_refused_then_abort(fleet: Fleet, tmp_path: Path) -> None:
    ns = fleet.namespace("timeout")
    await fleet.deploy("dev", ns)
    doc = release_yaml("late", [_wave("dev", ("dev", ns), approval={"required": True, "timeout": "1s"})])
    rid = f"late-{ns}"
    rc, _, err = await fleet.cli("release", "start", "-f", fleet.write(tmp_path / "r.yaml", doc), "--id", rid)
    assert rc == 0, err
    assert fleet.deployment("dev", ns)["spec"]["paused"] is True  # held by the CLI's write
    st = await fleet.wait_phase(rid, ReleasePhase.HALTED)
    assert "timed out" in st.message
    rc, _, err = await fleet.cli("release", "approve", rid, "--wave", "dev")
    assert rc == 1 and "the approval of wave dev timed out at" in err, err
    rc, out, err = await fleet.cli("release", "abort", rid, "--rollback", "none")
    assert rc == 0, err
    rc, _, err = await fleet.cli("release", "status", rid, "-w")
    assert rc == 5, err
    st = await fleet.status(rid)
    assert st.phase == ReleasePhase.ABORTED
    assert st.waves[0].targets[0].state == TargetState.SKIPPED
    # Never started: handed back untouched, on its old template, and no worker ReplicaSet write.
    Kit.assert_handed_back(fleet.deployment("dev", ns), "nginx:1.26")
    assert [e for e in fleet.worker_writes("dev", ns) if e["resource"] == "replicasets"] == []


async def test_bad_input_is_one_line_and_writes_nothing(fleet: Fleet, tmp_path: Path) -> None:
    ns = fleet.namespace("bad")
    await fleet.deploy("dev", ns)
    await fleet.deploy("staging", ns)
    cases = [
        ([_wave("dev", ("nowhere", ns))], 'has no context "nowhere"'),
        ([_wave("dev", ("dev", ns)), _wave("staging", ("staging", "ghost-ns"))], "not found"),
        ([_wave("dev", ("dev", ns)), _wave("again", ("dev", ns))], "is listed twice"),
    ]
    for i, (waves, why) in enumerate(cases):
        path = fleet.write(tmp_path / f"bad{i}.yaml", release_yaml("bad", waves))
        rc, out, err = await fleet.cli("release", "start", "-f", path, "--id", f"bad{i}-{ns}")
        assert rc == 1 and out == "", err
        assert why in err and err.count("\n") == 1, err
    assert [fleet.writes(c, ns)[1:] for c in ("dev", "staging")] == [[], []]  # the seed's create only
    # A target already under a release: the second release is refused before any write.
    first = release_yaml("one", [_wave("dev", ("dev", ns), approval={"required": True})])
    rc, _, err = await fleet.cli(
        "release", "start", "-f", fleet.write(tmp_path / "one.yaml", first), "--id", f"one-{ns}"
    )
    assert rc == 0, err
    writes = len(fleet.writes("staging", ns))
    second = release_yaml("two", [_wave("staging", ("staging", ns)), _wave("dev", ("dev", ns))])
    rc, _, err = await fleet.cli(
        "release", "start", "-f", fleet.write(tmp_path / "two.yaml", second), "--id", f"two-{ns}"
    )
    assert rc == 1 and f"is already under rollout rollout/dev/{ns}/nginx" in err, err
    assert len(fleet.writes("staging", ns)) == writes
    rc, _, err = await fleet.cli("release", "abort", f"one-{ns}")
    assert rc == 0, err
    await fleet.wait_phase(f"one-{ns}", ReleasePhase.ABORTED)


async def test_halt_freezes_children_and_start_on_a_held_target_is_refused(
    fleet: Fleet, tmp_path: Path
) -> None:
    ns = fleet.namespace("halt")
    names = ["web-a", "web-b"]
    for name in names:
        await fleet.deploy("prod", ns, name=name)
    doc = release_yaml(
        "halt",
        [
            {
                "name": "prod",
                "maxParallel": 1,
                "targets": [{"cluster": "prod", "namespace": ns, "deployment": n} for n in names],
            }
        ],
    )
    doc["spec"]["defaults"]["pause"] = "2s"
    rid = f"halt-{ns}"
    rc, _, err = await fleet.cli("release", "start", "-f", fleet.write(tmp_path / "r.yaml", doc), "--id", rid)
    assert rc == 0, err
    child = fleet.client.get_workflow_handle(f"rollout/prod/{ns}/web-a")

    async def paused_at_step_1() -> RolloutStatus | None:
        try:
            st = await child.query("status", result_type=RolloutStatus)
        except RPCError:  # not started yet
            return None
        return st if st.phase == Phase.PAUSED and st.current_step_index == 1 else None

    await assert_eventually(paused_at_step_1, timeout=60, message="web-a paused at step 1")
    rc, out, err = await fleet.cli("release", "halt", rid, "--by", "carol")
    assert rc == 0 and "halted" in out, err
    rc, _, err = await fleet.cli("release", "halt", rid)
    assert rc == 1 and "already halted by carol" in err
    # A plain `rollout start` on a target the release holds is refused.
    rc, _, err = await fleet.cli(
        "start", "web-b", "--image", "nginx=nginx:1.28", "-n", ns, "--context", "prod"
    )
    assert rc == 1 and f"already under rollout rollout/prod/{ns}/web-b" in err, err

    async def frozen() -> bool:
        st = await child.query("status", result_type=RolloutStatus)
        rs_b = [e for e in fleet.worker_writes("prod", ns) if str(e["name"] or "").startswith("web-b-")]
        return st.current_step_index == 1 and "carol" in st.held_by and rs_b == []

    await assert_eventually(frozen, timeout=10, message="web-a held by the halt")
    await assert_holds(frozen, seconds=3, message="nothing moves while halted (the 2 s pause included)")
    assert (await fleet.status(rid)).phase == ReleasePhase.HALTED
    rc, _, err = await fleet.cli("release", "resume", rid)
    assert rc == 0, err
    st = await fleet.status(rid)
    assert st.phase != ReleasePhase.HALTED and st.halted_by == ""
    st = await fleet.wait_phase(rid, ReleasePhase.COMPLETED)
    assert [t.state for t in st.waves[0].targets] == [TargetState.COMPLETED] * 2


async def test_revert_rolls_every_target_forward_to_its_previous_template(
    fleet: Fleet, tmp_path: Path
) -> None:
    ns = fleet.namespace("revert")
    await fleet.deploy("dev", ns)
    await fleet.deploy("staging", ns)
    before = {c: active_hashes(fleet, c, ns) for c in ("dev", "staging")}
    doc = release_yaml(
        "rev", [_wave("dev", ("dev", ns), approval={"required": True}), _wave("staging", ("staging", ns))]
    )
    rid = f"rev-{ns}"
    rc, _, err = await fleet.cli("release", "start", "-f", fleet.write(tmp_path / "r.yaml", doc), "--id", rid)
    assert rc == 0, err
    await fleet.wait_phase(rid, ReleasePhase.WAITING_APPROVAL)
    rc, _, err = await fleet.cli("release", "revert", rid)
    assert rc == 1 and "is still running" in err, err
    rc, _, err = await fleet.cli("release", "approve", rid, "--wave", "dev")
    assert rc == 0, err
    await fleet.wait_phase(rid, ReleasePhase.COMPLETED)
    assert {fleet.image(c, ns) for c in ("dev", "staging")} == {"nginx:1.27"}
    rc, out, err = await fleet.cli("release", "revert", rid)
    assert rc == 0, err
    assert f"release {rid}-revert started: 2 waves, 2 targets" in out
    rc, _, err = await fleet.cli("release", "status", f"{rid}-revert", "-w")
    assert rc == 0, err
    for cluster in ("dev", "staging"):
        Kit.assert_handed_back(fleet.deployment(cluster, ns), "nginx:1.26")
        assert active_hashes(fleet, cluster, ns) == before[cluster]
    rc, _, err = await fleet.cli("release", "revert", rid)
    assert rc == 1 and "every target already runs its pre-release template" in err, err
