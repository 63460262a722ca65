"""Progress deadline (Failed or automatic rollback) and failureThreshold, with never-Ready canary pods."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from workflows.model import Phase, Reason, StepState

NEVER_READY = {"kubesim.io/never-ready": "true"}

KRUISE = """
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata: {name: rollouts-nginx}
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: nginx}
  strategy:
    canary:
      failureThreshold: 1
      progressDeadlineSeconds: 2
      steps:
      - replicas: 1
      - replicas: 100%
"""


def _never_ready_file(kit: Any, tmp_path: Path, replicas: int = 4) -> str:
    """A deployment.yaml whose new pod template (nginx:1.27) never becomes Ready on kubesim."""
    path = tmp_path / "deployment.yaml"
    path.write_text(
        yaml.safe_dump(kit.seed(replicas=replicas, image="nginx:1.27", pod_annotations=NEVER_READY))
    )
    return str(path)


@pytest.mark.clusters
async def test_deadline_fails_the_step_then_undo(kit: Any, rollout_worker: None, tmp_path: Path) -> None:
    await kit.create(kit.seed(replicas=4))
    started = time.monotonic()
    rc, _, err = await kit.cli(
        "start", "-f", _never_ready_file(kit, tmp_path), "--steps", "1,100%", "--progress-deadline", "2"
    )
    assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.FAILED, timeout=30)
    assert time.monotonic() - started >= 2
    canary_rs = f"nginx-{st.canary_revision}"
    deadline = Reason.DEADLINE.format(rs=canary_rs, ready=0, target=1, s=2)
    assert st.message == Reason.FAILED_WAITING.format(why=deadline)
    assert "rollout undo" in st.message
    assert st.current_step_index == 1 and st.progress_deadline_seconds == 2
    # Failed but still holding the Deployment: nothing more happens until undo (or --replace).
    assert kit.images() == {"nginx:1.27": (1, 0), "nginx:1.26": (3, 3)}
    assert kit.deployment()["spec"]["paused"] is True
    rc, _, err = await kit.cli("undo", "nginx")
    assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.ROLLED_BACK)
    assert kit.images() == {"nginx:1.27": (0, 0), "nginx:1.26": (4, 4)}
    kit.assert_handed_back(kit.deployment(), "nginx:1.26")


async def test_deadline_with_auto_rollback(kit: Any, rollout_worker: None, tmp_path: Path) -> None:
    await kit.create(kit.seed(replicas=4))
    rc, _, err = await kit.cli(
        "start",
        "-f",
        _never_ready_file(kit, tmp_path),
        "--steps",
        "1,100%",
        "--progress-deadline",
        "2",
        "--auto-rollback",
    )
    assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.ROLLED_BACK, timeout=40)
    assert st.step_state == StepState.COMPLETED
    why = Reason.DEADLINE.format(rs=f"nginx-{st.canary_revision}", ready=0, target=1, s=2)
    assert Reason.AUTO_ROLLBACK.format(why=why) in st.message
    assert kit.images() == {"nginx:1.27": (0, 0), "nginx:1.26": (4, 4)}
    kit.assert_handed_back(kit.deployment(), "nginx:1.26")


async def test_deadline_does_not_run_while_paused(kit: Any, rollout_worker: None) -> None:
    """A 4 s timed pause with a 2 s deadline completes: only steps that make no progress count."""
    await kit.create(kit.seed(replicas=4))
    rc, _, err = await kit.cli(
        "start",
        "nginx",
        "--image",
        "nginx=nginx:1.27",
        "--steps",
        "1,100%",
        "--pause-duration",
        "4",
        "--progress-deadline",
        "2",
    )
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)
    paused = time.monotonic()
    st = await kit.wait_phase("nginx", Phase.COMPLETED, timeout=40)
    assert time.monotonic() - paused >= 3
    assert kit.images() == {"nginx:1.27": (4, 4), "nginx:1.26": (0, 0)}
    assert st.approvals == []


async def test_failure_threshold_from_the_manifest(kit: Any, rollout_worker: None, tmp_path: Path) -> None:
    """failureThreshold 1: step 1 is done with its one canary pod unready; step 2 then hits the deadline."""
    await kit.create(kit.seed(replicas=4))
    manifest = tmp_path / "rollout.yaml"
    manifest.write_text(KRUISE)
    rc, _, err = await kit.cli("start", "-r", str(manifest), "-f", _never_ready_file(kit, tmp_path))
    assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.PAUSED, 1)
    assert (st.canary_replicas, st.canary_ready_replicas, st.stable_replicas) == (1, 0, 3)
    rc, _, err = await kit.cli("approve", "nginx")
    assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.FAILED, timeout=30)
    assert st.current_step_index == 2 and "has timed out progressing" in st.message
    rc, _, err = await kit.cli("undo", "nginx")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.ROLLED_BACK)
    assert kit.images() == {"nginx:1.27": (0, 0), "nginx:1.26": (4, 4)}


async def test_failure_threshold_flag(kit: Any, rollout_worker: None, tmp_path: Path) -> None:
    """--failure-threshold 100% (the flag, not the manifest): step 1 is done with no canary pod ready."""
    await kit.create(kit.seed(replicas=4))
    rc, _, err = await kit.cli(
        "start", "-f", _never_ready_file(kit, tmp_path), "--steps", "1,100%", "--failure-threshold", "100%"
    )
    assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.PAUSED, 1)
    assert (st.canary_replicas, st.canary_ready_replicas, st.stable_replicas) == (1, 0, 3)
    rc, _, err = await kit.cli("undo", "nginx")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.ROLLED_BACK)
    assert kit.images() == {"nginx:1.27": (0, 0), "nginx:1.26": (4, 4)}


async def test_failed_rollout_fixed_forward_with_replace(
    kit: Any, rollout_worker: None, tmp_path: Path
) -> None:
    """After the deadline (Failed, still holding the Deployment), --replace with a good template goes on."""
    await kit.create(kit.seed(replicas=4))
    rc, _, err = await kit.cli(
        "start", "-f", _never_ready_file(kit, tmp_path), "--steps", "1,100%", "--progress-deadline", "2"
    )
    assert rc == 0, err
    failed = await kit.wait_phase("nginx", Phase.FAILED, timeout=30)
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(kit.seed(replicas=4, image="nginx:1.28")))
    rc, _, err = await kit.cli("start", "-f", str(good), "--steps", "1,100%", "--replace")
    assert rc == 0, err

    async def replaced() -> Any:
        st = await kit.status("nginx")
        return st if st.superseded_revisions and st.phase == Phase.PAUSED else None

    st = await kit.eventually(replaced, timeout=60, message="the fixed template paused at step 1")
    assert st.superseded_revisions == [failed.canary_revision]
    assert st.stable_revision == failed.stable_revision
    rc, _, err = await kit.cli("approve", "nginx")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.COMPLETED)
    assert kit.images() == {"nginx:1.28": (4, 4), "nginx:1.27": (0, 0), "nginx:1.26": (0, 0)}
    kit.assert_handed_back(kit.deployment(), "nginx:1.28")
