"""``rollout status``: the one-screen text, and the live view (``-w``) until the rollout ends."""

from __future__ import annotations

import asyncio
import os
import re
from typing import TextIO

from cli import commands
from cli.analysis_view import analysis_lines
from cli.context import RolloutContext
from cli.runs import RunRecord
from cli.view import FramePrinter, redraw_in_place, render_status, use_color, watch_exit_code
from workflows.model import RolloutStatus

__all__ = ["WATCH_INTERVAL_SECONDS", "history_text", "status_text", "watch"]


# Provider text, approvers' names and comments reach this output: no escape sequence reaches the terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def status_text(st: RolloutStatus, link: str) -> str:
    lines = [
        f"Rollout:   {st.workflow_id} ({st.namespace}/{st.name})",
        f"Phase:     {st.phase.value}",
        f"Step:      {st.current_step_index}/{st.total_steps} {st.step_state.value}",
        f"Canary:    {st.canary_revision or '-'} {st.canary_replicas} pods, {st.canary_ready_replicas} ready",
        f"Stable:    {st.stable_revision or '-'} {st.stable_replicas} pods, {st.stable_ready_replicas} ready",
        f"Message:   {st.message}",
    ]
    if st.traffic:
        lines.append(f"Traffic:   {st.traffic}")
    if st.superseded_revisions:
        lines.append(f"Superseded: {', '.join(st.superseded_revisions)}")
    if st.held_by:
        lines.append(f"Held by:   {st.held_by} (`rollout resume` releases it)")
    if st.promote_full:
        lines.append("Promotion: full (remaining steps and pauses skipped)")
    analysis = analysis_lines(st.analysis)
    if analysis:
        lines.append("Analysis:")
        lines.extend(f"  {line}" for line in analysis)
    for a in st.approvals:
        lines.append(
            f"Approved:  step {a.step} by {a.by} at {a.at.isoformat()}"
            + (f": {a.comment}" if a.comment else "")
        )
    lines.append(f"Temporal UI: {link}")
    return "\n".join(_CONTROL.sub(" ", line) for line in lines) + "\n"


def history_text(records: list[RunRecord]) -> str:
    """``rollout history``: one line per rollout, newest first."""
    lines = [f"{'STARTED':<20} {'ENDED':<20} {'OUTCOME':<11} {'IMAGES':<30} APPROVED BY"]
    for r in records:
        stable = r.spec.stable_images if r.spec else {}
        canary = r.spec.canary_images if r.spec else {}
        images = ", ".join(f"{c}={stable.get(c, '-')}->{img}" for c, img in canary.items()) or "-"
        approvers = ", ".join(f"{a.by} (step {a.step})" if a.step else a.by for a in r.approvals) or "-"
        start = r.start.strftime("%Y-%m-%d %H:%M:%S") if r.start else "-"
        end = r.end.strftime("%Y-%m-%d %H:%M:%S") if r.end else "-"
        lines.append(f"{start:<20} {end:<20} {r.outcome:<11} {images:<30} {approvers}")
    return "\n".join(lines) + "\n"


WATCH_INTERVAL_SECONDS = 1.0


async def watch(ctx: RolloutContext, name: str, out: TextIO, err: TextIO, *, no_color: bool) -> int:
    """The live view until the rollout is Completed, RolledBack or Failed; the exit code says which.

    On a terminal each poll redraws in place; into a pipe or a file a frame is printed only when
    the rollout or its pods changed (see ``cli.view.FramePrinter``).
    """
    isatty = out.isatty()
    color = use_color(isatty=isatty, no_color=no_color, env=os.environ)
    printer = FramePrinter(redraw=redraw_in_place(isatty=isatty, env=os.environ))
    told_waiting = False
    while True:
        try:
            st = await commands.get_status(ctx, name)
        except commands.QueryUnanswered as exc:
            # A worker restart must not end the watch: say so once and keep asking.
            if not told_waiting:
                err.write(f"rollout: {exc}; waiting for a worker to answer (Ctrl-C to stop)\n")
                err.flush()
                told_waiting = True
            await asyncio.sleep(WATCH_INTERVAL_SECONDS)
            continue
        link = commands.ui_link(ctx, st.workflow_id)
        rss, pods = await commands.cluster_view(ctx, name)
        frame = render_status(st, rss, pods, color=color, ui_url=link)
        key = render_status(st, rss, pods, color=False, ui_url=link, ages=False)
        text = printer.write(frame, key)
        if text:
            out.write(text)
            out.flush()
        code = watch_exit_code(st.phase)
        if code is not None:
            if code:
                err.write(f"rollout: {st.workflow_id} is {st.phase.value}: {st.message}\n")
            return code
        await asyncio.sleep(WATCH_INTERVAL_SECONDS)
