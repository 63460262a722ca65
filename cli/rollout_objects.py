"""Names on the command line that point at a Kruise Rollout object (declarative mode).

``rollout approve|undo|status rollouts-nginx`` and ``rollout/rollouts-nginx`` (kubectl-kruise's form)
address the rollout of the Deployment the Rollout's ``workloadRef`` names. A Deployment of the given
name wins over a Rollout of the same name, so every existing command line keeps its meaning.
"""

from __future__ import annotations

from kubernetes.client.exceptions import ApiException

from cli.context import CommandError, RolloutContext, read_with_retry
from kube.client import rollout_path

__all__ = ["deployment_for"]

_PREFIXES = ("rollout/", "rollouts/", "rollout.rollouts.kruise.io/", "rollouts.rollouts.kruise.io/")


async def deployment_for(ctx: RolloutContext, name: str) -> str:
    """The Deployment that ``name`` (a Deployment, a Rollout, or ``rollout/NAME``) is about."""
    ns = ctx.namespace
    explicit = next((name[len(p) :] for p in _PREFIXES if name.startswith(p)), None)
    if explicit is None:
        try:
            await read_with_retry(ctx.kube.get_deployment, ns, name)
            return name
        except ApiException as exc:
            if exc.status != 404:
                return name
    target = explicit or name
    try:
        obj = await read_with_retry(ctx.kube.request, "GET", rollout_path(ns, target))
    except ApiException as exc:
        if explicit is not None:
            raise CommandError(f'rollout "{target}" not found in namespace "{ns}"') from exc
        return name
    workload = str(((obj.get("spec") or {}).get("workloadRef") or {}).get("name") or "")
    if not workload:
        raise CommandError(f"rollout {ns}/{target} names no workload (spec.workloadRef.name)")
    return workload
