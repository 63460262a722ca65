"""Argo CD's health check for ``rollouts.kruise.io/Rollout`` reads our Rollout status as it reads Kruise's.

The check is Argo CD's own ``resource_customizations/rollouts.kruise.io/Rollout/health.lua`` from the Go
module ``github.com/argoproj/argo-cd/v3`` at the version in tools/argocd/VERSION (``make argocd``), run in
Lua 5.1 as Argo CD runs it (tests/helpers/argocd.py). First its own table (``health_test.yaml``) checks the
harness; then real declarative releases on kubesim and on the real control plane are sampled all along,
and at each stage the check must say what it says for Kruise's status at that stage. Kruise's statuses
are learned from openkruise/rollouts at commit 9dd6279dff3549d10a26c33e9f5a537320d29d2d
(``pkg/controller/rollout``: ``calculateRolloutStatus``, ``reconcileRolloutProgressing``,
``handleRollbackDirectly``, ``handleRolloutPaused``, ``reconcileRolloutDisabling``):

- before any release: ``Healthy`` with the synthetic completed ``canaryStatus`` -> Healthy;
- a step whose pods move: ``Progressing`` / ``StepUpgrade`` -> Progressing; paused for approval:
  ``StepPaused`` -> Suspended; ``spec.strategy.paused`` changes only the condition (reason ``Paused``),
  so a held upgrading step stays Progressing;
- the release done: ``Healthy`` / ``Completed`` -> Healthy;
- rolled back (template set back): the canary status keeps the step state it stopped at while the phase
  goes ``Healthy`` -> Progressing ("Rollout is still progressing");
- disabled at a paused step: finalising keeps ``StepPaused`` and the phase ends ``Disabled`` -> Degraded;
  enabled again: ``Healthy`` with ``StepPaused`` -> Progressing.

The same scenarios check Kruise's counts and bookkeeping: ``canaryReplicas`` counts a canary pod that
exists but is not ready (``canaryReadyReplicas`` the ready ones), and the held Deployment carries
``deployment-strategy``'s partition of the current step and ``deployment-extra-status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch

from kube.client import Kube, rollout_path
from tests.helpers.argocd import Health, HealthCheck, check_dir
from tests.helpers.declarative import SEED_ROLLOUT, approve, deployment, kc, seed_deployment
from tests.helpers.kubectl import Kubectl
from tests.helpers.poll import assert_eventually

REPLICAS = 4
NAME = "rollouts-nginx"
HEALTHY = Health("Healthy", "Rollout is Completed")
PROGRESSING = Health("Progressing", "Rollout is still progressing")
SUSPENDED = Health("Suspended", "Rollout is Paused need manual intervention")
DEGRADED = Health("Degraded", "Rollout is Disabled or Terminating")
STRATEGY = "rollouts.kruise.io/deployment-strategy"
EXTRA = "rollouts.kruise.io/deployment-extra-status"
NEVER_READY = "kubesim.io/never-ready"


@pytest.fixture(scope="module")
def check() -> HealthCheck:
    return HealthCheck(check_dir())


def test_health_lua_own_cases(check: HealthCheck) -> None:
    """The check's own table (health_test.yaml with its testdata) through this harness, unchanged."""
    cases = check.own_cases()
    assert len(cases) == 4
    for path, obj, want in cases:
        assert check(obj) == want, path


def test_health_lua_error_is_seen(check: HealthCheck) -> None:
    """A status without ``canaryStatus`` is a script error (Argo CD: Unknown): the harness reports it, so
    the scenarios below would catch such a status."""
    got = check({"metadata": {"generation": 1}, "status": {"observedGeneration": 1, "phase": "Healthy"}})
    assert got.status == "Unknown"
    assert "canaryStatus" in got.error


# -- scenarios -----------------------------------------------------------------------------------------


class Sampler:
    """Reads the Rollout all along a scenario (every resourceVersion seen) and evaluates the check."""

    def __init__(self, kube: Kube, namespace: str, check: HealthCheck) -> None:
        self.kube, self.namespace, self.check = kube, namespace, check
        self.seen: dict[str, tuple[dict[str, Any], Health]] = {}
        self.watched = 0  # versions the watch delivered (the reads of ``at`` come on top)

    def read(self) -> dict[str, Any]:
        try:
            obj: dict[str, Any] = self.kube.request("GET", rollout_path(self.namespace, NAME))
        except k8s.ApiException as exc:
            if exc.status == 404:
                return {}
            raise
        self.record(obj)
        return obj

    def record(self, obj: dict[str, Any]) -> None:
        rv = obj["metadata"]["resourceVersion"]
        if rv not in self.seen and obj.get("status"):
            self.seen[rv] = (obj, self.check(obj))

    def watch(self, stop: threading.Event) -> None:
        """Every version of the Rollout the API server sends on a watch (re-opened when it ends)."""
        api = k8s.CustomObjectsApi(self.kube.api_client)
        while not stop.is_set():
            stream = k8s_watch.Watch().stream(
                api.list_namespaced_custom_object,
                "rollouts.kruise.io",
                "v1beta1",
                self.namespace,
                "rollouts",
                field_selector=f"metadata.name={NAME}",
                timeout_seconds=5,
            )
            for event in stream:
                if isinstance(event.get("object"), dict) and event.get("type") in ("ADDED", "MODIFIED"):
                    self.watched += 1
                    self.record(event["object"])
                if stop.is_set():
                    break

    def errors(self) -> list[tuple[str, str]]:
        return [(rv, h.error) for rv, (_, h) in self.seen.items() if h.error]

    async def at(self, stage: Callable[[dict[str, Any]], bool], want: Health, what: str) -> dict[str, Any]:
        """Wait until the Rollout is at ``stage`` with its generation observed; the check says ``want``."""

        async def reached() -> dict[str, Any] | None:
            obj = await asyncio.to_thread(self.read)
            st = obj.get("status") or {}
            settled = st.get("observedGeneration") == obj.get("metadata", {}).get("generation")
            return obj if settled and stage(obj) else None

        obj: dict[str, Any] = await assert_eventually(reached, timeout=90, message=what)
        assert self.check(obj) == want, (what, obj["status"])
        return obj


@contextlib.asynccontextmanager
async def sampling(api_client: k8s.ApiClient, kubectl: Kubectl, check: HealthCheck) -> AsyncIterator[Sampler]:
    sampler = Sampler(Kube(api_client), kubectl.namespace, check)
    stop = threading.Event()
    watcher = threading.Thread(target=sampler.watch, args=(stop,), daemon=True)
    watcher.start()
    try:
        yield sampler
    finally:
        stop.set()
        await asyncio.to_thread(watcher.join, 10)
    assert sampler.watched > 0, "the watch delivered no version of the Rollout"
    assert sampler.errors() == []


def canary(obj: dict[str, Any]) -> dict[str, Any]:
    return dict((obj.get("status") or {}).get("canaryStatus") or {})


def step_is(index: int, state: str, phase: str = "Progressing") -> Callable[[dict[str, Any]], bool]:
    def ok(obj: dict[str, Any]) -> bool:
        c = canary(obj)
        return (obj["status"].get("phase"), c.get("currentStepIndex"), c.get("currentStepState")) == (
            phase,
            index,
            state,
        )

    return ok


def phase_is(phase: str, step_state: str | None = None) -> Callable[[dict[str, Any]], bool]:
    def ok(obj: dict[str, Any]) -> bool:
        state_ok = step_state is None or canary(obj).get("currentStepState") == step_state
        return obj["status"].get("phase") == phase and state_ok

    return ok


def condition(reason: str) -> Callable[[dict[str, Any]], bool]:
    def ok(obj: dict[str, Any]) -> bool:
        conds = obj["status"].get("conditions") or []
        return any(c.get("type") == "Progressing" and c.get("reason") == reason for c in conds)

    return ok


async def seed(kubectl: Kubectl, sampler: Sampler) -> None:
    await asyncio.to_thread(kubectl.apply, seed_deployment(replicas=REPLICAS))
    await asyncio.to_thread(kubectl.wait_available)
    await kc(kubectl, "apply", "-f", "-", stdin=SEED_ROLLOUT)
    await sampler.at(phase_is("Healthy", "Completed"), HEALTHY, "Healthy before any release")

    async def labelled() -> bool:
        labels = (await deployment(kubectl))["metadata"].get("labels") or {}
        return "rollouts.kruise.io/workload-type" in labels

    await assert_eventually(labelled, timeout=30, message="Deployment labelled for the webhook")


async def patch_rollout(kubectl: Kubectl, spec: dict[str, Any]) -> None:
    await kc(kubectl, "patch", "rollout", NAME, "--type=merge", "-p", json.dumps({"spec": spec}))


async def bookkeeping(kubectl: Kubectl, partition: int | str, extra: dict[str, int]) -> None:
    """Kruise's annotations on the held Deployment: the step's partition, the extra status."""

    async def current() -> bool:
        ann = (await deployment(kubectl))["metadata"].get("annotations") or {}
        strategy = json.loads(ann.get(STRATEGY) or "{}")
        return strategy.get("partition") == partition and json.loads(ann.get(EXTRA) or "null") == extra

    await assert_eventually(current, timeout=30, message=f"partition {partition}, extra status {extra}")


async def no_kruise_bookkeeping(kubectl: Kubectl) -> None:
    async def gone() -> bool:
        ann = (await deployment(kubectl))["metadata"].get("annotations") or {}
        return STRATEGY not in ann and EXTRA not in ann

    await assert_eventually(gone, timeout=30, message="Kruise's bookkeeping gone with the hand-back")


@pytest.mark.clusters
async def test_release_stages(
    kubectl: Kubectl, stack: Any, api_client: k8s.ApiClient, check: HealthCheck
) -> None:
    """A declarative release of the seed (steps 1, 50%, 100%): Healthy, Suspended at each paused step,
    Healthy when done; never an error, never Degraded."""
    async with sampling(api_client, kubectl, check) as sampler:
        await seed(kubectl, sampler)
        await kc(kubectl, "set", "image", "deployment/nginx", "nginx=nginx:1.27")
        # The last step (100%) does not pause, in Kruise as here: its approval completes the release.
        for step, (partition, ready) in enumerate([(1, 1), ("50%", 2)], start=1):
            obj = await sampler.at(step_is(step, "StepPaused"), SUSPENDED, f"step {step} paused")
            assert (canary(obj)["canaryReplicas"], canary(obj)["canaryReadyReplicas"]) == (ready, ready)
            await bookkeeping(
                kubectl, partition, {"updatedReadyReplicas": ready, "expectedUpdatedReplicas": ready}
            )
            await approve(kubectl)
        await sampler.at(phase_is("Healthy", "Completed"), HEALTHY, "the release completed")
        await no_kruise_bookkeeping(kubectl)
    said = {h.status for _, h in sampler.seen.values()}
    assert said <= {"Healthy", "Progressing", "Suspended"}, said
    assert all(
        obj["status"]["phase"] == "Healthy" for obj, h in sampler.seen.values() if h.status == "Healthy"
    )


@pytest.mark.clusters
async def test_unready_canary_pause_and_rollback(
    kubectl: Kubectl, stack: Any, api_client: k8s.ApiClient, check: HealthCheck
) -> None:
    """A canary pod that never turns ready: ``canaryReplicas`` 1, ``canaryReadyReplicas`` 0, step 1
    upgrading (Progressing); held by ``spec.strategy.paused`` it stays Progressing (Kruise changes only
    the condition); set back to the stable template it is rolled back, and the step state it stopped
    at stays beside phase Healthy (Progressing, as for Kruise)."""
    async with sampling(api_client, kubectl, check) as sampler:
        await seed(kubectl, sampler)
        release = [
            {"op": "add", "path": "/spec/template/metadata/annotations", "value": {NEVER_READY: "true"}},
            {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:1.27"},
        ]
        await kc(kubectl, "patch", "deployment", "nginx", "--type=json", "-p", json.dumps(release))

        def unready_canary(obj: dict[str, Any]) -> bool:
            c = canary(obj)
            return step_is(1, "StepUpgrade")(obj) and (
                c.get("canaryReplicas"),
                c.get("canaryReadyReplicas"),
            ) == (1, 0)

        await sampler.at(unready_canary, PROGRESSING, "step 1 upgrading with 1 canary pod, not ready")
        await bookkeeping(kubectl, 1, {"expectedUpdatedReplicas": 1})

        await patch_rollout(kubectl, {"strategy": {"paused": True}})
        held = await sampler.at(condition("Paused"), PROGRESSING, "held by spec.strategy.paused")
        assert canary(held)["currentStepState"] == "StepUpgrade"

        back = [
            {"op": "remove", "path": "/spec/template/metadata/annotations"},
            {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:1.26"},
        ]
        await kc(kubectl, "patch", "deployment", "nginx", "--type=json", "-p", json.dumps(back))
        done = await sampler.at(condition("Completed"), PROGRESSING, "rolled back")
        assert done["status"]["phase"] == "Healthy"
        assert canary(done)["currentStepState"] == "StepUpgrade"
        assert (canary(done)["canaryReplicas"], canary(done)["canaryReadyReplicas"]) == (0, 0)
        await no_kruise_bookkeeping(kubectl)


@pytest.mark.clusters
async def test_disable_at_paused_step(
    kubectl: Kubectl, stack: Any, api_client: k8s.ApiClient, check: HealthCheck
) -> None:
    """Disabled at step 1 (paused): the release finishes, the status keeps ``StepPaused`` and ends
    ``Disabled`` (Degraded, as for Kruise); enabled again: Healthy with ``StepPaused`` (Progressing)."""
    async with sampling(api_client, kubectl, check) as sampler:
        await seed(kubectl, sampler)
        await kc(kubectl, "set", "image", "deployment/nginx", "nginx=nginx:1.27")
        await sampler.at(step_is(1, "StepPaused"), SUSPENDED, "step 1 paused")
        await patch_rollout(kubectl, {"disabled": True})
        off = await sampler.at(phase_is("Disabled"), DEGRADED, "disabled")
        assert (canary(off)["currentStepIndex"], canary(off)["currentStepState"]) == (1, "StepPaused")
        await no_kruise_bookkeeping(kubectl)
        await patch_rollout(kubectl, {"disabled": False})
        await sampler.at(phase_is("Healthy", "StepPaused"), PROGRESSING, "enabled again")
    said = {h.status for _, h in sampler.seen.values()}
    assert "Healthy" in said and "Degraded" in said
