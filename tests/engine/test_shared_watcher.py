"""Paused rollouts hold no activity and no watch: the workers' shared Deployment watcher signals them.

Each test runs its own workers (``worker.build_worker``, which also runs the watcher) on its own task
queue, so it can stop and start them.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from temporalio.api.enums.v1 import EventType

from tests.helpers.poll import assert_holds
from workflows.model import Phase, Reason, workflow_id_for


def _own_queue(kit: Any) -> Any:
    """The same helpers on a task queue of this test's own."""
    ctx = dataclasses.replace(kit.ctx, task_queue=f"watcher-{uuid.uuid4().hex[:8]}")
    return type(kit)(ctx, kit.sim, kit.api_client)


async def _history(kit: Any) -> list[Any]:
    handle = kit.ctx.client.get_workflow_handle(workflow_id_for(kit.namespace, "nginx"))
    return list((await handle.fetch_history()).events)


def _signals(events: list[Any], name: str) -> list[int]:
    return [
        i
        for i, e in enumerate(events)
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        and e.workflow_execution_signaled_event_attributes.signal_name == name
    ]


def _activities(events: list[Any]) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


async def _assert_pause_holds_nothing(kit: Any) -> None:
    """No activity pending, no watch of the rollout's namespace open (the watcher's is cluster-wide)."""
    handle = kit.ctx.client.get_workflow_handle(workflow_id_for(kit.namespace, "nginx"))

    async def idle() -> bool:
        desc = await handle.describe()
        open_watches = [
            e
            for e in kit.sim.audit()
            if e["verb"] == "watch" and e["code"] == 0 and e["namespace"] == kit.namespace
        ]
        return not desc.raw_description.pending_activities and not open_watches

    await kit.eventually(idle, timeout=30, interval=0.2, message="a pause that holds no activity or watch")


async def _rescaled(kit: Any, replicas: int, images: dict[str, tuple[int, int]]) -> None:
    async def check() -> bool:
        st = await kit.status("nginx")
        return st.phase == Phase.PAUSED and st.replicas == replicas and kit.images() == images

    await kit.eventually(check, timeout=60, interval=0.2, message=f"step rescaled for {replicas} replicas")


async def test_scale_during_pause_goes_through_the_shared_watcher_also_after_a_restart(kit: Any) -> None:
    from worker import build_worker

    kit = _own_queue(kit)
    ns = kit.namespace
    await kit.create(kit.seed())
    async with build_worker(kit.ctx.client, kit.api_client, kit.ctx.task_queue) as worker:
        rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,50%,100%")
        assert rc == 0, err
        await kit.wait_phase("nginx", Phase.PAUSED, 1)
        await _assert_pause_holds_nothing(kit)

        code, _, kerr = kit.kubectl("scale", "deployment", "nginx", "-n", ns, "--replicas=20")
        assert code == 0, kerr
        await _rescaled(kit, 20, {"nginx:1.27": (1, 1), "nginx:1.26": (19, 19)})
        st = await kit.status("nginx")
        assert Reason.RESCALED.format(old=10, new=20, i=1) in st.message
        assert worker.watchers[0].signals_sent >= 1
        events = await _history(kit)
        assert _signals(events, "deployment_changed")
        assert "watch_replicas" not in _activities(events)
        await _assert_pause_holds_nothing(kit)

    # No worker runs: the change waits in the cluster. A new worker's watcher lists and re-syncs.
    code, _, kerr = kit.kubectl("scale", "deployment", "nginx", "-n", ns, "--replicas=6")
    assert code == 0, kerr
    async with build_worker(kit.ctx.client, kit.api_client, kit.ctx.task_queue) as worker:
        await _rescaled(kit, 6, {"nginx:1.27": (1, 1), "nginx:1.26": (5, 5)})
        assert worker.watchers[0].informer.lists >= 1
        rc, _, err = await kit.cli("approve", "nginx")
        assert rc == 0, err
        await kit.wait_phase("nginx", Phase.PAUSED, 2)
        assert kit.images() == {"nginx:1.27": (3, 3), "nginx:1.26": (3, 3)}
        rc, _, err = await kit.cli("approve", "nginx")
        assert rc == 0, err
        await kit.wait_phase("nginx", Phase.COMPLETED)
    assert kit.images() == {"nginx:1.27": (6, 6), "nginx:1.26": (0, 0)}
    kit.assert_handed_back(kit.deployment(), "nginx:1.27")


async def test_two_workers_signal_twice_but_scale_once(kit: Any) -> None:
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter

    from worker import build_worker

    kit = _own_queue(kit)
    ns = kit.namespace
    await kit.create(kit.seed())
    queue = kit.ctx.task_queue
    # A second connection, as a second worker process would have (one client may run one worker per queue).
    other = await Client.connect(
        kit.ctx.client.service_client.config.target_host,
        namespace=kit.ctx.client.namespace,
        data_converter=pydantic_data_converter,
    )
    async with (
        build_worker(kit.ctx.client, kit.api_client, queue) as first,
        build_worker(other, kit.api_client, queue) as second,
    ):
        rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "50%,100%")
        assert rc == 0, err
        await kit.wait_phase("nginx", Phase.PAUSED, 1)
        await _assert_pause_holds_nothing(kit)
        canary = f"nginx-{(await kit.status('nginx')).canary_revision}"
        seq = kit.audit_seq()
        code, _, kerr = kit.kubectl("scale", "deployment", "nginx", "-n", ns, "--replicas=20")
        assert code == 0, kerr
        await _rescaled(kit, 20, {"nginx:1.27": (10, 10), "nginx:1.26": (10, 10)})

        async def both_signalled() -> bool:
            return len(_signals(await _history(kit), "deployment_changed")) >= 2

        # Each worker's watcher saw the change and signalled it ...
        await kit.eventually(both_signalled, timeout=30, interval=0.2, message="a signal from each watcher")
        assert first.watchers[0].signals_sent >= 1 and second.watchers[0].signals_sent >= 1

        async def acted_once() -> bool:
            events = await _history(kit)
            after = events[_signals(events, "deployment_changed")[0] :]
            # ... but the workflow acted once: one converge, one canary write to 10.
            assert _activities(after) == ["converge_step"], _activities(after)
            canary_writes = [e for e in kit.writes_since(seq) if e["name"] == canary]
            assert len(canary_writes) == 1, canary_writes
            return True

        await assert_holds(acted_once, seconds=1.0, message="no late second rescale")
        rc, _, err = await kit.cli("approve", "nginx")
        assert rc == 0, err
        await kit.wait_phase("nginx", Phase.COMPLETED)
    assert kit.images() == {"nginx:1.27": (20, 20), "nginx:1.26": (0, 0)}
