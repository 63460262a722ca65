"""Table tests for the live view (`rollout status NAME -w`), rendered for a rollout paused at step 1,
and for the watch loop's decisions (colour, when to print a frame, exit code by outcome)."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from cli.view import (
    CLEAR_SCREEN,
    EXIT_ABORTED,
    EXIT_COMPLETED,
    EXIT_FAILED,
    EXIT_ROLLED_BACK,
    FramePrinter,
    format_age,
    next_actions,
    pod_state,
    redraw_in_place,
    render_status,
    strip_ansi,
    use_color,
    watch_exit_code,
)
from workflows.model import Phase, RolloutStatus

NOW = 1_700_000_000.0  # pinned clock; creation timestamps below are relative to it
STABLE_HASH = "d7f5d89c9"
CANARY_HASH = "68556bc579"


def _ts(seconds_ago: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(NOW - seconds_ago, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rs(hash_: str, image: str, replicas: int, ready: int, revision: str | None, age: int) -> dict:
    meta: dict = {
        "name": f"nginx-{hash_}",
        "namespace": "default",
        "uid": f"uid-{hash_}",
        "labels": {"app": "nginx", "pod-template-hash": hash_},
        "creationTimestamp": _ts(age),
        "annotations": {},
    }
    if revision is not None:
        meta["annotations"]["deployment.kubernetes.io/revision"] = revision
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"containers": [{"name": "nginx", "image": image}]}},
        },
        "status": {"replicas": replicas, "readyReplicas": ready, "availableReplicas": ready},
    }


def _pod(
    hash_: str,
    suffix: str,
    *,
    ready: bool = True,
    age: int = 8,
    waiting: str | None = None,
    restarts: int = 0,
    deleting: bool = False,
) -> dict:
    cstate: dict = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    meta: dict = {
        "name": f"nginx-{hash_}-{suffix}",
        "namespace": "default",
        "labels": {"app": "nginx", "pod-template-hash": hash_},
        "ownerReferences": [{"kind": "ReplicaSet", "name": f"nginx-{hash_}", "uid": f"uid-{hash_}"}],
        "creationTimestamp": _ts(age),
    }
    if deleting:
        meta["deletionTimestamp"] = _ts(0)
    return {
        "metadata": meta,
        "spec": {"containers": [{"name": "nginx"}]},
        "status": {
            "phase": "Running" if not waiting else "Pending",
            "containerStatuses": [
                {"name": "nginx", "ready": ready, "restartCount": restarts, "state": cstate}
            ],
        },
    }


STATUS = {
    "namespace": "default",
    "name": "nginx",
    "workflowId": "rollout-default-nginx",
    "phase": "Paused",
    "currentStepIndex": 1,
    "totalSteps": 3,
    "stepState": "StepPaused",
    "replicas": 10,
    "canaryReplicas": 1,
    "canaryReadyReplicas": 1,
    "stableReplicas": 9,
    "stableReadyReplicas": 9,
    "canaryRevision": CANARY_HASH,
    "stableRevision": STABLE_HASH,
    "message": "Rollout is in step(1/3), and you need manually confirm to enter the next step",
    "approvals": [],
    "stableImages": {"nginx": "nginx:1.26"},
    "canaryImages": {"nginx": "nginx:1.27"},
    "steps": [{"replicas": "1"}, {"replicas": "50%"}, {"replicas": "100%"}],
}
STABLE_RS = _rs(STABLE_HASH, "nginx:1.26", 9, 9, "1", 24 * 60)
CANARY_RS = _rs(CANARY_HASH, "nginx:1.27", 1, 1, "2", 8)
PODS = [_pod(CANARY_HASH, "24lpl")] + [_pod(STABLE_HASH, f"s{i}", age=24 * 60) for i in range(9)]
UI = "http://127.0.0.1:8233/namespaces/default/workflows/rollout-default-nginx"


def _render(
    status: dict = STATUS,
    rss: list[dict] | None = None,
    pods: list[dict] | None = None,
    color: bool = False,
    ui: str | None = UI,
    ages: bool = True,
) -> str:
    return render_status(
        RolloutStatus.model_validate(status),  # the status as the query answers it (camelCase JSON)
        [STABLE_RS, CANARY_RS] if rss is None else rss,
        PODS if pods is None else pods,
        color=color,
        ui_url=ui,
        now=NOW,
        ages=ages,
    )


def test_paused_rollout_header_lines() -> None:
    lines = _render().splitlines()
    assert lines[:5] == [
        "Name:            nginx",
        "Namespace:       default",
        "Status:          ॥ Paused",
        "Message:         Rollout is in step(1/3), and you need manually confirm to enter the next step",
        "Strategy:        Canary (batches)",
    ]
    assert "  Step:          1/3 (StepPaused)" in lines
    assert "  Batch target:  1" in lines
    images = lines.index("Images:          nginx:1.26 (stable)")
    assert lines[images + 1] == "                 nginx:1.27 (canary)"
    replicas = lines.index("Replicas:")
    assert lines[replicas + 1 : replicas + 6] == [
        "  Desired:       10",
        "  Current:       10",
        "  Updated:       1",
        "  Ready:         10",
        "  Available:     10",
    ]
    assert f"Temporal UI:     {UI}" in lines


def test_paused_rollout_tree_lines() -> None:
    lines = _render().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("NAME"))
    assert lines[start].split() == ["NAME", "KIND", "STATUS", "AGE", "INFO"]
    tree = [line.split() for line in lines[start + 1 :]]
    assert tree[0] == ["⟳", "nginx", "Rollout", "॥", "Paused"]
    # newest revision first: the canary, with its single pod
    assert tree[1] == ["├──#", "revision:2"]
    assert tree[2] == [
        "│",
        "└──⧉",
        f"nginx-{CANARY_HASH}",
        "ReplicaSet",
        "✔",
        "Healthy",
        "8s",
        "canary,replicas:1,ready:1",
    ]
    assert tree[3] == ["│", "└──□", f"nginx-{CANARY_HASH}-24lpl", "Pod", "✔", "Running", "8s", "ready:1/1"]
    assert tree[4] == ["└──#", "revision:1"]
    assert tree[5] == [
        "└──⧉",
        f"nginx-{STABLE_HASH}",
        "ReplicaSet",
        "✔",
        "Healthy",
        "24m",
        "stable,replicas:9,ready:9",
    ]
    pods = tree[6:]
    assert len(pods) == 9
    assert [p[0] for p in pods] == ["├──□"] * 8 + ["└──□"]
    assert all(p[2:] == ["Pod", "✔", "Running", "24m", "ready:1/1"] for p in pods)
    # columns line up: every row's KIND starts at the same column as the header's
    kind_col = lines[start].index("KIND")
    for line in lines[start + 1 :]:
        if "revision:" not in line:
            assert line[kind_col - 2 : kind_col] == "  " and line[kind_col] != " "


def test_no_color_has_no_ansi_and_color_does() -> None:
    assert "\x1b[" not in _render(color=False)
    colored = _render(color=True)
    assert "\x1b[33m॥ Paused\x1b[0m" in colored
    assert "\x1b[33mcanary\x1b[0m" in colored and "\x1b[32mstable\x1b[0m" in colored
    # colouring changes nothing but the escapes
    assert strip_ansi(colored) == _render(color=False)


@pytest.mark.parametrize(
    ("phase", "shown"),
    [
        ("Completed", "✔ Completed"),
        ("Paused", "॥ Paused"),
        ("Progressing", "◌ Progressing"),
        ("Failed", "✖ Failed"),
        ("RolledBack", "⚠ RolledBack"),
    ],
)
def test_phase_icons(phase: str, shown: str) -> None:
    status = dict(STATUS, phase=phase)
    assert f"Status:          {shown}" in _render(status).splitlines()


def test_unknown_phase_never_reaches_the_view() -> None:
    # The view takes the typed RolloutStatus: a phase outside the contract fails when the answer is decoded.
    with pytest.raises(ValidationError, match="phase"):
        _render(dict(STATUS, phase="Bogus"))


def test_progressing_batch_and_unready_pods() -> None:
    status = dict(
        STATUS, phase="Progressing", stepState="StepUpgrade", currentStepIndex=2, message="", canaryReplicas=5
    )
    canary = _rs(CANARY_HASH, "nginx:1.27", 5, 2, "2", 30)
    stable = _rs(STABLE_HASH, "nginx:1.26", 5, 5, "1", 1500)
    pods = [
        _pod(CANARY_HASH, "a"),
        _pod(CANARY_HASH, "b"),
        _pod(CANARY_HASH, "c", ready=False, waiting="ContainerCreating", age=1),
        _pod(CANARY_HASH, "d", ready=False, waiting="CrashLoopBackOff", restarts=3),
        _pod(STABLE_HASH, "old", deleting=True, age=1500),
    ]
    out = _render(status, [stable, canary], pods)
    lines = out.splitlines()
    assert not any(line.startswith("Message:") for line in lines)
    assert "  Step:          2/3 (StepUpgrade)" in lines
    assert "  Batch target:  50%" in lines
    assert "  Updated:       5" in lines and "  Ready:         7" in lines
    rs_line = next(line for line in lines if f"⧉ nginx-{CANARY_HASH}" in line)
    assert rs_line.split()[-4:] == ["◌", "Progressing", "30s", "canary,replicas:5,ready:2"]
    creating = next(line for line in lines if "-c " in line)
    assert creating.split()[-4:] == ["◌", "ContainerCreating", "1s", "ready:0/1"]
    crashing = next(line for line in lines if "-d " in line)
    assert crashing.split()[-3:] == ["CrashLoopBackOff", "8s", "ready:0/1,restarts:3"]
    assert "✖ CrashLoopBackOff" in crashing
    assert "◌ Terminating" in next(line for line in lines if "-old " in line)


def test_completed_rollout_shows_scaled_down_stable() -> None:
    status = dict(
        STATUS,
        phase="Completed",
        stepState="Completed",
        currentStepIndex=3,
        message="Rollout completed",
        canaryReplicas=10,
        stableReplicas=0,
    )
    canary = _rs(CANARY_HASH, "nginx:1.27", 10, 10, "2", 120)
    stable = _rs(STABLE_HASH, "nginx:1.26", 0, 0, "1", 3 * 86400)
    pods = [_pod(CANARY_HASH, f"p{i}") for i in range(10)]
    lines = _render(status, [canary, stable], pods, ui=None).splitlines()
    assert "Status:          ✔ Completed" in lines
    assert not any(line.startswith("Temporal UI:") for line in lines)
    stable_line = next(line for line in lines if f"⧉ nginx-{STABLE_HASH}" in line)
    assert stable_line.split()[-4:] == ["•", "ScaledDown", "3d", "stable,replicas:0,ready:0"]


def test_revisions_without_annotation_order_canary_first() -> None:
    rss = [copy.deepcopy(CANARY_RS), copy.deepcopy(STABLE_RS)]
    for rs in rss:
        rs["metadata"]["annotations"] = {}
    lines = _render(rss=rss).splitlines()
    rev2 = lines.index("├──# revision:2")
    assert f"nginx-{CANARY_HASH}" in lines[rev2 + 1]
    assert "└──# revision:1" in lines


def test_same_image_is_tagged_both() -> None:
    status = dict(STATUS, canaryImages={"nginx": "nginx:1.26"})
    assert "Images:          nginx:1.26 (stable, canary)" in _render(status).splitlines()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, ""),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (3599, "59m"),
        (3600 + 720, "1h12m"),
        (9 * 3600, "9h"),
        (86400 * 7, "7d"),
    ],
)
def test_format_age(seconds: float | None, text: str) -> None:
    assert format_age(seconds) == text


def test_pod_state_unknown_and_failed() -> None:
    assert pod_state({"status": {}}) == ("Unknown", "?")
    assert pod_state({"status": {"phase": "Failed"}}) == ("Failed", "✖")
    assert pod_state({"status": {"phase": "Pending"}}) == ("Pending", "◌")


# --- traffic and superseded revisions in the header ---------------------------------------------------


@pytest.mark.parametrize(
    ("traffic", "line"),
    [
        ("weight 5%", "  Traffic:       weight 5%"),
        ("weight 50%, header X-Canary=true", "  Traffic:       weight 50%, header X-Canary=true"),
        ("header X-Canary=true, cookie canary", "  Traffic:       header X-Canary=true, cookie canary"),
        ("", None),  # no traffic rule in effect: traffic follows the pods, no line
    ],
)
def test_traffic_line(traffic: str, line: str | None) -> None:
    lines = _render(dict(STATUS, traffic=traffic)).splitlines()
    shown = [x for x in lines if x.startswith("  Traffic:")]
    assert shown == ([line] if line else [])
    if line:  # under the step, before the images
        assert (
            lines.index("  Batch target:  1")
            < lines.index(line)
            < lines.index("Images:          nginx:1.26 (stable)")
        )


def test_superseded_revisions_line_and_tag() -> None:
    old_hash = "5c7b9d6f8"
    old = _rs(old_hash, "nginx:1.27-rc1", 0, 0, "2", 300)
    canary = _rs(CANARY_HASH, "nginx:1.27", 1, 1, "3", 8)
    status = dict(STATUS, supersededRevisions=[old_hash])
    lines = _render(status, rss=[STABLE_RS, old, canary]).splitlines()
    images_end = lines.index("                 nginx:1.27 (canary)")
    assert lines[images_end + 1] == f"Superseded:      {old_hash}"
    old_line = next(x for x in lines if f"⧉ nginx-{old_hash}" in x)
    assert old_line.split()[-4:] == ["•", "ScaledDown", "5m", "superseded,replicas:0,ready:0"]
    # two superseded canaries, in the order they were replaced
    two = _render(dict(STATUS, supersededRevisions=["aaa", "bbb"])).splitlines()
    assert "Superseded:      aaa, bbb" in two
    assert not any(x.startswith("Superseded:") for x in _render().splitlines())


def test_ages_false_blanks_only_the_age_column() -> None:
    with_ages = _render()
    without = _render(ages=False)
    assert " 24m " not in without and " 8s " not in without
    assert [x.split()[:2] for x in with_ages.splitlines()] == [x.split()[:2] for x in without.splitlines()]
    # the frame key does not move with the clock
    later = render_status(
        RolloutStatus.model_validate(STATUS),
        [STABLE_RS, CANARY_RS],
        PODS,
        color=False,
        ui_url=UI,
        now=NOW + 90,
        ages=False,
    )
    assert later == without


# --- the watch loop's decisions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phase", "code"),
    [
        ("Completed", EXIT_COMPLETED),
        ("RolledBack", EXIT_ROLLED_BACK),
        ("Failed", EXIT_FAILED),  # still running, waiting for undo or --replace: the watch ends
        (Phase.ABORTED, EXIT_ABORTED),  # still running, waiting for retry or undo: the watch ends
        ("Progressing", None),
        ("Paused", None),
    ],
)
def test_watch_exit_code(phase: str, code: int | None) -> None:
    assert watch_exit_code(Phase(phase)) == code


def test_exit_codes_are_distinct_and_clear_of_errors() -> None:
    assert EXIT_COMPLETED == 0
    assert len({EXIT_ROLLED_BACK, EXIT_FAILED, EXIT_ABORTED, 1, 2}) == 5  # 1: command error, 2: usage error


@pytest.mark.parametrize(
    ("status", "actions"),
    [
        (
            {"phase": "Paused", "stepState": "StepPaused"},
            ["approve", "approve --full", "pause", "abort", "undo"],
        ),
        ({"phase": "Paused", "stepState": "StepPaused", "heldBy": "alice"}, ["resume", "abort", "undo"]),
        ({"phase": "Progressing", "stepState": "StepUpgrade"}, ["pause", "approve --full", "abort", "undo"]),
        ({"phase": "Aborted"}, ["retry", "undo"]),
        ({"phase": "Failed"}, ["undo", "start --replace"]),
        ({"phase": "Completed"}, ["history", "undo --to-revision N"]),
    ],
)
def test_next_actions(status: dict, actions: list[str]) -> None:
    assert next_actions(_typed(status)) == actions


def _typed(fields: dict) -> RolloutStatus:
    return RolloutStatus.model_validate({"namespace": "default", "name": "web", "workflowId": "w", **fields})


def test_held_and_aborted_in_the_header() -> None:
    held_status = _typed({"phase": "Paused", "stepState": "StepPaused", "heldBy": "alice"})
    held = render_status(held_status, [], [], color=False, ui_url=None).splitlines()
    assert "  Held by:       alice (rollout pause)" in held
    assert "Actions:         rollout resume, rollout abort, rollout undo" in held
    aborted = render_status(_typed({"phase": "Aborted"}), [], [], color=False, ui_url=None)
    assert "Status:          ✖ Aborted" in aborted and "rollout retry, rollout undo" in aborted


@pytest.mark.parametrize(
    ("isatty", "no_color", "env", "color", "redraw"),
    [
        (True, False, {"TERM": "xterm-256color"}, True, True),
        (False, False, {"TERM": "xterm-256color"}, False, False),  # piped
        (True, True, {"TERM": "xterm"}, False, True),  # --no-color still redraws in place
        (True, False, {"TERM": "xterm", "NO_COLOR": "1"}, False, True),
        (True, False, {"TERM": "xterm", "NO_COLOR": ""}, True, True),  # no-color.org: empty is unset
        (True, False, {"TERM": "dumb"}, False, False),  # no escapes at all on a dumb terminal
        (True, False, {}, True, True),
    ],
)
def test_color_and_redraw(isatty: bool, no_color: bool, env: dict, color: bool, redraw: bool) -> None:
    assert use_color(isatty=isatty, no_color=no_color, env=env) is color
    assert redraw_in_place(isatty=isatty, env=env) is redraw


def test_piped_frames_print_once_per_change() -> None:
    printer = FramePrinter(redraw=False)
    assert printer.write("Name: a 1s\n", "a") == "Name: a 1s\n"
    assert printer.write("Name: a 2s\n", "a") == ""  # only the clock moved
    assert printer.write("Name: a 3s\n", "a") == ""
    assert printer.write("Name: b 4s\n", "b") == "\nName: b 4s\n"  # blank line between frames
    assert printer.write("Name: a 5s\n", "a") == "\nName: a 5s\n"  # back to an earlier state: a change


def test_terminal_frames_redraw_every_poll() -> None:
    printer = FramePrinter(redraw=True)
    assert printer.write("F1\n", "k") == CLEAR_SCREEN + "F1\n"
    assert printer.write("F2\n", "k") == CLEAR_SCREEN + "F2\n"  # ages tick on screen


def test_analysis_section_in_the_live_view() -> None:
    status = {
        **STATUS,
        "analysis": {
            "runs": [
                {
                    "name": "background-error-rate",
                    "template": "error-rate",
                    "step": None,
                    "phase": "Failed",
                    "metrics": [
                        {
                            "name": "error-rate",
                            "phase": "Failed",
                            "value": "[0.5]",
                            "counts": {"count": 3, "successful": 1, "failed": 2, "error": 0},
                        }
                    ],
                },
                {"name": "step2-smoke", "template": "smoke", "step": 2, "phase": "Pending", "metrics": []},
            ]
        },
    }
    lines = _render(status).splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("Analysis:"))
    assert lines[i : i + 3] == [
        "Analysis:        α background-error-rate (background): ✖ Failed",
        "                   error-rate: ✖ Failed value [0.5]  ✔ 1,✖ 2",
        "                 α step2-smoke (step 2): ◷ Pending",
    ]
