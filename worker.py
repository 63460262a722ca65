"""The rollout worker (``rollout-worker``): runs the Rollout workflow and its activities.

Configuration comes from the environment:

- Temporal: the SDK's environment config (``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``,
  ``TEMPORAL_API_KEY``, ``TEMPORAL_TLS_*`` and the ``temporal.toml`` profile), plus the short
  ``TEMPORAL_TLS_CERT`` / ``TEMPORAL_TLS_KEY`` / ``TEMPORAL_TLS_CA`` paths for mTLS.
- Kubernetes: ``KUBECONFIG`` (or ``--kubeconfig``/``--context``), else the in-cluster service account.

At start-up the worker registers the search attributes RolloutTarget/RolloutPhase/RolloutStep
where the server allows it. Rollouts never depend on that: ``rollout start`` checks the server and
tells the workflow (in its input) whether to upsert them.

SIGTERM/SIGINT shut the worker down gracefully (a replacement picks the rollouts up in under a
second); after a SIGKILL the short sticky-queue timeout (3 s) moves them to another worker.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, NoReturn

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfig
from temporalio.service import TLSConfig
from temporalio.worker import Worker

from activities.rollout import ACTIVITY_THREADS, RolloutActivities
from activities.traffic import TrafficActivities
from cli.process import exit_now
from workflows.model import SA_PHASE, SA_STEP, SA_TARGET, TASK_QUEUE
from workflows.rollout import RolloutWorkflow

__all__ = [
    "ACTIVITY_THREADS",
    "CONNECTION_POOL_SIZE",
    "MAX_CONCURRENT_ACTIVITIES",
    "SEARCH_ATTRIBUTES",
    "build_worker",
    "connect_temporal",
    "ensure_search_attributes",
    "has_search_attributes",
    "load_api_client",
    "main",
    "run_worker",
]

log = logging.getLogger("rollout-worker")

SEARCH_ATTRIBUTES: dict[str, IndexedValueType.ValueType] = {
    SA_TARGET: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    SA_PHASE: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    SA_STEP: IndexedValueType.INDEXED_VALUE_TYPE_INT,
}


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


async def connect_temporal(address: str | None = None, namespace: str | None = None) -> Client:
    """Connect to Temporal from env config; explicit ``address``/``namespace`` win over it."""
    config: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
    if address:
        config["target_host"] = address
    if namespace:
        config["namespace"] = namespace
    config.setdefault("target_host", "localhost:7233")
    cert, key, ca = (os.environ.get(f"TEMPORAL_TLS_{k}") for k in ("CERT", "KEY", "CA"))
    if cert or key or ca:
        config["tls"] = TLSConfig(
            client_cert=_read(cert) if cert else None,
            client_private_key=_read(key) if key else None,
            server_root_ca_cert=_read(ca) if ca else None,
        )
    return await Client.connect(data_converter=pydantic_data_converter, **config)


WORKER_USER_AGENT = "rollout-worker/0.1"

# Concurrency, sized together: a running activity holds at most two threads and connections at a time
# (a readiness wait: its Deployment and ReplicaSet watch streams; anything else: one blocking call), so
# ACTIVITY_THREADS (2048, RolloutActivities' own pool, threads made on demand) and the connection pool
# cover all activity slots. Every rollout paused for approval keeps one activity (its replicas watch)
# running, so the slot count is also the number of rollouts one worker can hold paused while others
# still progress; run more workers beyond that. (Defaults would be min(32, CPUs + 4) = 6 threads and 10
# pooled connections.) The traffic activities use the loop's default executor, which run_worker sizes
# the same.
MAX_CONCURRENT_ACTIVITIES = 1000
CONNECTION_POOL_SIZE = ACTIVITY_THREADS
CLI_USER_AGENT = "rollout-cli/0.1"


def load_api_client(
    kubeconfig: str | None = None, context: str | None = None, *, user_agent: str = WORKER_USER_AGENT
) -> k8s_client.ApiClient:
    """A Kubernetes ``ApiClient`` from a kubeconfig (``KUBECONFIG`` by default) or in-cluster config.

    ``user_agent`` names the caller in API server audit logs (worker vs. CLI).
    """
    path = kubeconfig or os.environ.get("KUBECONFIG")
    configuration = k8s_client.Configuration()
    if path or context or os.path.exists(os.path.expanduser("~/.kube/config")):
        k8s_config.load_kube_config(config_file=path, context=context, client_configuration=configuration)
    else:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except k8s_config.ConfigException as exc:
            raise RuntimeError(
                "no Kubernetes config: set KUBECONFIG or --kubeconfig, or run in a cluster"
            ) from exc
    configuration.connection_pool_maxsize = CONNECTION_POOL_SIZE
    api = k8s_client.ApiClient(configuration)
    api.user_agent = user_agent
    return api


async def has_search_attributes(client: Client) -> bool:
    """Whether the namespace has all three rollout search attributes (False if we may not ask)."""
    try:
        resp = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
    except Exception:  # noqa: BLE001 - any refusal means "don't rely on them"
        return False
    return all(name in resp.custom_attributes for name in SEARCH_ATTRIBUTES)


async def ensure_search_attributes(client: Client) -> bool:
    """Register missing rollout search attributes where allowed; return whether all exist now."""
    try:
        resp = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        missing = {k: v for k, v in SEARCH_ATTRIBUTES.items() if k not in resp.custom_attributes}
        if missing:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
            )
            log.info("registered search attributes %s", ", ".join(sorted(missing)))
    except Exception as exc:  # noqa: BLE001 - e.g. Temporal Cloud without operator permission
        log.warning("could not register search attributes (%s); rollouts run without them", exc)
    return await has_search_attributes(client)


def build_worker(client: Client, api_client: k8s_client.ApiClient, task_queue: str = TASK_QUEUE) -> Worker:
    """The worker for the Rollout workflow and its activities on ``task_queue``."""
    acts = RolloutActivities(api_client)
    traffic = TrafficActivities(api_client)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[RolloutWorkflow],
        activities=[
            acts.take_over,
            acts.get_snapshot,
            acts.scale_replica_set,
            acts.step_move,
            acts.wait_for_batch,
            acts.watch_replicas,
            acts.finalize,
            acts.retarget,
            *traffic.activities(),
        ],
        max_concurrent_activities=MAX_CONCURRENT_ACTIVITIES,
        # A replacement worker picks up a rollout quickly after this one is SIGKILLed.
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=3),
        # Cancellation (undo) reaches a waiting activity within about a second.
        max_heartbeat_throttle_interval=timedelta(seconds=1),
        graceful_shutdown_timeout=timedelta(seconds=5),
    )


async def run_worker(
    *,
    task_queue: str = TASK_QUEUE,
    kubeconfig: str | None = None,
    context: str | None = None,
    address: str | None = None,
    namespace: str | None = None,
) -> None:
    """Run until SIGTERM/SIGINT, then shut down gracefully."""
    client = await connect_temporal(address, namespace)
    await ensure_search_attributes(client)
    api_client = load_api_client(kubeconfig, context)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Activities run their blocking client calls through asyncio.to_thread (the default executor).
    loop.set_default_executor(ThreadPoolExecutor(ACTIVITY_THREADS, thread_name_prefix="activity"))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    worker = build_worker(client, api_client, task_queue)
    async with worker:
        log.info("rollout worker polling task queue %r on %s", task_queue, client.namespace)
        print(f"rollout-worker ready on task queue {task_queue}", flush=True)
        await stop.wait()
        log.info("shutting down")
    api_client.close()


def main(argv: list[str] | None = None) -> NoReturn:
    """``rollout-worker`` console script (leaves via ``exit_now``: SDK teardown can crash, 1 in 25 stops)."""
    parser = argparse.ArgumentParser(prog="rollout-worker", description=__doc__.splitlines()[0])
    parser.add_argument("--task-queue", default=os.environ.get("ROLLOUT_TASK_QUEUE", TASK_QUEUE))
    parser.add_argument("--kubeconfig", default=None)
    parser.add_argument("--context", default=None)
    parser.add_argument("--address", default=None, help="Temporal address (overrides TEMPORAL_ADDRESS)")
    parser.add_argument("--temporal-namespace", default=None, help="overrides TEMPORAL_NAMESPACE")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(
            run_worker(
                task_queue=args.task_queue,
                kubeconfig=args.kubeconfig,
                context=args.context,
                address=args.address,
                namespace=args.temporal_namespace,
            )
        )
    except Exception as exc:  # noqa: BLE001 - one line at the edge
        print(f"rollout-worker: error: {exc}", file=sys.stderr)
        exit_now(1)
    exit_now(0)


if __name__ == "__main__":
    main()
