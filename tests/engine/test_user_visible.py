"""Behaviour a user would notice, each guarding a bug that the other tests let through (issue 16).

- a stale ``approve`` (step 1 while paused at step 2, as the UI's "Send a Signal" may send it)
  changes nothing: the same step stays paused, no write;
- a non-default strategy (maxSurge 1 / maxUnavailable 0) is handed back exactly as it was after
  completion, undo and automatic rollback (the defaults 25%/25% would hide a dropped strategy,
  because the API server fills them in);
- undo order at every watch sample: stable grows before the canary shrinks, and the Deployment is
  handed back only after the ReplicaSets reached their final sizes.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from workflows.model import ApproveSignal, Phase, Reason, StepState, workflow_id_for

STRICT = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
NEVER_READY = {"kubesim.io/never-ready": "true"}


async def signal_handled(kit: Any, handle: WorkflowHandle[Any, Any], name: str) -> None:
    """Wait until the workflow finished a workflow task after the last ``name`` signal in its history.

    Whatever the workflow does in reaction to the signal is decided in that task, so the status read
    afterwards shows it (no sleep: the history is the synchronisation point).
    """

    async def done() -> bool:
        signalled = None
        async for ev in handle.fetch_history_events():
            if (
                ev.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
                and ev.workflow_execution_signaled_event_attributes.signal_name == name
            ):
                signalled = ev.event_id
            elif (
                signalled is not None
                and ev.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
                and ev.event_id > signalled
            ):
                return True
        return False

    await kit.eventually(done, timeout=30, interval=0.05, message=f"{name} signal handled")


# --- a stale approve ----------------------------------------------------------------------------------


async def test_stale_approve_for_step_1_while_paused_at_step_2_changes_nothing(
    kit: Any, rollout_worker: None
) -> None:
    await kit.create(kit.seed(replicas=4))
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,50%,100%")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)
    rc, _, err = await kit.cli("approve", "nginx", "--step", "1")
    assert rc == 0, err
    before = await kit.wait_phase("nginx", Phase.PAUSED, 2)
    assert kit.images() == {"nginx:1.27": (2, 2), "nginx:1.26": (2, 2)}
    seq = kit.audit_seq()

    handle = kit.ctx.client.get_workflow_handle(workflow_id_for(kit.namespace, "nginx"))
    await handle.signal("approve", ApproveSignal(step=1, by="stale-tab"))
    await signal_handled(kit, handle, "approve")

    st = await kit.status("nginx")
    assert (st.phase, st.current_step_index, st.step_state) == (Phase.PAUSED, 2, StepState.STEP_PAUSED)
    assert [a.step for a in st.approvals] == [a.step for a in before.approvals] == [1]
    assert kit.images() == {"nginx:1.27": (2, 2), "nginx:1.26": (2, 2)}
    assert kit.writes_since(seq) == []
    # The right approval still works afterwards.
    rc, _, err = await kit.cli("approve", "nginx", "--step", "2")
    assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.COMPLETED)
    assert [a.step for a in st.approvals] == [1, 2]


# --- a non-default strategy is handed back exactly -----------------------------------------------------


def _assert_strict_bounds(sampler: Any, replicas: int) -> None:
    """maxSurge 1 / maxUnavailable 0 at every sample (the first canary pod may not exceed it either)."""
    assert sampler.error is None, sampler.error
    assert len(sampler.samples) > 3, "the watch saw the rollout"
    bad = [s for s in sampler.samples if s[0] > replicas + 1 or s[1] < replicas]
    assert bad == [], bad[:5]


async def test_strategy_restored_exactly_after_completion(kit: Any, rollout_worker: None) -> None:
    await kit.create(kit.seed(replicas=4, strategy=STRICT))
    with kit.sampler() as sampler:
        rc, _, err = await kit.cli(
            "start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,100%", "--pause-duration", "0"
        )
        assert rc == 0, err
        await kit.wait_phase("nginx", Phase.COMPLETED)
    dep = kit.deployment()
    assert dep["spec"]["strategy"] == STRICT
    assert not dep["spec"].get("paused")
    assert kit.images() == {"nginx:1.27": (4, 4), "nginx:1.26": (0, 0)}
    _assert_strict_bounds(sampler, 4)


async def test_strategy_restored_exactly_after_undo(kit: Any, rollout_worker: None) -> None:
    await kit.create(kit.seed(replicas=4, strategy=STRICT))
    with kit.sampler() as sampler:
        rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,100%")
        assert rc == 0, err
        await kit.wait_phase("nginx", Phase.PAUSED, 1)
        assert kit.deployment()["spec"]["strategy"]["type"] == "Recreate"  # parked while we hold it
        rc, _, err = await kit.cli("undo", "nginx")
        assert rc == 0, err
        await kit.wait_phase("nginx", Phase.ROLLED_BACK)
    dep = kit.deployment()
    assert dep["spec"]["strategy"] == STRICT
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    assert kit.images() == {"nginx:1.27": (0, 0), "nginx:1.26": (4, 4)}
    _assert_strict_bounds(sampler, 4)


async def test_strategy_restored_exactly_after_auto_rollback(
    kit: Any, rollout_worker: None, tmp_path: Path
) -> None:
    await kit.create(kit.seed(replicas=4, strategy=STRICT))
    path = tmp_path / "deployment.yaml"
    path.write_text(
        yaml.safe_dump(kit.seed(replicas=4, image="nginx:1.27", pod_annotations=NEVER_READY, strategy=STRICT))
    )
    rc, _, err = await kit.cli(
        "start", "-f", str(path), "--steps", "1,100%", "--progress-deadline", "2", "--auto-rollback"
    )
    assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.ROLLED_BACK, timeout=40)
    why = Reason.DEADLINE.format(rs=f"nginx-{st.canary_revision}", ready=0, target=1, s=2)
    assert Reason.AUTO_ROLLBACK.format(why=why) in st.message
    dep = kit.deployment()
    assert dep["spec"]["strategy"] == STRICT
    assert kit.images() == {"nginx:1.27": (0, 0), "nginx:1.26": (4, 4)}


# --- undo order at every watch sample ------------------------------------------------------------------


class OrderedSampler:
    """Watches the namespace's Deployments and ReplicaSets; ``samples()`` replays both in one order.

    kubesim (like etcd) has one resourceVersion sequence over all kinds, so merging the two watch
    streams by resourceVersion gives the order in which the API server applied the writes. Each
    sample is the state right after one event: ``(deployment, {rs name: (image, spec, ready)})``.
    """

    def __init__(self, api: k8s.ApiClient, namespace: str) -> None:
        self.apps = k8s.AppsV1Api(api)
        self.namespace = namespace
        self.events: list[tuple[int, str, dict[str, Any]]] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(kind,), daemon=True) for kind in ("deployment", "rs")
        ]
        self._lock = threading.Lock()

    def __enter__(self) -> OrderedSampler:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)

    def _run(self, kind: str) -> None:
        fn = (
            self.apps.list_namespaced_deployment
            if kind == "deployment"
            else self.apps.list_namespaced_replica_set
        )
        rv: str | None = None
        try:
            while not self._stop.is_set():
                kwargs: dict[str, Any] = {"timeout_seconds": 1}
                if rv:
                    kwargs["resource_version"] = rv
                for event in k8s_watch.Watch().stream(fn, self.namespace, **kwargs):
                    if event["type"] == "BOOKMARK":
                        continue
                    obj = event["object"]
                    rv = obj.metadata.resource_version
                    summary = {
                        "type": event["type"],
                        "name": obj.metadata.name,
                        "paused": bool(getattr(obj.spec, "paused", False)),
                        "annotations": dict(obj.metadata.annotations or {}),
                        "image": obj.spec.template.spec.containers[0].image,
                        "spec": int(obj.spec.replicas or 0),
                        "ready": int((obj.status.ready_replicas if obj.status else 0) or 0),
                    }
                    with self._lock:
                        self.events.append((int(rv), kind, summary))
                    if self._stop.is_set():
                        break
        except BaseException as exc:  # noqa: BLE001 - surfaced by the test
            self.errors.append(exc)

    def samples(self, after_rv: int = 0) -> list[tuple[int, dict[str, Any], dict[str, tuple[str, int, int]]]]:
        """``(resourceVersion, deployment summary, {rs: (image, spec, ready)})`` after each event."""
        with self._lock:
            events = sorted(self.events, key=lambda e: e[0])
        dep: dict[str, Any] = {}
        rss: dict[str, tuple[str, int, int]] = {}
        out = []
        seen: set[tuple[int, str]] = set()
        for rv, kind, s in events:
            if (rv, kind) in seen:  # a re-listed object after a watch restart
                continue
            seen.add((rv, kind))
            if kind == "deployment":
                dep = s
            elif s["type"] == "DELETED":
                rss.pop(s["name"], None)
            else:
                rss[s["name"]] = (s["image"], s["spec"], s["ready"])
            if rv > after_rv:
                out.append((rv, dict(dep), dict(rss)))
        return out


def _side(rss: dict[str, tuple[str, int, int]], image: str) -> tuple[int, int]:
    found = [(spec, ready) for img, spec, ready in rss.values() if img == image]
    assert len(found) == 1, rss
    return found[0]


def _handed_back(dep: dict[str, Any]) -> bool:
    return not dep["paused"] and not any(k.startswith("rollouts.temporal.io/") for k in dep["annotations"])


async def test_undo_order_at_every_watch_sample(kit: Any, rollout_worker: None) -> None:
    """Undo at step 2 (5/5 of 10): stable grows first, the canary shrinks after, then the hand-back."""
    await kit.create(kit.seed(replicas=10))
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,50%,100%")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)
    rc, _, err = await kit.cli("approve", "nginx")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 2)
    assert kit.images() == {"nginx:1.27": (5, 5), "nginx:1.26": (5, 5)}
    start_rv = int(kit.deployment()["metadata"]["resourceVersion"])
    with OrderedSampler(kit.api_client, kit.namespace) as sampler:
        rc, _, err = await kit.cli("undo", "nginx")
        assert rc == 0, err
        await kit.wait_phase("nginx", Phase.ROLLED_BACK)

        def settled() -> bool:
            samples = sampler.samples(start_rv)
            return bool(samples) and _handed_back(samples[-1][1])

        await kit.eventually(settled, timeout=20, interval=0.05, message="the watch saw the hand-back")
    assert sampler.errors == []
    samples = [s for s in sampler.samples(start_rv) if s[1] and len(s[2]) == 2]
    assert len(samples) > 5, "the watch saw the undo"

    # Stable grows before the canary shrinks: every canary decrease comes after stable grew past 5.
    prev_canary = 5
    stable_grew = False
    for rv, _, rss in samples:
        canary, stable = _side(rss, "nginx:1.27"), _side(rss, "nginx:1.26")
        stable_grew = stable_grew or stable[0] > 5
        if canary[0] < prev_canary:
            assert stable_grew, f"canary shrank to {canary[0]} before stable grew (rv {rv}): {rss}"
        prev_canary = canary[0]
        assert canary[0] + stable[0] <= 13 and canary[1] + stable[1] >= 8, rss
    assert stable_grew and prev_canary == 0

    # The hand-back comes after scaling: whenever the Deployment is handed back, the ReplicaSets are final.
    handed = [(rv, rss) for rv, dep, rss in samples if _handed_back(dep)]
    assert handed, "the hand-back was observed"
    for rv, rss in handed:
        assert _side(rss, "nginx:1.27")[0] == 0 and _side(rss, "nginx:1.26")[0] == 10, (rv, rss)
    assert kit.images() == {"nginx:1.27": (0, 0), "nginx:1.26": (10, 10)}
