"""The rollout workflow: a multi-batch canary of one Deployment, Kruise partition style.

Thin and deterministic: every Kubernetes call is an activity, every number comes from
``workflows.plan`` and ``workflows.traffic``. The run reads as Kruise's ``runCanary``::

    snapshot traffic objects -> take over
    -> for each step: traffic, scale (moves), wait ready, traffic, pause -> finalize
    undo at any time            -> traffic to stable, stable back to full, canary to 0, hand back
    replace at any time         -> canary down, new template, restart at step 1 (stable unchanged)
    no progress for the deadline -> Failed (waiting for undo/replace) or automatic rollback

The parts live in mixins: ``workflows/steps.py`` (forward path), ``workflows/undo.py`` (undo,
retarget, failure), ``workflows/base.py`` (state, activity calls, traffic, status and UI).

Signal and update handlers only record intent (``_approved``, ``_undo``, ``_replace``,
``_drift_ok``); ``run`` acts on it. Reads and waits are cancelled at once when undo or a
replacement arrives; writes are allowed to finish first, so a rollback never races a scale.

Search attributes are upserted only when the starter verified that the server has them
(``RolloutSpec.use_search_attributes``), so a server without them never blocks a rollout, and the
decision is in the input, which keeps replay stable.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.rollout_status import RolloutObjectActivities
    from activities.takeover import TakeoverActivities
    from workflows import errors, plan
    from workflows.analysis_flow import ANALYSIS_UNDO_BY
    from workflows.base import PHASE_KEY, RETRY, STEP_KEY, TARGET_KEY, DeadlineExceeded, Interrupted
    from workflows.converge import PATCH_ONE_ACTIVITY
    from workflows.model import (
        WORKFLOW_TYPE,
        Approval,
        ApproveSignal,
        ControlSignal,
        DeploymentChange,
        PauseSignal,
        Phase,
        Reason,
        RolloutObjectStatusInput,
        RolloutSpec,
        RolloutStatus,
        StepState,
        TakeoverInput,
        TrafficInput,
        UndoSignal,
        workflow_id_for,
    )
    from workflows.notify_flow import NotifyMixin
    from workflows.outcome import DEADLINE_UNDO_BY, PATCH_OUTCOMES, OutcomeMixin
    from workflows.release_hold import ReleaseHoldMixin
    from workflows.steps import StepsMixin
    from workflows.traffic_flow import snapshot_traffic
    from workflows.undo import UndoMixin
    from workflows.verbs import VerbsMixin

__all__ = ["PATCH_REFERENCE", "RolloutWorkflow", "TARGET_KEY", "PHASE_KEY", "STEP_KEY", "input_refusal"]

# New runs carry a reference to the template the starter wrote (never a template), run under
# ``rollout/<ns>/<name>`` and check both before anything else; older histories replay without it.
PATCH_REFERENCE = "template-by-reference"


def input_refusal(spec: RolloutSpec, workflow_id: str) -> ApplicationError | None:
    """Why a new run cannot act on this input (non-retryable, named), or ``None``.

    A pod template in the input would let anyone who can start a workflow have the worker write it
    with the worker's rights; the template reaches the cluster only through the starter's own write.
    """
    if spec.template is not None:
        return ApplicationError(
            f"the input of rollout {workflow_id} carries a pod template; `rollout start` writes the template "
            "into the Deployment with your Kubernetes credentials and starts the rollout with a reference",
            type=errors.TEMPLATE_IN_INPUT,
            non_retryable=True,
        )
    if workflow_id != workflow_id_for(spec.namespace, spec.name, spec.cluster):
        return ApplicationError(
            f"workflow ID {workflow_id} is not the ID of {spec.target} "
            f"({workflow_id_for(spec.namespace, spec.name, spec.cluster)})",
            type=errors.WORKFLOW_ID_MISMATCH,
            non_retryable=True,
        )
    if not spec.template_hash:
        return ApplicationError(
            f"the input of rollout {workflow_id} names no template (templateHash)",
            type=errors.TEMPLATE_MISMATCH,
            non_retryable=True,
        )
    try:
        plan.validate_steps(spec.steps)
        plan.validate_failure_threshold(spec.failure_threshold)
    except ValueError as exc:
        return ApplicationError(str(exc), type=errors.INVALID_ROLLOUT_SPEC, non_retryable=True)
    return None


@workflow.defn(name=WORKFLOW_TYPE)
class RolloutWorkflow(StepsMixin, UndoMixin, VerbsMixin, NotifyMixin, OutcomeMixin, ReleaseHoldMixin):
    """One rollout of one Deployment (workflow ID ``rollout/<namespace>/<name>``; older runs
    ``rollout-<namespace>-<name>``)."""

    @workflow.init
    def __init__(self, spec: RolloutSpec) -> None:
        self._init_state(spec)
        self._init_verbs()
        self._byless_approvals = 0
        self._init_analysis()
        self._status = RolloutStatus(
            namespace=spec.namespace,
            name=spec.name,
            workflow_id=workflow.info().workflow_id,
            total_steps=len(spec.steps),
            stable_images=spec.stable_images,
            canary_images=spec.canary_images,
            steps=spec.steps,
            message=Reason.STARTING,
            progress_deadline_seconds=spec.progress_deadline_seconds,
        )

    # -- signals, updates and query ------------------------------------------------------------------

    @workflow.signal
    def approve(self, sig: ApproveSignal) -> None:
        """Approve the paused step (``sig.step`` 1-based, or ``None`` for the one paused now).

        While paused for another writer's template change, approve means "keep the rollout's
        template": the workflow writes it back and continues.
        """
        byless = None
        if not sig.by:  # a raw `temporal workflow signal`: the sender is looked up in history later
            byless, self._byless_approvals = self._byless_approvals, self._byless_approvals + 1
        self._take_approval(sig, byless)

    def _take_approval(self, sig: ApproveSignal, byless: int | None) -> None:
        st = self._status
        step = st.current_step_index
        if self._approve_refusal(sig) is not None:
            workflow.logger.info(
                "approve for step %s ignored: step %d/%d is %s",
                sig.step,
                step,
                st.total_steps,
                st.step_state.value,
            )
            return
        if self._drift is not None:
            self._drift_ok = True
            workflow.logger.info(
                "%s restores the rollout's template over: %s", sig.by or "unknown", self._drift
            )
            return
        if self._analysis_approve(sig.by, sig.comment):
            return
        if step in self._approved:
            return
        self._approved.add(step)
        st.approvals.append(
            Approval(by=sig.by or "unknown", at=workflow.now(), step=step, comment=sig.comment)
        )
        if byless is not None:
            self._unattributed.append((len(st.approvals) - 1, byless))
        workflow.logger.info("step %d approved by %s", step, sig.by or "unknown")

    @workflow.update
    def approve_step(self, sig: ApproveSignal) -> RolloutStatus:
        """Approve like the ``approve`` signal, but answer with the status (UI "Send an Update")."""
        self._take_approval(sig, None)
        return self._status

    @approve_step.validator
    def _check_approve_step(self, sig: ApproveSignal) -> None:
        """Reject (nothing is written to history) unless that step is paused now."""
        refusal = self._approve_refusal(sig)
        if refusal is not None:
            raise ValueError(refusal)

    def _approve_refusal(self, sig: ApproveSignal) -> str | None:
        """The one judge of approve: the update validator raises it, the signal handler ignores it."""
        st = self._status
        step = st.current_step_index
        wid = workflow.info().workflow_id
        if self._aborted or self._abort is not None:
            return f"rollout {wid} is aborted; `rollout retry` restarts it, `rollout undo` rolls it back"
        if st.step_state != StepState.STEP_PAUSED or (sig.step is not None and sig.step != step):
            return (
                f"step {sig.step if sig.step is not None else step} of rollout {wid} is not paused "
                f"(step {step}/{st.total_steps} is {st.step_state.value}); nothing to approve"
            )
        return None

    @workflow.signal
    def control(self, sig: ControlSignal) -> None:
        """``rollout approve --full|pause|resume|abort|retry`` (durable: no worker needed to accept it)."""
        refusal = self._control_refusal(sig)
        if refusal is not None:
            workflow.logger.info("%s by %s ignored: %s", sig.action.value, sig.by or "unknown", refusal)
            return
        workflow.logger.info("%s by %s: %s", sig.action.value, sig.by or "unknown", self._apply_control(sig))

    @workflow.update
    def control_now(self, sig: ControlSignal) -> str:
        """Like the ``control`` signal, but judged at once and answered with what happened."""
        return self._apply_control(sig)

    @control_now.validator
    def _check_control_now(self, sig: ControlSignal) -> None:
        refusal = self._control_refusal(sig)
        if refusal is not None:
            raise ValueError(refusal)

    @workflow.signal
    def pause(self, sig: PauseSignal) -> None:
        """Compatibility: the declarative controller's old ``pause`` signal, now the ``control`` hold.

        Controllers send ``control`` (pause/resume) today; runs that received this signal still replay.
        """
        self._legacy_pause(sig)

    @workflow.signal
    def undo(self, sig: UndoSignal) -> None:
        """Roll back to the stable revision (ignored once finalizing has begun)."""
        if self._finalizing or self._undo is not None:
            workflow.logger.info("undo ignored: rollout is %s", self._status.phase.value)
            return
        self._undo = sig
        workflow.logger.info("undo requested by %s: %s", sig.by or "unknown", sig.reason)

    @workflow.update
    def replace(self, spec: RolloutSpec) -> RolloutStatus:
        """Continuous release: supersede the in-flight canary with ``spec.template`` (see ``_retarget``).

        The traffic routing stays the running rollout's (a replacement may omit it).
        """
        self._replace = spec
        workflow.logger.info("replacement requested by %s", spec.requested_by or "unknown")
        return self._status

    @replace.validator
    def _check_replace(self, spec: RolloutSpec) -> None:
        """Refuse a replacement the run cannot act on (nothing is written to history).

        A replacement names the template its starter wrote (``template_hash``); one that carries a
        template is refused on every run (validators do not run on replay, so old histories replay).
        """
        st = self._status
        wid = workflow.info().workflow_id
        if (spec.namespace, spec.name) != (self._spec.namespace, self._spec.name):
            raise ValueError(f"rollout {wid} is for {self._spec.target}, not {spec.target}")
        if spec.template is not None or not spec.template_hash:
            raise ValueError(
                f"rollout {wid}: a replacement names the template written into the Deployment "
                "(templateHash), never a template; use `rollout start --replace`"
            )
        if self._finalizing or self._undo is not None:
            raise ValueError(f"rollout {wid} is {st.phase.value} ({st.message}); cannot replace it now")
        if self._takeover is None:
            raise ValueError(f"rollout {wid} is still taking over {self._spec.target}; retry in a moment")
        if self._replace is not None:
            raise ValueError(f"rollout {wid} already has a replacement pending")
        if spec.traffic_routing is not None and spec.traffic_routing != self._spec.traffic_routing:
            raise ValueError(f"rollout {wid}: --replace cannot change the traffic routing")

    @workflow.signal
    def deployment_changed(self, change: DeploymentChange) -> None:
        """From the workers' shared watcher: the Deployment's replicas or template changed, or it is gone."""
        self._on_deployment_changed(change)

    @workflow.signal
    def release_finish(self) -> None:
        """From the parent release: it ended, so a target held at 100% hands its Deployment back."""
        self._take_release_finish()

    @workflow.query
    def status(self) -> RolloutStatus:
        """The rollout status (the contract in docs: camelCase JSON)."""
        return self._status

    # -- run -----------------------------------------------------------------------------------------

    # -- declarative mode: the Kruise Rollout object's status -----------------------------------------

    def _write_status(self, retry: RetryPolicy = RETRY) -> workflow.ActivityHandle[bool]:
        spec = self._spec
        return workflow.start_activity_method(
            RolloutObjectActivities.write_rollout_status,
            RolloutObjectStatusInput(
                namespace=spec.namespace,
                rollout=spec.rollout_object,
                deployment=spec.name,
                status=self._status.model_copy(deep=True),
            ),
            start_to_close_timeout=timedelta(seconds=spec.timings.activity_timeout_seconds),
            retry_policy=retry,
            summary=f"status of rollout {spec.rollout_object}: {self._status.message}",
        )

    async def _status_writer(self) -> None:
        """Mirror every status change into the Rollout object, one write at a time (changes coalesce)."""
        written = [-1]
        while True:
            await self._wait(lambda: self._status_version != written[0])
            written[0] = self._status_version
            await self._write_status()

    async def _final_status(self) -> None:
        """The last write; a few attempts only, so a broken status write never keeps the run open."""
        try:
            await self._write_status(RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(seconds=5)))
        except ActivityError as exc:
            workflow.logger.warning("final status of %s not written: %s", self._spec.rollout_object, exc)

    @workflow.run
    async def run(self, spec: RolloutSpec) -> RolloutStatus:
        """Take over, walk the steps, finalize; roll back on undo; restart on a replacement."""
        # New runs: one activity per step and pauses that wait on the watcher's signals.
        self._one_activity = workflow.patched(PATCH_ONE_ACTIVITY)
        if workflow.patched(PATCH_REFERENCE):
            refusal = input_refusal(spec, workflow.info().workflow_id)
            if refusal is not None:
                workflow.logger.warning("refused: %s", refusal)
                raise refusal
        # New runs: a cancellation request is an undo, and each outcome ends in its Temporal status.
        self._cancel_is_undo = workflow.patched(PATCH_OUTCOMES)
        writer = asyncio.create_task(self._status_writer()) if spec.rollout_object else None
        try:
            if self._cancel_is_undo:
                await self._run_cancellable(self._run(spec))
            else:
                await self._run(spec)
        finally:
            if writer is not None:
                writer.cancel()
        if writer is not None:
            await self._final_status()
        if self._cancel_is_undo:
            self._end()  # Failed (rolled back by analysis or the deadline) or Canceled (undone)
        return self._status

    async def _run(self, spec: RolloutSpec) -> None:
        self._publish(Phase.PROGRESSING, StepState.STEP_UPGRADE, Reason.STARTING)
        await self._notify_setup()
        try:
            if spec.traffic_routing is not None:
                # A missing or foreign Service/Ingress/HTTPRoute fails here, before any write.
                self._traffic_snapshot = await snapshot_traffic(
                    TrafficInput(namespace=spec.namespace, routing=spec.traffic_routing)
                )
            self._takeover = await self._call(
                TakeoverActivities.take_over,
                TakeoverInput(
                    ref=self._ref,
                    workflow_id=workflow.info().workflow_id,
                    template=spec.template,
                    template_hash=spec.template_hash,
                    adopt=bool(spec.rollout_object),
                ),
                summary=f"take over deployment {spec.target}: check the held template, create its canary",
                interruptible=False,
            )
            self._status.stable_revision = self._takeover.stable_revision
            self._status.canary_revision = self._takeover.canary_revision
            if self._cancel_is_undo and self._takeover.resumed:
                await self._settle_hold()
            if self._cancel_is_undo and self._takeover.template_differs and self._replace is None:
                self._replace = spec  # a closed run's hold with its canary: supersede it, then step 1
            while True:
                why = ""
                try:
                    if self._cancel_is_undo and self._interrupted():
                        raise Interrupted()  # undone before the first step (an orphan's hand-back): no move
                    await self._run_steps()
                    await self._hold_until_released()  # release targets: held at 100% until the release ends
                    self._finalizing = True
                    await self._complete()
                    break
                except Interrupted:
                    pass
                except DeadlineExceeded as exc:
                    why = str(exc)
                    self._finalizing = False
                    if self._spec.auto_rollback and self._undo is None:
                        self._undo = UndoSignal(by=DEADLINE_UNDO_BY, reason=why)
                        why = Reason.AUTO_ROLLBACK.format(why=why)
                    elif not self._interrupted():
                        await self._hold_failed(why)
                        why = ""
                if self._undo is not None:
                    self._stop_analysis("stopped: the rollout was rolled back")
                    if not why and self._undo.by == ANALYSIS_UNDO_BY:
                        why = self._undo.reason
                    await self._rollback(why)
                    break
                if self._abort is not None and self._replace is None:
                    self._stop_analysis("stopped: the rollout was aborted")
                    self._background_started, self._analysis_hold = False, None  # a retry starts over
                    await self._abort_and_wait()  # returns on retry, undo or a replacement
                    if self._undo is not None:
                        await self._rollback()
                        break
                    if self._replace is None:
                        continue  # retry: from step 1
                self._stop_analysis("stopped: a newer template replaced the canary")
                self._background_started, self._analysis_hold = False, None
                await self._retarget()
        except ActivityError as exc:
            self._stop_analysis("stopped: the rollout failed")
            await self._fail(exc)
        await self._notify_drain()
