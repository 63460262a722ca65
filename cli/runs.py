"""What the Temporal server alone knows about a rollout run: no worker needed.

A rollout's history and visibility record answer most questions while every worker is down:

- the workflow input (the ``RolloutSpec``: steps, images, who started it),
- the search attributes the workflow upserts at every transition (``RolloutPhase``, ``RolloutStep``),
- every ``approve`` signal and ``approve_step`` update, with the sender's identity from the event
  (so an approval sent with a raw ``temporal workflow signal`` and no ``by`` is still attributed),
- the outcome: the result of a completed run; of a failed or canceled one (runs that end in Temporal's
  own statuses), the last status the workflow put in its memo and in its failure's details; the
  failure/termination of any other closed run.

``last_known_status`` builds a ``RolloutStatus`` from these for ``rollout status`` when no worker
answers; ``run_record`` is one row of ``rollout history``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.common import TypedSearchAttributes

from connect import cancel_is_undo, first_task_patches
from workflows.model import (
    MEMO_STATUS,
    SA_PHASE_KEY,
    SA_STEP_KEY,
    Approval,
    ApproveSignal,
    Phase,
    RolloutSpec,
    RolloutStatus,
    StepState,
    undo_from_cancel,
)

__all__ = [
    "cancel_is_undo",
    "failure_reason",
    "first_task_patches",
    "closed_status",
    "final_status",
    "RunRecord",
    "ApprovalEvent",
    "last_known_status",
    "read_run",
    "search_attribute_position",
]

_PHASE_KEY, _STEP_KEY = SA_PHASE_KEY, SA_STEP_KEY

# Outcome of a closed run that has no RolloutStatus result.
_CLOSED_OUTCOME = {
    WorkflowExecutionStatus.FAILED: Phase.FAILED.value,
    WorkflowExecutionStatus.TERMINATED: "Terminated",
    WorkflowExecutionStatus.CANCELED: "Canceled",
    WorkflowExecutionStatus.TIMED_OUT: "TimedOut",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "ContinuedAsNew",
}


@dataclass
class ApprovalEvent:
    """One approval as the server recorded it (``by`` falls back to the sender's identity)."""

    step: int | None
    by: str
    at: datetime | None
    comment: str = ""
    via: str = "signal"

    def as_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "by": self.by,
            "at": self.at.isoformat() if self.at else None,
            "comment": self.comment,
            "via": self.via,
        }


@dataclass
class RunRecord:
    """One rollout run read from its history (newest-first rows of ``rollout history``)."""

    workflow_id: str
    run_id: str
    status: str
    start: datetime | None = None
    end: datetime | None = None
    spec: RolloutSpec | None = None
    result: RolloutStatus | None = None
    failure: str = ""
    approvals: list[ApprovalEvent] = field(default_factory=list)
    undo_by: str = ""

    @property
    def outcome(self) -> str:
        """Completed / RolledBack / Failed / Running / Terminated ... (the result's phase when it has one)."""
        if self.result is not None:
            return self.result.phase.value
        return self.status

    def as_json(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "workflowId": self.workflow_id,
            "runId": self.run_id,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "outcome": self.outcome,
            "message": self.result.message if self.result else self.failure,
            "stableImages": spec.stable_images if spec else {},
            "canaryImages": spec.canary_images if spec else {},
            "steps": [str(s.replicas) for s in spec.steps] if spec else [],
            "requestedBy": spec.requested_by if spec else "",
            "approvals": [a.as_json() for a in self.approvals],
            "undoBy": self.undo_by,
        }


def search_attribute_position(sa: TypedSearchAttributes) -> tuple[Phase | None, int | None]:
    """The phase and step the workflow last upserted (``None`` where the server has none)."""
    phase_text = sa.get(_PHASE_KEY)
    step = sa.get(_STEP_KEY)
    phase: Phase | None = None
    if phase_text:
        try:
            phase = Phase(phase_text)
        except ValueError:
            phase = None
    return phase, step


def _decode_one(client: Client, payloads: Any, type_: type[Any]) -> Any:
    items = list(payloads.payloads) if payloads is not None else []
    if not items:
        return None
    return client.data_converter.payload_converter.from_payloads(items, [type_])[0]


def _time(event: HistoryEvent) -> datetime | None:
    return event.event_time.ToDatetime().astimezone() if event.HasField("event_time") else None


def _approval(client: Client, payloads: Any, identity: str, event: HistoryEvent, via: str) -> ApprovalEvent:
    """An approval sent as ``via`` (signal or update); ``by`` falls back to the sender's identity."""
    sig = _decode_one(client, payloads, ApproveSignal) or ApproveSignal()
    return ApprovalEvent(
        step=sig.step, by=sig.by or identity or "unknown", at=_time(event), comment=sig.comment, via=via
    )


def _apply_event(client: Client, rec: RunRecord, event: HistoryEvent) -> None:
    et = event.event_type
    if et == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        attrs = event.workflow_execution_started_event_attributes
        rec.spec = _decode_one(client, attrs.input, RolloutSpec)
        rec.start = _time(event)
    elif et == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
        attrs_s = event.workflow_execution_signaled_event_attributes
        if attrs_s.signal_name == "approve":
            rec.approvals.append(_approval(client, attrs_s.input, attrs_s.identity, event, "signal"))
        elif attrs_s.signal_name == "undo" and not rec.undo_by:
            payload = _decode_one(client, attrs_s.input, dict) or {}
            rec.undo_by = str(payload.get("by") or attrs_s.identity or "unknown")
    elif et == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
        attrs_u = event.workflow_execution_update_accepted_event_attributes
        req = attrs_u.accepted_request
        if req.input.name == "approve_step":
            rec.approvals.append(_approval(client, req.input.args, req.meta.identity, event, "update"))
    elif et == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED and not rec.undo_by:
        attrs_c = event.workflow_execution_cancel_requested_event_attributes
        rec.undo_by = undo_from_cancel(attrs_c.cause).by or attrs_c.identity or "unknown"
    elif et == EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
        memo = event.workflow_properties_modified_event_attributes.upserted_memo.fields
        if MEMO_STATUS in memo:
            rec.result = client.data_converter.payload_converter.from_payloads(
                [memo[MEMO_STATUS]], [RolloutStatus]
            )[0]
    elif et == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        rec.result = _decode_one(
            client, event.workflow_execution_completed_event_attributes.result, RolloutStatus
        )
        rec.end = _time(event)
    elif et == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
        rec.failure = event.workflow_execution_failed_event_attributes.failure.message
        rec.end = _time(event)
    elif et in (
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
    ):
        rec.end = _time(event)
        if et == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
            rec.failure = event.workflow_execution_terminated_event_attributes.reason


async def closed_status(handle: WorkflowHandle[Any, Any], desc: WorkflowExecution) -> RolloutStatus | None:
    """The last status of a closed run: its result, or (failed or canceled runs) the status in its memo."""
    if desc.status == WorkflowExecutionStatus.COMPLETED:
        result: RolloutStatus = await handle.result()
        return result
    try:
        memo = await desc.memo_value(MEMO_STATUS, None, type_hint=RolloutStatus)
    except (KeyError, ValueError, TypeError):
        return None
    return memo if isinstance(memo, RolloutStatus) else None


async def final_status(handle: WorkflowHandle[Any, RolloutStatus]) -> RolloutStatus:
    """Wait until the run closes: the status it ended with, Completed, Failed or Canceled alike."""
    try:
        return await handle.result()
    except WorkflowFailureError:
        st = await closed_status(handle, await handle.describe())
        if st is None:
            raise
        return st


async def failure_reason(handle: WorkflowHandle[Any, Any], desc: WorkflowExecution) -> str:
    """A failed run's failure message (the error it failed with, e.g. a refusal), or ""."""
    if desc.status != WorkflowExecutionStatus.FAILED:
        return ""
    try:
        await handle.result()
    except WorkflowFailureError as exc:
        return str(getattr(exc.cause, "message", "") or exc.cause or "")
    return ""


async def read_run(
    client: Client, workflow_id: str, run_id: str, status: WorkflowExecutionStatus | None
) -> RunRecord:
    """Read one run's record from its history (the server answers; no worker is involved)."""
    if status is None:
        state = "Unknown"
    elif status == WorkflowExecutionStatus.RUNNING:
        state = "Running"
    else:
        state = _CLOSED_OUTCOME.get(status, "Completed")
    rec = RunRecord(workflow_id=workflow_id, run_id=run_id, status=state)
    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id, run_id=run_id)
    async for event in handle.fetch_history_events():
        _apply_event(client, rec, event)
    return rec


async def last_known_status(
    client: Client, handle: WorkflowHandle[Any, Any], desc: WorkflowExecutionDescription
) -> RolloutStatus:
    """The rollout's last known position without a worker: input, search attributes and approvals.

    Replica counts are not known here (the caller may read them from the cluster).
    """
    rec = await read_run(client, handle.id, desc.run_id, desc.status)
    spec = rec.spec
    phase, step = search_attribute_position(desc.typed_search_attributes)
    st = RolloutStatus(
        namespace=spec.namespace if spec else "",
        name=spec.name if spec else "",
        workflow_id=handle.id,
        total_steps=len(spec.steps) if spec else 0,
        stable_images=spec.stable_images if spec else {},
        canary_images=spec.canary_images if spec else {},
        steps=spec.steps if spec else [],
        phase=phase or Phase.PROGRESSING,
        current_step_index=step or 0,
        step_state=StepState.STEP_PAUSED if phase == Phase.PAUSED else StepState.STEP_UPGRADE,
        message="last known position (no worker answered; replica counts unknown)",
    )
    if spec is not None:
        st.progress_deadline_seconds = spec.progress_deadline_seconds
    for a in rec.approvals:
        if a.step is not None and a.at is not None:
            st.approvals.append(Approval(by=a.by, at=a.at, step=a.step, comment=a.comment))
    return st
