"""Security review F1, F2, F10, F11 (issue 27): each test reproduces an attack and shows it does no harm.

- F1: a raw ``temporal workflow start`` with a pod template is refused by the workflow before any write;
  one with a reference to a template nobody wrote is refused by the take-over; nothing is written.
- F2: ``shop``/``prod-web`` and ``shop-prod``/``web`` run under different workflow IDs; a legacy run
  under the shared old ID is found only for the target its input names.
- F10: a Deployment in another namespace carrying a victim's workflow ID in its annotation never
  reaches the victim's history.
- F11: a worker configured for other namespaces refuses to act (non-retryable, nothing written).
"""

from __future__ import annotations

import copy
import dataclasses
import uuid
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from cli.context import find_rollout
from kube.client import Kube
from kube.names import ANN_WORKFLOW_ID, LABEL_STABLE_REVISION
from kube.objects import template_hash
from tests.helpers.cluster import seed_deployment
from tests.helpers.poll import assert_holds
from workflows import errors
from workflows.model import WORKFLOW_TYPE, Phase, legacy_workflow_id, workflow_id_for

EVIL = {
    "metadata": {"labels": {"app": "nginx"}},
    "spec": {
        "hostPID": True,
        "containers": [
            {
                "name": "nginx",
                "image": "attacker.example/escape:latest",
                "securityContext": {"privileged": True},
            }
        ],
    },
}


def _raw_input(ns: str, name: str, **extra: Any) -> dict[str, Any]:
    """A workflow input as an attacker types it for `temporal workflow start --input-file`."""
    return {"namespace": ns, "name": name, "steps": [{"replicas": "100%"}], "requestedBy": "ci-bot", **extra}


async def _failure_type(kit: Any, wid: str, inp: dict[str, Any]) -> str:
    handle = await kit.ctx.client.start_workflow(WORKFLOW_TYPE, inp, id=wid, task_queue=kit.ctx.task_queue)
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError), cause
    return str(cause.type)


def _rs_names(kit: Any, ns: str) -> set[str]:
    return {rs["metadata"]["name"] for rs in kit.kube.list_replica_sets(ns)}


@pytest.mark.clusters
async def test_raw_start_with_a_template_is_refused_writes_nothing(kit: Any, rollout_worker: None) -> None:
    """Reproduction 1 of F1: only the Temporal address, a privileged template, another namespace."""
    ns, coredns = kit.namespace, f"coredns-{uuid.uuid4().hex[:6]}"
    await kit.create(seed_deployment("kube-system", name=coredns, replicas=1))
    await kit.create(kit.seed(replicas=2))
    before, rss, seq = kit.deployment(), _rs_names(kit, ns), kit.audit_seq()
    sys_before, sys_rss = kit.kube.get_deployment("kube-system", coredns), _rs_names(kit, "kube-system")
    for target_ns, name in ((ns, "nginx"), ("kube-system", coredns)):
        for wid in (workflow_id_for(target_ns, name), legacy_workflow_id(target_ns, name)):
            refused = await _failure_type(kit, wid, _raw_input(target_ns, name, template=EVIL))
            assert refused == errors.TEMPLATE_IN_INPUT
    sys_after = kit.kube.get_deployment("kube-system", coredns)
    assert sys_after["metadata"]["resourceVersion"] == sys_before["metadata"]["resourceVersion"]
    assert _rs_names(kit, "kube-system") == sys_rss
    assert [
        e
        for e in kit.sim.audit(since=seq)
        if e["namespace"] == "kube-system" and e["verb"] in ("create", "update", "patch", "delete")
    ] == []
    kit.kube.request("DELETE", Kube.deployment_path("kube-system", coredns))
    # A reference to a template nobody wrote: the take-over finds no hold and refuses.
    ref = _raw_input(ns, "nginx", templateHash=template_hash(EVIL))
    assert await _failure_type(kit, workflow_id_for(ns, "nginx"), ref) == errors.NOT_HELD
    # The ID must be the target's: a run named for another Deployment refuses.
    assert await _failure_type(kit, workflow_id_for("other", "nginx"), ref) == errors.WORKFLOW_ID_MISMATCH
    assert kit.writes_since(seq) == []
    after = kit.deployment()
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["spec"]["template"] == before["spec"]["template"]
    assert _rs_names(kit, ns) == rss


async def test_a_changed_template_after_the_start_is_refused(kit: Any, rollout_worker: None) -> None:
    """The worker rolls out only what the reference names: a held Deployment whose template was
    swapped before the take-over is refused, and no canary ReplicaSet of the swapped template appears."""
    ns = kit.namespace
    await kit.create(kit.seed(replicas=2))
    wid = workflow_id_for(ns, "nginx")
    dep = kit.deployment()
    stable = next(iter(_rs_names(kit, ns)))
    held = copy.deepcopy(dep)
    held["metadata"]["annotations"] = {ANN_WORKFLOW_ID: wid, "rollouts.temporal.io/original-strategy": "{}"}
    held["metadata"]["labels"][LABEL_STABLE_REVISION] = stable.rsplit("-", 1)[1]
    held["spec"].update(paused=True, strategy={"type": "Recreate"}, template=EVIL)
    kit.kube.put_deployment(held)
    reviewed = copy.deepcopy(EVIL)
    reviewed["spec"]["containers"][0]["image"] = "nginx:1.27"
    inp = _raw_input(ns, "nginx", templateHash=template_hash(reviewed))
    assert await _failure_type(kit, wid, inp) == errors.TEMPLATE_MISMATCH
    assert _rs_names(kit, ns) == {stable}


async def test_colliding_names_get_their_own_rollouts(kit: Any, rollout_worker: None) -> None:
    """F2: `<base>`/`prod-web` and `<base>-prod`/`web` shared `rollout-<base>-prod-web`; now each has its own
    ID, and approving or undoing one leaves the other where it was."""
    shop, shop_prod = kit.namespace, f"{kit.namespace}-prod"
    assert legacy_workflow_id(shop, "prod-web") == legacy_workflow_id(shop_prod, "web")
    assert workflow_id_for(shop, "prod-web") != workflow_id_for(shop_prod, "web")
    kit.kube.request("POST", "/api/v1/namespaces", {"metadata": {"name": shop_prod}})
    other = type(kit)(dataclasses.replace(kit.ctx, namespace=shop_prod), kit.sim, kit.api_client)
    await kit.create(seed_deployment(shop, name="prod-web", replicas=2))
    await other.create(seed_deployment(shop_prod, name="web", replicas=2))
    for k, name in ((kit, "prod-web"), (other, "web")):
        rc, _, err = await k.cli("start", name, "--image", "nginx=nginx:1.27", "--steps", "1,100%")
        assert rc == 0, err
    await kit.wait_phase("prod-web", Phase.PAUSED, 1)
    await other.wait_phase("web", Phase.PAUSED, 1)
    rc, _, err = await kit.cli("approve", "prod-web")
    assert rc == 0, err
    await kit.wait_phase("prod-web", Phase.COMPLETED)
    st = await other.status("web")
    assert (st.phase, st.current_step_index) == (Phase.PAUSED, 1)
    assert st.workflow_id == workflow_id_for(shop_prod, "web")
    rc, _, err = await other.cli("undo", "web")
    assert rc == 0, err
    await other.wait_phase("web", Phase.ROLLED_BACK)
    assert (await kit.status("prod-web")).phase == Phase.COMPLETED


async def test_a_legacy_run_is_found_only_for_its_own_target(kit: Any) -> None:
    """A run under the old, shared ID counts for the Deployment its input names, not for the other one."""
    shop, shop_prod = kit.namespace, f"{kit.namespace}-prod"
    legacy = legacy_workflow_id(shop_prod, "web")
    # An old run (input with a template, old ID) on a queue no worker polls: it stays Running, untouched.
    handle = await kit.ctx.client.start_workflow(
        WORKFLOW_TYPE,
        _raw_input(shop_prod, "web", template=EVIL),
        id=legacy,
        task_queue=f"unpolled-{uuid.uuid4().hex[:8]}",
    )
    try:
        found, desc = await find_rollout(kit.ctx.client, shop_prod, "web")
        assert (found.id, desc is not None) == (legacy, True)
        found, desc = await find_rollout(kit.ctx.client, shop, "prod-web")
        assert (found.id, desc) == (workflow_id_for(shop, "prod-web"), None)
        rc, _, err = await kit.cli("status", "prod-web")
        assert rc != 0 and "no rollout found" in err and err.count("\n") == 1
    finally:
        await handle.terminate("test over")


def _signals(events: list[Any]) -> int:
    return sum(
        1
        for e in events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        and e.workflow_execution_signaled_event_attributes.signal_name == "deployment_changed"
    )


async def test_watcher_ignores_a_forged_workflow_id_annotation(kit: Any, rollout_worker: None) -> None:
    """F10: a decoy in another namespace, labelled as held and annotated with the victim's workflow ID,
    is scaled again and again; the victim's history gets no signal. Then the victim's own scale does
    signal it (the watcher handles events in order, so the decoy's were handled before)."""
    ns, decoy_ns = kit.namespace, f"{kit.namespace}-b"
    kit.kube.request("POST", "/api/v1/namespaces", {"metadata": {"name": decoy_ns}})
    await kit.create(kit.seed(replicas=4))
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,100%")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)
    victim = kit.ctx.client.get_workflow_handle(workflow_id_for(ns, "nginx"))
    signals = _signals((await victim.fetch_history()).events)
    decoy = seed_deployment(decoy_ns, name="decoy", replicas=1)
    decoy["metadata"]["labels"][LABEL_STABLE_REVISION] = "x"
    decoy["metadata"]["annotations"] = {ANN_WORKFLOW_ID: workflow_id_for(ns, "nginx")}
    decoy["spec"]["paused"] = True
    Kube(kit.api_client).request("POST", Kube.deployment_path(decoy_ns), decoy)
    for replicas in range(2, 7):
        kit.kube.request(
            "PATCH",
            Kube.deployment_path(decoy_ns, "decoy"),
            {"spec": {"replicas": replicas}},
            content_type="application/merge-patch+json",
        )

    async def no_signal() -> bool:
        return _signals((await victim.fetch_history()).events) == signals

    await assert_holds(no_signal, seconds=2, message="no signal from the decoy")
    kit.kube.request(
        "PATCH",
        Kube.deployment_path(ns, "nginx"),
        {"spec": {"replicas": 5}},
        content_type="application/merge-patch+json",
    )

    async def own_signal() -> bool:
        return _signals((await victim.fetch_history()).events) > signals

    await kit.eventually(own_signal, timeout=30, message="the victim's own change signalled")
    st = await kit.wait_phase("nginx", Phase.PAUSED, 1)
    assert st.replicas == 5


async def test_worker_refuses_namespaces_outside_its_scope(kit: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """F11: a worker for other namespaces takes no part in this one: the take-over fails at once with
    NamespaceNotAllowed and the worker writes nothing (the only write is the caller's hold)."""
    from worker import build_worker

    ctx = dataclasses.replace(kit.ctx, task_queue=f"scoped-{uuid.uuid4().hex[:8]}")
    scoped = type(kit)(ctx, kit.sim, kit.api_client)
    await kit.create(kit.seed(replicas=2))
    rss = _rs_names(kit, kit.namespace)
    monkeypatch.setenv("ROLLOUT_WATCH_NAMESPACES", "somewhere-else,kube-system")
    async with build_worker(ctx.client, kit.api_client, ctx.task_queue):
        seq = kit.audit_seq()
        rc, _, err = await scoped.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,100%")
        assert rc == 0, err
        st = await scoped.wait_phase("nginx", Phase.FAILED)
    assert "outside this worker's scope" in st.message
    writes = kit.writes_since(seq)
    assert [(w["verb"], w["resource"]) for w in writes] == [("update", "deployments")]  # the CLI's hold
    assert _rs_names(kit, kit.namespace) == rss


# --- F1 on the real control plane: the caller's own credentials write the template -----------------


async def _cli_as(kit: Any, api_client: Any, *argv: str) -> tuple[int, str, str]:
    """``rollout`` in-process with another user's Kubernetes client (the test's Temporal and queue)."""
    import io

    import starter

    out, err = io.StringIO(), io.StringIO()
    rc = await starter.run(
        [*argv, "--task-queue", kit.ctx.task_queue],
        client=kit.ctx.client,
        api_client=api_client,
        out=out,
        err=err,
    )
    return rc, out.getvalue(), err.getvalue()


def _real_writes(kit: Any, namespace: str, seq: int) -> list[dict[str, Any]]:
    return [
        e
        for e in kit.sim.audit(since=seq)
        if e["verb"] in ("create", "update", "patch", "delete")
        and e["namespace"] == namespace
        and e["code"] < 400
    ]


@pytest.mark.parametrize("cluster", ["real"], indirect=True, scope="session")
async def test_start_without_update_rights_is_refused_by_kubernetes(kit: Any, rollout_worker: None) -> None:
    """Reproduction 2 of F1 with real RBAC: a user who may only read Deployments (in kube-system, and in
    their own namespace) runs `rollout start`; the API server refuses the write, the CLI prints one line
    and exits non-zero, no workflow starts and nothing is written. The same user with update rights
    starts the rollout, and the worker carries it on."""
    from tests.helpers.rbac import READ_WORKLOADS, UPDATE_DEPLOYMENTS, limited_user

    ns, suffix = kit.namespace, uuid.uuid4().hex[:6]
    sys_dep = seed_deployment("kube-system", name=f"metrics-{suffix}", replicas=1)
    await kit.create(sys_dep)
    await kit.create(kit.seed(replicas=2))
    reader = limited_user(
        kit.api_client, kit.sim.kubeconfig, sa_namespace=ns, name="reader", rules=READ_WORKLOADS
    )
    sys_reader = limited_user(
        kit.api_client,
        kit.sim.kubeconfig,
        sa_namespace=ns,
        name="sys-reader",
        rules=READ_WORKLOADS,
        role_namespace="kube-system",
    )
    try:
        for api, target_ns, name in ((sys_reader, "kube-system", f"metrics-{suffix}"), (reader, ns, "nginx")):
            before = kit.kube.get_deployment(target_ns, name)
            seq = kit.audit_seq()
            rc, out, err = await _cli_as(
                kit, api, "start", name, "-n", target_ns, "--image", "nginx=evil:1", "--steps", "1,100%"
            )
            assert rc != 0 and out == "", (rc, out, err)
            assert err.count("\n") == 1, err
            assert f"Kubernetes refused to update deployment {target_ns}/{name} (403)" in err
            assert "forbidden" in err
            _, desc = await find_rollout(kit.ctx.client, target_ns, name)
            assert desc is None  # nothing started
            assert _real_writes(kit, target_ns, seq) == []
            after = kit.kube.get_deployment(target_ns, name)
            assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        deployer = limited_user(
            kit.api_client, kit.sim.kubeconfig, sa_namespace=ns, name="deployer", rules=UPDATE_DEPLOYMENTS
        )
        try:
            rc, _, err = await _cli_as(
                kit, deployer, "start", "nginx", "-n", ns, "--image", "nginx=nginx:1.27", "--steps", "1,100%"
            )
            assert rc == 0, err
            st = await kit.wait_phase("nginx", Phase.PAUSED, 1, timeout=90)
            assert (st.canary_replicas, st.stable_replicas) == (1, 1)
        finally:
            deployer.close()
    finally:
        reader.close()
        sys_reader.close()
        kit.kube.request("DELETE", Kube.deployment_path("kube-system", f"metrics-{suffix}"))


async def test_a_start_that_cannot_reach_temporal_puts_the_deployment_back(kit: Any) -> None:
    """The caller's held write happens before the workflow starts; when the start fails the Deployment
    is put back as it was (not left paused under a rollout that does not exist)."""
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter

    await kit.create(kit.seed(replicas=2))
    before = kit.deployment()
    nowhere = Client(
        kit.ctx.client.service_client,
        namespace=f"missing-{uuid.uuid4().hex[:6]}",
        data_converter=pydantic_data_converter,
    )
    other = type(kit)(dataclasses.replace(kit.ctx, client=nowhere), kit.sim, kit.api_client)
    rc, _, err = await other.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,100%")
    assert rc != 0 and err.count("\n") == 1, err
    after = kit.deployment()
    for key in ("labels", "annotations"):
        assert (after["metadata"].get(key) or {}) == (before["metadata"].get(key) or {})
    assert {k: after["spec"].get(k) for k in ("template", "paused", "strategy")} == {
        k: before["spec"].get(k) for k in ("template", "paused", "strategy")
    }
