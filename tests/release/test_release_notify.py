"""Notifications per wave and per release (a Release file's `spec.notify`)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers.poll import assert_eventually
from tests.helpers.receiver import name_targets, receiving
from tests.helpers.release import Fleet, capture, release_yaml

SLOW = {"kubesim.io/ready-delay": "6"}  # the canary misses a 2 s progress deadline


async def test_each_wave_and_the_release_end_are_told(fleet: Fleet, tmp_path: Path) -> None:
    ns = fleet.namespace("notify")
    await fleet.deploy("dev", ns)
    await fleet.deploy("prod", ns, pod_annotations=SLOW)
    doc = release_yaml(
        "notify",
        [
            {
                "name": "dev",
                "bake": "1s",
                "targets": [{"cluster": "dev", "namespace": ns, "deployment": "nginx"}],
            },
            {"name": "prod", "targets": [{"cluster": "prod", "namespace": ns, "deployment": "nginx"}]},
        ],
        failurePolicy={"rollback": "previousWaves"},
        notify=["release-team"],
    )
    doc["spec"]["defaults"]["progressDeadline"] = "2s"
    rid = f"notify-{ns}"
    async with receiving() as rec:
        name_targets(**{"release-team": rec.url})
        rc, _, err = await fleet.cli(
            "release", "start", "-f", fleet.write(tmp_path / "r.yaml", doc), "--id", rid
        )
        assert rc == 0, err

        def mine() -> list[tuple[str, int, str]]:
            return [(b["event"], b["wave"], b["phase"]) for b in rec.bodies if b.get("releaseId") == rid]

        async def ended() -> bool:
            return any(e == "ReleaseEnded" for e, _, _ in mine())

        await assert_eventually(ended, timeout=90, interval=0.3, message="ReleaseEnded delivered")
        # A wave's completion and the next wave's start are sent together: their arrival order is free.
        assert sorted(mine()) == sorted(
            [
                ("WaveStarted", 1, "Progressing"),
                ("WaveCompleted", 1, "Baking"),
                ("WaveStarted", 2, "Progressing"),
                ("WaveFailed", 2, "Progressing"),
                ("ReleaseEnded", 0, "RolledBack"),
            ]
        )
        assert mine()[0] == ("WaveStarted", 1, "Progressing") and mine()[-1][0] == "ReleaseEnded"
        by_event = {b["event"]: b for b in rec.bodies if b.get("releaseId") == rid}
        failed = by_event["WaveFailed"]
        assert failed["waveName"] == "prod" and failed["totalWaves"] == 2
        assert failed["text"].startswith(f"Release {rid}: wave prod (2/2) failed: wave prod failed (1 of 1")
        assert by_event["ReleaseEnded"]["text"].startswith(f"Release {rid}: ended RolledBack: ")
        assert f"release%2F{rid}" in by_event["ReleaseEnded"]["uiUrl"]
    if os.environ.get("ROLLOUT_CAPTURE_RELEASE"):  # recapture the committed replay history (by hand)
        await capture(fleet, f"release/{rid}", "release_notify")


async def test_a_bad_notify_name_is_refused(fleet: Fleet, tmp_path: Path) -> None:
    ns = fleet.namespace("notify-bad")
    doc = release_yaml(
        "bad",
        [{"name": "dev", "targets": [{"cluster": "dev", "namespace": ns, "deployment": "nginx"}]}],
        notify=["Not A Name"],
    )
    rc, _, err = await fleet.cli("release", "start", "-f", fleet.write(tmp_path / "r.yaml", doc))
    assert rc == 1 and "spec.notify: 'Not A Name' is not a notification target name" in err, err
