"""The Helm chart (charts/temporal-rollouts) with a real helm (`make helm`, built from helm.sh/helm/v4).

- ``helm lint`` on the default values and with the controller on;
- ``helm template``: the rendered objects (RBAC namespaced by default and cluster-wide only when asked,
  Secrets referenced and never inlined, the controller optional), checked against ``deploy/`` so the
  chart and the plain manifests cannot drift apart;
- ``helm install`` into the real control plane (RBAC enforced), then a two-batch rollout started with the
  ``rollout`` CLI and run by a ``rollout-worker`` process that authenticates as the chart's
  ServiceAccount (a TokenRequest token) with the chart's ConfigMap as its environment; then
  ``helm upgrade`` and ``helm uninstall``.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException
from temporalio.testing import WorkflowEnvironment

from kube.client import Kube
from kubesim.testing import api_client_for
from realk8s.testing import RealK8sProcess
from tests.helpers.cluster import create_deployment, images_counts, seed_deployment
from tests.helpers.durability import WorkerProcess
from tests.helpers.poll import assert_eventually

Obj = dict[str, Any]

REPO = Path(__file__).resolve().parents[2]
HELM = REPO / "tools" / "bin" / "helm"
CHART = REPO / "charts" / "temporal-rollouts"
DEPLOY = REPO / "deploy"
BIN = Path(sys.executable).parent
KUBECTL = str(BIN / "kubectl")
RELEASE = "temporal-rollouts"  # object names: temporal-rollouts-worker, -controller, -temporal


@pytest.fixture(scope="module")
def helm_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """helm's config, cache and data directories in a temporary place (nothing written to $HOME)."""
    if not HELM.exists():
        raise AssertionError(f"{HELM} is not built: run `make helm` (needs Go >= 1.26)")
    home = tmp_path_factory.mktemp("helm-home")
    return {f"HELM_{k}_HOME": str(home / k.lower()) for k in ("CONFIG", "CACHE", "DATA")}


def helm(env: dict[str, str], *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HELM), *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **env}
    )


def render(env: dict[str, str], *sets: str, namespace: str = "rollout-system") -> list[Obj]:
    """``helm template`` with ``--set`` values; the rendered objects."""
    argv = ["template", RELEASE, str(CHART), "-n", namespace]
    for s in sets:
        argv += ["--set", s]
    proc = helm(env, *argv)
    assert proc.returncode == 0, proc.stderr
    return [o for o in yaml.safe_load_all(proc.stdout) if o]


def of_kind(objs: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind]


def one(objs: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = [o for o in of_kind(objs, kind) if name is None or o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name or ''}: {[o['metadata']['name'] for o in found]}"
    return found[0]


def deploy_objects(*files: str) -> list[Obj]:
    return [o for f in files for o in yaml.safe_load_all((DEPLOY / f).read_text()) if o]


def container(dep: Obj) -> Obj:
    containers = dep["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def env_of(dep: Obj) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(dep).get("env", [])}


# --- helm lint ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sets", [[], ["controller.enabled=true", "rbac.namespaces={shop,web}"]])
def test_lint(helm_home: dict[str, str], sets: list[str]) -> None:
    argv = ["lint", "--strict", str(CHART)]
    for s in sets:
        argv += ["--set", s]
    proc = helm(helm_home, *argv)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in proc.stdout


# --- helm template ----------------------------------------------------------------------------------------


def test_default_rbac_is_namespaced(helm_home: dict[str, str]) -> None:
    objs = render(helm_home)
    assert of_kind(objs, "ClusterRole") == [] and of_kind(objs, "ClusterRoleBinding") == []
    role, binding = one(objs, "Role"), one(objs, "RoleBinding")
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "default"
    # The same rules as deploy/rbac-namespaced.yaml, bound to the chart's worker ServiceAccount.
    assert role["rules"] == one(deploy_objects("rbac-namespaced.yaml"), "Role")["rules"]
    sa = one(objs, "ServiceAccount")
    assert sa["metadata"] == {**sa["metadata"], "name": f"{RELEASE}-worker", "namespace": "rollout-system"}
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": f"{RELEASE}-worker", "namespace": "rollout-system"}
    ]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    # The worker's own scope is the same list.
    config = one(objs, "ConfigMap")["data"]
    assert config["ROLLOUT_WATCH_NAMESPACES"] == "default"
    worker = one(objs, "Deployment", f"{RELEASE}-worker")
    assert worker["spec"]["template"]["spec"]["serviceAccountName"] == f"{RELEASE}-worker"
    assert container(worker)["envFrom"] == [{"configMapRef": {"name": f"{RELEASE}-temporal"}}]


def test_namespaces_each_get_a_role(helm_home: dict[str, str]) -> None:
    objs = render(helm_home, "rbac.namespaces={shop,web}")
    assert sorted(r["metadata"]["namespace"] for r in of_kind(objs, "Role")) == ["shop", "web"]
    assert sorted(b["metadata"]["namespace"] for b in of_kind(objs, "RoleBinding")) == ["shop", "web"]
    assert one(objs, "ConfigMap")["data"]["ROLLOUT_WATCH_NAMESPACES"] == "shop,web"
    assert of_kind(objs, "ClusterRole") == []


def test_cluster_wide_is_an_opt_in(helm_home: dict[str, str]) -> None:
    objs = render(helm_home, "rbac.clusterWide=true", "rbac.namespaces=null")
    assert of_kind(objs, "Role") == [] and of_kind(objs, "RoleBinding") == []
    cluster_role = one(objs, "ClusterRole")
    assert cluster_role["rules"] == one(deploy_objects("rbac.yaml"), "ClusterRole")["rules"]
    assert one(objs, "ClusterRoleBinding")["subjects"][0]["name"] == f"{RELEASE}-worker"
    assert "ROLLOUT_WATCH_NAMESPACES" not in one(objs, "ConfigMap")["data"]
    # Cluster-wide rights, still confined by the worker's own scope when namespaces are listed.
    confined = render(helm_home, "rbac.clusterWide=true", "rbac.namespaces={shop}")
    assert one(confined, "ConfigMap")["data"]["ROLLOUT_WATCH_NAMESPACES"] == "shop"
    assert of_kind(confined, "Role") == []


def test_no_namespaces_and_not_cluster_wide_is_refused(helm_home: dict[str, str]) -> None:
    proc = helm(helm_home, "template", RELEASE, str(CHART), "--set", "rbac.namespaces=null")
    assert proc.returncode != 0
    assert "rbac.namespaces is empty: list the namespaces" in proc.stderr
    assert "rbac.clusterWide=true" in proc.stderr


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("rbac.namespaces=shop", "at '/rbac/namespaces': got string, want null or array"),
        ("rbac.namspaces={shop}", "at '/rbac': additional properties 'namspaces' not allowed"),
        ("rbac.namespaces={Shop_1}", "at '/rbac/namespaces/0'"),
        ("controller.webhook.failurePolicy=Open", "at '/controller/webhook/failurePolicy'"),
    ],
)
def test_values_are_checked_by_the_schema(helm_home: dict[str, str], value: str, said: str) -> None:
    proc = helm(helm_home, "template", RELEASE, str(CHART), "--set", value)
    assert proc.returncode != 0
    assert said in proc.stderr


def test_traffic_rules_can_be_left_out(helm_home: dict[str, str]) -> None:
    rules = one(render(helm_home, "rbac.traffic=false"), "Role")["rules"]
    assert {r["apiGroups"][0] for r in rules} == {"apps"}


def test_secrets_are_referenced_not_inlined(helm_home: dict[str, str]) -> None:
    plain = render(helm_home, "controller.enabled=true")
    objs = render(
        helm_home,
        "controller.enabled=true",
        "temporal.apiKey.existingSecret=cloud-key",
        "temporal.tls.existingSecret=temporal-mtls",
        "temporal.address=ns.acct.tmprl.cloud:7233",
        "temporal.namespace=ns.acct",
    )
    # The chart never makes a Secret; no value of the chart can hold one.
    assert of_kind(plain, "Secret") == [] and of_kind(objs, "Secret") == []
    assert "TEMPORAL_API_KEY" not in json.dumps(one(objs, "ConfigMap"))
    for name in (f"{RELEASE}-worker", f"{RELEASE}-controller"):
        dep = one(objs, "Deployment", name)
        env = env_of(dep)
        env.pop("POD_NAME", None)  # the controller's name in its Lease (downward API)
        assert env == {
            "TEMPORAL_API_KEY": {"secretKeyRef": {"name": "cloud-key", "key": "api-key"}},
            "TEMPORAL_TLS_CERT": "/etc/temporal-tls/tls.crt",
            "TEMPORAL_TLS_KEY": "/etc/temporal-tls/tls.key",
            "TEMPORAL_TLS_CA": "/etc/temporal-tls/ca.crt",
        }
        volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
        assert volumes["temporal-tls"]["secret"] == {
            "secretName": "temporal-mtls",
            "items": [
                {"key": "tls.crt", "path": "tls.crt"},
                {"key": "tls.key", "path": "tls.key"},
                {"key": "ca.crt", "path": "ca.crt"},
            ],
        }
        mounts = {m["name"]: m for m in container(dep)["volumeMounts"]}
        assert mounts["temporal-tls"] == {
            "name": "temporal-tls",
            "mountPath": "/etc/temporal-tls",
            "readOnly": True,
        }
        # Without the Secrets, no variable and no volume refers to them.
        bare = one(plain, "Deployment", name)
        assert not {k for k in env_of(bare) if k.startswith("TEMPORAL")}
        assert [v["name"] for v in bare["spec"]["template"]["spec"]["volumes"]] == ["tmp"]
    assert one(objs, "ConfigMap")["data"]["TEMPORAL_ADDRESS"] == "ns.acct.tmprl.cloud:7233"
    # A server CA only: the client certificate and key are left out.
    ca_only = render(
        helm_home, "temporal.tls.existingSecret=ca", "temporal.tls.certKey=", "temporal.tls.keyKey="
    )
    assert env_of(one(ca_only, "Deployment")) == {"TEMPORAL_TLS_CA": "/etc/temporal-tls/ca.crt"}


def test_controller_is_optional(helm_home: dict[str, str]) -> None:
    off = render(helm_home)
    assert {o["kind"] for o in off} == {"ServiceAccount", "ConfigMap", "Role", "RoleBinding", "Deployment"}
    assert [d["metadata"]["name"] for d in of_kind(off, "Deployment")] == [f"{RELEASE}-worker"]
    assert "rollouts.kruise.io" not in json.dumps(one(off, "Role")["rules"])

    on = render(helm_home, "controller.enabled=true", "temporal.taskQueue=team-a")
    decl = deploy_objects(*(f"declarative/{f}.yaml" for f in ("crd-rollouts", "rbac", "webhook")))
    crd = one(on, "CustomResourceDefinition")
    want_crd = copy.deepcopy(one(decl, "CustomResourceDefinition")["spec"])
    # the conversion webhook's Service is the release's controller
    want_crd["conversion"]["webhook"]["clientConfig"]["service"]["name"] = f"{RELEASE}-controller"
    assert crd["spec"] == want_crd
    assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert (
        one(on, "ClusterRole", f"{RELEASE}-controller")["rules"]
        == one(decl, "ClusterRole", "rollout-controller")["rules"]
    )
    # The worker's Role gains the Rollout status rights of deploy/declarative/rbac.yaml.
    assert (
        one(on, "Role", f"{RELEASE}-worker")["rules"][-2:]
        == one(decl, "ClusterRole", "rollout-worker-declarative")["rules"]
    )
    # The replicas' Lease and certificate Secret, named for this release, as deploy/declarative's Role.
    names = {
        "rollout-controller": f"{RELEASE}-controller",
        "rollout-controller-webhook": f"{RELEASE}-controller-webhook",
    }
    want_rules = [
        {**r, "resourceNames": [names[n] for n in r["resourceNames"]]} if "resourceNames" in r else r
        for r in one(decl, "Role", "rollout-controller")["rules"]
    ]
    assert one(on, "Role", f"{RELEASE}-controller")["rules"] == want_rules
    assert one(on, "RoleBinding", f"{RELEASE}-controller")["subjects"][0]["name"] == f"{RELEASE}-controller"
    pdb = one(on, "PodDisruptionBudget", f"{RELEASE}-controller")
    assert pdb["spec"]["minAvailable"] == 1
    # The webhook's NetworkPolicy (opt-in: the API server's CIDRs), as deploy/declarative/networkpolicy.yaml.
    assert of_kind(on, "NetworkPolicy") == []
    fenced = render(helm_home, "controller.enabled=true", "controller.webhook.apiServerCIDRs={10.1.0.0/24}")
    policy = one(fenced, "NetworkPolicy", f"{RELEASE}-controller-webhook")
    shipped_policy = one(deploy_objects("declarative/networkpolicy.yaml"), "NetworkPolicy")
    assert policy["spec"]["ingress"][0]["ports"] == shipped_policy["spec"]["ingress"][0]["ports"]
    assert policy["spec"]["ingress"][0]["from"] == [{"ipBlock": {"cidr": "10.1.0.0/24"}}]
    assert (
        policy["spec"]["podSelector"]["matchLabels"]
        == one(on, "Deployment", f"{RELEASE}-controller")["spec"]["selector"]["matchLabels"]
    )
    # Every webhook configuration of deploy/declarative/, webhook by webhook, pointing at this release's
    # controller Service; the fixed name is the one the controller keeps the caBundle of.
    kinds = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
    shipped = [o for o in decl if o["kind"] in kinds]
    assert {(o["kind"], o["metadata"]["name"]) for o in on if o["kind"] in kinds} == {
        (o["kind"], o["metadata"]["name"]) for o in shipped
    }
    for want in shipped:
        got = {h["name"]: h for h in one(on, want["kind"], want["metadata"]["name"])["webhooks"]}
        assert sorted(got) == sorted(h["name"] for h in want["webhooks"])
        for hook in want["webhooks"]:
            path = hook["clientConfig"]["service"]["path"]
            assert got[hook["name"]]["clientConfig"] == {
                "service": {
                    "namespace": "rollout-system",
                    "name": f"{RELEASE}-controller",
                    "path": path,
                    "port": 443,
                }
            }
            assert {k: v for k, v in got[hook["name"]].items() if k != "clientConfig"} == {
                k: v for k, v in hook.items() if k != "clientConfig"
            }
    svc = one(on, "Service", f"{RELEASE}-controller")
    controller = one(on, "Deployment", f"{RELEASE}-controller")
    assert svc["spec"]["selector"] == controller["spec"]["selector"]["matchLabels"]
    assert container(controller)["command"] == [
        "rollout-controller",
        "--task-queue=team-a",
        "--webhook-host=0.0.0.0",
        "--webhook-port=9443",
        f"--webhook-service=rollout-system/{RELEASE}-controller:443",
        f"--cert-host={RELEASE}-controller.rollout-system.svc",
        f"--cert-secret=rollout-system/{RELEASE}-controller-webhook",
        "--leader-elect",
        f"--lease=rollout-system/{RELEASE}-controller",
        f"--trusted-user=system:serviceaccount:rollout-system:{RELEASE}-worker",
        f"--trusted-user=system:serviceaccount:rollout-system:{RELEASE}-controller",
    ]
    assert one(on, "ClusterRoleBinding")["subjects"][0]["name"] == f"{RELEASE}-controller"
    no_crd = render(helm_home, "controller.enabled=true", "controller.installCRD=false")
    assert of_kind(no_crd, "CustomResourceDefinition") == []
    assert len(of_kind(no_crd, "MutatingWebhookConfiguration")) == 1


def test_analysis_secrets_are_an_opt_in_by_name(helm_home: dict[str, str]) -> None:
    assert "secrets" not in json.dumps(one(render(helm_home), "Role")["rules"])
    rules = one(render(helm_home, "rbac.analysisSecrets={metrics-token}"), "Role")["rules"]
    shipped = one(deploy_objects("rbac-analysis-secrets.yaml"), "Role")["rules"]
    assert [r for r in rules if r["resources"] == ["secrets"]] == shipped


def test_admission_policy_as_in_deploy(helm_home: dict[str, str]) -> None:
    """deploy/declarative's ValidatingAdmissionPolicy, for this release's ServiceAccounts and names."""
    on = render(helm_home, "controller.enabled=true")
    shipped = deploy_objects("declarative/admission-policy.yaml")
    policy = one(on, "ValidatingAdmissionPolicy", f"{RELEASE}-controller-marks")
    want = json.loads(
        json.dumps(one(shipped, "ValidatingAdmissionPolicy")["spec"])
        .replace("rollout-system:rollout-worker", f"rollout-system:{RELEASE}-worker")
        .replace("rollout-system:rollout-controller", f"rollout-system:{RELEASE}-controller")
    )
    assert policy["spec"] == want
    binding = one(on, "ValidatingAdmissionPolicyBinding", f"{RELEASE}-controller-marks")
    assert binding["spec"] == {
        **one(shipped, "ValidatingAdmissionPolicyBinding")["spec"],
        "policyName": f"{RELEASE}-controller-marks",
    }
    off = render(helm_home, "controller.enabled=true", "controller.admissionPolicy=false")
    assert of_kind(off, "ValidatingAdmissionPolicy") == []


def test_pod_security_and_resources_as_in_deploy(helm_home: dict[str, str]) -> None:
    objs = render(helm_home, "controller.enabled=true")
    plain = {
        d["metadata"]["name"]: d
        for d in of_kind(deploy_objects("worker.yaml", "declarative/controller.yaml"), "Deployment")
    }
    for part in ("worker", "controller"):
        got, want = one(objs, "Deployment", f"{RELEASE}-{part}"), plain[f"rollout-{part}"]
        pod, want_pod = got["spec"]["template"]["spec"], want["spec"]["template"]["spec"]
        assert pod["securityContext"] == want_pod["securityContext"]
        assert pod["terminationGracePeriodSeconds"] == want_pod["terminationGracePeriodSeconds"]
        assert container(got)["securityContext"] == container(want)["securityContext"]
        assert container(got)["resources"] == container(want)["resources"]
        assert got["spec"]["replicas"] == want["spec"]["replicas"]
        assert got["spec"]["strategy"] == want["spec"]["strategy"]
        assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]
    pod_name = {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env_of(one(objs, "Deployment", f"{RELEASE}-controller"))["POD_NAME"] == pod_name
    assert env_of(plain["rollout-controller"])["POD_NAME"] == pod_name


# --- helm install on the real control plane ---------------------------------------------------------------


def kubeconfig_for_token(admin_kubeconfig: str, token: str, path: Path) -> str:
    """A kubeconfig for the same API server whose only credential is ``token``."""
    admin = yaml.safe_load(Path(admin_kubeconfig).read_text())
    cluster = admin["clusters"][0]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": "sa", "user": {"token": token}}],
                "contexts": [{"name": "sa", "context": {"cluster": cluster["name"], "user": "sa"}}],
                "current-context": "sa",
            }
        )
    )
    return str(path)


def audit_users(realk8s: RealK8sProcess, namespace: str, agent: str) -> set[tuple[str, str, str]]:
    """(verb, resource, user) of every write by ``agent`` in ``namespace``, from the raw audit log."""
    assert realk8s.audit_path is not None
    out = set()
    text = realk8s.audit_path.read_text()
    for line in text[: text.rfind("\n") + 1].splitlines():  # complete lines only: it is still written
        event = json.loads(line) if line.strip() else {}
        ref = event.get("objectRef") or {}
        if (
            ref.get("namespace") == namespace
            and str(event.get("userAgent", "")).startswith(agent)
            and event.get("verb") in ("create", "update", "patch", "delete")
        ):
            out.add((event["verb"], ref.get("resource", ""), event["user"]["username"]))
    return out


async def run(*argv: str, env: dict[str, str], timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_install_then_a_rollout_under_the_charts_rbac(
    helm_home: dict[str, str], realk8s: RealK8sProcess, temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    system, app, other = f"helm-sys-{suffix}", f"helm-app-{suffix}", f"helm-other-{suffix}"
    queue = f"helm-{suffix}"
    address = temporal_env.client.service_client.config.target_host
    admin_api = api_client_for(realk8s.kubeconfig)
    admin = Kube(admin_api)
    for ns in (app, other):
        admin.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
    await create_deployment(admin_api, seed_deployment(app, name="web", replicas=4))
    kube_env = {"KUBECONFIG": realk8s.kubeconfig}

    # Server-side dry run of everything the chart can render, the controller included: the real API
    # server accepts every object (schemas, the CRD, the webhook configuration).
    full = helm(
        helm_home,
        "template",
        RELEASE,
        str(CHART),
        "-n",
        app,
        "--set",
        "controller.enabled=true",
        "--set",
        "temporal.apiKey.existingSecret=k",
        "--set",
        "temporal.tls.existingSecret=t",
    )
    assert full.returncode == 0, full.stderr
    # An earlier module's out-of-cluster controller may have pointed the CRD's conversion webhook at
    # its URL; a client-side apply merges the chart's Service reference onto that and the API server
    # refuses both at once. Put the shipped CRD back first, as an in-cluster install finds it.
    crd = REPO / "deploy" / "declarative" / "crd-rollouts.yaml"
    kube_run = {"capture_output": True, "text": True, "timeout": 60, "env": {**os.environ, **kube_env}}
    found = subprocess.run([KUBECTL, "get", "-f", str(crd), "--ignore-not-found", "-o", "name"], **kube_run)
    if found.stdout.strip():
        put = subprocess.run([KUBECTL, "replace", "-f", str(crd)], **kube_run)
        assert put.returncode == 0, put.stderr
    dry = subprocess.run(
        [KUBECTL, "apply", "--dry-run=server", "-f", "-"],
        input=full.stdout,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **kube_env},
    )
    assert dry.returncode == 0, dry.stderr
    assert "mutatingwebhookconfiguration.admissionregistration.k8s.io/temporal-rollouts" in dry.stdout
    assert "rollouts.rollouts.kruise.io" in dry.stdout and "(server dry run)" in dry.stdout

    started = time.monotonic()
    install = helm(
        helm_home,
        "install",
        RELEASE,
        str(CHART),
        "-n",
        system,
        "--create-namespace",
        "--kubeconfig",
        realk8s.kubeconfig,
        "--wait",
        "--timeout",
        "60s",
        "--set",
        f"temporal.address={address}",
        "--set",
        f"temporal.taskQueue={queue}",
        "--set",
        f"rbac.namespaces={{{app}}}",
    )
    assert install.returncode == 0, install.stderr
    assert f"Scope:      the namespaces {app} (a Role in each)" in install.stdout  # the chart's NOTES
    install_seconds = time.monotonic() - started
    worker_dep = admin.request("GET", f"/apis/apps/v1/namespaces/{system}/deployments/{RELEASE}-worker")
    assert worker_dep["status"].get("readyReplicas") == 2

    # The worker as the chart runs it: the chart's ConfigMap as its environment, the chart's
    # ServiceAccount as its Kubernetes identity (a TokenRequest token).
    config = admin.request("GET", f"/api/v1/namespaces/{system}/configmaps/{RELEASE}-temporal")["data"]
    assert config == {
        "TEMPORAL_ADDRESS": address,
        "TEMPORAL_NAMESPACE": "default",
        "ROLLOUT_TASK_QUEUE": queue,
        "ROLLOUT_WATCH_NAMESPACES": app,
    }
    token_request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": 3600},
    }
    token = admin.request(
        "POST", f"/api/v1/namespaces/{system}/serviceaccounts/{RELEASE}-worker/token", token_request
    )["status"]["token"]
    sa_kubeconfig = kubeconfig_for_token(realk8s.kubeconfig, token, tmp_path / "worker-kubeconfig")
    sa_api = api_client_for(sa_kubeconfig)
    # RBAC is really enforced for that identity: outside its namespaces the API server refuses it.
    with pytest.raises(ApiException) as refused:
        Kube(sa_api).request("GET", f"/apis/apps/v1/namespaces/{other}/deployments")
    assert refused.value.status == 403
    assert Kube(sa_api).request("GET", f"/apis/apps/v1/namespaces/{app}/deployments")["items"]

    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "ROLLOUT_"))}
    log_path = tmp_path / "worker.log"
    worker_env = {**base_env, **config, "KUBECONFIG": sa_kubeconfig, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(BIN / "rollout-worker")],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=worker_env,
        )
    worker = WorkerProcess(proc, log_path, time.time())
    try:
        await worker.wait_ready(timeout=30)
        cli_env = {**base_env, **kube_env, "TEMPORAL_ADDRESS": address}
        rollout = str(BIN / "rollout")
        common = ("-n", app, "--task-queue", queue)
        rc, out, err = await run(
            rollout,
            "start",
            "web",
            "--image",
            "nginx=nginx:1.27",
            "--steps",
            "50%,100%",
            *common,
            env=cli_env,
        )
        assert rc == 0, err

        async def paused() -> bool:
            rc, out, _ = await run(rollout, "status", "web", "-o", "json", *common, env=cli_env)
            return rc == 0 and json.loads(out)["phase"] == "Paused"

        await assert_eventually(paused, timeout=30, message="paused after the first batch")
        half = {"nginx:1.27": (2, 2), "nginx:1.26": (2, 2)}
        await assert_eventually(lambda: images_counts(admin_api, app) == half, timeout=10, message="2 / 2")
        rc, _, err = await run(rollout, "approve", "web", *common, env=cli_env)
        assert rc == 0, err
        rc, out, err = await run(rollout, "status", "web", "-w", *common, env=cli_env)
        assert rc == 0, out + err  # the live view exits 0 on Completed
        assert images_counts(admin_api, app) == {"nginx:1.27": (4, 4), "nginx:1.26": (0, 0)}
        # Every write of the worker was made as the chart's ServiceAccount.
        writes = audit_users(realk8s, app, "rollout-worker/")
        made = {(verb, res) for verb, res, _ in writes}
        assert made >= {("create", "replicasets"), ("update", "replicasets"), ("update", "deployments")}
        assert {user for _, _, user in writes} == {f"system:serviceaccount:{system}:{RELEASE}-worker"}
    finally:
        worker.terminate()
        print(f"--- worker output ---\n{worker.output()}")
        sa_api.close()

    # helm upgrade: one more namespace gets a Role and joins the worker's scope.
    upgrade = helm(
        helm_home,
        "upgrade",
        RELEASE,
        str(CHART),
        "-n",
        system,
        "--kubeconfig",
        realk8s.kubeconfig,
        "--reuse-values",
        "--set",
        f"rbac.namespaces={{{app},{other}}}",
    )
    assert upgrade.returncode == 0, upgrade.stderr
    roles = "/apis/rbac.authorization.k8s.io/v1/namespaces/{}/roles/" + f"{RELEASE}-worker"
    role = admin.request("GET", roles.format(other))
    assert role["rules"][0]["resources"] == ["deployments"]
    config = admin.request("GET", f"/api/v1/namespaces/{system}/configmaps/{RELEASE}-temporal")["data"]
    assert config["ROLLOUT_WATCH_NAMESPACES"] == f"{app},{other}"

    # helm uninstall removes the worker's rights again.
    assert (
        helm(
            helm_home, "uninstall", RELEASE, "-n", system, "--kubeconfig", realk8s.kubeconfig, "--wait"
        ).returncode
        == 0
    )
    for ns in (app, other):
        with pytest.raises(ApiException) as gone:
            admin.request("GET", roles.format(ns))
        assert gone.value.status == 404
    admin_api.close()
    print(f"helm install --wait: {install_seconds:.1f} s")
