"""Pure rules of a release: how many targets may start, when a wave has failed, which approvals are
refused and why, and the order of a fleet-wide rollback. The workflow (``workflows/release.py``) only
asks these questions; table tests in ``tests/release/test_release_plan.py`` answer them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from workflows.errors import ANALYSIS_ROLLBACK, PROGRESS_DEADLINE
from workflows.model import (
    FailurePolicy,
    ReleasePhase,
    ReleaseSpec,
    ReleaseStatus,
    ReleaseTargetStatus,
    ReleaseWaveStatus,
    TargetOutcome,
    TargetState,
    WaveState,
)

__all__ = [
    "ACTIVE",
    "ENDED",
    "approval_refusal",
    "can_start",
    "continue_as_new_due",
    "details_text",
    "failure_text",
    "initial_status",
    "outcome_state",
    "rollback_waves",
    "wave_verdict",
]

ACTIVE = frozenset({TargetState.RUNNING})
# Targets whose rollout run has ended (held targets still run, at 100%).
ENDED = frozenset({TargetState.COMPLETED, TargetState.FAILED, TargetState.ROLLED_BACK, TargetState.SKIPPED})
# Failures after which a target has already rolled itself back (its own analysis or progress deadline).
SELF_ROLLED_BACK = frozenset({ANALYSIS_ROLLBACK, PROGRESS_DEADLINE})
FINAL_PHASES = frozenset(
    {ReleasePhase.COMPLETED, ReleasePhase.ROLLED_BACK, ReleasePhase.FAILED, ReleasePhase.ABORTED}
)


def initial_status(spec: ReleaseSpec, workflow_id: str) -> ReleaseStatus:
    """Every wave Pending, every target Pending."""
    waves = [
        ReleaseWaveStatus(
            name=w.name,
            targets=[
                ReleaseTargetStatus(
                    cluster=t.target.cluster,
                    namespace=t.target.namespace,
                    deployment=t.target.deployment,
                    workflow_id=t.target.workflow_id,
                )
                for t in w.targets
            ],
            max_failures=w.max_failures,
            max_parallel=w.max_parallel,
            bake_seconds=w.bake_seconds,
            approval_required=w.approval.required,
        )
        for w in spec.waves
    ]
    return ReleaseStatus(
        release_id=spec.release_id,
        workflow_id=workflow_id,
        total_waves=len(spec.waves),
        change=spec.change,
        waves=waves,
    )


def can_start(states: Sequence[TargetState], max_parallel: int) -> int:
    """How many Pending targets of a wave may start now: ``max_parallel`` (0: all) minus those running."""
    pending = sum(1 for s in states if s == TargetState.PENDING)
    if max_parallel <= 0:
        return pending
    running = sum(1 for s in states if s in ACTIVE)
    return max(0, min(pending, max_parallel - running))


def wave_verdict(states: Sequence[TargetState], max_failures: int) -> WaveState | None:
    """``Failed`` once failures exceed ``max_failures``; ``Succeeded`` when no target is pending or
    running and the failures stayed within it; ``None`` while the wave is still going."""
    failures = sum(1 for s in states if s == TargetState.FAILED)
    if failures > max_failures:
        return WaveState.FAILED
    if any(s == TargetState.PENDING or s in ACTIVE for s in states):
        return None
    return WaveState.SUCCEEDED


def rollback_waves(policy: FailurePolicy, current: int, abort_rollback: str | None = None) -> list[int]:
    """The waves (0-based indexes) whose released targets go back, newest first.

    ``abort_rollback`` (``rollout release abort --rollback``) overrides the file's policy.
    """
    rollback = abort_rollback if abort_rollback is not None else policy.rollback
    if rollback == "previousWaves":
        return list(range(current, -1, -1))
    if rollback == "currentWave":
        return [current]
    return []


def approval_refusal(
    status: ReleaseStatus,
    wave: str,
    *,
    open_wave: int | None,
    expired: dict[int, datetime],
    halted_by: str,
) -> str | None:
    """Why ``approve --wave wave`` is refused now (``None``: it is accepted).

    ``open_wave``: the wave (0-based) waiting for its approval now; ``expired``: waves whose approval
    window closed (timeout) and when.
    """
    rid = status.release_id
    names = [w.name for w in status.waves]
    if wave not in names:
        return f"release {rid} has no wave {wave!r} (its waves: {', '.join(names)})"
    index = names.index(wave)
    if status.phase in FINAL_PHASES or status.phase in (ReleasePhase.ROLLING_BACK, ReleasePhase.FINISHING):
        return f"release {rid} is {status.phase.value}; nothing to approve"
    if index in expired and open_wave != index:
        return (
            f"the approval of wave {wave} timed out at {expired[index].isoformat(timespec='seconds')}; "
            f"release {rid} is halted: `rollout release resume {rid}` opens the approval again"
        )
    if halted_by:
        return f"release {rid} is halted by {halted_by}; `rollout release resume {rid}` first"
    ws = status.waves[index]
    if ws.approved_by:
        return f"wave {wave} of release {rid} was already approved by {ws.approved_by}"
    if not ws.approval_required:
        return f"wave {wave} of release {rid} needs no approval"
    if open_wave != index:
        current = status.waves[open_wave].name if open_wave is not None else None
        where = f"wave {current} waits for approval" if current else f"it is at wave {status.current_wave}"
        return f"wave {wave} of release {rid} is not waiting for approval ({where})"
    return None


def continue_as_new_due(
    status: ReleaseStatus, next_wave: int, *, history_length: int, threshold: int, suggested: bool
) -> bool:
    """Whether the release continues as new before wave ``next_wave`` (0-based): only between waves,
    with a wave still to run and no target in flight, once the server suggests it or the history
    reached ``threshold`` events (0: no threshold of our own)."""
    if next_wave >= len(status.waves):
        return False
    if any(t.state in ACTIVE for w in status.waves for t in w.targets):
        return False
    return suggested or (threshold > 0 and history_length >= threshold)


def outcome_state(outcome: TargetOutcome, *, asked_to_roll_back: bool) -> tuple[TargetState, str]:
    """A target's state and message from how its run ended (``asked_to_roll_back``: this release sent
    the cancellation; any other is a person's ``rollout undo``, which fails the target)."""
    if outcome.kind == "completed":
        return TargetState.COMPLETED, "handed back on the new template"
    if outcome.kind == "canceled":
        if asked_to_roll_back:
            return TargetState.ROLLED_BACK, "rolled back by the release"
        return TargetState.FAILED, "rolled back by `rollout undo`"
    if outcome.error_type in SELF_ROLLED_BACK:
        return TargetState.FAILED, f"rolled back: {outcome.message}"
    return TargetState.FAILED, f"failed: {outcome.message}"


def failure_text(status: ReleaseStatus, wave: int, aborted_by: str | None) -> str:
    """Why the release stops at wave ``wave`` (0-based): the abort, or the wave's failed targets."""
    if aborted_by is not None:
        return f"aborted by {aborted_by}"
    ws = status.waves[wave]
    failed = [t.workflow_id for t in ws.targets if t.state == TargetState.FAILED]
    return f"wave {ws.name} failed ({len(failed)} of {len(ws.targets)} targets: {', '.join(failed)})"


def details_text(status: ReleaseStatus) -> str:
    """The parent's UI details: phase, wave, message, then every wave and its targets."""
    st = status
    lines = [f"**{st.phase.value}** · wave {st.current_wave}/{st.total_waves}", "", f"- {st.message}"]
    for w in st.waves:
        lines.append(f"- wave **{w.name}**: {w.state.value}")
        lines.extend(f"  - `{t.workflow_id}`: {t.state.value}" for t in w.targets)
    return "\n".join(lines)
