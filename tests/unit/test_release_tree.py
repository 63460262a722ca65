"""The tree `rollout release status` prints: every target's state starts in one column."""

from __future__ import annotations

from cli.release import status_tree
from workflows.model import ReleaseStatus, ReleaseTargetStatus, ReleaseWaveStatus, TargetState


def _target(cluster: str, deployment: str, state: TargetState) -> ReleaseTargetStatus:
    return ReleaseTargetStatus(
        cluster=cluster,
        namespace="default",
        deployment=deployment,
        workflow_id=f"rollout/{cluster}",
        state=state,
    )


def test_target_states_line_up_across_waves_and_name_lengths() -> None:
    names = [("dev", "nginx"), ("staging", "nginx"), ("prod-eu-west-1", "a-deployment-with-a-long-name")]
    st = ReleaseStatus(
        release_id="r",
        workflow_id="release/r",
        waves=[
            ReleaseWaveStatus(name=cluster, targets=[_target(cluster, dep, TargetState.COMPLETED)])
            for cluster, dep in names
        ],
    )
    rows = [line for line in status_tree(st, {}).splitlines() if line.startswith("   - ")]
    assert len(rows) == 3
    assert len({row.index(TargetState.COMPLETED.value) for row in rows}) == 1
    for (cluster, dep), row in zip(names, rows, strict=True):
        assert row.startswith(f"   - {cluster}/default/{dep} ")
