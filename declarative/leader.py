"""Leader election for ``rollout-controller`` replicas on a ``coordination.k8s.io`` Lease.

The kubernetes client's own ``leaderelection`` (the client-go algorithm: a candidate takes the Lease
only when its holder has not renewed it for ``lease_duration`` seconds of the candidate's own clock;
every write carries the Lease's resourceVersion, so two candidates never both win) runs in a daemon
thread and reports to the event loop. Only the leader reconciles; every replica serves the webhooks.
A leader that cannot renew within ``renew_deadline`` stops leading: the process then exits, as
client-go's controllers do, and its replacement joins as a candidate.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from kubernetes.client import ApiClient, CoordinationV1Api
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

__all__ = ["LeaderElector"]

log = logging.getLogger("rollout-controller")
# The client's election logs every retry at INFO ("yet to finish lease_duration"): keep only warnings.
logging.getLogger("leaderelection").setLevel(logging.WARNING)


class LeaderElector:
    """``leading`` is set once this process holds the Lease; ``lost`` once it stopped holding it."""

    def __init__(
        self,
        api_client: ApiClient,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_duration: int = 15,
        renew_deadline: int = 10,
        retry_period: int = 2,
    ) -> None:
        self.identity = identity
        self.leading = asyncio.Event()
        self.lost = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        lock = LeaseLock(name, namespace, identity)
        lock.api_instance = CoordinationV1Api(api_client)  # ours, not the client's global configuration
        self._config = electionconfig.Config(
            lock,
            lease_duration=lease_duration,
            renew_deadline=renew_deadline,
            retry_period=retry_period,
            onstarted_leading=self._started,
            onstopped_leading=self._stopped,
        )

    def _started(self) -> None:
        log.info(
            "%s: leading (Lease %s/%s)", self.identity, self._config.lock.namespace, self._config.lock.name
        )
        self._loop.call_soon_threadsafe(self.leading.set)

    def _stopped(self) -> None:
        log.warning("%s: lost the Lease; stopping", self.identity)
        self._loop.call_soon_threadsafe(self.lost.set)

    def start(self) -> None:
        threading.Thread(
            target=leaderelection.LeaderElection(self._config).run, daemon=True, name="leader-election"
        ).start()
