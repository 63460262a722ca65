"""Release waves on three kubesim clusters: order, bake, policies, approval (see docs/releases.md)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.cluster import Kit
from tests.helpers.release import Fleet, active_hashes, release_yaml
from workflows.model import ReleasePhase, TargetState, WaveState

BAKE = 2.0


def _wave(name: str, *targets: tuple[str, str], **extra: object) -> dict[str, object]:
    return {
        "name": name,
        "targets": [{"cluster": c, "namespace": ns, "deployment": "nginx"} for c, ns in targets],
        **extra,
    }


async def test_happy_path_waves_in_order_with_bake(fleet: Fleet, tmp_path: Path) -> None:
    ns = fleet.namespace("happy")
    for cluster in ("dev", "staging", "prod"):
        await fleet.deploy(cluster, ns)
    doc = release_yaml(
        "happy",
        [
            _wave("dev", ("dev", ns), bake=f"{BAKE:g}s"),
            _wave("staging", ("staging", ns), bake=f"{BAKE:g}s"),
            _wave("prod", ("prod", ns)),
        ],
    )
    rid = f"happy-{ns}"
    rc, out, err = await fleet.cli("release", "start", "-f", fleet.write(tmp_path / "r.yaml", doc), "--id", rid)
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
    # The audit: no worker write of wave N+1 before wave N's last write plus its bake.
    first = {c: fleet.worker_writes(c, ns)[0]["ts"] for c in ("dev", "staging", "prod")}
    dev_held = max(e["ts"] for e in fleet.worker_writes("dev", ns) if e["ts"] < first["staging"])
    staging_held = max(e["ts"] for e in fleet.worker_writes("staging", ns) if e["ts"] < first["prod"])
    assert first["staging"] >= dev_held + BAKE
    assert first["prod"] >= staging_held + BAKE
    # The tree shows every wave and target.
    rc, out, err = await fleet.cli("release", "status", rid)
    assert rc == 0, err
    assert "wave dev" in out and f"prod/{ns}/nginx" in out and "Completed" in out
