"""How a release target that an earlier run of the release started ends.

A release that continued as new no longer has the targets of its earlier waves as children (a child is
its parent run's only), so it cannot await them. ``wait_target_outcome`` awaits the target's result
through the worker's Temporal client instead, heartbeating while it waits, and says how the run ended.
It only reads: running it again after a worker restart waits for the same result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError

from workflows.model import TargetOutcome, TargetOutcomeInput

__all__ = ["TargetOutcomeActivities"]

_HEARTBEAT_S = 5.0


class TargetOutcomeActivities:
    """Waits for release targets' results through the worker's Temporal client."""

    def __init__(self, client: Client) -> None:
        self.client = client

    @activity.defn
    async def wait_target_outcome(self, inp: TargetOutcomeInput) -> TargetOutcome:
        """Wait until the target's rollout run ends; how it ended."""
        result = asyncio.ensure_future(self.client.get_workflow_handle(inp.workflow_id).result())
        try:
            while not result.done():
                await asyncio.wait({result}, timeout=_HEARTBEAT_S)
                activity.heartbeat()
            result.result()
        except WorkflowFailureError as exc:
            cause = exc.cause
            if isinstance(cause, CancelledError):
                return TargetOutcome(kind="canceled")
            if isinstance(cause, ApplicationError):
                return TargetOutcome(kind="failed", error_type=cause.type or "", message=cause.message)
            return TargetOutcome(kind="failed", message=str(cause or exc))
        finally:
            result.cancel()
        return TargetOutcome(kind="completed")

    def activities(self) -> list[Callable[..., Any]]:
        """The bound activity methods to register on the worker."""
        return [self.wait_target_outcome]
