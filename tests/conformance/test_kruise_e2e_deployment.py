"""openkruise/rollouts' e2e cases for a partition-style Deployment, ported (``test/e2e/
rollout_v1beta1_test.go``, "Canary rollout with Ingress using advance deployment", at openkruise/rollouts
commit 9dd6279dff3549d10a26c33e9f5a537320d29d2d), on kubesim and on the real control plane.

Upstream's inputs: the Rollout (steps 20% with traffic 20% and no trafficRoutings, 60%, 100% with a
0 s pause) is created before the ``echoserver`` Deployment (5 replicas, maxSurge 1, maxUnavailable 0);
a release is a change of the env ``NODE_NAME``; approval is the status patch ``ResumeRollout`` sends.
Upstream's expectations, with the same numbers; the plan-change and ``nextStepIndex`` cases come from
the same file ("advanced deployment plan changed case", "V1->V2: Deployment, Partition, patch
nextStepIndex to jump"). Upstream's ``rolloutHash`` checks are not ported (the field is not written).
One of upstream's checks reads what we do differently (docs/declarative.md, "Where we differ from
Kruise"): after a delete the release finishes through our engine (the same end state: the new template
on every pod, RollingUpdate, unpaused) before the Rollout goes.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.helpers.declarative import APPROVE, kc
from tests.helpers.kubectl import Kubectl
from tests.helpers.poll import assert_eventually

pytestmark = pytest.mark.clusters

ROLLOUT = """apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata:
  name: rollouts-demo
spec:
  workloadRef:
    apiVersion: apps/v1
    kind: Deployment
    name: echoserver
  strategy:
    canary:
      enableExtraWorkloadForCanary: false
      steps:
      - traffic: 20%
        replicas: 20%
        pause: {}
      - replicas: 60%
        pause: {}
      - replicas: 100%
        pause: {duration: 0}
"""


def echoserver(version: str = "version1") -> dict[str, Any]:
    """Upstream's test_data/rollout/deployment.yaml (its env reduced to what the fake kubelet needs)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "echoserver", "labels": {"app": "echoserver"}},
        "spec": {
            "replicas": 5,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "selector": {"matchLabels": {"app": "echoserver"}},
            "template": {
                "metadata": {"labels": {"app": "echoserver"}},
                "spec": {
                    "containers": [
                        {
                            "name": "echoserver",
                            "image": "cilium/echoserver:latest",
                            "imagePullPolicy": "IfNotPresent",
                            "ports": [{"containerPort": 8080}],
                            "env": [
                                {"name": "PORT", "value": "8080"},
                                {"name": "NODE_NAME", "value": version},
                            ],
                        }
                    ]
                },
            },
        },
    }


async def get(kubectl: Kubectl, kind: str, name: str) -> dict[str, Any]:
    out = await kc(kubectl, "get", kind, name, "-o", "json", "--ignore-not-found")
    return json.loads(out) if out.strip() else {}  # type: ignore[no-any-return]


async def rollout(kubectl: Kubectl) -> dict[str, Any]:
    return await get(kubectl, "rollout", "rollouts-demo")


async def workload(kubectl: Kubectl) -> dict[str, Any]:
    return await get(kubectl, "deployment", "echoserver")


async def create(kubectl: Kubectl) -> None:
    """Rollout first, then the workload; wait for all pods ready and the Rollout Healthy."""
    await kc(kubectl, "apply", "-f", "-", stdin=ROLLOUT)
    await asyncio.to_thread(kubectl.apply, echoserver())
    await wait_all_pods_ready(kubectl)

    async def healthy() -> bool:
        return ((await rollout(kubectl)).get("status") or {}).get("phase") == "Healthy"

    await assert_eventually(healthy, timeout=30, message="Rollout Healthy")
    # Kruise's status before any release (what Argo CD's health check and PaaS scripts read).
    obj = await rollout(kubectl)
    st, dep = obj["status"], await workload(kubectl)
    assert st["observedGeneration"] == obj["metadata"]["generation"]
    assert st["message"] == "workload deployment is completed"
    canary = st["canaryStatus"]
    assert (canary["currentStepIndex"], canary["currentStepState"]) == (3, "Completed")
    assert st["canaryStatus"]["observedWorkloadGeneration"] == dep["metadata"]["generation"]


async def wait_all_pods_ready(kubectl: Kubectl, version: str | None = None) -> None:
    """Upstream's WaitDeploymentAllPodsReady (and, given, every pod on ``version``)."""

    async def ready() -> bool:
        dep = await workload(kubectl)
        st, want = dep.get("status") or {}, dep["spec"]["replicas"]
        env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
        return (
            st.get("observedGeneration") == dep["metadata"]["generation"]
            and st.get("updatedReplicas") == want == st.get("readyReplicas") == st.get("replicas")
            and (version is None or env["NODE_NAME"] == version)
        )

    await assert_eventually(ready, timeout=90, message="all pods ready")


async def update_env(kubectl: Kubectl, version: str) -> None:
    await kc(kubectl, "set", "env", "deployment/echoserver", f"NODE_NAME={version}")


async def wait_step_paused(kubectl: Kubectl, step: int) -> dict[str, Any]:
    """Upstream's WaitRolloutStepPaused."""

    async def paused() -> dict[str, Any] | None:
        canary = ((await rollout(kubectl)).get("status") or {}).get("canaryStatus") or {}
        ok = canary.get("currentStepIndex") == step and canary.get("currentStepState") == "StepPaused"
        return canary if ok else None

    result: dict[str, Any] = await assert_eventually(paused, timeout=90, message=f"step {step} paused")
    return result


async def resume(kubectl: Kubectl) -> None:
    """Upstream's ResumeRollout: the status patch kubectl-kruise rollout approve sends."""
    await kc(
        kubectl, "patch", "rollout", "rollouts-demo", "--subresource=status", "--type=merge", "-p", APPROVE
    )


async def check_step(kubectl: Kubectl, updated: int) -> None:
    """The workload's updatedReplicas, Kruise's strategy annotation (``paused`` false) and its extra
    status (``updatedReadyReplicas``) at a step."""

    async def at_step() -> bool:
        dep = await workload(kubectl)
        return (dep.get("status") or {}).get("updatedReplicas") == updated

    await assert_eventually(at_step, timeout=30, message=f"updatedReplicas {updated}")

    # The extra status counts ready pods and follows the run's status writes and the controller's
    # passes, so it may trail updatedReplicas by a pod becoming ready (as in Kruise, where upstream's
    # check also follows a wait).
    async def extra_status() -> bool:
        ann = (await workload(kubectl))["metadata"]["annotations"]
        extra = json.loads(ann.get("rollouts.kruise.io/deployment-extra-status") or "{}")
        return bool(extra.get("updatedReadyReplicas") == updated)

    await assert_eventually(
        extra_status, timeout=30, message=f"deployment-extra-status updatedReadyReplicas {updated}"
    )
    ann = (await workload(kubectl))["metadata"]["annotations"]
    assert json.loads(ann["rollouts.kruise.io/deployment-strategy"])["paused"] is False


async def check_stable_revision(kubectl: Kubectl, canary: dict[str, Any]) -> None:
    """canaryStatus.stableRevision is the stable ReplicaSet's hash, as the workload's Kruise label says."""
    labels = (await workload(kubectl))["metadata"]["labels"]
    assert canary["stableRevision"] == labels["rollouts.kruise.io/stable-revision"]


async def test_advanced_deployment_rollback_case(kubectl: Kubectl, stack: Any) -> None:
    await create(kubectl)
    await update_env(kubectl, "version2")
    await check_stable_revision(kubectl, await wait_step_paused(kubectl, 1))
    await check_step(kubectl, 1)
    await resume(kubectl)
    await wait_step_paused(kubectl, 2)
    await check_step(kubectl, 3)
    await update_env(kubectl, "version1")

    async def healthy_back() -> bool:
        st = (await rollout(kubectl)).get("status") or {}
        return st.get("phase") == "Healthy" and any(
            c["type"] == "Succeeded" and c["status"] == "False" for c in st.get("conditions") or []
        )

    await assert_eventually(healthy_back, timeout=90, message="Rollout Healthy after the rollback")
    await wait_all_pods_ready(kubectl, "version1")
    st = (await rollout(kubectl))["status"]
    assert next(c for c in st["conditions"] if c["type"] == "Progressing")["message"] == (
        "Rollout progressing has been canceled"
    )
    assert st["canaryStatus"]["currentStepState"] != "Completed"


async def test_advanced_deployment_delete_rollout_case(kubectl: Kubectl, stack: Any) -> None:
    await create(kubectl)
    await update_env(kubectl, "version2")
    await check_stable_revision(kubectl, await wait_step_paused(kubectl, 1))
    await check_step(kubectl, 1)
    await kc(kubectl, "delete", "rollout", "rollouts-demo", "--wait=false")

    async def not_found() -> bool:
        return not await rollout(kubectl)

    await assert_eventually(not_found, timeout=90, message="Rollout not found")
    dep = await workload(kubectl)
    assert dep["spec"]["strategy"]["type"] == "RollingUpdate"
    assert not dep["spec"].get("paused")
    await wait_all_pods_ready(kubectl, "version2")
    dep = await workload(kubectl)
    kruise_marks = [
        k
        for k in {**dep["metadata"].get("labels", {}), **dep["metadata"].get("annotations", {})}
        if k.startswith("rollouts.")
    ]
    assert kruise_marks == []


async def test_advanced_deployment_scaling_case(kubectl: Kubectl, stack: Any) -> None:
    await create(kubectl)
    await update_env(kubectl, "version2")
    await check_stable_revision(kubectl, await wait_step_paused(kubectl, 1))
    await check_step(kubectl, 1)

    async def canary_ready(n: int) -> bool:
        return ((await rollout(kubectl)).get("status") or {}).get("canaryStatus", {}).get(
            "canaryReadyReplicas"
        ) == n

    await kc(kubectl, "scale", "deployment/echoserver", "--replicas=10")
    await assert_eventually(lambda: canary_ready(2), timeout=90, message="canaryReadyReplicas 2 (10)")
    await kc(kubectl, "scale", "deployment/echoserver", "--replicas=5")
    await assert_eventually(lambda: canary_ready(1), timeout=90, message="canaryReadyReplicas 1 (5)")
    await resume(kubectl)
    await wait_step_paused(kubectl, 2)
    await resume(kubectl)
    await wait_all_pods_ready(kubectl, "version2")

    async def completed() -> bool:
        st = (await rollout(kubectl)).get("status") or {}
        return st.get("phase") == "Healthy" and st["canaryStatus"]["currentStepState"] == "Completed"

    await assert_eventually(completed, timeout=30, message="Rollout Healthy and Completed")
    # Scaled after the release: the observed generations follow (no stale "progressing" reading).
    await kc(kubectl, "scale", "deployment/echoserver", "--replicas=6")

    async def observed() -> bool:
        obj, dep = await rollout(kubectl), await workload(kubectl)
        st = obj.get("status") or {}
        return (
            st.get("observedGeneration") == obj["metadata"]["generation"]
            and st["canaryStatus"].get("observedWorkloadGeneration") == dep["metadata"]["generation"]
        )

    await assert_eventually(observed, timeout=30, message="observed generations follow a scale")


async def test_advanced_deployment_continuous_rolling_case(kubectl: Kubectl, stack: Any) -> None:
    await create(kubectl)
    await update_env(kubectl, "version2")
    await check_stable_revision(kubectl, await wait_step_paused(kubectl, 1))
    await check_step(kubectl, 1)
    await resume(kubectl)
    await wait_step_paused(kubectl, 2)
    await check_step(kubectl, 3)
    await update_env(kubectl, "version3")

    async def back_at_step_1() -> dict[str, Any] | None:
        canary = ((await rollout(kubectl)).get("status") or {}).get("canaryStatus") or {}
        dep = await workload(kubectl)
        env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
        ok = (
            canary.get("currentStepIndex") == 1
            and canary.get("currentStepState") == "StepPaused"
            and env["NODE_NAME"] == "version3"
            and (dep.get("status") or {}).get("updatedReplicas") == 1
        )
        return canary if ok else None

    canary = await assert_eventually(back_at_step_1, timeout=90, message="v3 at step 1")
    await check_stable_revision(kubectl, canary)
    await check_step(kubectl, 1)
    await resume(kubectl)
    await wait_step_paused(kubectl, 2)
    await check_step(kubectl, 3)


async def test_advanced_deployment_plan_changed_case(kubectl: Kubectl, stack: Any) -> None:
    """Upstream's single-step plan (20%) changed to 60% at step 1: the webhook accepts the edit (the
    number of steps is unchanged), the release recalculates its step (step 1 again) and goes to the
    new step's 3 updated pods, paused at step 1; approval completes it (Progressing Completed,
    Succeeded True, observedWorkloadGeneration caught up)."""
    single = ROLLOUT.split("      steps:\n")[0] + "      steps:\n      - replicas: 20%\n        pause: {}\n"
    await kc(kubectl, "apply", "-f", "-", stdin=single)
    await asyncio.to_thread(kubectl.apply, echoserver())
    await wait_all_pods_ready(kubectl)
    await update_env(kubectl, "version2")
    await check_stable_revision(kubectl, await wait_step_paused(kubectl, 1))
    await check_step(kubectl, 1)
    await kc(kubectl, "apply", "-f", "-", stdin=single.replace("replicas: 20%", "replicas: 60%"))
    assert (await rollout(kubectl))["spec"]["strategy"]["canary"]["steps"][0]["replicas"] == "60%"
    await check_step(kubectl, 3)
    await wait_step_paused(kubectl, 1)
    ready = json.loads(
        (await workload(kubectl))["metadata"]["annotations"]["rollouts.kruise.io/deployment-strategy"]
    )
    assert ready["paused"] is False
    await resume(kubectl)
    await wait_all_pods_ready(kubectl, "version2")

    async def succeeded() -> dict[str, Any] | None:
        obj = await rollout(kubectl)
        st = obj.get("status") or {}
        conds = {c["type"]: c for c in st.get("conditions") or []}
        progressing, done = conds.get("Progressing", {}), conds.get("Succeeded", {})
        ok = (
            st.get("phase") == "Healthy"
            and progressing.get("reason") == "Completed"
            and progressing.get("status") == "False"
            and done.get("status") == "True"
        )
        return obj if ok else None

    await assert_eventually(succeeded, timeout=60, message="Progressing Completed, Succeeded True")
    assert ((await workload(kubectl)).get("status") or {}).get("updatedReplicas") == 5

    async def workload_generation() -> bool:  # upstream's WaitRolloutWorkloadGeneration
        obj, dep = await rollout(kubectl), await workload(kubectl)
        canary = (obj.get("status") or {}).get("canaryStatus") or {}
        return bool(canary.get("observedWorkloadGeneration") == dep["metadata"]["generation"])

    await assert_eventually(workload_generation, timeout=30, message="observedWorkloadGeneration caught up")


async def test_deployment_partition_patch_next_step_index_to_jump(kubectl: Kubectl, stack: Any) -> None:
    """Upstream's "V1->V2: Deployment, Partition, patch nextStepIndex to jump" (``rollout_v1beta1_test.go``,
    same commit), on ``rollout_v1beta1_partition_base.yaml``'s steps (20% with traffic 20%, 40%, 60%,
    80% with 10 s pauses, 100%) without its ingress routing (the traffic checks are not ported; without
    ``trafficRoutings`` the step's traffic is ignored, as in Kruise). Walk to step 4, then jump to 3
    (the canary keeps its 4 pods), edit step 3 (replicas 3, traffic 60%: the same step runs again),
    jump to 2 and to 1 (still 4 pods), jump to 5: the release completes, ``nextStepIndex`` -1."""
    steps = (
        "      - traffic: 20%\n        replicas: 20%\n        pause: {}\n"
        + "".join(f"      - replicas: {p}%\n        pause: {{duration: 10}}\n" for p in (40, 60, 80))
        + "      - replicas: 100%\n        pause: {duration: 0}\n"
    )
    manifest = ROLLOUT.split("      steps:\n")[0] + "      steps:\n" + steps
    await kc(kubectl, "apply", "-f", "-", stdin=manifest)
    await asyncio.to_thread(kubectl.apply, echoserver())
    await wait_all_pods_ready(kubectl)
    assert len(await stack_replica_sets(kubectl)) == 1
    await update_env(kubectl, "version2")
    for step in (1, 2, 3, 4):
        if step > 1:
            await resume(kubectl)
        canary = await wait_step_paused(kubectl, step)
        await check_stable_revision(kubectl, canary)
        await check_step(kubectl, step)
        await check_canary(kubectl, step, step + 1)

    for target in (3, 2, 1):
        await jump(kubectl, target)
        await wait_step_paused(kubectl, target)
        await check_step(kubectl, 4)  # won't scale down
        await check_canary(kubectl, target, target + 1)
        if target == 3:  # Change traffic of current step, which shouldn't cause jump
            edited = manifest.replace(
                "      - replicas: 60%\n        pause: {duration: 10}\n",
                "      - traffic: 60%\n        replicas: 3\n        pause: {duration: 10}\n",
            )
            await kc(kubectl, "apply", "-f", "-", stdin=edited)
            await wait_step_paused(kubectl, 3)
            await check_step(kubectl, 4)
            await check_canary(kubectl, 3, 4)

    # not a step of the plan: nothing moves, and the next status write sets nextStepIndex back to 2
    await kc(
        kubectl,
        "patch",
        "rollout",
        "rollouts-demo",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"canaryStatus": {"nextStepIndex": 9}}}),
    )

    async def corrected() -> bool:
        canary = ((await rollout(kubectl)).get("status") or {}).get("canaryStatus") or {}
        return (canary.get("currentStepIndex"), canary.get("nextStepIndex")) == (1, 2)

    await assert_eventually(corrected, timeout=30, message="nextStepIndex 9 corrected to 2")
    await check_step(kubectl, 4)
    await jump(kubectl, 5)

    async def healthy() -> dict[str, Any] | None:
        st = (await rollout(kubectl)).get("status") or {}
        conds = {c["type"]: c for c in st.get("conditions") or []}
        ok = (
            st.get("phase") == "Healthy"
            and conds.get("Progressing", {}).get("reason") == "Completed"
            and conds.get("Progressing", {}).get("status") == "False"
            and conds.get("Succeeded", {}).get("status") == "True"
        )
        return st if ok else None

    st = await assert_eventually(healthy, timeout=90, message="Rollout Healthy after the jump to step 5")
    assert st["canaryStatus"]["nextStepIndex"] == -1
    await wait_all_pods_ready(kubectl, "version2")
    assert not (await workload(kubectl))["spec"].get("paused")


async def stack_replica_sets(kubectl: Kubectl) -> list[dict[str, Any]]:
    out = await kc(kubectl, "get", "rs", "-l", "app=echoserver", "-o", "json")
    return list(json.loads(out)["items"])


async def check_canary(kubectl: Kubectl, current: int, following: int) -> None:
    """canaryStatus at a paused step: current and next step, podTemplateHash the canary ReplicaSet's."""
    canary = (await rollout(kubectl))["status"]["canaryStatus"]
    assert (canary["currentStepIndex"], canary["nextStepIndex"]) == (current, following)
    hashes = {rs["metadata"]["labels"]["pod-template-hash"] for rs in await stack_replica_sets(kubectl)}
    assert canary["podTemplateHash"] in hashes and canary["podTemplateHash"] != canary["stableRevision"]


async def jump(kubectl: Kubectl, target: int) -> None:
    """Upstream's JumpRolloutStep: patch ``nextStepIndex`` while the step is paused, until it is not."""
    body = json.dumps({"status": {"canaryStatus": {"nextStepIndex": target}}})

    async def jumped() -> bool:
        canary = ((await rollout(kubectl)).get("status") or {}).get("canaryStatus") or {}
        if canary.get("currentStepState") != "StepPaused" or canary.get("currentStepIndex") == target:
            return True
        await kc(
            kubectl, "patch", "rollout", "rollouts-demo", "--subresource=status", "--type=merge", "-p", body
        )
        return False

    await assert_eventually(jumped, timeout=30, message=f"jumped to step {target}")
