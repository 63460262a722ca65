"""The rollout workflow: a multi-batch canary of one Deployment, Kruise partition style.

Thin and deterministic: every Kubernetes call is an activity, every number comes from
``workflows.plan`` and ``workflows.traffic``. The run reads as Kruise's ``runCanary``::

    snapshot traffic objects -> take over
    -> for each step: traffic, scale (moves), wait ready, traffic, pause -> finalize
    undo at any time            -> traffic to stable, stable back to full, canary to 0, hand back
    replace at any time         -> canary down, new template, restart at step 1 (stable unchanged)
    no progress for the deadline -> Failed (waiting for undo/replace) or automatic rollback

All state is one ``RolloutState`` (``self.s``, ``workflows/state.py``); the parts are the chain of
``workflows/base.py``: notify_flow, outcome, verbs, converge, analysis_flow, undo (rollback, abort,
retarget, failure) and steps (the forward path). The edges (names, refusals, activity options) are
``workflows/contract.py``.

Signal and update handlers only record intent (``s.approved``, ``s.undo``, ``s.replace``,
``s.drift_ok``); ``run`` acts on it. Reads and waits are cancelled at once when undo or a
replacement arrives; writes are allowed to finish first, so a rollback never races a scale.

Search attributes are upserted only when the starter verified that the server has them
(``RolloutSpec.use_search_attributes``), so a server without them never blocks a rollout, and the
decision is in the input, which keeps replay stable.

New runs record one patch marker, ``PATCH_COMPACT_HISTORY``, standing for every earlier one, and
upsert search attributes once per workflow task: docs/layout.md, "Retiring old code".
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.rollout_status import RolloutObjectActivities
    from activities.takeover import TakeoverActivities
    from workflows import errors, plan
    from workflows.base import PHASE_KEY, STEP_KEY, TARGET_KEY, DeadlineExceeded, Interrupted
    from workflows.calls import start
    from workflows.contract import (
        ANALYSIS_UNDO_BY,
        DEADLINE_UNDO_BY,
        QUERY_STATUS,
        SIGNAL_APPROVE,
        SIGNAL_CONTROL,
        SIGNAL_DEPLOYMENT_CHANGED,
        SIGNAL_PAUSE,
        SIGNAL_RELEASE_FINISH,
        SIGNAL_UNDO,
        UPDATE_APPROVE_STEP,
        UPDATE_CONTROL_NOW,
        UPDATE_JUMP_STEP,
        UPDATE_REPLACE,
        UPDATE_REPLAN,
        UPDATE_UNDO_NOW,
        Purpose,
        approve_refusal,
        undo_refusal,
    )
    from workflows.converge import PATCH_ONE_ACTIVITY, PATCH_ONE_ENGINE
    from workflows.model import (
        PATCH_COMPACT_HISTORY,
        WORKFLOW_TYPE,
        Approval,
        ApproveSignal,
        ControlSignal,
        DeploymentChange,
        DeploymentRef,
        PauseSignal,
        Phase,
        Reason,
        Replan,
        RolloutObjectStatusInput,
        RolloutSpec,
        RolloutStatus,
        StepJump,
        StepState,
        TakeoverInput,
        TrafficInput,
        UndoSignal,
        workflow_id_for,
    )
    from workflows.outcome import PATCH_OUTCOMES
    from workflows.release_hold import ReleaseHoldMixin
    from workflows.state import RolloutState
    from workflows.traffic_flow import snapshot_traffic

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
class RolloutWorkflow(ReleaseHoldMixin):
    """One rollout of one Deployment (workflow ID ``rollout/<namespace>/<name>``; older runs
    ``rollout-<namespace>-<name>``)."""

    @workflow.init
    def __init__(self, spec: RolloutSpec) -> None:
        status = RolloutStatus(
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
        self.s = RolloutState(
            spec=spec, ref=DeploymentRef(namespace=spec.namespace, name=spec.name), status=status
        )

    # -- signals, updates and query ------------------------------------------------------------------

    @workflow.signal(name=SIGNAL_APPROVE)
    def approve(self, sig: ApproveSignal) -> None:
        """Approve the paused step (``sig.step`` 1-based, or ``None`` for the one paused now).

        While paused for another writer's template change, approve means "keep the rollout's
        template": the workflow writes it back and continues.
        """
        byless = None
        if not sig.by:  # a raw `temporal workflow signal`: the sender is looked up in history later
            byless, self.s.byless_approvals = self.s.byless_approvals, self.s.byless_approvals + 1
        self._take_approval(sig, byless)

    def _take_approval(self, sig: ApproveSignal, byless: int | None) -> None:
        st = self.s.status
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
        if self.s.drift is not None:
            self.s.drift_ok = True
            workflow.logger.info(
                "%s restores the rollout's template over: %s", sig.by or "unknown", self.s.drift
            )
            return
        if self._analysis_approve(sig.by, sig.comment):
            return
        if step in self.s.approved:
            return
        self.s.approved.add(step)
        st.approvals.append(
            Approval(by=sig.by or "unknown", at=workflow.now(), step=step, comment=sig.comment)
        )
        if byless is not None:
            self.s.unattributed.append((len(st.approvals) - 1, byless))
        workflow.logger.info("step %d approved by %s", step, sig.by or "unknown")

    @workflow.update(name=UPDATE_APPROVE_STEP)
    def approve_step(self, sig: ApproveSignal) -> RolloutStatus:
        """Approve like the ``approve`` signal, but answer with the status (UI "Send an Update")."""
        self._take_approval(sig, None)
        return self.s.status

    @approve_step.validator
    def _check_approve_step(self, sig: ApproveSignal) -> None:
        """Reject (nothing is written to history) unless that step is paused now."""
        refusal = self._approve_refusal(sig)
        if refusal is not None:
            raise ValueError(refusal)

    def _approve_refusal(self, sig: ApproveSignal) -> str | None:
        """The one judge of approve: the update validator raises it, the signal handler ignores it."""
        return approve_refusal(self.s.status, self._flags(), sig.step, workflow.info().workflow_id)

    @workflow.signal(name=SIGNAL_CONTROL)
    def control(self, sig: ControlSignal) -> None:
        """``rollout approve --full|pause|resume|abort|retry`` (durable: no worker needed to accept it)."""
        refusal = self._control_refusal(sig)
        if refusal is not None:
            workflow.logger.info("%s by %s ignored: %s", sig.action.value, sig.by or "unknown", refusal)
            return
        workflow.logger.info("%s by %s: %s", sig.action.value, sig.by or "unknown", self._apply_control(sig))

    @workflow.update(name=UPDATE_CONTROL_NOW)
    def control_now(self, sig: ControlSignal) -> str:
        """Like the ``control`` signal, but judged at once and answered with what happened."""
        return self._apply_control(sig)

    @control_now.validator
    def _check_control_now(self, sig: ControlSignal) -> None:
        refusal = self._control_refusal(sig)
        if refusal is not None:
            raise ValueError(refusal)

    @workflow.signal(name=SIGNAL_PAUSE)
    def pause(self, sig: PauseSignal) -> None:
        """Compatibility: the declarative controller's old ``pause`` signal, now the ``control`` hold.

        Controllers send ``control`` (pause/resume) today; runs that received this signal still replay.
        """
        self._legacy_pause(sig)

    @workflow.signal(name=SIGNAL_UNDO)
    def undo(self, sig: UndoSignal) -> None:
        """Roll back to the stable revision (ignored once finalizing has begun)."""
        self._take_undo(sig)

    @workflow.update(name=UPDATE_UNDO_NOW)
    def undo_now(self, sig: UndoSignal) -> RolloutStatus:
        """Like the ``undo`` signal, but judged at once and answered with the status."""
        self._take_undo(sig)
        return self.s.status

    @undo_now.validator
    def _check_undo_now(self, sig: UndoSignal) -> None:
        """Reject (nothing is written to history) once finalize has begun; a repeated undo is accepted."""
        refusal = undo_refusal(self.s.status, self._flags(), workflow.info().workflow_id)
        if refusal is not None:
            raise ValueError(refusal)

    def _take_undo(self, sig: UndoSignal) -> None:
        if self.s.finalizing or self.s.undo is not None:
            workflow.logger.info("undo ignored: rollout is %s", self.s.status.phase.value)
            return
        self.s.undo = sig
        workflow.logger.info("undo requested by %s: %s", sig.by or "unknown", sig.reason)

    @workflow.update(name=UPDATE_REPLACE)
    def replace(self, spec: RolloutSpec) -> RolloutStatus:
        """Continuous release: supersede the in-flight canary with ``spec.template`` (see ``_retarget``).

        The traffic routing stays the running rollout's (a replacement may omit it).
        """
        self.s.replace = spec
        workflow.logger.info("replacement requested by %s", spec.requested_by or "unknown")
        return self.s.status

    @replace.validator
    def _check_replace(self, spec: RolloutSpec) -> None:
        """Refuse a replacement the run cannot act on (nothing is written to history).

        A replacement names the template its starter wrote (``template_hash``); one that carries a
        template is refused on every run (validators do not run on replay, so old histories replay).
        """
        st = self.s.status
        wid = workflow.info().workflow_id
        if (spec.namespace, spec.name) != (self.s.spec.namespace, self.s.spec.name):
            raise ValueError(f"rollout {wid} is for {self.s.spec.target}, not {spec.target}")
        if spec.template is not None or not spec.template_hash:
            raise ValueError(
                f"rollout {wid}: a replacement names the template written into the Deployment "
                "(templateHash), never a template; use `rollout start --replace`"
            )
        if self.s.finalizing or self.s.undo is not None:
            raise ValueError(f"rollout {wid} is {st.phase.value} ({st.message}); cannot replace it now")
        if self.s.takeover is None:
            raise ValueError(f"rollout {wid} is still taking over {self.s.spec.target}; retry in a moment")
        if self.s.replace is not None:
            raise ValueError(f"rollout {wid} already has a replacement pending")
        if spec.traffic_routing is not None and spec.traffic_routing != self.s.spec.traffic_routing:
            raise ValueError(f"rollout {wid}: --replace cannot change the traffic routing")

    @workflow.update(name=UPDATE_JUMP_STEP)
    def jump_step(self, req: StepJump) -> str:
        """Go to step ``req.step`` (Kruise's ``nextStepIndex``; ``workflows/jump.py``)."""
        return self._take_jump(req)

    @jump_step.validator
    def _check_jump_step(self, req: StepJump) -> None:
        refusal = self._jump_refusal(req)
        if refusal is not None:
            raise refusal

    @workflow.update(name=UPDATE_REPLAN)
    def replan(self, req: Replan) -> str:
        """The steps were edited mid-rollout: recalculate the current step (``workflows/jump.py``)."""
        return self._take_replan(req)

    @replan.validator
    def _check_replan(self, req: Replan) -> None:
        refusal = self._replan_refusal(req)
        if refusal is not None:
            raise refusal

    @workflow.signal(name=SIGNAL_DEPLOYMENT_CHANGED)
    def deployment_changed(self, change: DeploymentChange) -> None:
        """From the workers' shared watcher: the Deployment's replicas or template changed, or it is gone."""
        self._on_deployment_changed(change)

    @workflow.signal(name=SIGNAL_RELEASE_FINISH)
    def release_finish(self) -> None:
        """From the parent release: it ended, so a target held at 100% hands its Deployment back."""
        self._take_release_finish()

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> RolloutStatus:
        """The rollout status (the contract in docs: camelCase JSON)."""
        return self.s.status

    # -- run -----------------------------------------------------------------------------------------

    # -- declarative mode: the Kruise Rollout object's status -----------------------------------------

    def _write_status(self, purpose: Purpose = Purpose.KUBE) -> workflow.ActivityHandle[bool]:
        spec = self.s.spec
        return start(
            RolloutObjectActivities.write_rollout_status,
            RolloutObjectStatusInput(
                namespace=spec.namespace,
                rollout=spec.rollout_object,
                deployment=spec.name,
                status=self.s.status.model_copy(deep=True),
            ),
            purpose=purpose,
            timings=spec.timings,
            summary=f"status of rollout {spec.rollout_object}: {self.s.status.message}",
        )

    async def _status_writer(self) -> None:
        """Mirror every status change into the Rollout object, one write at a time (changes coalesce)."""
        written = [-1]
        while True:
            await self._wait(lambda: self.s.status_version != written[0])
            written[0] = self.s.status_version
            await self._write_status()

    async def _final_status(self) -> None:
        """The last write; a few attempts only, so a broken status write never keeps the run open."""
        try:
            await self._write_status(Purpose.LOOKUP)
        except ActivityError as exc:
            workflow.logger.warning("final status of %s not written: %s", self.s.spec.rollout_object, exc)

    @workflow.run
    async def run(self, spec: RolloutSpec) -> RolloutStatus:
        """Take over, walk the steps, finalize; roll back on undo; restart on a replacement."""
        # New runs record one marker that stands for every patch below (each marker is two history
        # events); runs begun before it replay with their own markers.
        self.s.compact = compact = workflow.patched(PATCH_COMPACT_HISTORY)
        # New runs: one activity per step and pauses that wait on the watcher's signals.
        self.s.one_activity = compact or workflow.patched(PATCH_ONE_ACTIVITY)
        if compact or workflow.patched(PATCH_REFERENCE):
            refusal = input_refusal(spec, workflow.info().workflow_id)
            if refusal is not None:
                workflow.logger.warning("refused: %s", refusal)
                raise refusal
        # New runs: a cancellation request is an undo, and each outcome ends in its Temporal status.
        self.s.cancel_is_undo = compact or workflow.patched(PATCH_OUTCOMES)
        # New runs: the way back (undo, abort, retarget) converges in one activity, as forward does.
        self.s.one_engine = compact or workflow.patched(PATCH_ONE_ENGINE)
        upserts = asyncio.create_task(self._search_attribute_writer()) if compact else None
        try:
            return await self._run_to_the_end(spec)
        finally:
            if upserts is not None:
                upserts.cancel()
                self._flush_search_attributes()  # the last transition, before the run closes

    async def _run_to_the_end(self, spec: RolloutSpec) -> RolloutStatus:
        writer = asyncio.create_task(self._status_writer()) if spec.rollout_object else None
        try:
            if self.s.cancel_is_undo:
                await self._run_cancellable(self._run(spec))
            else:
                await self._run(spec)
        finally:
            if writer is not None:
                writer.cancel()
        if writer is not None:
            await self._final_status()
        if self.s.cancel_is_undo:
            self._end()  # Failed (rolled back by analysis or the deadline) or Canceled (undone)
        return self.s.status

    async def _run(self, spec: RolloutSpec) -> None:
        """The checklist: take over -> steps -> finalize | roll back | abort (then retry) | retarget."""
        self._publish(Phase.PROGRESSING, StepState.STEP_UPGRADE, Reason.STARTING)
        await self._notify_setup()
        try:
            await self._take_over(spec)
            while True:
                why = ""
                try:
                    if self.s.cancel_is_undo and self.s.interrupted():
                        raise Interrupted()  # undone before the first step (an orphan's hand-back): no move
                    await self._run_steps()
                    await self._hold_until_released()  # release targets: held at 100% until the release ends
                    self.s.finalizing = True
                    await self._complete()
                    break
                except Interrupted:
                    pass
                except DeadlineExceeded as exc:
                    why = await self._deadline_passed(str(exc))
                if not await self._after_interrupt(why):
                    break
        except ActivityError as exc:
            self._stop_analysis("stopped: the rollout failed")
            await self._fail(exc)
        await self._notify_drain()

    async def _take_over(self, spec: RolloutSpec) -> None:
        """Check the traffic objects, take the held Deployment over and create its canary ReplicaSet."""
        if spec.traffic_routing is not None:
            # A missing or foreign Service/Ingress/HTTPRoute fails here, before any write.
            self.s.traffic_snapshot = await snapshot_traffic(
                TrafficInput(namespace=spec.namespace, routing=spec.traffic_routing), spec.timings
            )
        self.s.takeover = await self._write(
            TakeoverActivities.take_over,
            TakeoverInput,
            summary=f"take over deployment {spec.target}: check the held template, create its canary",
            template=spec.template,
            template_hash=spec.template_hash,
            adopt=bool(spec.rollout_object),
            notify_defaults=self.s.notify_defaults_due,
        )
        self._take_notify_defaults(self.s.takeover.notify_defaults)
        self.s.status.stable_revision = self.s.takeover.stable_revision
        self.s.status.canary_revision = self.s.takeover.canary_revision
        if self.s.cancel_is_undo and self.s.takeover.resumed:
            await self._settle_hold()
        if self.s.cancel_is_undo and self.s.takeover.template_differs and self.s.replace is None:
            self.s.replace = spec  # a closed run's hold with its canary: supersede it, then step 1

    async def _deadline_passed(self, why: str) -> str:
        """No progress for the deadline: undo (``--auto-rollback``) or Failed until undo or a replacement.

        Returns the rollback's reason ("" when a person's undo or a replacement follows).
        """
        self.s.finalizing = False
        if self.s.spec.auto_rollback and self.s.undo is None:
            self.s.undo = UndoSignal(by=DEADLINE_UNDO_BY, reason=why)
            return Reason.AUTO_ROLLBACK.format(why=why)
        if not self.s.interrupted():
            await self._hold_failed(why)
            return ""
        return why

    async def _after_interrupt(self, why: str) -> bool:
        """Act on what ended the forward path: undo, abort or a replacement. True: run the steps again."""
        if self.s.undo is not None:
            self._stop_analysis("stopped: the rollout was rolled back")
            if not why and self.s.undo.by == ANALYSIS_UNDO_BY:
                why = self.s.undo.reason
            await self._rollback(why)
            return False
        if self.s.abort is not None and self.s.replace is None:
            self._stop_analysis("stopped: the rollout was aborted")
            self.s.background_started, self.s.analysis_hold = False, None  # a retry starts over
            await self._abort_and_wait()  # returns on retry, undo or a replacement
            if self.s.undo is not None:
                await self._rollback()
                return False
            if self.s.replace is None:
                return True  # retry: from step 1
        self._stop_analysis("stopped: a newer template replaced the canary")
        self.s.background_started, self.s.analysis_hold = False, None
        await self._retarget()
        return True
