"""The rollout workflow: a multi-batch canary of one Deployment, Kruise partition style.

Thin and deterministic: every Kubernetes call is an activity, every number comes from
``workflows.plan``. The run reads as Kruise's ``runCanary``::

    take over -> for each step: scale (moves), wait ready, pause -> finalize
    undo at any time            -> stable back to full, canary to 0, hand back

Signal handlers only record intent (``_approved``, ``_undo``); ``run`` acts on it. Reads and waits
are cancelled at once when undo arrives; writes are allowed to finish first, so a rollback never
races an in-flight scale.

Search attributes are upserted only when the starter verified that the server has them
(``RolloutSpec.use_search_attributes``), so a server without them never blocks a rollout, and the
decision is in the input, which keeps replay stable.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.rollout import RolloutActivities
    from workflows import errors, plan
    from workflows.model import (
        SA_PHASE,
        SA_STEP,
        SA_TARGET,
        WORKFLOW_TYPE,
        Approval,
        ApproveSignal,
        DeploymentRef,
        FinalizeInput,
        Phase,
        Reason,
        ReplicaSetCounts,
        RolloutSpec,
        RolloutStatus,
        ScaleInput,
        Snapshot,
        SnapshotInput,
        StepSpec,
        StepState,
        TakeoverInput,
        TakeoverResult,
        UndoSignal,
        WaitInput,
        WatchInput,
        WatchResult,
    )

__all__ = ["RolloutWorkflow", "TARGET_KEY", "PHASE_KEY", "STEP_KEY"]

TARGET_KEY = SearchAttributeKey.for_keyword(SA_TARGET)
PHASE_KEY = SearchAttributeKey.for_keyword(SA_PHASE)
STEP_KEY = SearchAttributeKey.for_int(SA_STEP)

R = TypeVar("R")

_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=errors.NON_RETRYABLE,
)
_LONG_WAIT = timedelta(days=30)


class _UndoRequested(Exception):
    """Internal: unwinds the forward path when ``undo`` arrives."""


def _abandon(handle: workflow.ActivityHandle[Any]) -> None:
    """Cancel a read-only activity without waiting for it (its outcome no longer matters)."""
    handle.cancel()
    handle.add_done_callback(lambda f: f.cancelled() or f.exception())


@workflow.defn(name=WORKFLOW_TYPE)
class RolloutWorkflow:
    """One rollout of one Deployment (workflow ID ``rollout-<namespace>-<name>``)."""

    @workflow.init
    def __init__(self, spec: RolloutSpec) -> None:
        self._spec = spec
        self._ref = DeploymentRef(namespace=spec.namespace, name=spec.name)
        self._approved: set[int] = set()
        self._undo: UndoSignal | None = None
        self._finalizing = False
        self._takeover: TakeoverResult | None = None
        self._status = RolloutStatus(
            namespace=spec.namespace,
            name=spec.name,
            workflow_id=workflow.info().workflow_id,
            total_steps=len(spec.steps),
            stable_images=spec.stable_images,
            canary_images=spec.canary_images,
            steps=spec.steps,
            message=Reason.STARTING,
        )

    # -- signals and query ---------------------------------------------------------------------------

    @workflow.signal
    def approve(self, sig: ApproveSignal) -> None:
        """Approve the paused step (``sig.step`` 1-based, or ``None`` for the one paused now)."""
        st = self._status
        step = st.current_step_index
        if st.step_state != StepState.STEP_PAUSED or (sig.step is not None and sig.step != step):
            workflow.logger.info(
                "approve for step %s ignored: step %d/%d is %s",
                sig.step,
                step,
                st.total_steps,
                st.step_state.value,
            )
            return
        if step in self._approved:
            return
        self._approved.add(step)
        st.approvals.append(
            Approval(by=sig.by or "unknown", at=workflow.now(), step=step, comment=sig.comment)
        )
        workflow.logger.info("step %d approved by %s", step, sig.by or "unknown")

    @workflow.update
    def approve_step(self, sig: ApproveSignal) -> RolloutStatus:
        """Approve like the ``approve`` signal, but answer with the status (UI "Send an Update")."""
        self.approve(sig)
        return self._status

    @approve_step.validator
    def _check_approve_step(self, sig: ApproveSignal) -> None:
        """Reject (nothing is written to history) unless that step is paused now."""
        st = self._status
        step = st.current_step_index
        if st.step_state != StepState.STEP_PAUSED or (sig.step is not None and sig.step != step):
            raise ValueError(
                f"step {sig.step if sig.step is not None else step} is not paused "
                f"(step {step}/{st.total_steps} is {st.step_state.value}); nothing to approve"
            )

    @workflow.signal
    def undo(self, sig: UndoSignal) -> None:
        """Roll back to the stable revision (ignored once finalizing has begun)."""
        if self._finalizing or self._undo is not None:
            workflow.logger.info("undo ignored: rollout is %s", self._status.phase.value)
            return
        self._undo = sig
        workflow.logger.info("undo requested by %s: %s", sig.by or "unknown", sig.reason)

    @workflow.query
    def status(self) -> RolloutStatus:
        """The rollout status (the contract in docs: camelCase JSON)."""
        return self._status

    # -- run -----------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, spec: RolloutSpec) -> RolloutStatus:
        """Take over, walk the steps, finalize; or roll back on undo."""
        self._publish(Phase.PROGRESSING, StepState.STEP_UPGRADE, Reason.STARTING)
        try:
            self._takeover = await self._call(
                RolloutActivities.take_over,
                TakeoverInput(ref=self._ref, workflow_id=workflow.info().workflow_id, template=spec.template),
                summary=f"take over deployment {spec.target}: pause, Recreate, new template",
                interruptible=False,
            )
            self._status.stable_revision = self._takeover.stable_revision
            self._status.canary_revision = self._takeover.canary_revision
            for index, step in enumerate(spec.steps, start=1):
                await self._run_step(index, step)
            self._finalizing = True
            await self._complete()
        except _UndoRequested:
            await self._rollback()
        except ActivityError as exc:
            await self._fail(exc)
        return self._status

    async def _run_step(self, index: int, step: StepSpec) -> None:
        st = self._status
        st.current_step_index = index
        total = len(self._spec.steps)
        self._publish(Phase.PROGRESSING, StepState.STEP_UPGRADE, Reason.UPGRADE.format(i=index, n=total))
        await self._converge(lambda replicas: plan.step_targets(step, replicas), grow_canary=True)
        last = index == total
        if last and str(step.replicas).strip() == "100%":
            return  # Kruise: a last step of exactly 100% does not pause
        await self._pause(index, step)
        self._publish(Phase.PROGRESSING, StepState.STEP_READY, Reason.UPGRADE.format(i=index, n=total))

    async def _pause(self, index: int, step: StepSpec) -> None:
        """Wait for approve (or the timer); re-scale the step if spec.replicas changes meanwhile."""
        total = len(self._spec.steps)
        seconds = step.pause_seconds
        if seconds == 0:
            return
        message = (
            Reason.MANUAL.format(i=index, n=total)
            if seconds is None
            else Reason.TIMED.format(i=index, n=total, s=seconds)
        )
        deadline = workflow.now() + timedelta(seconds=seconds) if seconds is not None else None
        self._status.pause_seconds = seconds
        self._status.paused_at = workflow.now()
        self._publish(Phase.PAUSED, StepState.STEP_PAUSED, message)
        while index not in self._approved:
            if self._undo is not None:
                raise _UndoRequested()
            watcher = workflow.start_activity_method(
                RolloutActivities.watch_replicas,
                WatchInput(
                    ref=self._ref,
                    replicas=self._status.replicas,
                    poll_interval_seconds=self._spec.timings.poll_interval_seconds,
                ),
                start_to_close_timeout=_LONG_WAIT,
                heartbeat_timeout=timedelta(seconds=self._spec.timings.heartbeat_timeout_seconds),
                retry_policy=_RETRY,
                cancellation_type=workflow.ActivityCancellationType.TRY_CANCEL,
                summary=f"watch {self._spec.target} spec.replicas while paused at step {index}",
            )
            timeout = None
            if deadline is not None:
                timeout = (deadline - workflow.now()).total_seconds()
                if timeout <= 0:
                    _abandon(watcher)
                    self._approved.add(index)  # the timed pause is over
                    break
            try:
                await workflow.wait_condition(
                    lambda w=watcher: index in self._approved or self._undo is not None or w.done(),  # type: ignore[misc]
                    timeout=timeout,
                    timeout_summary=f"pause after step {index}",
                )
            except TimeoutError:
                self._approved.add(index)  # the timed pause is over
            if not watcher.done():
                _abandon(watcher)
                continue
            result: WatchResult = watcher.result()
            old = self._status.replicas
            self._publish(Phase.PROGRESSING, StepState.STEP_UPGRADE, Reason.UPGRADE.format(i=index, n=total))
            await self._converge(lambda replicas: plan.step_targets(step, replicas), grow_canary=True)
            self._publish(
                Phase.PAUSED,
                StepState.STEP_PAUSED,
                f"{Reason.RESCALED.format(old=old, new=result.replicas, i=index)}. {message}",
            )
        self._status.paused_at = None
        self._status.pause_seconds = None

    async def _complete(self) -> None:
        """Finalize: canary = replicas, stable = 0, then hand the Deployment back in one write."""
        assert self._takeover is not None
        self._publish(Phase.PROGRESSING, StepState.STEP_READY, Reason.FINALISING)
        await self._converge(lambda replicas: (replicas, 0), grow_canary=True, interruptible=False)
        await self._call(
            RolloutActivities.finalize,
            FinalizeInput(
                ref=self._ref,
                workflow_id=workflow.info().workflow_id,
                original_strategy=self._takeover.original_strategy,
            ),
            summary=f"hand {self._spec.target} back: restore strategy, unpause, remove annotations",
            interruptible=False,
        )
        self._publish(Phase.COMPLETED, StepState.COMPLETED, Reason.COMPLETED)

    async def _rollback(self) -> None:
        """Undo: stable back to full first, then canary to 0; restore template and strategy; unpause."""
        self._finalizing = True
        who = self._undo.by if self._undo else ""
        self._publish(
            Phase.PROGRESSING, self._status.step_state, f"{Reason.ROLLING_BACK} (undo by {who or 'unknown'})"
        )
        if self._takeover is None:  # pragma: no cover - undo is only acted on after take_over returned
            self._publish(Phase.ROLLED_BACK, StepState.COMPLETED, Reason.ROLLED_BACK)
            return
        try:
            await self._converge(lambda replicas: (0, replicas), grow_canary=False, interruptible=False)
            await self._call(
                RolloutActivities.finalize,
                FinalizeInput(
                    ref=self._ref,
                    workflow_id=workflow.info().workflow_id,
                    original_strategy=self._takeover.original_strategy,
                    restore_template_from_rs=self._takeover.stable_rs,
                ),
                summary=f"hand {self._spec.target} back on the stable template: restore strategy, unpause",
                interruptible=False,
            )
        except ActivityError as exc:
            await self._fail(exc)
            return
        self._publish(Phase.ROLLED_BACK, StepState.COMPLETED, Reason.ROLLED_BACK)

    async def _fail(self, exc: ActivityError) -> None:
        cause = exc.cause
        text = str(cause) if cause is not None else str(exc)
        self._publish(Phase.FAILED, self._status.step_state, f"Rollout failed: {text}")
        error_type = cause.type if isinstance(cause, ApplicationError) else None
        raise ApplicationError(self._status.message, type=error_type, non_retryable=True) from exc

    # -- moves within a step -------------------------------------------------------------------------

    async def _converge(
        self,
        targets_for: Callable[[int], tuple[int, int]],
        *,
        grow_canary: bool,
        interruptible: bool = True,
    ) -> Snapshot:
        """Make single writes chosen by ``plan.next_move`` until the batch is ready."""
        tk = self._takeover
        assert tk is not None
        snap_in = SnapshotInput(ref=self._ref, stable_rs=tk.stable_rs, canary_rs=tk.canary_rs)
        snap: Snapshot = await self._call(
            RolloutActivities.get_snapshot,
            snap_in,
            summary=f"read {self._spec.target} and its ReplicaSets",
            interruptible=interruptible,
        )
        while True:
            self._record(snap)
            canary_target, stable_target = targets_for(snap.replicas)
            surge, unavailable = plan.resolve_fenceposts(
                tk.original_strategy.get("rollingUpdate"), snap.replicas
            )
            ft = (
                plan.failure_threshold_count(self._spec.failure_threshold, canary_target)
                if grow_canary
                else 0
            )
            move = plan.next_move(
                snap.canary.replicas,
                snap.canary.ready_replicas,
                snap.stable.replicas,
                snap.stable.ready_replicas,
                canary_target=canary_target,
                stable_target=stable_target,
                replicas=snap.replicas,
                max_surge=surge,
                max_unavailable=unavailable,
                failure_threshold=ft,
                grow_canary=grow_canary,
            )
            if move.action == "done":
                return snap
            if move.action == "scale":
                rs = tk.canary_rs if move.side == "canary" else tk.stable_rs
                counts: ReplicaSetCounts = await self._call(
                    RolloutActivities.scale_replica_set,
                    ScaleInput(
                        ref=self._ref,
                        rs_name=rs,
                        replicas=move.replicas,
                        desired_replicas=snap.replicas,
                        max_replicas=snap.replicas + surge,
                    ),
                    summary=f"scale {move.side} ReplicaSet {rs} to {move.replicas}",
                    interruptible=False,
                )
                if move.side == "canary":
                    snap.canary = counts
                else:
                    snap.stable = counts
                continue
            self._set_details(move.reason)
            snap = await self._call(
                RolloutActivities.wait_for_batch,
                WaitInput(
                    snapshot=snap_in,
                    canary_target=canary_target,
                    stable_target=stable_target,
                    max_surge=surge,
                    max_unavailable=unavailable,
                    failure_threshold=ft,
                    grow_canary=grow_canary,
                    poll_interval_seconds=self._spec.timings.poll_interval_seconds,
                ),
                summary=f"wait for {tk.canary_rs} {canary_target} / {tk.stable_rs} {stable_target} ready",
                interruptible=interruptible,
                wait=True,
            )

    async def _call(
        self,
        fn: Callable[[Any, Any], Any],
        arg: Any,
        *,
        summary: str,
        interruptible: bool,
        wait: bool = False,
    ) -> Any:
        """Run one activity; an interruptible one is abandoned (cancelled) as soon as undo arrives.

        Only reads and waits are interruptible, so cancelling them cannot race a rollback write.
        """
        timings = self._spec.timings
        handle = workflow.start_activity_method(
            fn,  # type: ignore[arg-type]
            arg,
            start_to_close_timeout=_LONG_WAIT
            if wait
            else timedelta(seconds=timings.activity_timeout_seconds),
            heartbeat_timeout=timedelta(seconds=timings.heartbeat_timeout_seconds) if wait else None,
            retry_policy=_RETRY,
            cancellation_type=workflow.ActivityCancellationType.TRY_CANCEL,
            summary=summary,
        )
        if interruptible:
            await workflow.wait_condition(lambda: handle.done() or self._undo is not None)
            if not handle.done():
                _abandon(handle)
                raise _UndoRequested()
        result = await handle
        if interruptible and self._undo is not None:
            raise _UndoRequested()
        return result

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
        if waiting_for:
            lines.append(f"- {waiting_for}")
        if st.step_state == StepState.STEP_PAUSED:
            lines.append(f"- approve: `rollout approve {name} -n {ns}`")
        if st.phase in (Phase.PROGRESSING, Phase.PAUSED) and not self._finalizing:
            lines.append(f"- undo: `rollout undo {name} -n {ns}`")
        workflow.set_current_details("\n".join(lines))
