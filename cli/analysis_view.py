"""The ``analysis`` section in ``rollout status`` (text, ``-o json``, ``-w``).

The workflow's status holds what each metric's activity *returned* (first value, failures, the end);
healthy measurements in between are only heartbeats, so ``merge_heartbeats`` adds the newest heartbeat
of each running metric (from the workflow's pending activities, one describe call) for a fresh value.
"""

from __future__ import annotations

from temporalio.client import Client, WorkflowExecutionDescription

from workflows.model import AnalysisStatus, MetricCounts, MetricReport, RolloutStatus

__all__ = ["PHASE_ICONS", "analysis_lines", "merge_heartbeats"]

# Argo's AnalysisRun icons.
PHASE_ICONS = {
    "Pending": "◷",
    "Running": "◌",
    "Successful": "✔",
    "Failed": "✖",
    "Inconclusive": "?",
    "Error": "⚠",
}


async def merge_heartbeats(
    client: Client, desc: WorkflowExecutionDescription, status: RolloutStatus
) -> RolloutStatus:
    """``status`` with each running metric's newest heartbeat (value, counts, time) merged in."""
    if status.analysis is None:
        return status
    reports: list[MetricReport] = []
    for pa in desc.raw_description.pending_activities:
        if pa.activity_type.name != "run_metric" or not pa.heartbeat_details.payloads:
            continue
        try:
            [report] = await client.data_converter.decode(pa.heartbeat_details.payloads[:1], [MetricReport])
        except Exception:  # noqa: BLE001 - an old or foreign heartbeat is simply not shown
            continue
        reports.append(report)
    for report in reports:
        for run in status.analysis.runs:
            if run.name != report.run:
                continue
            for m in run.metrics:
                if m.name == report.metric and report.counts.count > m.counts.count:
                    m.value, m.counts, m.measured_at = report.value, report.counts, report.at
                    m.phase = report.phase
    return status


def _counts(c: MetricCounts) -> str:
    """Argo's INFO column: only non-zero counts, ``✔ 4,✖ 4,? 1,⚠ 1``."""
    pairs = (
        ("Successful", c.successful),
        ("Failed", c.failed),
        ("Inconclusive", c.inconclusive),
        ("Error", c.error),
    )
    return ",".join(f"{PHASE_ICONS[phase]} {n}" for phase, n in pairs if n)


def analysis_lines(section: AnalysisStatus | None) -> list[str]:
    """One line per run and one per metric (empty without analysis)."""
    lines: list[str] = []
    for run in section.runs if section is not None else []:
        where = f"step {run.step}" if run.step else "background"
        lines.append(f"α {run.name} ({where}): {PHASE_ICONS[run.phase.value]} {run.phase.value}")
        for m in run.metrics:
            info = _counts(m.counts)
            value = f" value {m.value}" if m.value else ""
            lines.append(
                f"  {m.name}: {PHASE_ICONS[m.phase.value]} {m.phase.value}{value}"
                + (f"  {info}" if info else "")
            )
    return lines
