"""A flaky API server: 5% of requests answered 500/429, 2% of writes 409, +50 ms on every request.

The engine: with kubesim's fault injection switched on as soon as ``rollout start`` returned (so
take-over and every later call run under faults), the seed scenario, an undo and ten concurrent
rollouts all reach the same final state as without faults. The CLI: ``rollout start`` (read-only
validation against the API) succeeds on a flaky API server too. The test's own reads retry over
injected faults (``Dur.read``); the CLI and the worker get no such help.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from kubesim.testing import KubeSimProcess
from tests.helpers.durability import Dur, WorkerLauncher, assert_bounds, expected_state
from workflows.model import Phase, UndoSignal

FAULTS = {"errorRate": 0.05, "errorCodes": [500, 429], "conflictRate": 0.02, "latencyMs": 50}


def _faulted(dur: Dur, since: int) -> int:
    """How many of our namespace's requests were answered with an injected error."""
    return len([e for e in dur.entries(since) if e["code"] in (409, 429, 500)])


async def test_seed_and_undo_under_faults(
    dur: Dur, launcher: WorkerLauncher, no_faults: KubeSimProcess
) -> None:
    await dur.create_seed("web")
    await dur.create_seed("api")
    await launcher.start(dur.task_queue)
    seq0 = dur.audit_seq()
    with dur.sampler() as sampler:
        await dur.start_rollout("web")
        api = await dur.start_rollout("api")
        no_faults.set_faults(**FAULTS)
        # api: approve step 1, then undo while paused at step 2.
        await dur.wait_paused(1, "api")
        await dur.approve(1, "api")
        await dur.wait_paused(2, "api")
        await api.signal("undo", UndoSignal(by="durability-tests", reason="faults"))
        web_result, api_result = await asyncio.gather(dur.drive("web", timeout=150), api.result())
    no_faults.clear_faults()
    assert web_result.phase == Phase.COMPLETED, web_result.message
    assert api_result.phase == Phase.ROLLED_BACK, api_result.message
    assert await dur.final_state("web") == expected_state(Phase.COMPLETED)
    assert await dur.final_state("api") == expected_state(Phase.ROLLED_BACK)
    assert len(dur.rs_creates(seq0)) == 2
    assert len(await dur.read(dur.kube.list_replica_sets, dur.namespace)) == 4
    assert _faulted(dur, seq0) > 0, "faults were injected"
    # Bounds per Deployment (the sampler sees both Deployments' ReplicaSets).
    for name in ("web", "api"):
        assert_bounds(_only(sampler, name))


async def test_ten_concurrent_rollouts_under_faults(
    dur: Dur, launcher: WorkerLauncher, no_faults: KubeSimProcess
) -> None:
    names = [f"app{i}" for i in range(10)]
    await asyncio.gather(*(dur.create_seed(n, replicas=4) for n in names))
    await launcher.start(dur.task_queue)
    seq0 = dur.audit_seq()
    with dur.sampler() as sampler:
        for n in names:
            await dur.start_rollout(n, pause_duration=1)
        no_faults.set_faults(**FAULTS)
        results = await asyncio.gather(*(dur.drive(n, timeout=180) for n in names))
    no_faults.clear_faults()
    assert [r.phase for r in results] == [Phase.COMPLETED] * 10, [r.message for r in results]
    for n in names:
        assert await dur.final_state(n) == expected_state(Phase.COMPLETED, replicas=4)
    assert len(dur.rs_creates(seq0)) == 10
    assert len(await dur.read(dur.kube.list_replica_sets, dur.namespace)) == 20
    assert _faulted(dur, seq0) > 0, "faults were injected"
    for n in names:
        # 4 replicas, 25%/25%: at most 5 pods, at least 3 ready.
        samples = _only(sampler, n).samples
        assert samples and [s for s in samples if s[0] > 5 or s[1] < 3] == []


async def test_cli_start_under_faults(dur: Dur, no_faults: KubeSimProcess) -> None:
    """``rollout start`` reads the Deployment and its ReplicaSets; transient 500/429 must not fail it.

    A flakier server than above (20% errors) so that a CLI without retries fails almost surely
    (10 starts x 2 reads: 0.8^20 ~ 1% chance to pass), while one that retries transient errors passes.
    """
    names = [f"cli{i}" for i in range(10)]
    await asyncio.gather(*(dur.create_seed(n, replicas=1) for n in names))
    no_faults.set_faults(errorRate=0.2, errorCodes=[500, 429], latencyMs=5)
    failures = []
    try:
        for n in names:
            rc, _, err = await dur.cli("start", n, "--image", "nginx=nginx:1.27", "--steps", "100%")
            if rc != 0:
                failures.append(err.strip())
    finally:
        no_faults.clear_faults()
        for n in names:  # no worker polls this test's task queue: end what was started
            with contextlib.suppress(Exception):
                await dur.handle(n).terminate("cli fault test done")
    assert failures == [], f"{len(failures)} of 10 starts failed: {failures}"


class _Filtered:
    """A sampler view restricted to one Deployment's ReplicaSets (``<name>-<hash>``)."""

    def __init__(self, samples: list[tuple[int, int, dict[str, tuple[int, int]]]], error: Any) -> None:
        self.samples = samples
        self.error = error


def _only(sampler: Any, name: str) -> Any:
    out = []
    for _, _, state in sampler.samples:
        mine = {k: v for k, v in state.items() if k.rsplit("-", 1)[0] == name}
        if mine:
            out.append((sum(s for s, _ in mine.values()), sum(r for _, r in mine.values()), mine))
    return _Filtered(out, sampler.error)
