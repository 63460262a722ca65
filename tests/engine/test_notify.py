"""Notifications (``--notify``, ``ROLLOUT_NOTIFY_URLS``) received by a local HTTP receiver, one receiver down.

The receiver is an aiohttp server on 127.0.0.1 (free port), stopped by the test. The dead URL is a
free port nobody listens on: its deliveries fail and are retried until their bound, and the rollout
neither waits for them nor fails.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from temporalio.testing import ActivityEnvironment

from activities.notify import NotifyActivities
from cli import commands
from cli.commands import StartOptions
from cli.runs import final_status
from workflows.model import DeliverInput, Notification, NotifyEvent, Phase, RolloutStatus, RolloutTimings
from workflows.notify import notification_text, parse_notify_urls


class Receiver:
    """Records every JSON body POSTed to it; ``status`` is what it answers."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = 200
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        return web.Response(status=self.status)

    def events(self, name: str | None = None) -> list[tuple[str, int]]:
        return [(b["event"], b["step"]) for b in self.bodies if name is None or b["name"] == name]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    rec.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield rec
    finally:
        await runner.cleanup()


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/hook"


def _note(event: NotifyEvent = NotifyEvent.STEP_PAUSED) -> Notification:
    return Notification(
        event=event,
        namespace="default",
        name="web",
        workflow_id="rollout-default-web",
        step=1,
        total_steps=3,
        phase="Paused",
        message="waiting",
        at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


def test_text_and_env() -> None:
    n = _note()
    n.ui_url = "http://ui/x"
    assert notification_text(n) == (
        "Rollout default/web is paused at step 1/3 and waits for approval: waiting (http://ui/x)"
    )
    assert parse_notify_urls("http://a, http://b  http://c") == ["http://a", "http://b", "http://c"]
    acts = NotifyActivities.from_env(
        {"ROLLOUT_NOTIFY_URLS": "http://a,http://b", "ROLLOUT_UI_URL": "http://u/"}
    )
    assert acts.default_urls == ["http://a", "http://b"] and acts.ui_url == "http://u"


async def test_deliver_activity(receiver: Receiver) -> None:
    acts = NotifyActivities(ui_url="http://ui")
    env = ActivityEnvironment()
    await env.run(acts.deliver_notification, DeliverInput(url=receiver.url, notification=_note()))
    (body,) = receiver.bodies
    keys = "event namespace name workflowId step totalSteps phase message uiUrl at text"
    assert set(body) == set(keys.split())
    assert body["uiUrl"] == "http://ui/namespaces/default/workflows/rollout-default-web"
    assert body["text"].startswith("Rollout default/web is paused at step 1/3")
    assert body["at"].startswith("2026-01-02T03:04:05")
    receiver.status = 500  # a failing receiver fails the attempt, so Temporal retries it
    with pytest.raises(RuntimeError, match="answered 500"):
        await env.run(acts.deliver_notification, DeliverInput(url=receiver.url, notification=_note()))


async def test_rollout_notifies_in_order_with_one_receiver_down(
    kit: Any, rollout_worker: None, receiver: Receiver
) -> None:
    await kit.create(kit.seed(replicas=4))
    timings = RolloutTimings(poll_interval_seconds=0.1, notify_total_seconds=4)
    spec, _ = await commands.start(
        kit.ctx,
        StartOptions(
            name="nginx",
            images=["nginx=nginx:1.27"],
            steps="1,100%",
            timings=timings,
            notify=[_dead_url(), receiver.url],
        ),
    )
    await kit.eventually(
        lambda: receiver.events() == [("StepPaused", 1)], timeout=60, message="StepPaused received"
    )
    rc, _, err = await kit.cli("approve", "nginx")
    assert rc == 0, err
    handle = kit.ctx.client.get_workflow_handle(spec.workflow_id, result_type=RolloutStatus)
    result = await handle.result()
    assert result.phase == Phase.COMPLETED
    assert receiver.events() == [
        ("StepPaused", 1),
        ("StepCompleted", 1),
        ("StepCompleted", 2),
        ("Completed", 2),
    ]
    last = receiver.bodies[-1]
    assert (last["workflowId"], last["totalSteps"], last["phase"]) == (spec.workflow_id, 2, "Completed")
    assert last["text"].startswith(f"Rollout {kit.namespace}/nginx completed")

    # A second rollout, undone: RolledBack is told as well.
    receiver.bodies.clear()
    await commands.start(
        kit.ctx,
        StartOptions(
            name="nginx", images=["nginx=nginx:1.28"], steps="1,100%", timings=timings, notify=[receiver.url]
        ),
    )
    await kit.eventually(lambda: receiver.events() == [("StepPaused", 1)], timeout=60, message="paused")
    rc, _, err = await kit.cli("undo", "nginx")
    assert rc == 0, err
    assert (await final_status(handle)).phase == Phase.ROLLED_BACK
    assert receiver.events() == [("StepPaused", 1), ("RolledBack", 1)]

    # A third, aborted and then undone: Aborted, then RolledBack.
    receiver.bodies.clear()
    await commands.start(
        kit.ctx,
        StartOptions(
            name="nginx", images=["nginx=nginx:1.29"], steps="1,100%", timings=timings, notify=[receiver.url]
        ),
    )
    await kit.eventually(lambda: receiver.events() == [("StepPaused", 1)], timeout=60, message="paused")
    rc, _, err = await kit.cli("abort", "nginx")
    assert rc == 0, err
    await kit.eventually(
        lambda: receiver.events()[-1:] == [("Aborted", 1)], timeout=60, message="Aborted told"
    )
    assert receiver.bodies[-1]["phase"] == "Aborted"
    rc, _, err = await kit.cli("undo", "nginx")
    assert rc == 0, err
    assert (await final_status(handle)).phase == Phase.ROLLED_BACK
    assert receiver.events() == [("StepPaused", 1), ("Aborted", 1), ("RolledBack", 1)]


async def test_failed_rollout_notifies_before_the_workflow_fails(
    kit: Any, rollout_worker: None, receiver: Receiver
) -> None:
    await kit.create(kit.seed(replicas=2))
    timings = RolloutTimings(poll_interval_seconds=0.1, notify_total_seconds=4)
    await commands.start(
        kit.ctx,
        StartOptions(
            name="nginx", images=["nginx=nginx:1.27"], steps="1,100%", timings=timings, notify=[receiver.url]
        ),
    )
    await kit.eventually(lambda: receiver.events() == [("StepPaused", 1)], timeout=60, message="paused")
    code, _, kerr = kit.kubectl("delete", "deployment", "nginx", "-n", kit.namespace)
    assert code == 0, kerr
    await kit.eventually(lambda: receiver.events()[-1:] == [("Failed", 1)], timeout=60, message="Failed told")
    assert 'deployment "nginx" not found' in receiver.bodies[-1]["message"]
