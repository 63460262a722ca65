"""Shared state and plumbing of the rollout workflow: activity calls, interrupts, traffic, status, UI.

The workflow class is assembled from mixins (``workflows/steps.py``, ``workflows/undo.py``) over
this base, so each concern stays a small module; all of it is deterministic workflow code.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from workflows import errors
    from workflows.model import (
        SA_PHASE,
        SA_STEP,
        SA_TARGET,
        DeploymentRef,
        Phase,
        RolloutSpec,
        RolloutStatus,
        Snapshot,
        StepSpec,
        StepState,
        StepTraffic,
        TakeoverResult,
        TrafficInput,
        TrafficSnapshot,
        UndoSignal,
    )
    from workflows.traffic import TrafficOp, traffic_status
    from workflows.traffic_flow import run_traffic_ops, traffic_after

__all__ = [
    "LONG_WAIT",
    "PHASE_KEY",
    "RETRY",
    "STEP_KEY",
    "TARGET_KEY",
    "DeadlineExceeded",
    "Interrupted",
    "RolloutBase",
    "abandon",
]

TARGET_KEY = SearchAttributeKey.for_keyword(SA_TARGET)
PHASE_KEY = SearchAttributeKey.for_keyword(SA_PHASE)
STEP_KEY = SearchAttributeKey.for_int(SA_STEP)

RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=errors.NON_RETRYABLE,
)
LONG_WAIT = timedelta(days=30)


class Interrupted(Exception):
    """Internal: unwinds the forward path when ``undo`` or a replacement (``--replace``) arrives."""


class DeadlineExceeded(Exception):
    """Internal: a step made no progress for ``progress_deadline_seconds``; ``str()`` says which RS."""


def abandon(handle: workflow.ActivityHandle[Any]) -> None:
    """Cancel a read-only activity without waiting for it (its outcome no longer matters)."""
    handle.cancel()
    handle.add_done_callback(lambda f: f.cancelled() or f.exception())


class RolloutBase:
    """State every part of the workflow shares, and the helpers that touch it."""

    _spec: RolloutSpec
    _ref: DeploymentRef
    _approved: set[int]
    _undo: UndoSignal | None
    _replace: RolloutSpec | None
    _finalizing: bool
    _takeover: TakeoverResult | None
    _status: RolloutStatus
    _traffic_snapshot: TrafficSnapshot | None
    _traffic_cur: StepTraffic | None
    _traffic_touched: bool
    _drift: str | None
    _drift_ok: bool

    def _init_state(self, spec: RolloutSpec) -> None:
        self._spec = spec
        self._ref = DeploymentRef(namespace=spec.namespace, name=spec.name)
        self._approved = set()
        self._undo = None
        self._replace = None
        self._finalizing = False
        self._takeover = None
        self._traffic_snapshot = None
        self._traffic_cur = None
        self._traffic_touched = False
        self._drift = None
        self._drift_ok = False

    def _interrupted(self) -> bool:
        return self._undo is not None or self._replace is not None

    async def _converge(
        self,
        targets_for: Callable[[int], tuple[int, int]],
        *,
        grow_canary: bool,
        interruptible: bool = True,
        step: StepSpec | None = None,
    ) -> Snapshot:  # pragma: no cover - implemented by StepsMixin
        raise NotImplementedError

    # -- activities ----------------------------------------------------------------------------------

    async def _call(
        self,
        fn: Callable[[Any, Any], Any],
        arg: Any,
        *,
        summary: str,
        interruptible: bool,
        wait: bool = False,
        timeout: float | None = None,
    ) -> Any:
        """Run one activity; an interruptible one is abandoned (cancelled) as soon as undo arrives.

        Only reads and waits are interruptible, so cancelling them cannot race a rollback write.
        ``timeout`` (seconds) abandons the activity and raises ``TimeoutError`` (progress deadline).
        """
        timings = self._spec.timings
        handle = workflow.start_activity_method(
            fn,  # type: ignore[arg-type]
            arg,
            start_to_close_timeout=LONG_WAIT if wait else timedelta(seconds=timings.activity_timeout_seconds),
            heartbeat_timeout=timedelta(seconds=timings.heartbeat_timeout_seconds) if wait else None,
            retry_policy=RETRY,
            cancellation_type=workflow.ActivityCancellationType.TRY_CANCEL,
            summary=summary,
        )
        if interruptible or timeout is not None:
            try:
                await workflow.wait_condition(
                    lambda: handle.done() or (interruptible and self._interrupted()), timeout=timeout
                )
            except TimeoutError:
                abandon(handle)
                raise
            if not handle.done():
                abandon(handle)
                raise Interrupted()
        result = await handle
        if interruptible and self._interrupted():
            raise Interrupted()
        return result

    # -- traffic -------------------------------------------------------------------------------------

    async def _run_traffic(self, ops: list[TrafficOp], traffic: StepTraffic | None = None) -> None:
        """Run traffic operations (see ``workflows/traffic.py`` plans) and record the traffic in effect."""
        routing, tk = self._spec.traffic_routing, self._takeover
        if not ops or routing is None or tk is None:
            return
        inp = TrafficInput(
            namespace=self._spec.namespace,
            routing=routing,
            snapshot=self._traffic_snapshot,
            stable_hash=tk.stable_revision,
            canary_hash=tk.canary_revision,
            traffic=traffic,
            deployment=self._spec.name,
        )
        self._traffic_touched = True
        await run_traffic_ops(ops, inp)
        self._set_traffic(traffic_after(ops, self._traffic_cur, traffic))

    def _set_traffic(self, current: StepTraffic | None) -> None:
        self._traffic_cur = current
        fields = traffic_status(current)
        st = self._status
        st.traffic_weight = fields["trafficWeight"]
        st.traffic_matches = fields["trafficMatches"]
        st.traffic = fields["traffic"]
        self._set_details()

    # -- status, UI, search attributes ---------------------------------------------------------------

    def _record(self, snap: Snapshot) -> None:
        st = self._status
        st.replicas = snap.replicas
        st.canary_replicas = snap.canary.replicas
        st.canary_ready_replicas = snap.canary.ready_replicas
        st.stable_replicas = snap.stable.replicas
        st.stable_ready_replicas = snap.stable.ready_replicas

    def _publish(self, phase: Phase, state: StepState, message: str) -> None:
        """Record a transition: status, log line, search attributes, UI current details."""
        st = self._status
        if (phase, state, message) != (st.phase, st.step_state, st.message):
            workflow.logger.info(
                "step %d/%d: %s/%s -> %s/%s: %s",
                st.current_step_index,
                st.total_steps,
                st.phase.value,
                st.step_state.value,
                phase.value,
                state.value,
                message,
            )
        st.phase, st.step_state, st.message = phase, state, message
        if self._spec.use_search_attributes:
            workflow.upsert_search_attributes(
                [
                    TARGET_KEY.value_set(self._spec.target),
                    PHASE_KEY.value_set(phase.value),
                    STEP_KEY.value_set(st.current_step_index),
                ]
            )
        self._set_details()

    def _set_details(self, waiting_for: str | None = None) -> None:
        st = self._status
        ns, name = self._spec.namespace, self._spec.name
        lines = [
            f"**{st.phase.value}** · step {st.current_step_index}/{st.total_steps} · {st.step_state.value}",
            "",
            f"- canary `{st.canary_revision or '-'}`: {st.canary_replicas} pods, "
            f"{st.canary_ready_replicas} ready",
            f"- stable `{st.stable_revision or '-'}`: {st.stable_replicas} pods, "
            f"{st.stable_ready_replicas} ready",
            f"- {st.message}",
        ]
        if self._spec.traffic_routing is not None:
            lines.append(f"- traffic to canary: {st.traffic or 'none (routes to stable only)'}")
        if st.superseded_revisions:
            lines.append(f"- superseded revisions: {', '.join(st.superseded_revisions)}")
        if waiting_for:
            lines.append(f"- {waiting_for}")
        if st.step_state == StepState.STEP_PAUSED:
            lines.append(f"- approve: `rollout approve {name} -n {ns}`")
        if st.phase in (Phase.PROGRESSING, Phase.PAUSED, Phase.FAILED) and not self._finalizing:
            lines.append(f"- undo: `rollout undo {name} -n {ns}`")
        workflow.set_current_details("\n".join(lines))
