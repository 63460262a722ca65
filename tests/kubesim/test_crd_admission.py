"""kubesim: CustomResourceDefinitions and mutating admission webhooks (AdmissionReview v1 over HTTPS)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from kubernetes.client.exceptions import ApiException

from declarative.certs import make_serving_cert, server_context
from kube.client import Kube
from kubesim.testing import KubeSimProcess, api_client_for, start_kubesim
from tests.helpers.kubectl import Kubectl

CRD = Path(__file__).resolve().parents[2] / "deploy" / "declarative" / "crd-rollouts.yaml"
ROLLOUTS = "/apis/rollouts.kruise.io/v1beta1/namespaces/default/rollouts"
MWC = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"


@pytest.fixture(scope="module")
def own_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeSimProcess]:
    proc = start_kubesim(tmp_path_factory.mktemp("crd-kubesim"), ready_delay=0.1)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def kube(own_sim: KubeSimProcess) -> Iterator[Kube]:
    api = api_client_for(own_sim.kubeconfig)
    try:
        yield Kube(api)
    finally:
        api.close()


@pytest.fixture(scope="module")
def k(own_sim: KubeSimProcess, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    kubectl = Kubectl(
        own_sim, tmp_path_factory.mktemp("crd-kubectl"), "default", tmp_path_factory.mktemp("crd-home")
    )
    kubectl.run("apply", "-f", str(CRD))
    return kubectl


def message(exc: ApiException) -> str:
    return str(json.loads(exc.body)["message"])


def rollout(name: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "nginx"},
        "strategy": {
            "canary": {
                "steps": [{"replicas": 1}],
                "trafficRoutings": [{"service": "nginx", "ingress": {"name": "nginx"}}],
            }
        },
    }
    body.update(spec)
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": body,
    }


def test_crd_serves_discovery_crud_defaults_and_pruning(k: Kubectl, kube: Kube) -> None:
    assert "rollouts.kruise.io/v1beta1" in k.out("api-versions")
    resources = k.out("api-resources", "--api-group=rollouts.kruise.io")
    assert "rollouts" in resources and "Rollout" in resources
    crd = k.json("get", "crd", "rollouts.rollouts.kruise.io")
    assert {c["type"]: c["status"] for c in crd["status"]["conditions"]}["Established"] == "True"

    created = kube.request(
        "POST", ROLLOUTS, {**rollout("a"), "extra": 1}, query={"fieldValidation": "Ignore"}
    )
    assert "extra" not in created  # pruned (not in the schema)
    assert created["spec"]["disabled"] is False  # schema default
    assert created["spec"]["strategy"]["canary"]["trafficRoutings"][0]["gracePeriodSeconds"] == 3
    assert created["metadata"]["generation"] == 1
    with pytest.raises(ApiException) as err:
        kube.request("POST", ROLLOUTS, rollout("b", bogus=True), query={"fieldValidation": "Strict"})
    assert err.value.status == 400 and 'unknown field "spec.bogus"' in message(err.value)

    # status subresource: the main resource ignores status, /status ignores spec
    created["status"] = {"phase": "Ignored"}
    created["spec"]["disabled"] = True
    updated = kube.request("PUT", f"{ROLLOUTS}/a", created)
    assert "status" not in updated and updated["metadata"]["generation"] == 2
    updated["status"] = {
        "phase": "Progressing",
        "currentStepIndex": 1,
        "currentStepState": "StepPaused",
        "message": "hello",
    }
    updated["spec"]["disabled"] = False
    with_status = kube.request("PUT", f"{ROLLOUTS}/a/status", updated)
    assert with_status["spec"]["disabled"] is True and with_status["status"]["phase"] == "Progressing"
    assert with_status["metadata"]["generation"] == 2

    # Table columns from additionalPrinterColumns
    lines = k.out("get", "rollout").splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "CANARY_STEP", "CANARY_STATE", "MESSAGE", "AGE"]
    assert lines[1].split()[:5] == ["a", "Progressing", "1", "StepPaused", "hello"]

    # a merge patch of the status subresource (what kubectl-kruise rollout approve sends)
    k.run(
        "patch",
        "rollout",
        "a",
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"canaryStatus":{"currentStepState":"StepReady"}}}',
    )
    assert k.json("get", "rollout", "a")["status"]["canaryStatus"] == {"currentStepState": "StepReady"}


def test_deleting_the_crd_stops_serving_it(k: Kubectl, kube: Kube, tmp_path: Path) -> None:
    other = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }
    kube.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", other)
    kube.request(
        "POST",
        "/apis/example.com/v1/namespaces/default/widgets",
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "size": 3},
    )
    assert kube.request("GET", "/apis/example.com/v1/namespaces/default/widgets/w")["size"] == 3
    lines = k.out("get", "widgets").splitlines()
    assert lines[0].split() == ["NAME", "AGE"] and lines[1].split()[0] == "w"
    kube.request("DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")
    with pytest.raises(ApiException) as err:
        kube.request("GET", "/apis/example.com/v1/namespaces/default/widgets/w")
    assert err.value.status == 404


class Hook:
    """An HTTPS admission webhook in a thread: it labels, denies or hangs, as the test says."""

    def __init__(self, mode: str = "label") -> None:
        self.mode = mode
        self.reviews: list[dict[str, Any]] = []
        self.cert = make_serving_cert(["127.0.0.1"])
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._release: asyncio.Event | None = None  # a hanging review answers once stop() sets it
        threading.Thread(target=self._run, daemon=True).start()
        assert self._ready.wait(10)

    async def _handle(self, request: web.Request) -> web.Response:
        review = await request.json()
        self.reviews.append(review)
        uid = review["request"]["uid"]
        if self.mode == "hang" and self._release is not None:
            with contextlib.suppress(TimeoutError):  # past any webhook timeout the tests configure
                await asyncio.wait_for(self._release.wait(), 5)
        if self.mode == "deny":
            return web.json_response(
                {
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "response": {
                        "uid": uid,
                        "allowed": False,
                        "status": {"code": 403, "message": "not today"},
                    },
                }
            )
        ops = [{"op": "add", "path": "/metadata/labels/mutated", "value": "yes"}]
        return web.json_response(
            {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {
                    "uid": uid,
                    "allowed": True,
                    "patchType": "JSONPatch",
                    "patch": base64.b64encode(json.dumps(ops).encode()).decode(),
                },
            }
        )

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            self._release = asyncio.Event()
            app = web.Application()
            app.router.add_post("/mutate", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(
                self._runner,
                "127.0.0.1",
                0,
                ssl_context=server_context(self.cert.cert_pem, self.cert.key_pem),
            )
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()

    def stop(self) -> None:
        async def cleanup() -> None:
            if self._release is not None:
                self._release.set()
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    def config(self, policy: str = "Fail", timeout: int = 2, ca: bytes | None = None) -> dict[str, Any]:
        return {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "test-hook"},
            "webhooks": [
                {
                    "name": "test.example.com",
                    "admissionReviewVersions": ["v1"],
                    "sideEffects": "None",
                    "failurePolicy": policy,
                    "timeoutSeconds": timeout,
                    "clientConfig": {
                        "url": f"https://127.0.0.1:{self.port}/mutate",
                        "caBundle": base64.b64encode(ca or self.cert.ca_pem).decode(),
                    },
                    "objectSelector": {"matchLabels": {"hooked": "yes"}},
                    "rules": [
                        {
                            "operations": ["CREATE", "UPDATE"],
                            "apiGroups": ["rollouts.kruise.io"],
                            "apiVersions": ["*"],
                            "resources": ["rollouts"],
                        }
                    ],
                }
            ],
        }


ROLLOUTS_HOOKED = ROLLOUTS


def hooked_rollout(name: str, hooked: bool = True) -> dict[str, Any]:
    obj = rollout(name)
    obj["metadata"]["labels"] = {"hooked": "yes"} if hooked else {"other": "x"}
    return obj


def with_config(kube: Kube, config: dict[str, Any]) -> None:
    try:
        kube.request("DELETE", f"{MWC}/test-hook")
    except ApiException:
        pass
    kube.request("POST", MWC, config)


def test_webhook_patches_denies_and_fails_by_policy(k: Kubectl, kube: Kube) -> None:
    hook = Hook()
    try:
        with_config(kube, hook.config())
        obj = kube.request("POST", ROLLOUTS_HOOKED, hooked_rollout("m1"))
        assert obj["metadata"]["labels"]["mutated"] == "yes"
        review = hook.reviews[-1]
        assert review["apiVersion"] == "admission.k8s.io/v1" and review["request"]["operation"] == "CREATE"
        gvk = {"group": "rollouts.kruise.io", "version": "v1beta1", "kind": "Rollout"}
        assert review["request"]["kind"] == gvk
        unlabelled = kube.request("POST", ROLLOUTS_HOOKED, hooked_rollout("m2", hooked=False))
        assert "mutated" not in unlabelled["metadata"]["labels"]  # objectSelector
        assert len(hook.reviews) == 1

        hook.mode = "deny"
        with pytest.raises(ApiException) as err:
            kube.request("POST", ROLLOUTS_HOOKED, hooked_rollout("m3"))
        assert err.value.status == 403
        assert 'admission webhook "test.example.com" denied the request: not today' in message(err.value)

        hook.mode = "hang"  # timeoutSeconds 1: Fail refuses, Ignore lets it through unpatched
        with_config(kube, hook.config(timeout=1))
        with pytest.raises(ApiException) as err:
            kube.request("POST", ROLLOUTS_HOOKED, hooked_rollout("m4"))
        assert err.value.status == 500 and "context deadline exceeded" in message(err.value)
        with_config(kube, hook.config(policy="Ignore", timeout=1))
        ok = kube.request("POST", ROLLOUTS_HOOKED, hooked_rollout("m5"))
        assert "mutated" not in ok["metadata"]["labels"]

        hook.mode = "label"  # a caBundle that does not sign the server: TLS fails, Fail refuses
        with_config(kube, hook.config(ca=make_serving_cert(["127.0.0.1"]).ca_pem))
        with pytest.raises(ApiException) as err:
            kube.request("POST", ROLLOUTS_HOOKED, hooked_rollout("m6"))
        assert err.value.status == 500 and 'failed calling webhook "test.example.com"' in message(err.value)
    finally:
        hook.stop()
        kube.request("DELETE", f"{MWC}/test-hook")
    with pytest.raises(ApiException):  # down and configuration gone: the write is not called out
        kube.request("GET", f"{MWC}/test-hook")
    kube.request("POST", ROLLOUTS_HOOKED, hooked_rollout("m7"))


VWC = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"


def test_validating_webhook_sees_the_mutated_object_and_denies(k: Kubectl, kube: Kube) -> None:
    """Validating webhooks run after the mutating ones, on the final object: a denial refuses the write
    with the webhook's code and message and no reason of its own (the apiserver passes none); an
    allowing answer's patch is not applied; UPDATE carries the old object."""
    mutating, validating = Hook(), Hook()
    try:
        with_config(kube, mutating.config())
        config = validating.config()
        config["kind"] = "ValidatingWebhookConfiguration"
        kube.request("POST", VWC, config)
        obj = kube.request("POST", ROLLOUTS_HOOKED, hooked_rollout("v1"))
        assert obj["metadata"]["labels"]["mutated"] == "yes"  # the mutating hook's patch only
        seen = validating.reviews[-1]["request"]
        assert seen["operation"] == "CREATE" and seen["object"]["metadata"]["labels"]["mutated"] == "yes"
        obj["spec"]["disabled"] = True
        kube.request("PUT", f"{ROLLOUTS_HOOKED}/v1", obj)
        seen = validating.reviews[-1]["request"]
        assert seen["operation"] == "UPDATE" and seen["oldObject"]["spec"]["disabled"] is False

        validating.mode = "deny"
        with pytest.raises(ApiException) as err:
            kube.request("POST", ROLLOUTS_HOOKED, hooked_rollout("v2"))
        assert err.value.status == 403
        status = json.loads(err.value.body)
        assert status["message"] == 'admission webhook "test.example.com" denied the request: not today'
        assert "reason" not in status
        proc = k.run("apply", "-f", "-", stdin=json.dumps(hooked_rollout("v3")), check=False)
        assert proc.returncode == 1
        assert (
            'Error from server: error when creating "STDIN": admission webhook "test.example.com" '
            "denied the request: not today"
        ) in proc.stderr
        with pytest.raises(ApiException):
            kube.request("GET", f"{ROLLOUTS_HOOKED}/v2")
    finally:
        mutating.stop()
        validating.stop()
        kube.request("DELETE", f"{MWC}/test-hook")
        kube.request("DELETE", f"{VWC}/test-hook")
