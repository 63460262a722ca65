"""A dead notification receiver delays a rollout's completion by at most the documented bound (issue 24).

docs/cli.md: each event and target is one activity retried for at most ``timings.notifyTotalSeconds``
in total, and a closing rollout lets deliveries in flight finish, "at most that bound". So the
workflow closes within that bound (plus scheduling) of its ``Completed`` event, even though one of
its receivers never answers.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

from cli import commands
from cli.commands import StartOptions
from tests.helpers.receiver import dead_url, name_targets, receiving
from workflows.model import Phase, RolloutStatus, RolloutTimings

BOUND = 4.0  # timings.notifyTotalSeconds for this rollout
SLACK = 5.0  # workflow tasks and activity scheduling on a loaded machine


async def test_dead_receiver_delays_completion_by_at_most_the_notify_bound(
    kit: Any, rollout_worker: None
) -> None:
    await kit.create(kit.seed(replicas=2))
    timings = RolloutTimings(poll_interval_seconds=0.1, notify_total_seconds=BOUND)
    async with receiving() as receiver:
        name_targets(dead=dead_url(), hook=receiver.url)
        spec, _ = await commands.start(
            kit.ctx,
            StartOptions(
                name="nginx", images=["nginx=nginx:1.27"], steps="100%", timings=timings,
                notify=["dead", "hook"],
            ),
        )  # fmt: skip
        completed = await kit.eventually(
            lambda: receiver.first("Completed"), timeout=60, message="the Completed notification"
        )
    seen = time.monotonic()
    handle = kit.ctx.client.get_workflow_handle(spec.workflow_id, result_type=RolloutStatus)
    try:
        result = await asyncio.wait_for(handle.result(), timeout=BOUND + SLACK)
    except TimeoutError:
        await handle.terminate("test over: a dead receiver held the rollout open")
        raise AssertionError(
            f"the rollout was still open {time.monotonic() - seen:.1f} s after its Completed event: a dead "
            f"receiver held it past the documented bound (timings.notifyTotalSeconds = {BOUND:g} s)"
        ) from None
    assert result.phase == Phase.COMPLETED
    close = (await handle.describe()).close_time
    assert close is not None
    took = (close - datetime.fromisoformat(completed["at"])).total_seconds()
    assert 1.0 <= took <= BOUND + SLACK, (
        f"the rollout closed {took:.1f} s after its Completed event; a dead receiver may delay it by "
        f"at most timings.notifyTotalSeconds ({BOUND:g} s) and does delay it by its retries (>= 1 s)"
    )
