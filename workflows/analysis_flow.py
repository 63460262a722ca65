"""Canary analysis in the rollout workflow: background runs, step runs, and what their outcome does.

Each metric of a run is one loop of ``run_metric`` activities (``activities/analysis.py``): an
activity measures on the metric's interval and returns only for a first value, a failed or
inconclusive measurement that counts towards a limit, or the metric's end, so a healthy analysis that
runs for hours adds a constant number of history events. The loop restarts the activity with the
counts it returned.

Outcome (Argo's): Failed or Error -> the rollout rolls back at once through the undo path (traffic to
stable first), and the RolledBack message names the metric, the value and the condition; Inconclusive
-> the rollout pauses at its next step boundary (approve continues and the run starts over, undo
rolls back); Successful -> nothing (a step analysis lets its step finish). Background analysis runs
from ``analysis_from_step`` until the rollout completes; every run is stopped on undo or a replacement.
A metric that ends Failed, Error or Inconclusive stops its run's other metrics (Argo's terminating
run: they end Successful unless over a limit), so nothing else rolls back while a person decides.
An Error does not count as a measurement: a metric without ``interval`` retries it after
``analysis_math.ERROR_RETRY_SECONDS`` until it measures once or errs past consecutiveErrorLimit.

Rollouts without analysis issue no new commands, so committed histories replay unchanged.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.analysis import AnalysisActivities
    from workflows import analysis_math
    from workflows.analysis_parse import arg_values, substitute
    from workflows.base import Interrupted
    from workflows.contract import ANALYSIS_UNDO_BY
    from workflows.model import (
        AnalysisRunStatus,
        AnalysisSpec,
        AnalysisStatus,
        Approval,
        MetricPhase,
        MetricReport,
        MetricRunInput,
        MetricSpec,
        MetricStatus,
        NotifyEvent,
        Phase,
        Reason,
        StepState,
        UndoSignal,
        WaitingFor,
    )
    from workflows.state import AnalysisRun
    from workflows.verbs import VerbsMixin

__all__ = ["AnalysisMixin"]

# Metrics without interval are sent as "count 1, interval = the error retry interval" (Argo's retry).
PATCH_ERROR_RETRY = "analysis-error-retry"
# An Inconclusive metric stops its siblings (Argo terminates the run).
PATCH_TERMINATE_SIBLINGS = "analysis-terminate-siblings"


class AnalysisMixin(VerbsMixin):
    """Start, watch and stop analysis runs; hold on inconclusive; roll back on failure."""

    # -- starting and stopping -----------------------------------------------------------------------

    def _maybe_start_background(self, index: int) -> None:
        if self.s.spec.analysis and not self.s.background_started and index >= self.s.spec.analysis_from_step:
            self.s.background_started = True
            for spec in self.s.spec.analysis:
                self._start_run(f"background-{spec.name}", spec, None)

    def _start_run(self, name: str, spec: AnalysisSpec, step: int | None) -> AnalysisRun:
        tk = self.s.takeover
        assert tk is not None
        values = arg_values(spec, stable_hash=tk.stable_revision, canary_hash=tk.canary_revision)
        metrics = [substitute(m, values) for m in spec.metrics]
        status = AnalysisRunStatus(
            name=name,
            template=spec.name,
            step=step,
            phase=MetricPhase.RUNNING,
            metrics=[MetricStatus(name=m.name) for m in metrics],
        )
        old = self.s.runs.pop(name, None)
        if old is not None:
            self._cancel(old)
        run = AnalysisRun(status=status, spec=spec)
        self.s.runs[name] = run
        st = self.s.status
        if st.analysis is None:
            st.analysis = AnalysisStatus()
        st.analysis.runs = [r for r in st.analysis.runs if r.name != name] + [status]
        run.tasks = [asyncio.create_task(self._metric_loop(run, i, m)) for i, m in enumerate(metrics)]
        workflow.logger.info("analysis %s started (%d metrics)", name, len(metrics))
        self._set_details()
        return run

    @staticmethod
    def _cancel(run: AnalysisRun) -> None:
        for task in run.tasks:
            if not task.done():
                task.cancel()

    def _stop_analysis(self, why: str, *, background_only: bool = False) -> None:
        """Cancel running metric loops; a run still Running ends Successful when nothing failed (Argo)."""
        for run in list(self.s.runs.values()):
            if background_only and run.status.step is not None:
                continue
            self._cancel(run)
            if run.status.phase in (MetricPhase.RUNNING, MetricPhase.PENDING):
                self._mark_terminated(run)
                run.status.message = why

    @staticmethod
    def _mark_terminated(run: AnalysisRun) -> None:
        """A stopped run's unfinished metrics take their terminating phase (Argo: Successful)."""
        for spec, m in zip(run.spec.metrics, run.status.metrics, strict=True):
            if m.phase not in analysis_math.TERMINAL:
                m.phase = analysis_math.metric_phase(spec, m.counts, terminating=True)
        run.status.phase = analysis_math.run_phase([m.phase for m in run.status.metrics])

    # -- one metric ----------------------------------------------------------------------------------

    async def _metric_loop(self, run: AnalysisRun, index: int, metric: MetricSpec) -> None:
        sent = metric
        if not metric.interval_seconds and (self.s.compact or workflow.patched(PATCH_ERROR_RETRY)):
            # One counted measurement; an Error is retried after Argo's error retry interval.
            sent = analysis_math.activity_metric(metric)
        inp = MetricRunInput(
            run=run.status.name,
            metric=sent,
            heartbeat_seconds=max(0.5, self.s.spec.timings.heartbeat_timeout_seconds / 3),
        )
        what = metric.prometheus.query if metric.prometheus else metric.web.url if metric.web else ""
        while True:
            # A long, heartbeating activity (the rollout's "wait" options); cancelled with its task.
            report: MetricReport = await self._start_activity(
                AnalysisActivities.run_metric,
                inp,
                summary=f"measure {run.status.name}/{metric.name}: {what}"[:200],
                wait=True,
            )
            self._record_metric(run, index, report)
            if report.phase in analysis_math.TERMINAL:
                self._metric_done(run, metric, report)
                return
            inp = inp.model_copy(update={"counts": report.counts, "started": True})

    def _record_metric(self, run: AnalysisRun, index: int, report: MetricReport) -> None:
        m = run.status.metrics[index]
        m.phase, m.counts, m.measured_at = report.phase, report.counts, report.at
        m.value, m.message = report.value, report.message
        run.status.phase = analysis_math.run_phase([x.phase for x in run.status.metrics])
        self._set_details()

    def _metric_done(self, run: AnalysisRun, metric: MetricSpec, report: MetricReport) -> None:
        name = run.status.name
        if report.phase in (MetricPhase.FAILED, MetricPhase.ERROR):
            run.status.message = report.message
            self._cancel(run)
            self._mark_terminated(run)
            if self.s.undo is None and not self.s.finalizing:
                why = Reason.ANALYSIS_FAILED.format(run=name, why=report.message)
                workflow.logger.info("rolling back: %s", why)
                self.s.undo = UndoSignal(by=ANALYSIS_UNDO_BY, reason=why)
                self._notify(NotifyEvent.ANALYSIS_FAILED, why)
        elif report.phase == MetricPhase.INCONCLUSIVE:
            run.status.message = report.message
            if self.s.compact or workflow.patched(PATCH_TERMINATE_SIBLINGS):
                self._cancel(run)
                self._mark_terminated(run)
            if self.s.analysis_hold is None:
                self.s.analysis_hold = Reason.ANALYSIS_HOLD.format(run=name, why=report.message)
        elif run.status.phase == MetricPhase.SUCCESSFUL:
            run.status.message = f"all {len(run.status.metrics)} metrics successful"

    # -- what the forward path calls -------------------------------------------------------------------

    def _analysis_approve(self, by: str, comment: str) -> bool:
        """``approve`` while held for an inconclusive analysis: continue (True when it applied)."""
        if self.s.analysis_hold is None or self.s.analysis_ok:
            return False
        self.s.analysis_ok = True
        st = self.s.status
        st.approvals.append(
            Approval(by=by or "unknown", at=workflow.now(), step=st.current_step_index, comment=comment)
        )
        workflow.logger.info("inconclusive analysis approved by %s", by or "unknown")
        return True

    async def _analysis_gate(self) -> None:
        """Hold while an analysis is inconclusive: approve continues (runs start over), undo rolls back."""
        while self.s.analysis_hold is not None and not self.s.status.promote_full:
            st = self.s.status
            previous = (st.phase, st.step_state, st.message, st.waiting_for, st.finalizing)
            self._publish(
                Phase.PAUSED, StepState.STEP_PAUSED, self.s.analysis_hold, waiting_for=WaitingFor.ANALYSIS
            )
            self._notify(NotifyEvent.STEP_PAUSED, self.s.analysis_hold)  # a human decides
            await self._wait(lambda: self.s.analysis_ok or self.s.interrupted() or self.s.status.promote_full)
            if self.s.interrupted():
                raise Interrupted()
            self.s.analysis_hold, self.s.analysis_ok = None, False
            for run in list(self.s.runs.values()):
                if run.status.phase == MetricPhase.INCONCLUSIVE and run.status.step is None:
                    self._start_run(run.status.name, run.spec, None)
            self._publish(*previous[:3], waiting_for=previous[3], finalizing=previous[4])

    async def _run_step_analysis(self, index: int, names: list[str]) -> None:
        """Run the step's templates and wait for all of them (Failed rolls back, Inconclusive holds)."""
        by_name = {s.name: s for s in self.s.spec.step_analysis}
        runs = [self._start_run(f"step{index}-{n}", by_name[n], index) for n in names]
        n = len(self.s.spec.steps)
        self._publish(
            Phase.PROGRESSING,
            StepState.STEP_UPGRADE,
            f"Rollout is in step({index}/{n}), waiting for analysis {', '.join(r.status.name for r in runs)}",
        )
        while True:
            await self._wait(
                lambda: (
                    self.s.interrupted()
                    or self.s.analysis_hold is not None
                    or self.s.status.promote_full
                    or all(r.status.phase in analysis_math.TERMINAL for r in runs)
                )
            )
            if self.s.interrupted():
                raise Interrupted()
            if self.s.analysis_hold is None or self.s.status.promote_full:
                return  # done, or `approve --full` skips analysis (Argo terminates it)
            await self._analysis_gate()  # approve: an inconclusive step analysis counts as done
