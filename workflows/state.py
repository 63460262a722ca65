"""All state of one rollout run, in one place (argo's ``rolloutContext``, the samples' one state dataclass).

The workflow holds one ``RolloutState`` (``self.s``) and every part of it reads and writes these
fields, and nothing else: handlers record intent here (``approved``, ``undo``, ``replace``, ``abort``,
...), ``run`` and the parts act on it. Each field says what it means; none is a copy of another
(``status.held_by`` and ``status.promote_full`` are the hold and the full promotion themselves).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from temporalio import workflow

from workflows.model import (
    AnalysisRunStatus,
    AnalysisSpec,
    ControlSignal,
    DeploymentChange,
    DeploymentRef,
    Phase,
    RolloutSpec,
    RolloutStatus,
    StepState,
    StepTraffic,
    TakeoverResult,
    TrafficSnapshot,
    UndoSignal,
    WaitingFor,
)

__all__ = ["AnalysisRun", "RolloutState"]


@dataclass
class AnalysisRun:
    """One running analysis: its status (shown), its template, and one task per metric loop."""

    status: AnalysisRunStatus
    spec: AnalysisSpec
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


@dataclass
class RolloutState:
    """Everything a rollout run knows; the query answers ``status``."""

    # -- what the run was asked -------------------------------------------------------------------------
    spec: RolloutSpec  # the input; a replacement (``--replace``) updates its template and steps
    ref: DeploymentRef  # the Deployment every Kubernetes activity names
    status: RolloutStatus  # what the ``status`` query, the UI, the CLI and the Rollout object show

    # -- which code generation this run is (fixed at run start by ``workflow.patched``) -----------------
    one_activity: bool = False  # a step's moves in one ``converge_step``; pauses wait on watcher signals
    cancel_is_undo: bool = False  # a cancellation request is an undo; each outcome ends in its status
    one_engine: bool = False  # undo, abort and retarget converge in one ``converge_step`` too
    compact: bool = False  # ``PATCH_COMPACT_HISTORY``: one marker for every patch, upserts coalesced

    # -- the cluster, as taken over ---------------------------------------------------------------------
    takeover: TakeoverResult | None = None  # the stable and canary ReplicaSets; None before take_over
    traffic_snapshot: TrafficSnapshot | None = None  # the user's traffic objects before any change
    traffic_cur: StepTraffic | None = None  # the traffic in effect now (for the status)
    traffic_touched: bool = False  # a traffic operation ran: a failure restores the user's objects
    status_version: int = 0  # bumped on every status change (declarative mode writes each one out)
    search_attributes: tuple[str, str, int] | None = None  # (target, phase, step) not yet upserted

    # -- intent recorded by handlers, acted on by ``run`` ----------------------------------------------
    approved: set[int] = field(default_factory=set)  # 1-based steps approved (or whose timer ran out)
    byless_approvals: int = 0  # approve signals without ``by`` so far (their senders are in history)
    unattributed: list[tuple[int, int]] = field(default_factory=list)  # (approval, by-less signal) pairs
    undo: UndoSignal | None = None  # the undo asked for (a person, analysis, the deadline, a cancellation)
    undo_is_cancel: bool = False  # ``undo`` came from a cancellation request
    cancel_requested: bool = False  # a cancellation request arrived (the run ends Canceled if undone)
    replace: RolloutSpec | None = None  # a replacement waiting to retarget the canary
    abort: ControlSignal | None = None  # an abort asked for and not yet retried or undone
    aborted: bool = False  # the abort is done: pods and traffic on stable, waiting for retry/undo/replace
    retry: bool = False  # retry asked for while aborted
    finalizing: bool = False  # finalize or a rollback has begun: undo, verbs and replacements are refused
    release_done: bool = False  # a release target: the parent release ended (``release_finish``)
    jump: int | None = None  # a step to go to (``nextStepIndex``, or a plan edit), acted on by the steps loop
    jump_keys: set[str] = field(default_factory=set)  # the jump requests already taken (a repeat acts once)
    canary_floor: int = 0  # canary pods a step keeps after a jump or a plan edit (never taken back)

    # -- holds ------------------------------------------------------------------------------------------
    held_display: tuple[Phase, StepState, str, WaitingFor | None] | None = None  # shown before the hold
    drift: str | None = None  # another writer's template change the run is paused for
    drift_ok: bool = False  # approve while paused for drift: write the rollout's template back
    change: DeploymentChange | None = None  # the newest change the shared watcher signalled
    change_rv: str = ""  # its resourceVersion (older signals are dropped)

    # -- analysis ---------------------------------------------------------------------------------------
    runs: dict[str, AnalysisRun] = field(default_factory=dict)  # by run name (background-*, stepN-*)
    background_started: bool = False  # the background analysis runs have started
    analysis_hold: str | None = None  # an inconclusive analysis holds the rollout (the message)
    analysis_ok: bool = False  # approve while held for an inconclusive analysis

    # -- notifications ----------------------------------------------------------------------------------
    notify_by_name: bool = False  # targets are names the worker resolves (no URL in history)
    notify_names: list[str] = field(default_factory=list)  # target names told of each event
    notify_urls: list[str] = field(default_factory=list)  # URLs told (older runs; raw input)
    notify_defaults_due: bool = False  # the worker's default targets are still to come (from take_over)
    notify_pending: list[workflow.ActivityHandle[Any]] = field(default_factory=list)  # deliveries running

    def interrupted(self) -> bool:
        """Undo, a replacement or an abort ends the forward path (reads and waits are abandoned)."""
        return self.undo is not None or self.replace is not None or self.abort is not None

    def held(self) -> bool:
        """``rollout pause`` holds the forward path (never finalize or a rollback)."""
        return bool(self.status.held_by) and not self.finalizing
