"""The running rollout a verb addresses (approve, undo, the control verbs), and how a refusal reads."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import (
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from cli.context import CommandError, RolloutContext, find_rollout
from cli.runs import closed_status

__all__ = ["UPDATE_TIMEOUT", "refusal", "require_running", "update_or_signal"]

T = TypeVar("T")

# How long a verb waits for a worker to accept the update before it falls back to the signal.
UPDATE_TIMEOUT = timedelta(seconds=8)


async def require_running(
    ctx: RolloutContext, name: str, verb: str
) -> tuple[WorkflowHandle[Any, Any], WorkflowExecutionDescription]:
    """The Deployment's running rollout, or a ``CommandError`` that says there is none or how it ended."""
    handle, desc = await find_rollout(ctx.client, ctx.namespace, name, ctx.cluster)
    wid = handle.id
    if desc is None:
        raise CommandError(f"no rollout found for deployment {ctx.namespace}/{name} (workflow {wid})")
    if desc.status != WorkflowExecutionStatus.RUNNING:
        phase = await _closed_phase(handle, desc)
        raise CommandError(f"rollout {wid} already finished ({phase}); nothing to {verb}")
    return handle, desc


async def _closed_phase(handle: WorkflowHandle[Any, Any], desc: WorkflowExecutionDescription) -> str:
    try:
        st = await closed_status(handle, desc)
        if st is not None:
            return st.phase.value
    except Exception:  # noqa: BLE001 - fall back to the execution status
        pass
    return desc.status.name.capitalize() if desc.status else "closed"


def refusal(exc: WorkflowUpdateFailedError) -> str:
    """The validator's own sentence (not ``ValueError: ...``)."""
    cause = exc.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause or exc)


async def update_or_signal(
    handle: WorkflowHandle[Any, Any], update: str, signal: str, arg: Any, result_type: type[T]
) -> T | None:
    """The update's result, or its validator's refusal as a ``CommandError``. ``None`` when the worker
    went away after answering the caller's query: then the durable ``signal`` carries ``arg`` instead."""
    try:
        try:
            result: T = await handle.execute_update(
                update, arg, result_type=result_type, rpc_timeout=UPDATE_TIMEOUT
            )
        except WorkflowUpdateFailedError as exc:
            raise CommandError(refusal(exc)) from exc
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            await handle.signal(signal, arg)
            return None
    except RPCError as exc:
        # The run closed between ``require_running`` and this request (an undo or the last step
        # finishing): say so in the user's words, not the server's.
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        raise CommandError(
            f"rollout {handle.id} finished while the request was on its way; nothing was changed"
            " (`rollout status` shows how it ended)"
        ) from exc
    return result
