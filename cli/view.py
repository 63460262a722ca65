"""Render a rollout for the terminal, in the spirit of `kubectl argo rollouts get rollout`.

`render_status` is a pure function of the rollout status (the `status` query, camelCase keys), the
Deployment's ReplicaSets and their pods (Kubernetes JSON dicts).  It draws a header block (name, phase
with icon, message, step, traffic, images, replica counts) and a tree of revisions -> ReplicaSets ->
pods. The watch loop (`rollout status NAME -w`) lives in ``cli/status.py``; its decisions (colour, when
to print a frame, the exit code) are the pure helpers at the end of this module.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cli.analysis_view import analysis_lines
from kube.names import ANN_REVISION, HASH_LABEL
from workflows.model import Phase, RolloutStatus, StepState

CLEAR_SCREEN = "\x1b[H\x1b[2J"

# ANSI colours, the same palette as the argo plugin.
GREEN = "32"
RED = "31"
YELLOW = "33"
HIBLUE = "94"

# Our phases -> (icon, colour).
PHASE_ICONS: dict[Phase, tuple[str, str | None]] = {
    Phase.COMPLETED: ("✔", GREEN),
    Phase.PAUSED: ("॥", YELLOW),
    Phase.PROGRESSING: ("◌", HIBLUE),
    Phase.FAILED: ("✖", RED),
    Phase.ROLLED_BACK: ("⚠", YELLOW),
    Phase.ABORTED: ("✖", RED),
}

TAG_COLORS = {"stable": GREEN, "canary": YELLOW}

# `rollout status -w` exit codes by outcome (1 is a command error, 2 a usage error).
EXIT_COMPLETED = 0
EXIT_ROLLED_BACK = 3
EXIT_FAILED = 4
EXIT_ABORTED = 5

LABEL_WIDTH = 17  # argo's `%-17s%v`


def _paint(text: str, code: str | None, color: bool) -> str:
    if not color or not code or not text:
        return text
    return f"\x1b[{code}m{text}\x1b[0m"


def _field(label: str, value: object) -> str:
    return f"{label:<{LABEL_WIDTH}}{value}"


def _parse_time(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def format_age(seconds: float | None) -> str:
    """kubectl-style short age: 8s, 5m, 3h12m, 7d."""
    if seconds is None:
        return ""
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        h, m = divmod(s // 60, 60)
        return f"{h}h{m}m" if m and h < 8 else f"{h}h"
    return f"{s // 86400}d"


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def pod_state(pod: Mapping[str, Any]) -> tuple[str, str]:
    """kubectl-style pod state and its icon (Running/Pending/Terminating/CrashLoopBackOff/...)."""
    meta = _meta(pod)
    status = pod.get("status") or {}
    if meta.get("deletionTimestamp"):
        return "Terminating", "◌"
    state = status.get("phase") or "Unknown"
    if status.get("reason"):
        state = status["reason"]
    for cs in status.get("containerStatuses") or []:
        cstate = cs.get("state") or {}
        waiting = cstate.get("waiting") or {}
        terminated = cstate.get("terminated") or {}
        if waiting.get("reason"):
            state = waiting["reason"]
            break
        if terminated.get("reason"):
            state = terminated["reason"]
            break
    if state in ("Running", "Completed", "Succeeded"):
        return state, "✔"
    if state in ("Pending", "ContainerCreating", "PodInitializing") or state.startswith("Init:"):
        return state, "◌"
    if state in ("Failed", "CrashLoopBackOff", "InvalidImageName", "OOMKilled") or state.startswith(
        ("Signal:", "ExitCode:")
    ):
        return state, "✖"
    if state in ("ImagePullBackOff", "ErrImagePull", "RegistryUnavailable") or state.endswith("Error"):
        return state, "⚠"
    return state, "?"


def _pod_info(pod: Mapping[str, Any]) -> str:
    status = pod.get("status") or {}
    containers = ((pod.get("spec") or {}).get("containers")) or []
    statuses = status.get("containerStatuses") or []
    total = len(containers) or len(statuses) or 1
    ready = sum(1 for cs in statuses if cs.get("ready"))
    restarts = sum(int(cs.get("restartCount") or 0) for cs in statuses)
    info = f"ready:{ready}/{total}"
    if restarts:
        info += f",restarts:{restarts}"
    return info


def _icon_color(icon: str) -> str | None:
    return {"✔": GREEN, "✖": RED, "⚠": RED, "?": YELLOW, "◷": YELLOW, "◌": HIBLUE}.get(icon)


def _rs_state(rs: Mapping[str, Any]) -> tuple[str, str]:
    spec_replicas = int((rs.get("spec") or {}).get("replicas") or 0)
    st = rs.get("status") or {}
    if spec_replicas == 0 and int(st.get("replicas") or 0) == 0:
        return "ScaledDown", "•"
    if int(st.get("replicas") or 0) == spec_replicas and int(st.get("readyReplicas") or 0) == spec_replicas:
        return "Healthy", "✔"
    return "Progressing", "◌"


def _rs_tags(rs: Mapping[str, Any], status: RolloutStatus) -> list[str]:
    meta = _meta(rs)
    rs_hash = (meta.get("labels") or {}).get(HASH_LABEL) or ""
    name = meta.get("name") or ""
    tags = []

    def is_rev(rev: object) -> bool:
        return bool(rev) and (rev == rs_hash or name.endswith(f"-{rev}"))

    if is_rev(status.stable_revision):
        tags.append("stable")
    if is_rev(status.canary_revision) and "stable" not in tags:
        tags.append("canary")
    if not tags and any(is_rev(r) for r in status.superseded_revisions):
        tags.append("superseded")  # a canary that `start --replace` replaced
    return tags


def _revision_of(rs: Mapping[str, Any]) -> int | None:
    raw = (_meta(rs).get("annotations") or {}).get(ANN_REVISION)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def _order_revisions(
    replicasets: Sequence[Mapping[str, Any]], status: RolloutStatus
) -> list[tuple[int, Any]]:
    """Pair each ReplicaSet with a revision number, newest first.

    The Deployment's revision annotation is used when present; otherwise revisions are numbered by
    creation time, with the canary counted as newest (it is created by the rollout after the stable).
    """

    def sort_key(rs: Mapping[str, Any]) -> tuple[int, float, int, str]:
        tags = _rs_tags(rs, status)
        rank = 2 if "canary" in tags else (1 if "stable" in tags else 0)
        created = _parse_time(_meta(rs).get("creationTimestamp")) or 0.0
        rev = _revision_of(rs)
        return (rev if rev is not None else -1, created, rank, _meta(rs).get("name") or "")

    ordered = sorted(replicasets, key=sort_key)
    if all(_revision_of(rs) is not None for rs in ordered):
        pairs = [(_revision_of(rs) or 0, rs) for rs in ordered]
    else:
        ordered = sorted(replicasets, key=lambda rs: sort_key(rs)[1:])
        pairs = [(i + 1, rs) for i, rs in enumerate(ordered)]
    return list(reversed(pairs))


def _pods_of(rs: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    meta = _meta(rs)
    uid = meta.get("uid")
    rs_hash = (meta.get("labels") or {}).get(HASH_LABEL)
    mine = []
    for pod in pods:
        pmeta = _meta(pod)
        owners = pmeta.get("ownerReferences") or []
        if owners and uid:
            if any(o.get("uid") == uid for o in owners):
                mine.append(pod)
        elif rs_hash and (pmeta.get("labels") or {}).get(HASH_LABEL) == rs_hash:
            mine.append(pod)
    return sorted(mine, key=lambda p: _meta(p).get("name") or "")


def _header(
    status: RolloutStatus, replicasets: Sequence[Mapping[str, Any]], color: bool, ui_url: str | None
) -> list[str]:
    phase = status.phase.value
    icon, code = PHASE_ICONS[status.phase]
    lines = [
        _field("Name:", status.name),
        _field("Namespace:", status.namespace),
        _field("Status:", _paint(f"{icon} {phase}", code, color)),
    ]
    if status.message:
        lines.append(_field("Message:", status.message))
    lines.append(_field("Strategy:", "Canary (batches)"))
    step = status.current_step_index
    total = status.total_steps or len(status.steps)
    step_line = f"{step}/{total} ({status.step_state.value})"
    lines.append(_field("  Step:", step_line))
    if 1 <= step <= len(status.steps):
        lines.append(_field("  Batch target:", status.steps[step - 1].replicas))
    if status.traffic:  # empty: no traffic rule in effect, traffic follows the pods
        lines.append(_field("  Traffic:", status.traffic))
    if status.held_by:
        lines.append(_field("  Held by:", f"{status.held_by} (rollout pause)"))
    if status.promote_full:
        lines.append(_field("  Promotion:", "full (remaining steps and pauses skipped)"))
    for i, line in enumerate(analysis_lines(status.analysis)):
        lines.append(_field("Analysis:" if i == 0 else "", line))
    lines += _image_lines(status, color)
    superseded = [str(r) for r in status.superseded_revisions if r]
    if superseded:
        lines.append(_field("Superseded:", ", ".join(superseded)))
    lines += _replica_lines(status, replicasets)
    actions = next_actions(status)
    if actions:
        lines.append(_field("Actions:", ", ".join(f"rollout {a}" for a in actions)))
    if ui_url:
        lines.append(_field("Temporal UI:", ui_url))
    return lines


def _image_lines(status: RolloutStatus, color: bool) -> list[str]:
    """One line per image, tagged stable and/or canary."""
    canary_images = dict(status.canary_images)
    stable_images = dict(status.stable_images)
    image_rows: list[tuple[str, list[str]]] = []
    for container in sorted(set(canary_images) | set(stable_images)):
        stable_img, canary_img = stable_images.get(container), canary_images.get(container)
        if stable_img and stable_img == canary_img:
            image_rows.append((stable_img, ["stable", "canary"]))
            continue
        if stable_img:
            image_rows.append((stable_img, ["stable"]))
        if canary_img:
            image_rows.append((canary_img, ["canary"]))
    lines = []
    for i, (image, tags) in enumerate(image_rows):
        painted = ", ".join(_paint(t, TAG_COLORS.get(t), color) for t in tags)
        lines.append(_field("Images:" if i == 0 else "", f"{image} ({painted})"))
    return lines


def _replica_lines(status: RolloutStatus, replicasets: Sequence[Mapping[str, Any]]) -> list[str]:
    """The replica counts: from the ReplicaSets when read, else from the status."""
    rs_status = [rs.get("status") or {} for rs in replicasets]
    if replicasets:
        current = sum(int(s.get("replicas") or 0) for s in rs_status)
        ready = sum(int(s.get("readyReplicas") or 0) for s in rs_status)
        available = sum(int(s.get("availableReplicas") or 0) for s in rs_status)
    else:
        current = status.canary_replicas + status.stable_replicas
        ready = status.canary_ready_replicas + status.stable_ready_replicas
        available = ready
    return [
        "Replicas:",
        _field("  Desired:", status.replicas),
        _field("  Current:", current),
        _field("  Updated:", status.canary_replicas),
        _field("  Ready:", ready),
        _field("  Available:", available),
    ]


def next_actions(status: RolloutStatus) -> list[str]:
    """The verbs that can act on a rollout in this state (shown in the live view's header)."""
    if status.held_by:
        return ["resume", "abort", "undo"]
    if status.phase == Phase.ABORTED:
        return ["retry", "undo"]
    if status.phase == Phase.FAILED:
        return ["undo", "start --replace"]
    if status.phase in (Phase.COMPLETED, Phase.ROLLED_BACK):
        return ["history", "undo --to-revision N"]
    if status.finalizing:
        return []
    if status.step_state == StepState.STEP_PAUSED:
        return ["approve", "approve --full", "pause", "abort", "undo"]
    return ["pause", "approve --full", "abort", "undo"]


def render_status(
    status: RolloutStatus,
    replicasets: list[dict],
    pods: list[dict],
    *,
    color: bool,
    ui_url: str | None,
    now: float | None = None,
    ages: bool = True,
) -> str:
    """Render the header block and the revision tree.

    `now` (epoch seconds) pins ages for tests; `ages=False` leaves the AGE column empty, which gives
    a frame that changes only when the rollout or its pods do (see `FramePrinter`).
    """
    now = time.time() if now is None else now
    lines = _header(status, replicasets, color, ui_url)
    lines.append("")
    lines += _table(_tree_rows(status, replicasets, pods, now, ages), color)
    return "\n".join(lines) + "\n"


# A row of the tree: (tree prefix + icon + name, kind, (status text, icon colour), age, info, info tags).
_Row = tuple[str, str, tuple[str, str | None], str, str, list[str]]


def _tree_rows(
    status: RolloutStatus, replicasets: list[dict], pods: list[dict], now: float, ages: bool
) -> list[_Row]:
    """The rollout, then each revision with its ReplicaSet and the ReplicaSet's pods."""
    rows: list[_Row] = []
    phase = status.phase.value
    icon, code = PHASE_ICONS[status.phase]
    rows.append((f"⟳ {status.name}", "Rollout", (f"{icon} {phase}", code), "", "", []))

    revisions = _order_revisions(list(replicasets), status)
    for r_index, (revision, rs) in enumerate(revisions):
        last_rev = r_index == len(revisions) - 1
        branch, indent = ("└──", "   ") if last_rev else ("├──", "│  ")
        rows.append((f"{branch}# revision:{revision}", "", ("", None), "", "", []))
        rs_name = _meta(rs).get("name") or ""
        state, rs_icon = _rs_state(rs)
        st = rs.get("status") or {}
        spec_replicas = int((rs.get("spec") or {}).get("replicas") or 0)
        counts = f"replicas:{spec_replicas},ready:{int(st.get('readyReplicas') or 0)}"
        tags = _rs_tags(rs, status)
        age = format_age(_age(rs, now)) if ages else ""
        rows.append(
            (
                f"{indent}└──⧉ {rs_name}",
                "ReplicaSet",
                (f"{rs_icon} {state}", _icon_color(rs_icon)),
                age,
                counts,
                tags,
            )
        )
        rs_pods = _pods_of(rs, pods)
        for p_index, pod in enumerate(rs_pods):
            p_branch = "└──" if p_index == len(rs_pods) - 1 else "├──"
            p_state, p_icon = pod_state(pod)
            rows.append(
                (
                    f"{indent}   {p_branch}□ {_meta(pod).get('name', '')}",
                    "Pod",
                    (f"{p_icon} {p_state}", _icon_color(p_icon)),
                    format_age(_age(pod, now)) if ages else "",
                    _pod_info(pod),
                    [],
                )
            )
    return rows


def _table(rows: list[_Row], color: bool) -> list[str]:
    """The rows as aligned columns under a NAME KIND STATUS AGE INFO header."""
    headers = ("NAME", "KIND", "STATUS", "AGE", "INFO")
    widths = [
        max(len(headers[0]), *(len(r[0]) for r in rows)),
        max(len(headers[1]), *(len(r[1]) for r in rows)),
        max(len(headers[2]), *(len(r[2][0]) for r in rows)),
        max(len(headers[3]), *(len(r[3]) for r in rows)),
    ]
    pad = "  "
    lines = [pad.join(h.ljust(w) for h, w in zip(headers[:4], widths, strict=True)) + pad + headers[4]]
    for name, kind, (st_text, st_code), age, info, tags in rows:
        info_parts = [_paint(t, TAG_COLORS.get(t), color) for t in tags]
        if info:
            info_parts.append(info)
        cells = [
            name.ljust(widths[0]),
            kind.ljust(widths[1]),
            _paint(st_text, st_code, color) + " " * (widths[2] - len(st_text)),
            age.ljust(widths[3]),
            ",".join(info_parts),
        ]
        lines.append(pad.join(cells).rstrip())
    return lines


def _age(obj: Mapping[str, Any], now: float) -> float | None:
    created = _parse_time(_meta(obj).get("creationTimestamp"))
    return None if created is None else now - created


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    """Remove ANSI escapes (for tests and for logs)."""
    return _ANSI.sub("", text)


# --- the watch loop's decisions -------------------------------------------------------------------


_EXIT_CODES = {
    Phase.COMPLETED: EXIT_COMPLETED,
    Phase.ROLLED_BACK: EXIT_ROLLED_BACK,
    Phase.FAILED: EXIT_FAILED,
    Phase.ABORTED: EXIT_ABORTED,
}


def watch_exit_code(phase: Phase) -> int | None:
    """The exit code once the rollout is in `phase`, or None to keep watching.

    `Failed` and `Aborted` end the watch although the workflow still runs: it waits for a person
    (`rollout undo`, `rollout retry` or `rollout start --replace`), so a script watching it must not hang.
    """
    return _EXIT_CODES.get(phase)


def use_color(*, isatty: bool, no_color: bool, env: Mapping[str, str]) -> bool:
    """Colour only on a terminal, and never with `--no-color`, `NO_COLOR` (non-empty) or `TERM=dumb`."""
    if no_color or env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return False
    return isatty


def redraw_in_place(*, isatty: bool, env: Mapping[str, str]) -> bool:
    """Clear the screen between frames only on a terminal that understands it (not `TERM=dumb`)."""
    return isatty and env.get("TERM") != "dumb"


@dataclass
class FramePrinter:
    """Decides what `status -w` writes for each polled frame.

    In place (a terminal): clear the screen and draw every frame, so ages tick. Otherwise (a pipe, a
    log, `TERM=dumb`): no escape codes, and a frame only when it differs from the last one printed
    apart from ages (`key`), separated by a blank line, so a log gets one frame per change.
    """

    redraw: bool
    _last_key: str | None = None

    def write(self, frame: str, key: str) -> str:
        """The text to write for `frame` (empty: nothing to write)."""
        if self.redraw:
            return CLEAR_SCREEN + frame
        if key == self._last_key:
            return ""
        first = self._last_key is None
        self._last_key = key
        return frame if first else "\n" + frame
