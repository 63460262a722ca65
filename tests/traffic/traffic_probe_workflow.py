"""A small workflow driving the traffic plan the way the rollout workflow does, step by step.

Kept in its own module (no kubernetes imports) so the workflow sandbox can load it. After each step's
traffic it waits for a ``proceed`` signal, so the test can inspect the cluster at every step. Replica
changes are the test's job (it plays the engine's scale/wait-ready part between ``step_started`` and
``proceed``).
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, Field
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.traffic import (
        StepTraffic,
        TrafficInput,
        TrafficRoutingRef,
        TrafficSnapshot,
        plan_finalize,
        plan_step_ready,
        plan_step_start,
        plan_undo_end,
        plan_undo_start,
        traffic_status,
    )
    from workflows.traffic_flow import run_traffic_ops, snapshot_traffic, traffic_after


class ProbeStep(BaseModel):
    """One step: desired canary replicas and its traffic."""

    canary: int
    traffic: StepTraffic | None = None


class ProbeInput(BaseModel):
    namespace: str
    deployment: str = ""
    routing: TrafficRoutingRef
    replicas: int
    stable_hash: str
    canary_hash: str
    steps: list[ProbeStep] = Field(default_factory=list)
    undo_after_step: int = 0  # 0: run every step, then finalize


class ProbeState(BaseModel):
    phase: str = "Starting"  # StepStarted | StepReady | Finalized | RolledBack
    step: int = 0
    status: dict = Field(default_factory=dict)


@workflow.defn
class TrafficProbeWorkflow:
    """Snapshot, per step (start ops -> [test scales] -> ready ops -> pause), then finalize or undo."""

    def __init__(self) -> None:
        self.state = ProbeState()
        self.released = 0
        self.scaled = 0

    @workflow.signal
    def scaled_signal(self, step: int) -> None:
        """The test has scaled and waited ready for ``step``."""
        self.scaled = max(self.scaled, step)

    @workflow.signal
    def proceed(self, step: int) -> None:
        """The test has checked ``step``; go on (plays the approve)."""
        self.released = max(self.released, step)

    @workflow.query
    def probe(self) -> ProbeState:
        return self.state

    def _reached(self, counter: str, step: int) -> Callable[[], bool]:
        return lambda: int(getattr(self, counter)) >= step

    @workflow.run
    async def run(self, inp: ProbeInput) -> ProbeState:
        base = TrafficInput(
            namespace=inp.namespace,
            routing=inp.routing,
            stable_hash=inp.stable_hash,
            canary_hash=inp.canary_hash,
            deployment=inp.deployment,
        )
        snapshot: TrafficSnapshot = await snapshot_traffic(base)
        base = base.model_copy(update={"snapshot": snapshot})
        current: StepTraffic | None = None
        for i, step in enumerate(inp.steps, start=1):
            ops = plan_step_start(
                inp.routing, step.traffic, desired_canary=step.canary, replicas=inp.replicas
            )
            await run_traffic_ops(ops, base)
            current = traffic_after(ops, current, step.traffic)
            self.state = ProbeState(phase="StepStarted", step=i, status=traffic_status(current))
            await workflow.wait_condition(self._reached("scaled", i))
            ops = plan_step_ready(inp.routing, step.traffic)
            await run_traffic_ops(ops, base.model_copy(update={"traffic": step.traffic}))
            current = traffic_after(ops, current, step.traffic)
            self.state = ProbeState(phase="StepReady", step=i, status=traffic_status(current))
            await workflow.wait_condition(self._reached("released", i))
            if inp.undo_after_step == i:
                ops = plan_undo_start(inp.routing)
                await run_traffic_ops(ops, base)
                current = traffic_after(ops, current, None)
                self.state = ProbeState(phase="UndoRoutesRestored", step=i, status=traffic_status(current))
                await workflow.wait_condition(self._reached("scaled", 1000))  # test scaled stable back
                await run_traffic_ops(plan_undo_end(inp.routing), base)
                self.state = ProbeState(phase="RolledBack", step=i, status=traffic_status(None))
                return self.state
        ops = plan_finalize(inp.routing)
        await run_traffic_ops(ops, base)
        self.state = ProbeState(phase="Finalized", step=len(inp.steps), status=traffic_status(None))
        return self.state
