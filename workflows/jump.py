"""Step jumps and plan edits of a running rollout, the way OpenKruise Rollouts makes them.

- ``jump_step`` (Kruise's ``nextStepIndex`` patched into the Rollout's status): the run leaves the step
  it is at (a pause ends, a converge in flight stops after its write) and runs step N, 1-based. A step
  outside the plan moves nothing; the status is written again, which sets ``nextStepIndex`` back to
  the step after the current one, as Kruise corrects it.
- ``replan`` (the Rollout's steps edited, same number of steps): the current step is recalculated from
  the new plan (``workflows.plan.replan_step``); the run goes there and runs it with the new numbers,
  or, when that is the next step anyway, the current step counts as done. An edit of pauses alone
  changes no step (Kruise's rollout hash leaves pauses out).

Kruise's partition style never takes updated pods back, so after either the canary keeps the pods it
has (``s.canary_floor``): a jump back re-runs the earlier step's pause, not its pod count.

Both are validated updates; a request the run cannot act on is refused with a named, non-retryable
``ApplicationError`` and leaves no history. The steps loop (``workflows/steps.py``) acts on ``s.jump``.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows import errors, plan
    from workflows.contract import Refusal, move_refusal
    from workflows.model import Replan, StepJump
    from workflows.undo import UndoMixin

__all__ = ["PATCH_STEP_JUMP", "JumpMixin"]

# Runs that took a jump or a plan edit carry this marker: code without them fails to replay such a
# history loudly instead of walking the old plan.
PATCH_STEP_JUMP = "kruise-step-jump"


class JumpMixin(UndoMixin):
    """``jump_step`` and ``replan``: the judges and the handlers' bodies (``rollout.py`` declares them)."""

    def _move_refusal(self, verb: str, kind: str, *, before_steps: bool = False) -> ApplicationError | None:
        wid = workflow.info().workflow_id
        if not self.s.one_activity:
            text: str | None = Refusal.OLD_RUN.format(wid=wid, verb=verb)
        else:
            text = move_refusal(self.s.status, self._flags(), verb, wid, before_steps=before_steps)
        if text is None and self.s.replace is not None:
            text = f"rollout {wid} has a newer template pending; {verb} refused"
        return None if text is None else ApplicationError(text, type=kind, non_retryable=True)

    def _jump_refusal(self, req: StepJump) -> ApplicationError | None:
        return self._move_refusal(f"jump to step {req.step}", errors.STEP_JUMP_REFUSED)

    def _replan_refusal(self, req: Replan) -> ApplicationError | None:
        refusal = self._move_refusal("plan edit", errors.PLAN_CHANGE_REFUSED, before_steps=True)
        if refusal is not None:
            return refusal
        wid, n = workflow.info().workflow_id, len(self.s.spec.steps)
        text = None
        if len(req.steps) != n:
            text = f"rollout {wid}: the number of steps cannot change while it runs ({n} -> {len(req.steps)})"
        else:
            try:
                plan.validate_steps(req.steps)
            except ValueError as exc:
                text = f"rollout {wid}: {exc}"
        return (
            None
            if text is None
            else ApplicationError(text, type=errors.PLAN_CHANGE_REFUSED, non_retryable=True)
        )

    def _take_jump(self, req: StepJump) -> str:
        workflow.patched(PATCH_STEP_JUMP)
        st, n = self.s.status, len(self.s.spec.steps)
        i, nxt = st.current_step_index, plan.next_step_index(st.current_step_index, n)
        if req.key and req.key in self.s.jump_keys:
            return f"jump {req.key} was taken already"
        if req.key:
            self.s.jump_keys.add(req.key)
        if not 1 <= req.step <= n:
            self._set_details()  # written again: the stored nextStepIndex goes back to the next step
            return f"step {req.step} is not a step of this rollout (1-{n}); the next step stays {nxt}"
        if req.step == nxt:
            return f"step {req.step} is the next step already"
        self._go_to(req.step, req.by)
        return f"jumping from step {i}/{n} to step {req.step}"

    def _take_replan(self, req: Replan) -> str:
        workflow.patched(PATCH_STEP_JUMP)
        st, old = self.s.status, self.s.spec.steps
        self.s.spec.steps, st.steps = list(req.steps), list(req.steps)
        self._set_details()
        i, n = st.current_step_index, len(req.steps)
        if i < 1 or plan.same_but_pauses(old, req.steps):
            return "plan updated; the current step stays"
        target = plan.replan_step(old, req.steps, i, st.replicas)
        if target == plan.next_step_index(i, n):
            self.s.approved.add(i)  # Kruise: the step is ready, the next one follows
            workflow.logger.info("plan edited by %s: step %d is done, step %d follows", req.by, i, target)
            return f"plan edited: step {i} is done, step {target} follows"
        self._go_to(target, req.by)
        return f"plan edited: step {i}/{n} recalculated to step {target}"

    def _go_to(self, step: int, by: str) -> None:
        """Record the jump: the steps loop leaves the current step and runs ``step``."""
        self.s.jump = step
        self.s.canary_floor = max(self.s.canary_floor, self.s.status.canary_replicas)
        self.s.approved = {a for a in self.s.approved if a < step}  # steps ahead pause again
        workflow.logger.info(
            "%s: step %d -> step %d", by or "unknown", self.s.status.current_step_index, step
        )
