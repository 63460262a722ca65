"""The rollout worker (``rollout-worker``): runs the Rollout workflow and its activities.

Connections (Temporal from env config, Kubernetes from KUBECONFIG or in-cluster) come from ``connect``.

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
from datetime import timedelta
from typing import NoReturn

from kubernetes import client as k8s_client
from temporalio.client import Client
from temporalio.worker import Worker

from activities.analysis import AnalysisActivities, secret_reader
from activities.common import ACTIVITY_THREADS, ScopeInterceptor
from activities.converge import ConvergeActivities
from activities.legacy import WaitActivities
from activities.notify import NotifyActivities
from activities.release import ReleaseActivities
from activities.release_outcome import TargetOutcomeActivities
from activities.rollout_status import RolloutObjectActivities
from activities.scaling import ScalingActivities
from activities.senders import SenderActivities
from activities.takeover import TakeoverActivities
from activities.traffic import TrafficActivities
from connect import connect_temporal, ensure_search_attributes, exit_now, load_api_client
from kube.client import KubeClient, NamespaceScope
from watcher import DeploymentWatcher
from workflows.model import TASK_QUEUE, task_queue_for
from workflows.release import ReleaseWorkflow
from workflows.rollout import RolloutWorkflow

__all__ = [
    "MAX_CONCURRENT_ACTIVITIES",
    "RolloutWorker",
    "build_worker",
    "main",
    "run_worker",
    "watch_namespaces",
    "worker_scope",
]

log = logging.getLogger("rollout-worker")

# Concurrency, sized together: a running activity holds at most two threads and connections at a time
# (a step's converge: its ReplicaSet watch stream plus one call; anything else: one blocking call), so
# ACTIVITY_THREADS (2048, the activities' own pool, threads made on demand) and the connection pool
# (connect.CONNECTION_POOL_SIZE, the same) cover all activity slots. A paused rollout holds no slot (the
# shared watcher signals it), so the slots bound the rollouts *in a step* at once, each holding one
# converge_step until its batch is ready; beyond that, steps wait in the task queue for a slot here or
# on another worker (docs/operations.md, "Sizing the worker"). Pollers and the workflow cache stay at
# the SDK's defaults: measured, they did not move throughput (the dev server bounds it).
MAX_CONCURRENT_ACTIVITIES = 1000


def _namespaces() -> list[str]:
    return [n.strip() for n in os.environ.get("ROLLOUT_WATCH_NAMESPACES", "").split(",") if n.strip()]


def watch_namespaces() -> list[str | None]:
    """``ROLLOUT_WATCH_NAMESPACES`` (comma-separated, for a namespaced Role), else all namespaces."""
    return list(_namespaces()) or [None]


def worker_scope() -> NamespaceScope:
    """Where the worker may act: ``ROLLOUT_WATCH_NAMESPACES``, else every namespace but kube-system.

    Enforced on every Kubernetes request of every activity and of the watcher (``kube.client``).
    """
    return NamespaceScope.of(_namespaces())


class RolloutWorker(Worker):
    """The Temporal worker plus the shared Deployment watcher(s), for as long as it runs."""

    watchers: list[DeploymentWatcher]

    async def run(self) -> None:
        for w in self.watchers:
            w.start()
        try:
            await super().run()
        finally:
            for w in self.watchers:
                await w.stop()


def build_worker(client: Client, api_client: k8s_client.ApiClient, task_queue: str = TASK_QUEUE) -> Worker:
    """The worker for the Rollout workflow and its activities on ``task_queue``.

    It also runs the shared Deployment watcher (``watcher.py``): paused rollouts hold no activity and
    no watch; one informer per entry of ``watch_namespaces`` signals their workflows.
    """
    scope = worker_scope()
    kube = KubeClient(api_client, threads=ACTIVITY_THREADS, scope=scope)
    notify = NotifyActivities.from_env()
    classes = (
        ScalingActivities,
        WaitActivities,
        ConvergeActivities,
        TrafficActivities,
        RolloutObjectActivities,
        ReleaseActivities,
    )
    worker = RolloutWorker(
        client,
        task_queue=task_queue,
        workflows=[RolloutWorkflow, ReleaseWorkflow],
        activities=[
            *(fn for cls in classes for fn in cls(kube).activities()),
            *TakeoverActivities(kube, notify_defaults=notify.defaults).activities(),
            *notify.activities(),
            *SenderActivities(client).activities(),
            *TargetOutcomeActivities(client).activities(),
            # providers, and the Secrets their web headers name (through the scoped client)
            *AnalysisActivities(secrets=secret_reader(kube)).activities(),
        ],
        max_concurrent_activities=MAX_CONCURRENT_ACTIVITIES,
        interceptors=[ScopeInterceptor()],
        # A replacement worker picks up a rollout quickly after this one is SIGKILLed.
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=3),
        # Cancellation (undo) reaches a waiting activity within about a second.
        max_heartbeat_throttle_interval=timedelta(seconds=1),
        graceful_shutdown_timeout=timedelta(seconds=5),
    )
    worker.watchers = [
        DeploymentWatcher(client, kube.kube, executor=kube.executor, namespace=ns, scope=scope)
        for ns in watch_namespaces()
    ]
    return worker


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
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    worker = build_worker(client, api_client, task_queue)
    async with worker:
        log.info("rollout worker polling task queue %r on %s", task_queue, client.namespace)
        print(f"rollout-worker ready on task queue {task_queue}", flush=True)
        await stop.wait()
        log.info("shutting down")
    api_client.close()


def _in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and not os.environ.get("KUBECONFIG")


def main(argv: list[str] | None = None) -> NoReturn:
    """``rollout-worker`` console script (leaves via ``exit_now``: SDK teardown can crash, 1 in 25 stops)."""
    parser = argparse.ArgumentParser(prog="rollout-worker", description=__doc__.splitlines()[0])
    parser.add_argument("--task-queue", default=os.environ.get("ROLLOUT_TASK_QUEUE", TASK_QUEUE))
    parser.add_argument("--kubeconfig", default=None)
    parser.add_argument("--context", default=None)
    parser.add_argument(
        "--cluster",
        default=os.environ.get("ROLLOUT_CLUSTER") or None,
        help="serve only this cluster's release targets (task queue <queue>-NAME; context NAME by default)",
    )
    parser.add_argument("--address", default=None, help="Temporal address (overrides TEMPORAL_ADDRESS)")
    parser.add_argument("--temporal-namespace", default=None, help="overrides TEMPORAL_NAMESPACE")
    args = parser.parse_args(argv)
    if args.cluster:  # release waves: credentials stay in their cluster, one queue per cluster
        args.task_queue = task_queue_for(args.cluster, args.task_queue)
        args.context = args.context or (None if args.kubeconfig is None and _in_cluster() else args.cluster)
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
