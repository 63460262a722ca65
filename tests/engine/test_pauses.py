"""Timed pauses, approve cutting a timed pause short, and a last 100% step that does not pause."""

from __future__ import annotations

import time
from typing import Any

from workflows.model import Phase, Reason, StepState, WaitingFor


async def test_timed_pause_continues_by_itself(kit: Any, rollout_worker: None) -> None:
    await kit.create(kit.seed(replicas=4))
    rc, _, err = await kit.cli(
        "start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,100%", "--pause-duration", "2"
    )
    assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.PAUSED, 1)
    paused_seen = time.monotonic()
    assert st.waiting_for == WaitingFor.TIMER
    assert st.message == Reason.TIMED.format(i=1, n=2, s=2)
    assert kit.images() == {"nginx:1.27": (1, 1), "nginx:1.26": (3, 3)}
    st = await kit.wait_phase("nginx", Phase.COMPLETED, timeout=30)
    assert time.monotonic() - paused_seen >= 1.0  # the timer really ran
    assert st.approvals == []  # nobody approved: the timer did, and the last 100% step did not pause
    assert kit.images() == {"nginx:1.27": (4, 4), "nginx:1.26": (0, 0)}


async def test_approve_cuts_a_timed_pause_short(kit: Any, rollout_worker: None) -> None:
    await kit.create(kit.seed(replicas=4))
    rc, _, err = await kit.cli(
        "start",
        "nginx",
        "--image",
        "nginx=nginx:1.27",
        "--steps",
        "50%,100%",
        "--pause-duration",
        "3600",
    )
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)
    assert kit.images() == {"nginx:1.27": (2, 2), "nginx:1.26": (2, 2)}
    started = time.monotonic()
    rc, out, err = await kit.cli("approve", "nginx", "--step", "1")
    assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.COMPLETED, timeout=30)
    assert time.monotonic() - started < 30
    assert [a.step for a in st.approvals] == [1]
    assert st.step_state == StepState.COMPLETED


async def test_last_step_below_100_pauses_then_finalizes(kit: Any, rollout_worker: None) -> None:
    """A last step of 50% pauses (only exactly 100% skips the pause); approve then finalizes to 100%."""
    await kit.create(kit.seed(replicas=4))
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "50%")
    assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.PAUSED, 1)
    assert st.total_steps == 1
    rc, _, err = await kit.cli("approve", "nginx")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.COMPLETED)
    assert kit.images() == {"nginx:1.27": (4, 4), "nginx:1.26": (0, 0)}
    st = await kit.status("nginx")
    assert st.canary_replicas == 4 and st.stable_replicas == 0
