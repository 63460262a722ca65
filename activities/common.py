"""What every activity class shares: the one ``KubeClient`` seam, its error mapping, ``activities()``.

Every write reads the object first, returns early when it is already in the wanted state, and
otherwise PUTs it back with its ``resourceVersion`` as precondition. A 409 Conflict is raised as is,
so Temporal retries the whole read-modify-write. Transient errors (5xx, 429, network) are retried
the same way; requests that can never succeed raise ``ApplicationError`` with a named type from
``workflows.errors`` and ``non_retryable=True``.

Scope: the worker's ``KubeClient`` carries a ``NamespaceScope`` and refuses every request (and watch)
outside it before it is sent; ``ScopeInterceptor`` turns that refusal, from any activity, into a
non-retryable ``NamespaceNotAllowed`` error, so no activity can act outside the configured namespaces.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from kubernetes.client.exceptions import ApiException
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from kube.client import KubeClient, OutOfScope
from kube.objects import describe_template_change, templates_equal
from workflows import errors
from workflows.checks import Refusal
from workflows.model import ReplicaSetCounts, Snapshot, SnapshotInput

__all__ = [
    "ACTIVITY_THREADS",
    "DeploymentActivities",
    "KubeActivities",
    "ScopeInterceptor",
    "counts_of",
    "drift_of",
    "fail",
    "quiet_if_abandoned",
    "refuse",
    "snapshot_of",
]

T = TypeVar("T")
Obj = dict[str, Any]

# Threads for the blocking client calls (see worker.py: sized with the activity slots and the
# connection pool). Our own pool, not the loop's default one (min(32, CPUs + 4) = 6 threads here).
# A readiness wait holds two (its Deployment and ReplicaSet watches), any other activity at most one.
ACTIVITY_THREADS = 2048


def refuse(refusal: Refusal | None) -> ApplicationError:
    """A precondition check's refusal as a non-retryable activity error of its named type."""
    assert refusal is not None
    return fail(refusal.message, refusal.error_type)


def fail(message: str, error_type: str) -> ApplicationError:
    return ApplicationError(message, type=error_type, non_retryable=True)


async def quiet_if_abandoned(wait: Awaitable[T]) -> T:
    """Await a long wait; one the workflow stopped caring about (undo, approve) ends quietly."""
    try:
        return await wait
    except asyncio.CancelledError:
        _raise_if_abandoned()
        raise


def _raise_if_abandoned() -> None:
    """An abandoned wait ends as a benign failure, not as a warning."""
    details = activity.cancellation_details()
    if details is not None and details.not_found:
        raise ApplicationError(
            "wait abandoned by the workflow", type="Abandoned", category=ApplicationErrorCategory.BENIGN
        )


def counts_of(rs: Obj | None, name: str) -> ReplicaSetCounts:
    if rs is None:
        return ReplicaSetCounts(name=name)
    return ReplicaSetCounts(
        name=name,
        replicas=int((rs.get("spec") or {}).get("replicas") or 0),
        ready_replicas=int((rs.get("status") or {}).get("readyReplicas") or 0),
    )


def drift_of(dep: Obj, canary: Obj | None) -> str:
    """How the Deployment's template differs from the canary ReplicaSet's ("" when it does not).

    Only our take-over and retarget write the template while we own the Deployment, and both make it
    equal to the canary's; anything else is another writer (kubectl edit, GitOps, CI).
    """
    if canary is None:
        return ""
    current = (dep.get("spec") or {}).get("template") or {}
    ours = (canary.get("spec") or {}).get("template") or {}
    return "" if templates_equal(current, ours) else describe_template_change(ours, current)


def snapshot_of(inp: SnapshotInput, dep: Obj, rss: dict[str, Obj | None]) -> Snapshot:
    canary = rss.get(inp.canary_rs)
    return Snapshot(
        replicas=int(dep["spec"].get("replicas") or 0),
        stable=counts_of(rss.get(inp.stable_rs), inp.stable_rs),
        canary=counts_of(canary, inp.canary_rs),
        template_drift=drift_of(dep, canary),
    )


class KubeActivities:
    """Base of every activity class: one ``KubeClient``, one error mapping, one way to register."""

    # The named type of a request the API server rejects as invalid (400/422): never retried.
    INVALID_REQUEST = errors.INVALID_ROLLOUT_SPEC

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self.kube = client.kube
        self.executor = client.executor

    def activities(self) -> list[Callable[..., Any]]:
        """Every ``@activity.defn`` method of this object, for ``Worker(activities=[...])``."""
        cls = type(self)
        return [
            getattr(self, name)
            for name in sorted(dir(cls))
            if hasattr(getattr(cls, name, None), "__temporal_activity_definition")
        ]

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking client call in the pool; map impossible requests to non-retryable errors."""
        try:
            return await self.client.run(fn, *args)
        except OutOfScope as exc:
            raise fail(str(exc), errors.NAMESPACE_NOT_ALLOWED) from exc
        except ApiException as exc:
            if exc.status in (400, 422):
                raise fail(
                    f"the API server rejected the request: {exc.body or exc.reason}", self.INVALID_REQUEST
                ) from exc
            raise


class DeploymentActivities(KubeActivities):
    """Reads of the Deployment and its ReplicaSets, shared by take-over, scaling and waits."""

    async def _get_deployment(self, namespace: str, name: str) -> Obj:
        try:
            return await self._call(self.kube.get_deployment, namespace, name)
        except ApiException as exc:
            if exc.status == 404:
                raise fail(
                    f'deployment "{name}" not found in namespace "{namespace}"', errors.DEPLOYMENT_NOT_FOUND
                ) from exc
            raise

    async def _get_rs(self, namespace: str, name: str) -> Obj | None:
        try:
            return await self._call(self.kube.get_replica_set, namespace, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def _read(self, inp: SnapshotInput) -> tuple[Obj, dict[str, Obj | None]]:
        """The Deployment and its stable and canary ReplicaSets, as the server has them."""
        ns = inp.ref.namespace
        dep = await self._get_deployment(ns, inp.ref.name)
        rss = {
            inp.stable_rs: await self._get_rs(ns, inp.stable_rs),
            inp.canary_rs: await self._get_rs(ns, inp.canary_rs),
        }
        return dep, rss

    async def _snapshot(self, inp: SnapshotInput) -> Snapshot:
        dep, rss = await self._read(inp)
        return snapshot_of(inp, dep, rss)


class _ScopeInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await self.next.execute_activity(input)
        except OutOfScope as exc:  # e.g. from a watch, which does not pass through ``_call``
            raise fail(str(exc), errors.NAMESPACE_NOT_ALLOWED) from exc


class ScopeInterceptor(Interceptor):
    """Every activity: a request outside the worker's namespaces fails it at once, never retried."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ScopeInbound(next)
