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
import datetime
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from declarative.certs import CertKeeper, FileCertSource, SecretCertStore, make_serving_cert, server_context
from declarative.controller import Controller
from declarative.crd_conversion import conversion_url, ensure_conversion
from declarative.leader import LeaderElector
from declarative.webhook import APPROVE_PATH, PATH, VALIDATE_PATH, WebhookServer, stable_hash_from
from kube.client import Kube
from workflows.model import LABEL_WORKLOAD_TYPE, TASK_QUEUE, RolloutTimings

__all__ = ["WEBHOOK_CONFIG_NAME", "main", "webhook_configuration"]

log = logging.getLogger("rollout-controller")
WEBHOOK_CONFIG_NAME = "temporal-rollouts"
WEBHOOK_NAME = "deployments.rollouts.temporal.io"
CREATE_WEBHOOK_NAME = "deployment-create.rollouts.temporal.io"
APPROVAL_WEBHOOK_NAME = "rollout-approvals.rollouts.temporal.io"
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
        "namespaceSelector": {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]}
            ]
        },
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

    Rollout status UPDATE, ``failurePolicy: Ignore``: stamps the authenticated approver.
    """
    rules = [
        {
            "operations": ["UPDATE"],
            "apiGroups": ["apps"],
            "apiVersions": ["v1"],
            "resources": ["deployments"],
            "scope": "Namespaced",
        }
    ]
    create_rules = [{**rules[0], "operations": ["CREATE"]}]
    status_rules = [
        {
            "operations": ["UPDATE"],
            "apiGroups": ["rollouts.kruise.io"],
            "apiVersions": ["v1beta1"],
            "resources": ["rollouts/status"],
            "scope": "Namespaced",
        }
    ]
    status_config = {**client_config}
    if "url" in status_config:
        status_config["url"] = status_config["url"].replace(PATH, APPROVE_PATH)
    else:
        status_config["service"] = {**status_config["service"], "path": APPROVE_PATH}
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": WEBHOOK_CONFIG_NAME, "labels": {"app.kubernetes.io/name": "rollout-controller"}},
        "webhooks": [
            _hook(
                WEBHOOK_NAME,
                client_config,
                timeout_seconds,
                reinvocationPolicy="Never",
                rules=rules,
                objectSelector={"matchExpressions": [{"key": LABEL_WORKLOAD_TYPE, "operator": "Exists"}]},
            ),
            _hook(
                CREATE_WEBHOOK_NAME,
                client_config,
                timeout_seconds,
                reinvocationPolicy="Never",
                rules=create_rules,
                failurePolicy="Ignore",
            ),
            # Ignore: down, status writes (the worker's too) go on; an approval then carries no
            # authenticated name and is recorded as unverified.
            _hook(
                APPROVAL_WEBHOOK_NAME,
                status_config,
                timeout_seconds,
                reinvocationPolicy="Never",
                rules=status_rules,
                failurePolicy="Ignore",
            ),
        ],
    }


def validating_configuration(client_config: dict[str, Any], timeout_seconds: int = 10) -> dict[str, Any]:
    """The ValidatingWebhookConfiguration for Rollouts: Kruise's ``vrollout.kb.io`` rules and texts.

    ``failurePolicy: Fail`` as Kruise: while the controller is down a Rollout cannot be created or
    changed (a duplicate or an edit that is not allowed mid-rollout cannot slip in).
    """
    rules = [
        {
            "operations": ["CREATE", "UPDATE"],
            "apiGroups": ["rollouts.kruise.io"],
            "apiVersions": ["v1beta1"],
            "resources": ["rollouts"],
            "scope": "Namespaced",
        }
    ]
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": WEBHOOK_CONFIG_NAME, "labels": {"app.kubernetes.io/name": "rollout-controller"}},
        "webhooks": [_hook(VALIDATING_WEBHOOK_NAME, client_config, timeout_seconds, rules=rules)],
    }


def ensure_webhook_configuration(
    kube: Kube, ca_pem: bytes, url: str | None, service: dict[str, Any] | None
) -> None:
    """Create or update our Mutating- and ValidatingWebhookConfiguration with this process's CA (and URL),
    and the Rollout CRD's conversion webhook the same way."""
    bundle = base64.b64encode(ca_pem).decode()
    for collection, make, path in (
        (MWC_PATH, webhook_configuration, PATH),
        (VWC_PATH, validating_configuration, VALIDATE_PATH),
    ):
        client_config: dict[str, Any] = {"caBundle": bundle}
        if url:
            client_config["url"] = url.replace(PATH, path)
        else:
            client_config["service"] = {**(service or {}), "path": path}
        _ensure(kube, collection, make(client_config), bundle, in_cluster=not url)
    ensure_conversion(kube, bundle, conversion_url(url, PATH) if url else None)


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


def _cert_keeper(
    args: argparse.Namespace, kube: Kube, hosts: list[str], publish: Any, may_rotate: Any
) -> CertKeeper:
    """The serving certificate: from ``--tls-dir``, the shared ``--cert-secret``, or made here."""
    validity = datetime.timedelta(seconds=args.cert_validity)
    store = files = None
    if args.tls_dir:
        files = FileCertSource(Path(args.tls_dir))
        cert = files.read()
    elif args.cert_secret:
        ns, _, name = args.cert_secret.partition("/")
        store = SecretCertStore(kube, ns, name, hosts, validity)
        cert = store.load_or_create()
    else:
        cert = make_serving_cert(hosts, validity)
    client_ca = Path(args.client_ca).read_bytes() if args.client_ca else b""
    ctx = server_context(cert.cert_pem, cert.key_pem, client_ca)
    return CertKeeper(
        ctx,
        cert,
        hosts=hosts,
        validity=validity,
        publish=publish,
        may_rotate=may_rotate,
        store=store,
        files=files,
    )


async def _keep_certs(keeper: CertKeeper, stop: asyncio.Event, seconds: float) -> None:
    while not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
        try:
            if await asyncio.to_thread(keeper.check):
                log.info("webhook certificate reloaded (expires %s)", keeper.current_expiry())
        except Exception as exc:  # noqa: BLE001 - the API is away or a file half-written: next look
            log.warning("webhook certificate check failed: %s", exc)


async def serve(args: argparse.Namespace) -> int:
    from connect import connect_temporal, has_search_attributes, load_api_client

    api_client: ApiClient = load_api_client(args.kubeconfig, user_agent=USER_AGENT)
    kube = Kube(api_client)
    hosts = args.cert_host or ["127.0.0.1", "localhost"]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    elector: LeaderElector | None = None
    if args.leader_elect:
        ns, _, name = args.lease.partition("/")
        identity = args.identity or f"{socket.gethostname()}_{os.getpid()}"
        elector = LeaderElector(
            api_client,
            ns,
            name,
            identity,
            lease_duration=args.lease_duration,
            renew_deadline=args.renew_deadline,
            retry_period=args.retry_period,
        )
    url_box: list[str | None] = [None]
    service = None
    if args.webhook_service:
        ns, _, rest = args.webhook_service.partition("/")
        svc_name, _, svc_port = rest.partition(":")
        service = {"namespace": ns, "name": svc_name, "port": int(svc_port or 443)}

    def publish(ca_pem: bytes) -> None:
        ensure_webhook_configuration(kube, ca_pem, url_box[0], service)

    keeper = await asyncio.to_thread(
        _cert_keeper, args, kube, hosts, publish, lambda: elector is None or elector.leading.is_set()
    )
    users = args.trusted_user or list(TRUSTED_USERS)
    server = WebhookServer(
        make_resolver(kube),
        keeper.ctx,
        host=args.webhook_host,
        port=args.webhook_port,
        list_rollouts=list_rollouts(kube),
        trusted_users=None if "any" in users else frozenset(users),
        reuse_port=args.webhook_reuse_port,
    )
    port = await server.start()
    url_box[0] = args.webhook_url or (None if args.webhook_service else f"https://{hosts[0]}:{port}{PATH}")
    await asyncio.to_thread(publish, keeper.current.ca_pem)
    log.info("webhook listening on %s:%d (%s)", args.webhook_host, port, url_box[0] or service)
    certs = asyncio.create_task(_keep_certs(keeper, stop, args.cert_check_seconds))
    client = await connect_temporal()
    controller = Controller(
        client,
        api_client,
        namespace=args.namespace,
        task_queue=args.task_queue,
        timings=RolloutTimings(poll_interval_seconds=args.poll_interval),
        use_search_attributes=await has_search_attributes(client),
    )
    print(
        f"rollout-controller: watching Rollouts in {args.namespace or 'all namespaces'}; "
        f"webhook https://{args.webhook_host}:{port}{PATH}",
        flush=True,
    )
    if args.ready_file:
        Path(args.ready_file).write_text(f"https://{args.webhook_host}:{port}{PATH}\n")
    try:
        if elector is None:
            await controller.run(stop)
            return 0
        return await _lead(elector, controller, stop)
    finally:
        certs.cancel()
        await server.stop()


async def _lead(elector: LeaderElector, controller: Controller, stop: asyncio.Event) -> int:
    """Serve the webhooks as a candidate; reconcile only while leading. A lost Lease ends the process
    (exit 1: its replacement starts as a candidate), so two replicas never reconcile at once."""
    elector.start()
    print(f"rollout-controller: {elector.identity} is a candidate for the Lease", flush=True)
    waits = [asyncio.ensure_future(e.wait()) for e in (stop, elector.leading)]
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for w in waits:
        w.cancel()
    if stop.is_set():
        return 0
    print(f"rollout-controller: {elector.identity} leads; reconciling", flush=True)
    halt = asyncio.Event()

    async def until_stop_or_lost() -> None:
        await asyncio.wait(
            [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(elector.lost.wait())],
            return_when=asyncio.FIRST_COMPLETED,
        )
        halt.set()

    watcher = asyncio.create_task(until_stop_or_lost())
    try:
        await controller.run(halt)
    finally:
        watcher.cancel()
    return 1 if elector.lost.is_set() and not stop.is_set() else 0


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
    p.add_argument(
        "--trusted-user",
        action="append",
        help="a user (request.userInfo.username) whose handing-back mark the webhook honours "
        "(repeat; default: the worker's and the controller's ServiceAccounts in "
        "rollout-system; 'any' trusts every writer, for local stacks without authentication)",
    )
    p.add_argument("--ready-file", help="write the webhook URL here once serving (for `rollout dev up`)")
    p.add_argument(
        "--webhook-reuse-port",
        action="store_true",
        help="bind the webhook port with SO_REUSEPORT: replicas on one host share it",
    )
    ha = p.add_argument_group("replicas (leader election and a shared certificate)")
    ha.add_argument(
        "--leader-elect",
        action="store_true",
        help="reconcile only while holding the Lease (--lease); all replicas serve the webhooks",
    )
    ha.add_argument(
        "--lease", default="rollout-system/rollout-controller", help="NAMESPACE/NAME of the Lease"
    )
    ha.add_argument(
        "--identity",
        default=os.environ.get("POD_NAME"),
        help="this replica's name in the Lease (default: POD_NAME, else host_pid)",
    )
    ha.add_argument("--lease-duration", type=int, default=15, help="seconds a leader's Lease lasts unrenewed")
    ha.add_argument("--renew-deadline", type=int, default=10, help="seconds a leader may fail to renew")
    ha.add_argument("--retry-period", type=int, default=2, help="seconds between Lease attempts")
    tls = p.add_argument_group("webhook certificate")
    tls.add_argument(
        "--cert-secret",
        help="NAMESPACE/NAME of a Secret that holds the certificate every "
        "replica serves (made by the first one; rotated by the leader)",
    )
    tls.add_argument(
        "--tls-dir",
        help="serve tls.crt/tls.key (ca.crt: the caBundle) from this directory, "
        "reloaded when they change (cert-manager)",
    )
    tls.add_argument(
        "--cert-validity",
        type=float,
        default=365 * 86400.0,
        help="seconds a certificate made here is valid; rotated at half of it",
    )
    tls.add_argument(
        "--cert-check-seconds",
        type=float,
        default=60.0,
        help="how often the certificate is checked for rotation or a change",
    )
    tls.add_argument(
        "--client-ca",
        help="require a client certificate signed by this CA file (the "
        "apiserver's webhook client certificate, AdmissionConfiguration)",
    )
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
