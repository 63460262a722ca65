"""Whether a rollout is a target of a release (``rollout status|approve|undo --cluster``): which release,
which wave. Read from the run's search attributes ``ReleaseId``/``ReleaseWave``, else from its input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from temporalio.client import Client, WorkflowExecutionDescription, WorkflowHandle
from temporalio.service import RPCError

from cli.context import RolloutContext, find_rollout
from workflows.errors import CommandError
from workflows.model import SA_RELEASE_ID_KEY, SA_RELEASE_WAVE_KEY, ReleaseStatus, RolloutSpec

__all__ = ["ReleaseMembership", "release_membership", "target_membership"]


@dataclass(frozen=True)
class ReleaseMembership:
    """The release a rollout belongs to, and its wave (1-based; 0 when unknown) and the wave's name."""

    release_id: str
    wave: int = 0
    wave_name: str = ""

    @property
    def text(self) -> str:
        """``part of release R, wave 2 (staging)``."""
        if not self.wave:
            return f"part of release {self.release_id}"
        name = f" ({self.wave_name})" if self.wave_name else ""
        return f"part of release {self.release_id}, wave {self.wave}{name}"

    def as_json(self) -> dict[str, Any]:
        return {"id": self.release_id, "wave": self.wave, "waveName": self.wave_name}


async def release_membership(
    client: Client, handle: WorkflowHandle[Any, Any], desc: WorkflowExecutionDescription | None
) -> ReleaseMembership | None:
    """The release that started this run, or ``None`` (a plain rollout, no run, or the server did not
    say: the line is a courtesy, never the reason a verb that acted reports an error)."""
    try:
        return await _membership(client, handle, desc)
    except RPCError:
        return None


async def _membership(
    client: Client, handle: WorkflowHandle[Any, Any], desc: WorkflowExecutionDescription | None
) -> ReleaseMembership | None:
    if desc is None or handle.id.count("/") != 3:  # only rollout/<cluster>/<ns>/<name> is a release target
        return None
    sa = desc.typed_search_attributes
    rid, wave = sa.get(SA_RELEASE_ID_KEY) or "", int(sa.get(SA_RELEASE_WAVE_KEY) or 0)
    if not rid:
        rid = await _release_of_input(client, handle, desc)
    if not rid:
        return None
    return ReleaseMembership(rid, *await _wave_of(client, rid, handle.id, wave))


async def _release_of_input(
    client: Client, handle: WorkflowHandle[Any, Any], desc: WorkflowExecutionDescription
) -> str:
    """A server without the search attributes: the run's input says (``RolloutSpec.release_id``)."""
    run = client.get_workflow_handle(handle.id, run_id=desc.run_id)
    async for event in run.fetch_history_events(page_size=1):
        payloads = list(event.workflow_execution_started_event_attributes.input.payloads)
        if not payloads:
            return ""
        spec = client.data_converter.payload_converter.from_payloads(payloads, [RolloutSpec])[0]
        return str(spec.release_id or "")
    return ""


async def _wave_of(client: Client, rid: str, wid: str, wave: int) -> tuple[int, str]:
    """The wave (number, name) of target ``wid`` in the release's status; the search attribute's number
    alone when the release does not answer (no worker)."""
    from cli.release import release_status  # lazy: the release verb module is heavier

    try:
        st: ReleaseStatus = (await release_status(client, rid))[0]
    except (RPCError, CommandError):
        return wave, ""
    for i, w in enumerate(st.waves, 1):
        if any(t.workflow_id == wid for t in w.targets):
            return i, w.name
    return wave, ""


async def target_membership(ctx: RolloutContext, name: str) -> ReleaseMembership | None:
    """``release_membership`` of the Deployment ``name``'s run (``ctx.cluster``: a release target's)."""
    try:
        handle, desc = await find_rollout(ctx.client, ctx.namespace, name, ctx.cluster)
    except RPCError:
        return None
    return await release_membership(ctx.client, handle, desc)
