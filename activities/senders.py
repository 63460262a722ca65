"""Who sent a signal: the identity the Temporal server recorded with it.

The Python SDK does not hand a signal's sender identity to the handler, but the history keeps it
(``WorkflowExecutionSignaled.identity``). When an ``approve`` signal carries no ``by`` (a raw
``temporal workflow signal``, the UI's "Send a Signal"), the workflow asks this activity for the
identities of such signals, in history order, and records them in ``status.approvals``. Likewise a
cancellation request (an undo) whose reason does not name its sender: ``cancel_sender`` reads the
identity of the ``WorkflowExecutionCancelRequested`` event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from workflows.model import ApproveSignal

__all__ = ["SenderActivities"]


class SenderActivities:
    """Reads the running workflow's own history through the worker's Temporal client."""

    def __init__(self, client: Client) -> None:
        self.client = client

    @activity.defn
    async def approve_senders(self) -> list[str]:
        """Identities of the ``approve`` signals without ``by``, oldest first."""
        info = activity.info()
        handle = self.client.get_workflow_handle(info.workflow_id or "", run_id=info.workflow_run_id)
        converter = self.client.data_converter.payload_converter
        senders: list[str] = []
        async for event in handle.fetch_history_events():
            if event.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
                continue
            attrs = event.workflow_execution_signaled_event_attributes
            if attrs.signal_name != "approve":
                continue
            payloads = list(attrs.input.payloads)
            sig = converter.from_payloads(payloads, [ApproveSignal])[0] if payloads else ApproveSignal()
            if not sig.by:
                senders.append(attrs.identity or "unknown")
        return senders

    @activity.defn
    async def cancel_sender(self) -> str:
        """Identity of the first cancellation request ("" when there is none)."""
        info = activity.info()
        handle = self.client.get_workflow_handle(info.workflow_id or "", run_id=info.workflow_run_id)
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED:
                return event.workflow_execution_cancel_requested_event_attributes.identity
        return ""

    def activities(self) -> list[Callable[..., Any]]:
        """The bound activity methods to register on the worker."""
        return [self.approve_senders, self.cancel_sender]
