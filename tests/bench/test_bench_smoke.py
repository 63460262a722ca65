"""Smoke test of the benchmark scripts: each runs at its smallest size and prints the documented JSON keys.

No timing assertions (benchmarks are not timed tests); only that every script runs end to end, stops what it
started, and reports sane values.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def _module(script: str) -> str:
    """The scripts run as modules (``python -m bench.concurrent``): no sys.path hacks, no stdlib shadowing."""
    return "bench." + script.removesuffix(".py")


def _run(script: str, *args: str, timeout: float = 120) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", _module(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(REPO),
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stdout  # stdout carries exactly one JSON object
    result: dict[str, Any] = json.loads(lines[0])
    assert proc.stderr.strip(), "the human summary goes to stderr"
    return result


@pytest.mark.parametrize(
    "script",
    [
        "approve_latency.py",
        "concurrent.py",
        "history.py",
        "analysis_history.py",
        "paused.py",
        "peers.py",
        "release.py",
    ],
)
def test_help(script: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", _module(script), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(REPO),
    )
    assert proc.returncode == 0 and "usage:" in proc.stdout


def test_approve_latency_smoke() -> None:
    r = _run(
        "approve_latency.py",
        "--approvals",
        "3",
        "--command-approvals",
        "1",
        "--baseline",
        "3",
        "--settle",
        "0.05",
    )
    for key in ("p50_ms", "p95_ms", "max_ms", "baseline_p50_ms", "ratio_p50", "samples"):
        assert key in r, key
    assert r["samples"] == 3 and r["baseline_samples"] == 3 and r["command_samples"] == 1
    assert 0 < r["p50_ms"] <= r["p95_ms"] <= r["max_ms"]
    assert r["baseline_p50_ms"] > 0 and r["ratio_p50"] > 0
    assert r["final_phase"] == "Completed"


def test_release_smoke() -> None:
    r = _run("release.py", "--waves", "1,2", "--replicas", "2", "--ready-delay", "0.05")
    for key in ("release_s", "script_s", "release_events", "script_events", "release_api_requests"):
        assert key in r, key
    assert r["all_correct"] is True and r["targets"] == 3 and r["waves"] == [1, 2]
    release = r["release"]
    assert (
        release["history_events"]["total"]
        == release["history_events"]["parent"] + release["history_events"]["children"]
    )
    assert len(release["time_split"]["wave_s"]) == 2
    assert set(release["api"]["per_cluster"]) == {"c1", "c2", "c3"}
    assert r["script"]["history_events"]["per_target"] > 0 and r["release_worker_cpu_s"] > 0


def test_concurrent_smoke() -> None:
    r = _run("concurrent.py", "--rollouts", "2", "--ready-delay", "0.05")
    for key in (
        "wall_s",
        "native_wall_s",
        "ratio",
        "all_correct",
        "worker_cpu_s",
        "worker_peak_rss_mb",
        "history_events_per_rollout",
        "api_requests_per_rollout",
    ):
        assert key in r, key
    assert r["rollouts"] == 2 and r["all_correct"] is True
    assert r["ours"]["phases"] == {"Completed": 2}
    assert r["wall_s"] > 0 and r["native_wall_s"] > 0 and r["ratio"] > 0
    assert r["worker_cpu_s"] > 0 and r["worker_peak_rss_mb"] > 10
    assert r["history_events_per_rollout"] > 10 and r["api_requests_per_rollout"] > 5
    assert r["native"]["audit"]["requests_per_rollout"] == 1.0  # one PATCH each, like kubectl set image
    for key in (
        "ours_s",
        "native_s",
        "floor_s",
        "events_per_rollout",
        "api_requests_per_rollout",
        "worker_cpu_s_per_rollout",
        "temporal_cpu_s_per_rollout",
    ):
        assert key in r, key
    # steps 1, 50%, 100% of 10 replicas at 25%/25%: three readiness waves, 0.05 s each.
    assert r["readiness_waves"] == {"ours": 3, "native": 2} and r["floor_s"] == 0.15


def test_concurrent_workers_kill_one_smoke() -> None:
    args = ["--rollouts", "4", "--ready-delay", "0.05", "--workers", "2", "--kill-one"]
    r = _run("concurrent.py", *args, timeout=300)
    assert r["all_correct"] is True and len(r["workers"]) == 2
    assert [w["killed"] for w in r["workers"]] == [False, True]
    assert sum(w["activities"] for w in r["workers"]) > 0
    assert abs(sum(w["activity_share"] for w in r["workers"]) - 1.0) < 0.01


def test_paused_smoke() -> None:
    args = ["--rollouts", "3", "--approvals", "1", "--window", "2", "--settle", "1"]
    r = _run("paused.py", *args, timeout=300)
    for key in ("worker_rss_mb", "open_watches", "activity_slots_used", "approve_to_scale_ms", "paused"):
        assert key in r, key
    assert r["paused"] == 3 and r["all_paused"] is True
    assert r["activity_slots_used"] == 0  # paused rollouts hold no activity
    assert r["open_watches"] <= 1  # the worker's one shared watcher
    assert len(r["approve_to_scale_ms"]["samples"]) == 1


def test_history_smoke() -> None:
    r = _run("history.py", "--pauses", "1", "--approve-after", "0", "--ready-delays", "0.1,1")
    assert set(r["groups"]) == {"pause", "approve", "ready"}
    assert len(r["rows"]) == 4 and r["all_completed"] is True
    assert all(row["events"] > 10 and row["history_bytes"] > 0 for row in r["rows"])
    assert isinstance(r["flat"], bool) and r["max_events_per_step"] > 0


def test_analysis_history_smoke() -> None:
    r = _run("analysis_history.py", "--pauses", "1,6", "--failure-limits", "1", "--interval", "1")
    rows = {(v["group"], v.get("pause_s", v.get("failure_limit"))): v for v in r["variants"]}
    assert set(rows) == {("healthy", 1), ("healthy", 6), ("failing", 1)}
    assert rows[("failing", 1)]["phase"] == "RolledBack" and rows[("failing", 1)]["measurements"] == 2
    assert rows[("healthy", 6)]["phase"] == "Completed" and rows[("healthy", 6)]["measurements"] >= 5
    assert isinstance(r["flat"], bool) and r["healthy_events_spread"] >= 0
