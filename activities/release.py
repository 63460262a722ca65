"""Activities of release targets (``workflows/release_hold.py``).

``hold_stable_template``: before a target held at 100% rolls back, the Deployment (still paused and held)
gets its stable ReplicaSet's template back. The Deployment controller scales every old ReplicaSet to 0
while the new one is saturated (all replicas, all available), and for a held target that is the canary:
the rollback's first move, the stable ReplicaSet up, would be undone at once. With the stable template
written, the stable ReplicaSet is the new one, and the rollback's moves stand.
"""

from __future__ import annotations

import copy

from temporalio import activity

from activities.common import DeploymentActivities, fail
from kube.names import ANN_WORKFLOW_ID, HASH_LABEL
from kube.objects import templates_equal
from workflows import errors
from workflows.model import StableTemplateInput

__all__ = ["ReleaseActivities"]


class ReleaseActivities(DeploymentActivities):
    """Writes that only release targets need."""

    @activity.defn
    async def hold_stable_template(self, inp: StableTemplateInput) -> None:
        """Write the stable ReplicaSet's pod template into the held Deployment (idempotent)."""
        ns, name = inp.ref.namespace, inp.ref.name
        dep = await self._get_deployment(ns, name)
        owner = (dep["metadata"].get("annotations") or {}).get(ANN_WORKFLOW_ID)
        if owner != inp.workflow_id:
            raise fail(f"deployment {ns}/{name} is not under rollout {inp.workflow_id}", errors.NOT_OWNER)
        stable = await self._get_rs(ns, inp.stable_rs)
        if stable is None:
            raise fail(f"stable ReplicaSet {ns}/{inp.stable_rs} is gone", errors.STABLE_NOT_FOUND)
        template = copy.deepcopy(stable["spec"]["template"])
        (template.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
        if templates_equal(dep["spec"].get("template") or {}, template):
            return
        dep["spec"]["template"] = template
        dep.pop("status", None)
        await self._call(self.kube.put_deployment, dep)
        activity.logger.info("%s/%s holds its stable template again before the rollback", ns, name)
