"""Workflow-side runner for traffic operations: one activity per op, gracePeriodSeconds after each change.

Deterministic workflow code (only ``workflows.calls`` and ``workflow.sleep``). Activities are called by method
reference with the ``TRAFFIC`` options of ``workflows/contract.py``, like the rollout's own. The rollout
workflow calls it at the points given by the ``plan_*`` functions in ``workflows/traffic.py``.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from workflows.calls import call
from workflows.contract import Purpose
from workflows.model import RolloutTimings, StepTraffic, TrafficChange, TrafficInput, TrafficSnapshot
from workflows.traffic import TrafficOp

with workflow.unsafe.imports_passed_through():
    from activities.traffic import TrafficActivities

# One activity per traffic operation (its name is the method name, equal to the op's value).
ACTIVITY_FOR_OP = {
    TrafficOp.ROUTE_STABLE_SERVICE: TrafficActivities.route_stable_service,
    TrafficOp.ENSURE_CANARY_SERVICE: TrafficActivities.ensure_canary_service,
    TrafficOp.SET_TRAFFIC: TrafficActivities.set_traffic,
    TrafficOp.RESTORE_STABLE_SERVICE: TrafficActivities.restore_stable_service,
    TrafficOp.RESTORE_ROUTES: TrafficActivities.restore_routes,
    TrafficOp.DELETE_CANARY_SERVICE: TrafficActivities.delete_canary_service,
}


async def snapshot_traffic(inp: TrafficInput, timings: RolloutTimings) -> TrafficSnapshot:
    """Run ``snapshot_traffic`` (fails fast, non-retryable, on missing or foreign objects)."""
    snap: TrafficSnapshot = await call(
        TrafficActivities.snapshot_traffic, inp, purpose=Purpose.TRAFFIC, timings=timings
    )
    return snap


async def run_traffic_ops(
    ops: list[TrafficOp], inp: TrafficInput, timings: RolloutTimings
) -> list[TrafficChange]:
    """Run ``ops`` in order; after each one that changed something, wait the routing's grace period.

    The grace period gives ingress controllers and kube-proxy time to pick up a change before the next one
    (Kruise waits the same ``gracePeriodSeconds`` after every modification).
    """
    results: list[TrafficChange] = []
    for op in ops:
        result: TrafficChange = await call(ACTIVITY_FOR_OP[op], inp, purpose=Purpose.TRAFFIC, timings=timings)
        results.append(result)
        if result.changed:
            workflow.logger.info("traffic %s: %s", op.value, result.message)
            if inp.routing.grace_period_seconds > 0:
                await workflow.sleep(timedelta(seconds=inp.routing.grace_period_seconds))
    return results


def traffic_after(
    ops: list[TrafficOp], before: StepTraffic | None, applied: StepTraffic | None
) -> StepTraffic | None:
    """The traffic in effect after ``ops`` ran (for the status): set by SET_TRAFFIC, cleared by a restore."""
    current = before
    for op in ops:
        if op == TrafficOp.SET_TRAFFIC:
            current = applied
        elif op == TrafficOp.RESTORE_ROUTES:
            current = None
    return current
