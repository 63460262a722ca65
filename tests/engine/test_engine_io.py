"""The engine's Kubernetes requests, from kubesim's audit log: selector-scoped LISTs, watch-based waits.

(Engine behaviour rather than replay; it lives here because this directory belongs to the engine-performance
work. Timing-free: the evidence is which requests were made, not how long they took.)
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs

from workflows.model import Phase

FOREIGN = 40


def _foreign_replica_set(namespace: str, i: int) -> dict[str, Any]:
    labels = {"app": f"other-{i}"}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": f"other-{i}", "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        },
    }


def _in_namespace(entries: list[dict[str, Any]], namespace: str, resource: str) -> list[dict[str, Any]]:
    return [e for e in entries if e["namespace"] == namespace and e["resource"] == resource]


async def test_replica_set_lists_use_the_deployment_selector(kit: Any, rollout_worker: None) -> None:
    ns = kit.namespace
    await kit.create(kit.seed(replicas=4))
    for i in range(FOREIGN):  # another team's ReplicaSets in the same namespace
        await asyncio.to_thread(
            kit.kube.request, "POST", kit.kube.replica_set_path(ns), _foreign_replica_set(ns, i)
        )
    seq = kit.audit_seq()
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,100%")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)
    rc, _, err = await kit.cli("approve", "nginx")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.COMPLETED)
    lists = [e for e in _in_namespace(kit.sim.audit(since=seq), ns, "replicasets") if e["verb"] == "list"]
    # `rollout start` (validation) and take_over + _ensure_canary in the worker.
    assert len(lists) >= 3
    assert [parse_qs(e["query"]).get("labelSelector") for e in lists] == [["app=nginx"]] * len(lists)
    # The scoped LIST answers with the Deployment's ReplicaSets only: 2, not 42.
    items = await asyncio.to_thread(kit.kube.list_replica_sets, ns, "app=nginx")
    assert sorted(rs["metadata"]["name"] for rs in items if rs["metadata"]["name"].startswith("other-")) == []
    assert len(items) == 2
    kit.assert_handed_back(kit.deployment(), "nginx:1.27")
    # The foreign ReplicaSets are untouched.
    writes = [e for e in kit.writes_since(seq) if e["resource"] == "replicasets"]
    assert [e["name"] for e in writes if e["name"].startswith("other-")] == []


async def test_readiness_waits_watch_instead_of_polling(kit: Any, rollout_worker: None) -> None:
    """A 3 s readiness wave: polling read three objects every 0.5 s; the watch reads once per event."""
    ns = kit.namespace
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "100%", "maxUnavailable": 0}}
    await kit.create(kit.seed(replicas=2, strategy=strategy, pod_annotations={"kubesim.io/ready-delay": "3"}))
    seq = kit.audit_seq()
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "100%")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.COMPLETED)
    audit = kit.sim.audit(since=seq)
    watches = [e for e in _in_namespace(audit, ns, "replicasets") if e["verb"] == "watch"]
    assert watches, "the readiness wait opened no watch"
    for e in watches:
        q = parse_qs(e["query"])
        assert q["labelSelector"] == ["app=nginx"] and q["resourceVersion"][0].isdigit()
        assert 1 <= int(q["timeoutSeconds"][0]) <= 5
    # The Deployment is followed by the worker's one shared watcher (cluster-wide, label selector),
    # not by a watch of this rollout's own.
    assert [e for e in _in_namespace(audit, ns, "deployments") if e["verb"] == "watch"] == []
    shared = [e for e in audit if e["verb"] == "watch" and e["resource"] == "deployments"]
    selectors = {(e["namespace"], parse_qs(e["query"])["labelSelector"][0]) for e in shared}
    assert selectors <= {("", "rollouts.temporal.io/stable-revision")}
    # One wave of 3 s: polling every 0.5 s would GET both ReplicaSets at least 6 times each (>= 12).
    gets = [e for e in _in_namespace(audit, ns, "replicasets") if e["verb"] == "get"]
    assert len(gets) < 12, [e["name"] for e in gets]
    dep = kit.deployment()
    assert dep["spec"]["strategy"] == strategy and not dep["spec"].get("paused")
    assert kit.images() == {"nginx:1.27": (2, 2), "nginx:1.26": (0, 0)}


async def test_a_long_wait_resumes_its_watch_and_reads_only_the_deployment(
    kit: Any, rollout_worker: None
) -> None:
    """A readiness watch that runs its time (5 s) resumes from where it ended, after a fresh read of
    the Deployment only (a resize or template edit): no LIST of the namespace's ReplicaSets every 5 s."""
    ns = kit.namespace
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "100%", "maxUnavailable": 0}}
    slow = {"kubesim.io/ready-delay": "11"}
    await kit.create(kit.seed(replicas=2, strategy=strategy, pod_annotations=slow))
    seq = kit.audit_seq()
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "100%")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.COMPLETED, timeout=60)
    audit = kit.sim.audit(since=seq)  # the test's worker and CLI share one client
    replica_sets = _in_namespace(audit, ns, "replicasets")
    watches = [e for e in replica_sets if e["verb"] == "watch"]
    assert len(watches) >= 3, "an 11 s wave with 5 s watches"
    # `rollout start`, take_over and converge_step's first read list the ReplicaSets; the wait lists
    # nothing. Reading everything again is right only after an attempt the server retried (a heartbeat
    # missed on a loaded machine), a write that met another writer (409: the ReplicaSet controller's
    # status update as the pods turn ready) or a watch the server refused.
    attempts = await _activity_attempts(kit, "nginx")
    refused = [e for e in replica_sets if e["verb"] != "list" and e.get("code", 0) in (409, 410)]
    expected = 1 + attempts["take_over"] + attempts["converge_step"] + len(refused)
    lists = [e for e in replica_sets if e["verb"] == "list"]
    assert len(lists) == expected, (attempts, [(e["verb"], e.get("code")) for e in replica_sets])
    since = [int(parse_qs(e["query"])["resourceVersion"][0]) for e in watches]
    assert since == sorted(since)
    gets = [e for e in _in_namespace(audit, ns, "deployments") if e["verb"] == "get"]
    assert len(gets) >= len(watches) + 2  # start's and take_over's reads, then one before each resumed watch
    assert kit.images() == {"nginx:1.27": (2, 2), "nginx:1.26": (0, 0)}


async def test_approve_runs_the_whole_step_in_one_activity(kit: Any, rollout_worker: None) -> None:
    """After approve, one converge_step activity makes all of step 2's moves; then only the hand-back.

    (Per-move activities before: step_move, then scale_replica_set / wait_for_batch per move.)
    """
    from temporalio.api.enums.v1 import EventType
    from temporalio.contrib.pydantic import pydantic_data_converter

    from workflows.model import ConvergeResult, workflow_id_for

    await kit.create(kit.seed(replicas=4))
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,100%")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)
    rc, _, err = await kit.cli("approve", "nginx")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.COMPLETED)
    history = await kit.ctx.client.get_workflow_handle(
        workflow_id_for(kit.namespace, "nginx")
    ).fetch_history()
    events = list(history.events)
    # With a worker running, `rollout approve` is the approve_step update (its validator judges).
    accepted = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    signal = next(
        i
        for i, e in enumerate(events)
        if e.event_type == accepted
        and e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        == "approve_step"
    )
    scheduled = [e for e in events[signal:] if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    names = [e.activity_task_scheduled_event_attributes.activity_type.name for e in scheduled]
    # The last step is 100%: its converge already left canary = replicas, stable = 0, so finalize
    # needs no converge of its own.
    assert names == ["converge_step", "finalize"], names
    first = scheduled[0]
    done = next(
        e
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        and e.activity_task_completed_event_attributes.scheduled_event_id == first.event_id
    )
    (result,) = pydantic_data_converter.payload_converter.from_payloads(
        list(done.activity_task_completed_event_attributes.result.payloads), [ConvergeResult]
    )
    # Step 2 (100% of 4, maxSurge 1): canary 1 -> 4 and stable 3 -> 0 in several writes, one activity.
    assert result.outcome == "done" and result.writes >= 2
    assert (result.snapshot.canary.replicas, result.snapshot.stable.replicas) == (4, 0)
    assert result.snapshot.canary.ready_replicas == 4
    kit.assert_handed_back(kit.deployment(), "nginx:1.27")


async def _activity_attempts(kit: Any, name: str) -> dict[str, int]:
    """Attempts per activity type, from the history (its started event records the last attempt)."""
    from temporalio.api.enums.v1 import EventType

    from workflows.model import workflow_id_for

    history = await kit.ctx.client.get_workflow_handle(workflow_id_for(kit.namespace, name)).fetch_history()
    types = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    attempts: dict[str, int] = {}
    for e in history.events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = e.activity_task_started_event_attributes
            kind = types[started.scheduled_event_id]
            attempts[kind] = attempts.get(kind, 0) + started.attempt
    return attempts


def test_label_selector_renders_match_labels_and_expressions() -> None:
    from kube.objects import label_selector

    selector = {
        "matchLabels": {"tier": "web", "app": "nginx"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "canary"]},
            {"key": "zone", "operator": "NotIn", "values": ["b"]},
            {"key": "team", "operator": "Exists"},
            {"key": "legacy", "operator": "DoesNotExist"},
        ],
    }
    assert label_selector(selector) == "app=nginx,tier=web,env in (canary,prod),zone notin (b),team,!legacy"
    assert label_selector({}) is None and label_selector(None) is None
    # An operator we do not know never narrows a LIST on a guess.
    assert label_selector({"matchExpressions": [{"key": "k", "operator": "Gt", "values": ["1"]}]}) is None
