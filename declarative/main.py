"""``rollout-controller``: the declarative-mode controller and its admission webhook, in one process.

Its own process (not the worker's): it needs the Kubernetes watches, an HTTPS port the apiserver can
reach and one instance at a time, while workers scale out and restart freely. It serves:

- the mutating webhook over HTTPS (certificate made at start-up, see ``declarative/certs.py``), and
  keeps the MutatingWebhookConfiguration's ``caBundle`` (and, with ``--webhook-url``, its URL) current;
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
from declarative.webhook import PATH, WebhookServer, stable_hash_from
from kube.client import Kube
from workflows.model import LABEL_WORKLOAD_TYPE, TASK_QUEUE, RolloutTimings

__all__ = ["WEBHOOK_CONFIG_NAME", "main", "webhook_configuration"]

log = logging.getLogger("rollout-controller")
WEBHOOK_CONFIG_NAME = "temporal-rollouts"
WEBHOOK_NAME = "deployments.rollouts.temporal.io"
MWC_PATH = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
USER_AGENT = "rollout-controller/0.1"


def webhook_configuration(client_config: dict[str, Any], timeout_seconds: int = 10) -> dict[str, Any]:
    """The MutatingWebhookConfiguration (also shipped as deploy/declarative/webhook.yaml).

    ``failurePolicy: Fail``: while the webhook is down, an update of a Deployment under a Rollout is
    refused (kubectl prints the error; GitOps tools retry) instead of reaching the native controller
    unpaused, which would roll it ahead of the canary. The objectSelector limits that to Deployments
    the controller labelled as referenced by a Rollout; every other Deployment is never affected.
    """
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": WEBHOOK_CONFIG_NAME, "labels": {"app.kubernetes.io/name": "rollout-controller"}},
        "webhooks": [{
            "name": WEBHOOK_NAME,
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Fail",
            "matchPolicy": "Equivalent",
            "reinvocationPolicy": "Never",
            "timeoutSeconds": timeout_seconds,
            "clientConfig": client_config,
            "objectSelector": {"matchExpressions": [{"key": LABEL_WORKLOAD_TYPE, "operator": "Exists"}]},
            "namespaceSelector": {"matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]}]},
            "rules": [{"operations": ["UPDATE"], "apiGroups": ["apps"], "apiVersions": ["v1"],
                       "resources": ["deployments"], "scope": "Namespaced"}],
        }],
    }


def ensure_webhook_configuration(
    kube: Kube, ca_pem: bytes, url: str | None, service: dict[str, Any] | None
) -> None:
    """Create or update our MutatingWebhookConfiguration with this process's CA (and URL)."""
    client_config: dict[str, Any] = {"caBundle": base64.b64encode(ca_pem).decode()}
    if url:
        client_config["url"] = url
    else:
        client_config["service"] = service
    want = webhook_configuration(client_config)
    try:
        current = kube.request("GET", f"{MWC_PATH}/{WEBHOOK_CONFIG_NAME}")
    except ApiException as exc:
        if exc.status != 404:
            raise
        kube.request("POST", MWC_PATH, want)
        return
    if not url:  # in-cluster: keep the shipped manifest, only refresh the CA
        for hook in current.get("webhooks") or []:
            hook.setdefault("clientConfig", {})["caBundle"] = client_config["caBundle"]
        kube.request("PUT", f"{MWC_PATH}/{WEBHOOK_CONFIG_NAME}", current)
        return
    want["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    kube.request("PUT", f"{MWC_PATH}/{WEBHOOK_CONFIG_NAME}", want)


def make_resolver(kube: Kube) -> Any:
    """The webhook's cluster read: the enabled Rollout referencing a Deployment, and its ReplicaSets."""
    from declarative.kruise import read_rollout
    from kube.client import rollout_path

    def resolve(dep: dict[str, Any]) -> tuple[str | None, Any]:
        md = dep.get("metadata") or {}
        ns, name = md.get("namespace", ""), md.get("name", "")
        items = kube.request("GET", rollout_path(ns)).get("items") or []
        items.sort(key=lambda o: (o["metadata"].get("creationTimestamp", ""), o["metadata"]["name"]))
        rollout = None
        for obj in items:
            ref = read_rollout(obj)
            if ref.deployment == name and ref.plan is not None and not ref.disabled and not ref.deleting:
                rollout = ref.name
                break
        if rollout is None:
            return None, stable_hash_from([])
        return rollout, stable_hash_from(kube.list_deployment_replica_sets(dep))

    return resolve


async def serve(args: argparse.Namespace) -> int:
    from connect import connect_temporal, has_search_attributes, load_api_client

    api_client: ApiClient = load_api_client(args.kubeconfig, user_agent=USER_AGENT)
    kube = Kube(api_client)
    hosts = args.cert_host or ["127.0.0.1", "localhost"]
    cert = make_serving_cert(hosts)
    server = WebhookServer(make_resolver(kube), server_context(cert.cert_pem, cert.key_pem),
                           host=args.webhook_host, port=args.webhook_port)
    port = await server.start()
    url = args.webhook_url or (None if args.webhook_service else f"https://{hosts[0]}:{port}{PATH}")
    service = None
    if args.webhook_service:
        ns, _, rest = args.webhook_service.partition("/")
        svc_name, _, svc_port = rest.partition(":")
        service = {"namespace": ns, "name": svc_name, "path": PATH, "port": int(svc_port or 443)}
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
