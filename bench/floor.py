"""The least time any batch rollout can take: the plan's readiness waves x the pod ready delay.

``readiness_waves`` walks ``workflows.plan`` over an idealised cluster where writes take no time and
every pod becomes ready exactly ``ready_delay`` after it was created: each ``wait`` the plan asks for is
one wave (the pods created since the last wave become ready together). Steps, then the finalize
converge (canary = replicas, stable = 0), exactly as the workflow drives them. The native rolling
update is walked the same way (surge and unavailability bounds of the Deployment controller), so both
floors come from one model.
"""

from __future__ import annotations

from typing import Any

from workflows import plan
from workflows.model import ReplicaSetCounts, Snapshot, StepSpec


def parse_steps(steps: str) -> list[StepSpec]:
    """``"1,50%,100%"`` -> step specs (what ``rollout start --steps`` means without pauses)."""
    out = []
    for part in steps.split(","):
        part = part.strip()
        out.append(StepSpec(replicas=part if part.endswith("%") else int(part), pause_seconds=0))
    return out


def readiness_waves(steps: str, replicas: int, rolling_update: dict[str, Any] | None = None) -> int:
    """How many readiness waves the plan needs for ``steps`` + finalize on ``replicas`` pods."""
    ru = rolling_update or {"maxSurge": "25%", "maxUnavailable": "25%"}
    surge, unavailable = plan.resolve_fenceposts(ru, replicas)
    canary = [0, 0]  # spec, ready
    stable = [replicas, replicas]
    waves = 0
    targets = [plan.step_targets(s, replicas) for s in parse_steps(steps)] + [(replicas, 0)]
    for canary_target, stable_target in targets:
        for _ in range(10 * replicas + 10):
            snap = Snapshot(
                replicas=replicas,
                stable=ReplicaSetCounts(name="stable", replicas=stable[0], ready_replicas=stable[1]),
                canary=ReplicaSetCounts(name="canary", replicas=canary[0], ready_replicas=canary[1]),
            )
            move = plan.move_for(
                snap,
                canary_target=canary_target,
                stable_target=stable_target,
                max_surge=surge,
                max_unavailable=unavailable,
            )
            if move.action == "done":
                break
            if move.action == "wait":
                waves += 1
                canary[1], stable[1] = canary[0], stable[0]
                continue
            side = canary if move.side == "canary" else stable
            side[0] = int(move.replicas or 0)
            side[1] = min(side[1], side[0])  # a scale-down removes pods (unready ones first)
        else:  # pragma: no cover - the plan always converges on this model
            raise RuntimeError("plan did not converge")
    return waves


def native_waves(replicas: int, rolling_update: dict[str, Any] | None = None) -> int:
    """Readiness waves of the Deployment controller's rolling update on the same model."""
    ru = rolling_update or {"maxSurge": "25%", "maxUnavailable": "25%"}
    surge, unavailable = plan.resolve_fenceposts(ru, replicas)
    new = [0, 0]
    old = [replicas, replicas]
    waves = 0
    while not (new[1] == replicas and old[0] == 0):
        # One reconcile: scale up to the surge bound, scale down to the availability bound.
        new[0] = min(replicas, replicas + surge - old[0])
        floor = replicas - unavailable
        down = max(0, min(old[0], new[1] + old[1] - floor))
        old[0] -= down
        old[1] = min(old[1], old[0])
        new[0] = min(replicas, replicas + surge - old[0])
        if new[1] == replicas and old[0] == 0:
            break
        waves += 1
        new[1] = new[0]
    return waves
