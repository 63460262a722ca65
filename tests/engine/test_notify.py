"""Notifications (``--notify NAME``, the worker's named targets) received by a local HTTP receiver, one down.

The receiver is an aiohttp server on 127.0.0.1 (free port), stopped by the test. Targets are named in
the session worker's ``ROLLOUT_NOTIFY_TARGETS_FILE`` (tests/conftest.py), which the tests write; the
workflow only carries names, so no receiver URL reaches the history. The dead target is a free port
nobody listens on: its deliveries fail and are retried until their bound, and the rollout neither
waits for them nor fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.egress import EgressPolicy
from activities.notify import NotifyActivities
from cli import commands
from cli.commands import StartOptions
from cli.runs import final_status
from tests.helpers.receiver import Receiver, dead_url, name_targets, receiving
from workflows.model import DeliverInput, Notification, NotifyEvent, Phase, RolloutStatus, RolloutTimings
from workflows.notify import notification_text, parse_notify_targets, parse_notify_urls

LOOPBACK = EgressPolicy.parse("127.0.0.0/8")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as rec:
        yield rec


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
    assert parse_notify_targets("slack=https://h/T/B/x, ops=http://o") == {
        "slack": "https://h/T/B/x",
        "ops": "http://o",
    }
    with pytest.raises(ValueError, match="not a name=url pair"):
        parse_notify_targets("https://h/T/B/x")
    acts = NotifyActivities.from_env(
        {
            "ROLLOUT_NOTIFY_URLS": "http://a,http://b",
            "ROLLOUT_NOTIFY_TARGETS": "ops=http://o",
            "ROLLOUT_NOTIFY_DEFAULT": "ops",
            "ROLLOUT_UI_URL": "http://u/",
        }
    )
    # Older unnamed URLs become targets default-N; they and ROLLOUT_NOTIFY_DEFAULT are told every rollout.
    assert acts.targets == {"default-1": "http://a", "default-2": "http://b", "ops": "http://o"}
    assert acts.defaults == ["default-1", "default-2", "ops"] and acts.ui_url == "http://u"


async def test_deliver_activity(receiver: Receiver) -> None:
    acts = NotifyActivities({"hook": receiver.url}, ui_url="http://ui", egress=LOOPBACK)
    env = ActivityEnvironment()
    assert await env.run(acts.notify_targets) == []  # older runs: URLs never leave the worker any more
    assert await env.run(acts.notify_default_targets) == []
    await env.run(acts.deliver_notification, DeliverInput(target="hook", notification=_note()))
    (body,) = receiver.bodies
    keys = "event namespace name workflowId step totalSteps phase message uiUrl at text"
    assert set(body) == set(keys.split())
    assert body["uiUrl"] == "http://ui/namespaces/default/workflows/rollout-default-web"
    assert body["text"].startswith("Rollout default/web is paused at step 1/3")
    assert body["at"].startswith("2026-01-02T03:04:05")
    # Older runs carry the URL itself: still delivered, through the allow-list.
    await env.run(acts.deliver_notification, DeliverInput(url=receiver.url, notification=_note()))
    assert len(receiver.bodies) == 2
    receiver.status = 500  # a failing receiver fails the attempt, so Temporal retries it; no URL in the error
    with pytest.raises(RuntimeError, match="^target hook answered HTTP 500 to StepPaused$"):
        await env.run(acts.deliver_notification, DeliverInput(target="hook", notification=_note()))
    with pytest.raises(ApplicationError, match="no notification target named 'nope'") as unknown:
        await env.run(acts.deliver_notification, DeliverInput(target="nope", notification=_note()))
    assert unknown.value.non_retryable


async def test_deliveries_only_reach_the_allow_list(receiver: Receiver) -> None:
    """A target off the worker's egress allow-list, or at a metadata address, is refused without a request."""
    metadata = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
    acts = NotifyActivities({"hook": receiver.url, "meta": metadata}, egress=EgressPolicy.parse("10.0.0.0/8"))
    env = ActivityEnvironment()
    for inp in (
        DeliverInput(target="hook", notification=_note()),
        DeliverInput(target="meta", notification=_note()),
        DeliverInput(url=metadata, notification=_note()),
    ):
        with pytest.raises(ApplicationError, match="not on the worker's egress allow-list") as refused:
            await env.run(acts.deliver_notification, inp)
        assert refused.value.non_retryable and refused.value.type == "EgressRefused"
        assert "meta-data" not in str(refused.value)
    assert receiver.bodies == []


async def test_rollout_notifies_in_order_with_one_receiver_down(
    kit: Any, rollout_worker: None, receiver: Receiver
) -> None:
    name_targets(dead=dead_url(), hook=receiver.url)
    await kit.create(kit.seed(replicas=4))
    timings = RolloutTimings(poll_interval_seconds=0.1, notify_total_seconds=4)
    spec, _ = await commands.start(
        kit.ctx,
        StartOptions(
            name="nginx",
            images=["nginx=nginx:1.27"],
            steps="1,100%",
            timings=timings,
            notify=["dead", "hook"],
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
    # The history holds names only: no receiver URL (a webhook URL is a bearer secret) in any event.
    # Payloads are stored as raw JSON bytes inside the history's protobuf, so a byte search sees them all.
    history = b"".join(e.SerializeToString() for e in (await handle.fetch_history()).events)
    assert b"notify hook: StepPaused" in history and b'"notifyTargets":["dead","hook"]' in history
    port = receiver.url.split(":")[2].split("/")[0]
    assert receiver.url.encode() not in history and f"127.0.0.1:{port}".encode() not in history

    # A second rollout, undone: RolledBack is told as well.
    receiver.bodies.clear()
    await commands.start(
        kit.ctx,
        StartOptions(
            name="nginx", images=["nginx=nginx:1.28"], steps="1,100%", timings=timings, notify=["hook"]
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
            name="nginx", images=["nginx=nginx:1.29"], steps="1,100%", timings=timings, notify=["hook"]
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
    name_targets(hook=receiver.url)
    await kit.create(kit.seed(replicas=2))
    timings = RolloutTimings(poll_interval_seconds=0.1, notify_total_seconds=4)
    await commands.start(
        kit.ctx,
        StartOptions(
            name="nginx", images=["nginx=nginx:1.27"], steps="1,100%", timings=timings, notify=["hook"]
        ),
    )
    await kit.eventually(lambda: receiver.events() == [("StepPaused", 1)], timeout=60, message="paused")
    code, _, kerr = kit.kubectl("delete", "deployment", "nginx", "-n", kit.namespace)
    assert code == 0, kerr
    await kit.eventually(lambda: receiver.events()[-1:] == [("Failed", 1)], timeout=60, message="Failed told")
    assert 'deployment "nginx" not found' in receiver.bodies[-1]["message"]


async def test_notify_takes_names_not_urls(kit: Any) -> None:
    """A webhook URL on the command line would enter history: one line, nothing written, no workflow."""
    await kit.create(kit.seed(replicas=2))
    seq = kit.audit_seq()
    for value, want in [
        ("https://hooks.slack.com/services/T0/B0/SECRET", "--notify takes a target name"),
        ("Not A Name", "is not a target name"),
    ]:
        rc, out, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--notify", value)
        assert rc != 0, out
        assert want in err and len(err.strip().splitlines()) == 1 and "SECRET" not in err, err
    many = [a for i in range(11) for a in ("--notify", f"t{i}")]
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", *many)
    assert rc != 0 and "at most 10 targets" in err, err
    assert kit.writes_since(seq) == []
