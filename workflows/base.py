"""The bottom of the rollout workflow: waits, Kubernetes activity calls, traffic runs, status and UI.

All state is one ``RolloutState`` (``self.s``, ``workflows/state.py``). The workflow's parts are one
chain of small classes over this base, each importing only the one below, so each calls only what is
already defined beneath it (no stubs, no hooks)::

    base -> notify_flow -> outcome -> verbs -> analysis_flow -> legacy -> converge -> undo -> steps -> rollout
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.senders import SenderActivities
    from workflows.calls import call, start
    from workflows.contract import Purpose
    from workflows.model import (
        SA_PHASE_KEY,
        SA_STEP_KEY,
        SA_TARGET_KEY,
        Phase,
        Snapshot,
        SnapshotInput,
        StepState,
        StepTraffic,
        TrafficInput,
        WaitingFor,
    )
    from workflows.state import RolloutState
    from workflows.traffic import TrafficOp, traffic_status
    from workflows.traffic_flow import run_traffic_ops, traffic_after

__all__ = [
    "PHASE_KEY",
    "STEP_KEY",
    "TARGET_KEY",
    "DeadlineExceeded",
    "Interrupted",
    "RolloutBase",
    "abandon",
]

# The typed keys live in workflows.model (the starter sets the same ones); these names stay for callers.
TARGET_KEY, PHASE_KEY, STEP_KEY = SA_TARGET_KEY, SA_PHASE_KEY, SA_STEP_KEY

# Approvals without `by` get the sender identity from history (an activity); older runs skip it.
PATCH_APPROVAL_SENDER = "approval-sender"


# Messages can carry provider text (measured values, conditions): the UI renders the details as Markdown,
# so the characters that make links, images, HTML or formatting are escaped, and control characters dropped.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _md(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", _CONTROL.sub(" ", text))


class Interrupted(Exception):
    """Internal: unwinds the forward path when ``undo`` or a replacement (``--replace``) arrives."""


class DeadlineExceeded(Exception):
    """Internal: a step made no progress for ``progress_deadline_seconds``; ``str()`` says which RS."""


def abandon(handle: workflow.ActivityHandle[Any]) -> None:
    """Cancel a read-only activity without waiting for it (its outcome no longer matters)."""
    handle.cancel()
    handle.add_done_callback(lambda f: f.cancelled() or f.exception())


class RolloutBase:
    """The helpers every part of the workflow uses; all state is ``self.s`` (``workflows/state.py``)."""

    s: RolloutState

    async def _wait(
        self, fn: Callable[[], bool], *, timeout: float | None = None, timeout_summary: str | None = None
    ) -> None:
        """``workflow.wait_condition``, minus the SDK's echo of a workflow cancellation request.

        The SDK raises ``CancelledError`` out of every wait begun before a cancellation request. A
        rollout that turned the request into an undo keeps running: its waits see ``s.interrupted()``.
        Only a real cancellation of this task (eviction, a stopped analysis) is raised.
        """
        try:
            await workflow.wait_condition(fn, timeout=timeout, timeout_summary=timeout_summary)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not self.s.cancel_is_undo or task is None or task.cancelling():
                raise
            if timeout is not None and not fn():
                raise TimeoutError() from None

    async def _attribute_approvals(self) -> None:
        """Fill in ``by`` of approvals sent without one, from the sender identity in history."""
        pending, self.s.unattributed = self.s.unattributed, []
        if not pending or not (self.s.compact or workflow.patched(PATCH_APPROVAL_SENDER)):
            return
        senders: list[str] = await call(
            SenderActivities.approve_senders,
            purpose=Purpose.LOOKUP,
            timings=self.s.spec.timings,
            summary="look up who sent approvals without a name",
        )
        for approval_index, signal_index in pending:
            if signal_index < len(senders):
                self.s.status.approvals[approval_index].by = senders[signal_index]

    # -- activities ----------------------------------------------------------------------------------

    def _start_activity(
        self, fn: Callable[[Any, Any], Any], arg: Any, *, summary: str, wait: bool = False
    ) -> workflow.ActivityHandle[Any]:
        """Schedule one Kubernetes activity: a ``wait`` runs long and heartbeats."""
        purpose = Purpose.WAIT if wait else Purpose.KUBE
        return start(fn, arg, purpose=purpose, timings=self.s.spec.timings, summary=summary)

    async def _call(
        self,
        fn: Callable[[Any, Any], Any],
        arg: Any,
        *,
        summary: str,
        interruptible: bool,
        wait: bool = False,
        timeout: float | None = None,
    ) -> Any:
        """Run one activity; an interruptible one is abandoned (cancelled) as soon as undo arrives.

        Only reads and waits are interruptible, so cancelling them cannot race a rollback write.
        ``timeout`` (seconds) abandons the activity and raises ``TimeoutError`` (progress deadline).
        """
        handle = self._start_activity(fn, arg, summary=summary, wait=wait)
        if interruptible or timeout is not None:
            try:
                await self._wait(
                    lambda: handle.done() or (interruptible and self.s.interrupted()), timeout=timeout
                )
            except TimeoutError:
                abandon(handle)
                raise
            if not handle.done():
                abandon(handle)
                raise Interrupted()
        result = await handle
        if interruptible and self.s.interrupted():
            raise Interrupted()
        return result

    async def _write(
        self, fn: Callable[[Any, Any], Any], model: Callable[..., Any], *, summary: str, **fields: Any
    ) -> Any:
        """Run one write to this run's Deployment (``model(ref, workflow_id, **fields)``); never abandoned."""
        arg = model(ref=self.s.ref, workflow_id=workflow.info().workflow_id, **fields)
        return await self._call(fn, arg, summary=summary, interruptible=False)

    def _snapshot_input(self) -> SnapshotInput:
        tk = self.s.takeover
        assert tk is not None
        return SnapshotInput(ref=self.s.ref, stable_rs=tk.stable_rs, canary_rs=tk.canary_rs)

    # -- traffic -------------------------------------------------------------------------------------

    async def _run_traffic(self, ops: list[TrafficOp], traffic: StepTraffic | None = None) -> None:
        """Run traffic operations (see ``workflows/traffic.py`` plans) and record the traffic in effect."""
        routing, tk = self.s.spec.traffic_routing, self.s.takeover
        if not ops or routing is None or tk is None:
            return
        inp = TrafficInput(
            namespace=self.s.spec.namespace,
            routing=routing,
            snapshot=self.s.traffic_snapshot,
            stable_hash=tk.stable_revision,
            canary_hash=tk.canary_revision,
            traffic=traffic,
            deployment=self.s.spec.name,
        )
        self.s.traffic_touched = True
        await run_traffic_ops(ops, inp, self.s.spec.timings)
        self._set_traffic(traffic_after(ops, self.s.traffic_cur, traffic))

    def _set_traffic(self, current: StepTraffic | None) -> None:
        self.s.traffic_cur = current
        fields = traffic_status(current)
        st = self.s.status
        st.traffic_weight = fields["trafficWeight"]
        st.traffic_matches = fields["trafficMatches"]
        st.traffic = fields["traffic"]
        self._set_details()

    # -- status, UI, search attributes ---------------------------------------------------------------

    def _record(self, snap: Snapshot) -> None:
        st = self.s.status
        st.replicas = snap.replicas
        st.canary_replicas = snap.canary.replicas
        st.canary_ready_replicas = snap.canary.ready_replicas
        st.stable_replicas = snap.stable.replicas
        st.stable_ready_replicas = snap.stable.ready_replicas
        self.s.status_version += 1

    def _publish(
        self,
        phase: Phase,
        state: StepState,
        message: str,
        *,
        waiting_for: WaitingFor | None = None,
        finalizing: bool = False,
    ) -> None:
        """Record a transition: status, log line, search attributes, UI current details.

        ``waiting_for`` and ``finalizing`` are the typed state behind ``message`` (a transition that
        does not name them clears them).
        """
        st = self.s.status
        st.waiting_for, st.finalizing = waiting_for, finalizing
        if (phase, state, message) != (st.phase, st.step_state, st.message):
            workflow.logger.info(
                "step %d/%d: %s/%s -> %s/%s: %s",
                st.current_step_index,
                st.total_steps,
                st.phase.value,
                st.step_state.value,
                phase.value,
                state.value,
                message,
            )
        st.phase, st.step_state, st.message = phase, state, message
        if self.s.spec.use_search_attributes:
            self.s.search_attributes = (self.s.spec.target, phase.value, st.current_step_index)
            if not self.s.compact:
                self._flush_search_attributes()
        self._set_details()

    def _flush_search_attributes(self) -> None:
        """Upsert the last published target, phase and step (if not yet upserted)."""
        values, self.s.search_attributes = self.s.search_attributes, None
        if values is None:
            return
        if self.s.compact:  # the run has them already (the starter's, or the last upsert): no event
            held = workflow.info().typed_search_attributes
            if (held.get(TARGET_KEY), held.get(PHASE_KEY), held.get(STEP_KEY)) == values:
                return
        target, phase, step = values
        workflow.upsert_search_attributes(
            [TARGET_KEY.value_set(target), PHASE_KEY.value_set(phase), STEP_KEY.value_set(step)]
        )

    async def _search_attribute_writer(self) -> None:
        """Compact runs: one upsert per workflow task, of the last transition.

        The server applies a task's commands together, so the transitions published and passed in
        the same task (a zero-length pause, then the next step) were never visible one by one; this
        task wakes once the run's other code waits, and writes the last of them.
        """
        while True:
            await self._wait(lambda: self.s.search_attributes is not None)
            self._flush_search_attributes()

    def _set_details(self, waiting_for: str | None = None) -> None:
        self.s.status_version += 1  # every status change passes here (declarative mode writes it out)
        st = self.s.status
        ns, name = self.s.spec.namespace, self.s.spec.name
        lines = [
            f"**{st.phase.value}** · step {st.current_step_index}/{st.total_steps} · {st.step_state.value}",
            "",
            f"- canary `{st.canary_revision or '-'}`: {st.canary_replicas} pods, "
            f"{st.canary_ready_replicas} ready",
            f"- stable `{st.stable_revision or '-'}`: {st.stable_replicas} pods, "
            f"{st.stable_ready_replicas} ready",
            f"- {_md(st.message)}",
        ]
        routing = self.s.spec.traffic_routing
        if routing is not None and routing.service_only:
            lines.append(
                f"- Services: `{routing.service}` stable pods, `{routing.canary_service}` canary pods"
            )
        elif routing is not None:
            lines.append(f"- traffic to canary: {st.traffic or 'none (routes to stable only)'}")
        if st.superseded_revisions:
            lines.append(f"- superseded revisions: {', '.join(st.superseded_revisions)}")
        if st.analysis is not None:
            lines.extend(f"- analysis {_md(line)}" for line in st.analysis.describe())
        if waiting_for:
            lines.append(f"- {_md(waiting_for)}")
        if st.step_state == StepState.STEP_PAUSED:
            lines.append(f"- approve: `rollout approve {name} -n {ns}`")
        if st.phase in (Phase.PROGRESSING, Phase.PAUSED, Phase.FAILED) and not self.s.finalizing:
            also = " or **Request Cancellation** above" if self.s.cancel_is_undo else ""
            lines.append(f"- undo: `rollout undo {name} -n {ns}`{also}")
        workflow.set_current_details("\n".join(lines))
