"""Least privilege with traffic routing: no grant is exempt.

``test_security.py`` checks a traffic-less scenario and exempts the traffic grants. Here the worker
(a separate process, the kubernetes client's default User-Agent in the audit log) also runs traffic
rollouts: Service + nginx Ingress to completion over two weights, and Service + HTTPRoute undone
while paused. Every (apiGroup, resource, verb) it used must be granted by ``deploy/rbac.yaml`` and
``deploy/rbac-namespaced.yaml``, and every grant must have been used: no allowlist.
"""

from __future__ import annotations

from typing import Any

from cli import commands
from cli.commands import StartOptions
from tests.durability.test_security import _grants, _used
from tests.helpers.durability import FAST, REPO, WORKER_UA_PREFIX, Dur, WorkerLauncher
from tests.helpers.traffic import make_ingress, make_route, make_service
from workflows.model import Phase, UndoSignal


async def _start(dur: Dur, name: str, steps: str, **routing: Any) -> None:
    await commands.start(
        dur.ctx,
        StartOptions(
            name=name,
            images=["nginx=nginx:1.27"],
            steps=steps,
            requested_by="durability-tests",
            timings=FAST,
            grace_period=0,
            **routing,
        ),
    )


async def test_traffic_rollouts_use_exactly_the_granted_rbac(
    dur: Dur, launcher: WorkerLauncher, no_faults: Any
) -> None:
    ns = dur.namespace
    await dur.create_seed("web", replicas=4)
    await dur.create_seed("api", replicas=4)
    make_service(dur.api, ns, "web", {"app": "web"})
    make_ingress(dur.api, ns, "web", "web")
    make_service(dur.api, ns, "api", {"app": "api"})
    make_route(dur.api, ns, "api", "api")
    seq0 = dur.audit_seq()
    # As installed with rbac-namespaced.yaml: the shared Deployment watcher confined to the namespace
    # (with rbac.yaml it lists and watches Deployments cluster-wide instead, same verbs).
    await launcher.start(dur.task_queue, {"ROLLOUT_WATCH_NAMESPACES": ns})

    # web: Service + Ingress, weight 20% then 50%, then complete (the canary objects are deleted).
    await _start(dur, "web", "1:20%,50%:50%,100%", service="web", ingress="web")
    # api: Service + HTTPRoute, undone while paused at step 1 (routes back, canary Service deleted).
    await _start(dur, "api", "1:20%,100%", service="api", httproute="api")
    await dur.wait_paused(1, "api")
    await dur.handle("api").signal("undo", UndoSignal(by="durability-tests", reason="rbac traffic"))
    assert (await dur.handle("api").result()).phase == Phase.ROLLED_BACK
    web = await dur.drive("web")
    assert web.phase == Phase.COMPLETED, web.message

    worker_entries = [e for e in dur.sim.audit(since=seq0) if e["userAgent"].startswith(WORKER_UA_PREFIX)]
    assert worker_entries, "the worker's requests are in the audit log"
    assert {e["namespace"] for e in worker_entries} == {ns}
    used = _used(worker_entries)
    traffic_used = {g for g in used if g[1] in ("services", "ingresses", "httproutes")}
    assert traffic_used, "the traffic rollouts went through the worker"
    print("\nRBAC used by the worker (traffic):", sorted(used))
    for path, kind in (("rbac.yaml", "ClusterRole"), ("rbac-namespaced.yaml", "Role")):
        granted = _grants(REPO / "deploy" / path, kind)
        assert sorted(used - granted) == [], f"{path}: used but not granted"
        assert sorted(granted - used) == [], f"{path}: granted but never used (least privilege)"
