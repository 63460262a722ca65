"""``rollout-controller``: the declarative-mode controller and its admission webhook, in one process.

Its own process (not the worker's): it needs the Kubernetes watches, an HTTPS port the apiserver can
reach and one instance at a time, while workers scale out and restart freely. It serves:

- the mutating webhook on Deployments and the validating webhook on Rollouts over HTTPS (certificate
  made at start-up, see ``declarative/certs.py``), and keeps both webhook configurations' ``caBundle``
  (and, with ``--webhook-url``, their URLs) current;
- the controller loop (``declarative/controller.py``).

Kubernetes: ``--kubeconfig``/``KUBECONFIG`` or in-cluster. Temporal: the worker's environment
(``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, TLS and API key variables).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from declarative.certs import make_serving_cert, server_context
from declarative.controller import Controller
from declarative.webhook import PATH, VALIDATE_PATH, WebhookServer, stable_hash_from
from kube.client import Kube
from workflows.model import LABEL_WORKLOAD_TYPE, TASK_QUEUE, RolloutTimings

__all__ = ["WEBHOOK_CONFIG_NAME", "main", "webhook_configuration"]

log = logging.getLogger("rollout-controller")
WEBHOOK_CONFIG_NAME = "temporal-rollouts"
WEBHOOK_NAME = "deployments.rollouts.temporal.io"
CREATE_WEBHOOK_NAME = "deployment-create.rollouts.temporal.io"
VALIDATING_WEBHOOK_NAME = "vrollout.kb.io"  # Kruise's name: kubectl prints the same refusal
MWC_PATH = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
VWC_PATH = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
USER_AGENT = "rollout-controller/0.1"
# Whose handing-back mark the webhook honours by default: the shipped ServiceAccounts (deploy/).
TRUSTED_USERS = (
    "system:serviceaccount:rollout-system:rollout-worker",
    "system:serviceaccount:rollout-system:rollout-controller",
)


def _hook(name: str, client_config: dict[str, Any], timeout_seconds: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "failurePolicy": "Fail",
        "matchPolicy": "Equivalent",
        "timeoutSeconds": timeout_seconds,
        "clientConfig": client_config,
        "namespaceSelector": {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]}]},
        **extra,
    }


def webhook_configuration(client_config: dict[str, Any], timeout_seconds: int = 10) -> dict[str, Any]:
    """The MutatingWebhookConfiguration (also shipped as deploy/declarative/webhook.yaml).

    Deployment UPDATE, ``failurePolicy: Fail``: while the webhook is down, an update of a Deployment
    under a Rollout is refused (kubectl prints the error; GitOps tools retry) instead of reaching the
    native controller unpaused, which would roll it ahead of the canary. The objectSelector limits
    that to Deployments labelled as referenced by a Rollout; every other Deployment is never affected.

    Deployment CREATE, ``failurePolicy: Ignore``, no objectSelector: labels a Deployment created after
    its Rollout in the same write, so its first update is held. Down, it costs nothing: the controller
    labels the Deployment on the pass its creation triggers.
    """
    rules = [{"operations": ["UPDATE"], "apiGroups": ["apps"], "apiVersions": ["v1"],
              "resources": ["deployments"], "scope": "Namespaced"}]
    create_rules = [{**rules[0], "operations": ["CREATE"]}]
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": WEBHOOK_CONFIG_NAME, "labels": {"app.kubernetes.io/name": "rollout-controller"}},
        "webhooks": [
            _hook(WEBHOOK_NAME, client_config, timeout_seconds, reinvocationPolicy="Never", rules=rules,
                  objectSelector={"matchExpressions": [{"key": LABEL_WORKLOAD_TYPE, "operator": "Exists"}]}),
            _hook(CREATE_WEBHOOK_NAME, client_config, timeout_seconds, reinvocationPolicy="Never",
                  rules=create_rules, failurePolicy="Ignore"),
        ],
    }


def validating_configuration(client_config: dict[str, Any], timeout_seconds: int = 10) -> dict[str, Any]:
    """The ValidatingWebhookConfiguration for Rollouts: Kruise's ``vrollout.kb.io`` rules and texts.

    ``failurePolicy: Fail`` as Kruise: while the controller is down a Rollout cannot be created or
    changed (a duplicate or an edit that is not allowed mid-rollout cannot slip in).
    """
    rules = [{"operations": ["CREATE", "UPDATE"], "apiGroups": ["rollouts.kruise.io"],
              "apiVersions": ["v1beta1"], "resources": ["rollouts"], "scope": "Namespaced"}]
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": WEBHOOK_CONFIG_NAME, "labels": {"app.kubernetes.io/name": "rollout-controller"}},
        "webhooks": [_hook(VALIDATING_WEBHOOK_NAME, client_config, timeout_seconds, rules=rules)],
    }


def ensure_webhook_configuration(
    kube: Kube, ca_pem: bytes, url: str | None, service: dict[str, Any] | None
) -> None:
    """Create or update our Mutating- and ValidatingWebhookConfiguration with this process's CA (and URL)."""
    bundle = base64.b64encode(ca_pem).decode()
    for collection, make, path in ((MWC_PATH, webhook_configuration, PATH),
                                   (VWC_PATH, validating_configuration, VALIDATE_PATH)):
        client_config: dict[str, Any] = {"caBundle": bundle}
        if url:
            client_config["url"] = url.replace(PATH, path)
        else:
            client_config["service"] = {**(service or {}), "path": path}
        _ensure(kube, collection, make(client_config), bundle, in_cluster=not url)


def _ensure(kube: Kube, collection: str, want: dict[str, Any], bundle: str, *, in_cluster: bool) -> None:
    try:
        current = kube.request("GET", f"{collection}/{WEBHOOK_CONFIG_NAME}")
    except ApiException as exc:
        if exc.status != 404:
            raise
        kube.request("POST", collection, want)
        return
    if in_cluster:  # keep the shipped manifest, only refresh the CA
        for hook in current.get("webhooks") or []:
            hook.setdefault("clientConfig", {})["caBundle"] = bundle
        kube.request("PUT", f"{collection}/{WEBHOOK_CONFIG_NAME}", current)
        return
    want["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    kube.request("PUT", f"{collection}/{WEBHOOK_CONFIG_NAME}", want)


def list_rollouts(kube: Kube) -> Any:
    """The validating webhook's cluster read: the Rollouts of a namespace."""
    from kube.client import rollout_path

    def rollouts(namespace: str) -> list[dict[str, Any]]:
        return list(kube.request("GET", rollout_path(namespace)).get("items") or [])

    return rollouts


def make_resolver(kube: Kube) -> Any:
    """The webhook's cluster read: the enabled Rollout referencing a Deployment, and its ReplicaSets."""
    from kruise.rollout_object import owners, read_rollout
    from kube.client import rollout_path

    def resolve(dep: dict[str, Any]) -> tuple[str | None, Any]:
        md = dep.get("metadata") or {}
        ns, name = md.get("namespace", ""), md.get("name", "")
        items = kube.request("GET", rollout_path(ns)).get("items") or []
        owner = owners(items).get((ns, name))
        ref = next((read_rollout(o) for o in items if o["metadata"]["name"] == owner), None)
        if ref is None or ref.plan is None or ref.disabled or ref.deleting:
            return None, stable_hash_from([])
        if not md.get("uid"):  # a CREATE: nothing to hold yet, only to label
            return ref.name, stable_hash_from([])
        return ref.name, stable_hash_from(kube.list_deployment_replica_sets(dep))

    return resolve


async def serve(args: argparse.Namespace) -> int:
    from connect import connect_temporal, has_search_attributes, load_api_client

    api_client: ApiClient = load_api_client(args.kubeconfig, user_agent=USER_AGENT)
    kube = Kube(api_client)
    hosts = args.cert_host or ["127.0.0.1", "localhost"]
    cert = make_serving_cert(hosts)
    users = args.trusted_user or list(TRUSTED_USERS)
    server = WebhookServer(make_resolver(kube), server_context(cert.cert_pem, cert.key_pem),
                           host=args.webhook_host, port=args.webhook_port, list_rollouts=list_rollouts(kube),
                           trusted_users=None if "any" in users else frozenset(users))
    port = await server.start()
    url = args.webhook_url or (None if args.webhook_service else f"https://{hosts[0]}:{port}{PATH}")
    service = None
    if args.webhook_service:
        ns, _, rest = args.webhook_service.partition("/")
        svc_name, _, svc_port = rest.partition(":")
        service = {"namespace": ns, "name": svc_name, "port": int(svc_port or 443)}
    await asyncio.to_thread(ensure_webhook_configuration, kube, cert.ca_pem, url, service)
    log.info("webhook listening on %s:%d (%s)", args.webhook_host, port, url or service)
    client = await connect_temporal()
    controller = Controller(
        client, api_client, namespace=args.namespace, task_queue=args.task_queue,
        timings=RolloutTimings(poll_interval_seconds=args.poll_interval),
        use_search_attributes=await has_search_attributes(client),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    print(f"rollout-controller: watching Rollouts in {args.namespace or 'all namespaces'}; "
          f"webhook https://{args.webhook_host}:{port}{PATH}", flush=True)
    if args.ready_file:
        Path(args.ready_file).write_text(f"https://{args.webhook_host}:{port}{PATH}\n")
    try:
        await controller.run(stop)
    finally:
        await server.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rollout-controller", description=__doc__.split("\n")[0])
    p.add_argument("--kubeconfig", help="kubeconfig file (default: KUBECONFIG, ~/.kube/config, in-cluster)")
    p.add_argument("--namespace", help="watch only this namespace (default: all)")
    p.add_argument("--task-queue", default=TASK_QUEUE)
    p.add_argument("--webhook-host", default="127.0.0.1", help="address the HTTPS webhook binds")
    p.add_argument("--webhook-port", type=int, default=9443, help="0 picks a free port")
    p.add_argument("--webhook-url", help="URL the apiserver calls (default: https://<cert host>:<port>/...)")
    p.add_argument("--webhook-service", help="in-cluster: NAMESPACE/SERVICE[:PORT] the apiserver calls")
    p.add_argument("--cert-host", action="append", help="DNS name or IP for the serving certificate (repeat)")
    p.add_argument("--poll-interval", type=float, default=0.5, help="rollouts' readiness poll interval (s)")
    p.add_argument("--trusted-user", action="append",
                   help="a user (request.userInfo.username) whose handing-back mark the webhook honours "
                        "(repeat; default: the worker's and the controller's ServiceAccounts in "
                        "rollout-system; 'any' trusts every writer, for local stacks without authentication)")
    p.add_argument("--ready-file", help="write the webhook URL here once serving (for `rollout dev up`)")
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = build_parser().parse_args(argv if argv is not None else sys.argv[1:])
    from connect import ConnectionProblem

    try:
        return asyncio.run(serve(args))
    except KeyboardInterrupt:
        return 130
    except ConnectionProblem as exc:  # Temporal or Kubernetes unusable: one line, no traceback
        print(f"rollout-controller: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
