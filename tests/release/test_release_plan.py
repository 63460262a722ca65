"""Table tests of the release rules (workflows/release_plan.py) and the Release file (cli/release_file.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from cli.release_file import ReleaseFileError, parse_release
from workflows import release_plan
from workflows.model import (
    FailurePolicy,
    ReleaseNotification,
    ReleaseNotifyEvent,
    ReleasePhase,
    ReleaseStatus,
    ReleaseTargetStatus,
    ReleaseWaveStatus,
    TargetOutcome,
    TargetState,
    WaveState,
)
from workflows.notify import release_notification_text

P, R, H, F, C = (
    TargetState.PENDING,
    TargetState.RUNNING,
    TargetState.HELD,
    TargetState.FAILED,
    TargetState.COMPLETED,
)


@pytest.mark.parametrize(
    ("states", "max_parallel", "want"),
    [
        ([P, P, P], 0, 3),  # 0: all at once
        ([P, P, P], 1, 1),
        ([R, P, P], 1, 0),  # one in flight: none more
        ([H, P, P], 1, 1),  # a held target is done with its canary
        ([F, P, P], 1, 1),
        ([R, R, P], 2, 0),
        ([H, R, P], 2, 1),
        ([H, H, H], 1, 0),  # nothing pending
    ],
)
def test_can_start(states: list[TargetState], max_parallel: int, want: int) -> None:
    assert release_plan.can_start(states, max_parallel) == want


@pytest.mark.parametrize(
    ("states", "max_failures", "want"),
    [
        ([H, H], 0, WaveState.SUCCEEDED),
        ([H, R], 0, None),
        ([F, R], 0, WaveState.FAILED),  # over the limit: failed at once, running or not
        ([F, R], 1, None),
        ([F, H], 1, WaveState.SUCCEEDED),  # within maxFailures
        ([F, F, H], 1, WaveState.FAILED),
        ([P, H], 0, None),
        ([C, H], 0, WaveState.SUCCEEDED),
    ],
)
def test_wave_verdict(states: list[TargetState], max_failures: int, want: WaveState | None) -> None:
    assert release_plan.wave_verdict(states, max_failures) == want


@pytest.mark.parametrize(
    ("rollback", "current", "abort", "want"),
    [
        ("none", 2, None, []),
        ("currentWave", 2, None, [2]),
        ("previousWaves", 2, None, [2, 1, 0]),  # newest wave first
        ("previousWaves", 0, None, [0]),
        ("none", 2, "previousWaves", [2, 1, 0]),  # abort --rollback overrides the file
        ("previousWaves", 1, "none", []),
    ],
)
def test_rollback_waves(rollback: Any, current: int, abort: str | None, want: list[int]) -> None:
    assert release_plan.rollback_waves(FailurePolicy(rollback=rollback), current, abort) == want


def _status(phase: ReleasePhase = ReleasePhase.WAITING_APPROVAL) -> ReleaseStatus:
    return ReleaseStatus(
        release_id="r",
        workflow_id="release/r",
        phase=phase,
        current_wave=2,
        total_waves=3,
        waves=[
            ReleaseWaveStatus(name="dev", state=WaveState.SUCCEEDED),
            ReleaseWaveStatus(name="staging", approval_required=True, state=WaveState.WAITING_APPROVAL),
            ReleaseWaveStatus(name="prod", approval_required=True),
        ],
    )


AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("wave", "open_wave", "expired", "halted", "phase", "want"),
    [
        ("staging", 1, {}, "", ReleasePhase.WAITING_APPROVAL, None),
        ("qa", 1, {}, "", ReleasePhase.WAITING_APPROVAL, "has no wave 'qa'"),
        ("prod", 1, {}, "", ReleasePhase.WAITING_APPROVAL, "not waiting for approval (wave staging waits"),
        ("dev", 1, {}, "", ReleasePhase.WAITING_APPROVAL, "needs no approval"),
        (
            "staging",
            None,
            {1: AT},
            "the approval timeout",
            ReleasePhase.HALTED,
            "timed out at 2026-01-02T03:04:05",
        ),
        ("staging", 1, {}, "bob", ReleasePhase.HALTED, "is halted by bob"),
        ("staging", 1, {}, "", ReleasePhase.ROLLED_BACK, "is RolledBack; nothing to approve"),
    ],
)
def test_approval_refusal(
    wave: str,
    open_wave: int | None,
    expired: dict[int, datetime],
    halted: str,
    phase: ReleasePhase,
    want: str | None,
) -> None:
    got = release_plan.approval_refusal(
        _status(phase), wave, open_wave=open_wave, expired=expired, halted_by=halted
    )
    assert (got is None) if want is None else (got is not None and want in got), got


def _doc(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "change": {"images": {"app": "registry.example/checkout:1.43.0"}},
        "waves": [
            {"name": "dev", "targets": [{"cluster": "dev", "namespace": "shop", "deployment": "checkout"}]}
        ],
    }
    body.update(spec)
    return {
        "apiVersion": "rollouts.temporal.io/v1alpha1",
        "kind": "Release",
        "metadata": {"name": "c-1"},
        "spec": body,
    }


def test_the_issue_example_parses() -> None:
    t = {"namespace": "shop", "deployment": "checkout"}
    rel = parse_release(
        _doc(
            defaults={
                "steps": "1,25%,50%,100%",
                "pause": "5m",
                "progressDeadline": "120s",
                "autoRollback": True,
            },
            waves=[
                {"name": "dev", "targets": [{"cluster": "dev", **t}], "bake": "10m"},
                {
                    "name": "staging",
                    "targets": [{"cluster": "staging", **t}],
                    "bake": "30m",
                    "approval": {"required": True, "timeout": "24h", "onTimeout": "halt"},
                },
                {
                    "name": "prod",
                    "steps": "1,10%,50%,100%",
                    "maxParallel": 1,
                    "maxFailures": 0,
                    "analysis": {"templates": ["error-rate.yaml"]},
                    "approval": {"required": True},
                    "targets": [{"cluster": "prod-eu", **t}, {"cluster": "prod-us", **t}],
                },
            ],
            failurePolicy={"onTargetFailure": "halt", "rollback": "previousWaves"},
            notify=["release-team"],
        ),
        "r.yaml",
    )
    dev, staging, prod = rel.spec.waves
    assert (dev.bake, staging.bake, staging.approval.timeout) == (600, 1800, 86400)
    assert [s.pause_seconds for s in rel.wave_steps(dev)] == [300] * 4
    assert [str(s.replicas) for s in rel.wave_steps(prod)] == ["1", "10%", "50%", "100%"]
    assert rel.spec.failure_policy.rollback == "previousWaves"
    assert prod.analysis is not None and prod.analysis.templates == ["error-rate.yaml"]
    assert dev.analysis is None and rel.spec.notify == ["release-team"]


@pytest.mark.parametrize(
    ("change", "want"),
    [
        ({"kind": "Rollout"}, "r.yaml: kind: Input should be 'Release'"),
        ({"spec": {"waves": []}}, "r.yaml: spec.change: Field required"),
        ({"spec": {**_doc()["spec"], "waves": []}}, "spec.waves: List should have at least 1 item"),
        ({"spec": {**_doc()["spec"], "bogus": 1}}, "spec.bogus: Extra inputs are not permitted"),
        ({"spec": {**_doc()["spec"], "defaults": {"pause": "5 minutes"}}}, "is not a duration like 30s"),
        (
            {"spec": {**_doc()["spec"], "defaults": {"autoRollback": False}}},
            "autoRollback: false is not supported",
        ),
        ({"spec": {**_doc()["spec"], "defaults": {"steps": "50%,10%"}}}, "spec.waves[0].steps:"),
        (
            {"spec": {**_doc()["spec"], "change": {"images": {"app": "Bad Image"}}}},
            "not a valid image reference",
        ),
        ({"spec": {**_doc()["spec"], "failurePolicy": {"rollback": "all"}}}, "spec.failurePolicy.rollback"),
        ({"metadata": {"name": "Checkout_1"}}, "must be a DNS label"),
        (
            {"spec": {**_doc()["spec"], "notify": ["Team Slack"]}},
            "spec.notify: 'Team Slack' is not a notification",
        ),
        (
            {"spec": {**_doc()["spec"], "notify": [f"t{i}" for i in range(11)]}},
            "spec.notify: List should have at most 10",
        ),
        (
            {
                "spec": {
                    **_doc()["spec"],
                    "waves": [{**_doc()["spec"]["waves"][0], "analysis": {"templates": []}}],
                }
            },
            "spec.waves[0].analysis.templates: List should have at least 1 item",
        ),
    ],
)
def test_bad_files_are_one_line(change: dict[str, Any], want: str) -> None:
    with pytest.raises(ReleaseFileError) as err:
        parse_release({**_doc(), **change}, "r.yaml")
    assert want in str(err.value) and "\n" not in str(err.value), str(err.value)


@pytest.mark.parametrize(
    ("event", "wave", "phase", "ui", "want"),
    [
        (ReleaseNotifyEvent.WAVE_STARTED, 1, "Progressing", "", "Release r: wave dev (1/2) started: m"),
        (ReleaseNotifyEvent.WAVE_COMPLETED, 1, "Baking", "", "Release r: wave dev (1/2) completed: m"),
        (ReleaseNotifyEvent.WAVE_FAILED, 2, "Progressing", "", "Release r: wave prod (2/2) failed: m"),
        (
            ReleaseNotifyEvent.RELEASE_ENDED,
            0,
            "RolledBack",
            "http://ui/x",
            "Release r: ended RolledBack: m (http://ui/x)",
        ),
    ],
)
def test_release_notification_text(
    event: ReleaseNotifyEvent, wave: int, phase: str, ui: str, want: str
) -> None:
    n = ReleaseNotification(
        event=event,
        release_id="r",
        workflow_id="release/r",
        wave=wave,
        wave_name=["", "dev", "prod"][wave],
        total_waves=2,
        phase=phase,
        message="m",
        at=datetime(2026, 1, 1, tzinfo=UTC),
        ui_url=ui,
    )
    assert release_notification_text(n) == want


def _two_waves(first: list[TargetState], second: list[TargetState]) -> ReleaseStatus:
    def wave(name: str, states: list[TargetState]) -> ReleaseWaveStatus:
        targets = [
            ReleaseTargetStatus(
                cluster="c", namespace="ns", deployment=f"{name}{i}", workflow_id=f"{name}{i}", state=s
            )
            for i, s in enumerate(states)
        ]
        return ReleaseWaveStatus(name=name, targets=targets)

    return ReleaseStatus(release_id="r", workflow_id="release/r", waves=[wave("a", first), wave("b", second)])


@pytest.mark.parametrize(
    ("first", "next_wave", "length", "threshold", "suggested", "want"),
    [
        ([H, H], 1, 10, 0, True, True),  # the server suggests it
        ([H, H], 1, 10, 0, False, False),  # no threshold of our own, no suggestion
        ([H, H], 1, 10, 10, False, True),  # the threshold reached
        ([H, H], 1, 9, 10, False, False),
        ([H, R], 1, 10, 1, True, False),  # a target still in flight: never
        ([H, F], 1, 10, 1, False, True),  # failed within maxFailures: not in flight
        ([H, H], 2, 10, 1, True, False),  # no wave left to run
    ],
)
def test_continue_as_new_due(
    first: list[TargetState], next_wave: int, length: int, threshold: int, suggested: bool, want: bool
) -> None:
    status = _two_waves(first, [P, P])
    got = release_plan.continue_as_new_due(
        status, next_wave, history_length=length, threshold=threshold, suggested=suggested
    )
    assert got is want


@pytest.mark.parametrize(
    ("outcome", "asked", "state", "message"),
    [
        (TargetOutcome(kind="completed"), False, C, "handed back on the new template"),
        (TargetOutcome(kind="canceled"), True, TargetState.ROLLED_BACK, "rolled back by the release"),
        (TargetOutcome(kind="canceled"), False, F, "rolled back by `rollout undo`"),
        (
            TargetOutcome(kind="failed", error_type="ProgressDeadlineExceeded", message="no progress"),
            False,
            F,
            "rolled back: no progress",
        ),
        (TargetOutcome(kind="failed", error_type="Other", message="boom"), False, F, "failed: boom"),
    ],
)
def test_outcome_state(outcome: TargetOutcome, asked: bool, state: TargetState, message: str) -> None:
    assert release_plan.outcome_state(outcome, asked_to_roll_back=asked) == (state, message)
