"""Take-over and hand-back activities: the Deployment becomes ours (held: paused, Recreate, and its
canary ReplicaSet) and is handed back (strategy restored, unpaused, our metadata removed); ``retarget``
moves a Deployment we own to a new canary (``--replace``, or approve after another writer's edit).

New runs carry a reference, never a pod template: ``rollout start`` wrote the template and the hold
with the caller's credentials, so ``take_over`` only checks that the cluster holds what the reference
names and creates the canary ReplicaSet of it. The template-writing paths remain for runs started
before references (their histories replay, and one still in flight finishes as it began).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from kubernetes.client.exceptions import ApiException
from temporalio import activity

from activities.common import (
    DeploymentActivities,
    fail,
    refuse,
)
from kube.client import KubeClient
from kube.names import (
    ANN_DESIRED,
    ANN_HANDING_BACK,
    ANN_IN_PROGRESS,
    ANN_MAX,
    ANN_ORIGINAL_STRATEGY,
    ANN_REVISION,
    ANN_WORKFLOW_ID,
    ANNOTATION_PREFIX,
    HASH_LABEL,
    LABEL_STABLE_REVISION,
    LABEL_WORKLOAD_TYPE,
)
from kube.objects import find_replica_set_for_template, owned_replica_sets, template_hash, templates_equal
from workflows import errors, plan
from workflows.checks import check_held, check_takeover, check_template_ref, stable_by_revision
from workflows.model import FinalizeInput, RetargetInput, TakeoverInput, TakeoverResult

__all__ = ["TakeoverActivities"]

Obj = dict[str, Any]

_MAX_COLLISIONS = 10


class TakeoverActivities(DeploymentActivities):
    """take_over, retarget, finalize (and the canary ReplicaSet they ensure)."""

    def __init__(self, client: KubeClient, *, notify_defaults: list[str] | None = None) -> None:
        super().__init__(client)
        # The worker's default notification targets: take_over answers them to a run that asks, which
        # saves that run an activity (and a workflow task) of its own.
        self.notify_defaults = list(notify_defaults or [])

    @activity.defn
    async def take_over(self, inp: TakeoverInput) -> TakeoverResult:
        """One atomic write: new template, paused, Recreate, parked strategy, our metadata.

        Idempotent: a Deployment that already carries our workflow ID is not written again.
        """
        ns, name = inp.ref.namespace, inp.ref.name
        differs = False  # the held Deployment runs another canary (a closed run's hold, taken over)
        earlier: Obj | None = None  # that canary, when the held template is another (by reference)
        resumed: bool | None = None  # the hold was this ID's before this run (None: the owner says)
        dep = await self._get_deployment(ns, name)
        md = dep["metadata"]
        annotations: dict[str, str] = dict(md.get("annotations") or {})
        labels: dict[str, str] = dict(md.get("labels") or {})
        owner = annotations.get(ANN_WORKFLOW_ID)
        if owner and owner != inp.workflow_id:
            raise fail(f"deployment {ns}/{name} is under rollout {owner}", errors.NOT_OWNER)
        spec = dep["spec"]
        rss = await self._call(self.kube.list_deployment_replica_sets, dep)

        by_reference = inp.template is None
        if by_reference and not (inp.adopt and not owner):
            refusal = check_held(dep, inp.workflow_id, inp.template_hash)
            if refusal is not None:
                raise refuse(refusal)
        if owner == inp.workflow_id or (inp.adopt and not owner and annotations.get(ANN_IN_PROGRESS)):
            if by_reference:
                refusal = check_template_ref(dep, inp.workflow_id, inp.template_hash)
                if refusal is not None:
                    raise refuse(refusal)
            stable_revision = labels.get(LABEL_STABLE_REVISION, "")
            original = json.loads(annotations.get(ANN_ORIGINAL_STRATEGY) or "{}")
            found, refusal = stable_by_revision(dep, rss)
            if found is None:
                raise refuse(refusal)
            stable = found
            if templates_equal(stable["spec"]["template"], spec.get("template") or {}):
                raise fail(
                    f"deployment {ns}/{name} holds the stable revision's template; nothing to roll out",
                    errors.INVALID_ROLLOUT_SPEC,
                )
            if owner != inp.workflow_id:
                dep = await self._adopt(dep, inp)
            elif by_reference:
                activity.logger.info(
                    "took over %s/%s as held by its starter: template %s, stable revision %s",
                    ns,
                    name,
                    inp.template_hash,
                    stable_revision,
                )
                # The starter's hold carries this ID too; only a canary already scaled up says a closed
                # run held it (an orphaned hold taken over): wait out its activities, and supersede its
                # canary when the held template is another one.
                resumed, earlier = _canaries_running(rss, stable, spec.get("template") or {})
                differs = earlier is not None
            else:
                activity.logger.info("deployment %s/%s already taken over by %s", ns, name, owner)
                differs = not templates_equal(spec.get("template") or {}, inp.template or {})
        elif inp.adopt:
            raise fail(
                f"deployment {ns}/{name} is not held for a rollout (no {ANN_IN_PROGRESS} annotation)",
                errors.INVALID_ROLLOUT_SPEC,
            )
        else:
            assert inp.template is not None  # by reference, check_held refused a Deployment not held
            refusal = check_takeover(dep, rss, inp.template)
            if refusal is not None:
                raise refuse(refusal)
            found = find_replica_set_for_template(dep, rss, spec["template"])
            assert found is not None  # check_takeover found it
            stable = found
            stable_revision = (stable["metadata"].get("labels") or {}).get(HASH_LABEL, "")
            original = copy.deepcopy(spec.get("strategy") or {"type": "RollingUpdate"})
            annotations[ANN_WORKFLOW_ID] = inp.workflow_id
            annotations[ANN_ORIGINAL_STRATEGY] = json.dumps(original, sort_keys=True)
            labels[LABEL_STABLE_REVISION] = stable_revision
            md["annotations"] = annotations
            md["labels"] = labels
            spec["template"] = copy.deepcopy(inp.template)
            spec["paused"] = True
            spec["strategy"] = {"type": "Recreate"}
            dep.pop("status", None)
            dep = await self._call(self.kube.put_deployment, dep)
            activity.logger.info(
                "took over %s/%s: paused, Recreate, stable revision %s", ns, name, stable_revision
            )

        # The ReplicaSets listed above are still current: our Deployment PUT (paused) creates none.
        # An earlier run's canary is the one to supersede first (the workflow retargets to the held one).
        canary = earlier if earlier is not None else await self._ensure_canary(dep, original, rss)
        return TakeoverResult(
            stable_rs=stable["metadata"]["name"],
            stable_revision=stable_revision,
            canary_rs=canary["metadata"]["name"],
            canary_revision=(canary["metadata"].get("labels") or {}).get(HASH_LABEL, ""),
            original_strategy=original,
            template_differs=differs,
            resumed=owner == inp.workflow_id if resumed is None else resumed,
            notify_defaults=list(self.notify_defaults) if inp.notify_defaults else [],
        )

    async def _adopt(self, dep: Obj, inp: TakeoverInput) -> Obj:
        """Take over a Deployment the admission webhook holds (declarative mode): it is paused with
        its strategy parked and the stable revision labelled already, on the template the user wrote;
        add our workflow ID and drop the webhook's mark."""
        md, spec = dep["metadata"], dep["spec"]
        annotations = dict(md.get("annotations") or {})
        annotations.pop(ANN_IN_PROGRESS, None)
        annotations[ANN_WORKFLOW_ID] = inp.workflow_id
        md["annotations"] = annotations
        if inp.template is not None:  # runs before references; now the user's write is the template
            spec["template"] = copy.deepcopy(inp.template)
        spec["paused"] = True
        spec["strategy"] = {"type": "Recreate"}
        dep.pop("status", None)
        dep = await self._call(self.kube.put_deployment, dep)
        activity.logger.info("adopted %s/%s held by the admission webhook", md["namespace"], md["name"])
        return dep

    async def _ensure_canary(self, dep: Obj, original_strategy: Obj, rss: list[Obj] | None = None) -> Obj:
        """Create (or find) the canary ReplicaSet; the native controller adopts it after unpause.

        Deterministic name ``<deploy>-<hash>``; an owned ReplicaSet with an equal template is reused
        (a retry, or a revision that existed before). ``rss``: the Deployment's ReplicaSets if just
        listed (else they are listed here).
        """
        md, spec = dep["metadata"], dep["spec"]
        ns, name = md["namespace"], md["name"]
        template = spec["template"]
        if rss is None:
            rss = await self._call(self.kube.list_deployment_replica_sets, dep)
        existing = find_replica_set_for_template(dep, rss, template)
        if existing is not None:
            return existing
        replicas = int(spec.get("replicas") or 0)
        surge, _ = plan.resolve_fenceposts(original_strategy.get("rollingUpdate"), replicas)
        revisions = [
            int((rs["metadata"].get("annotations") or {}).get(ANN_REVISION, "0") or 0)
            for rs in owned_replica_sets(dep, rss)
        ]
        for collision in range(_MAX_COLLISIONS):
            h = template_hash(template, collision)
            rs_template = copy.deepcopy(template)
            rs_template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
            selector = copy.deepcopy(spec["selector"])
            selector.setdefault("matchLabels", {})[HASH_LABEL] = h
            body: Obj = {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": f"{name}-{h}",
                    "namespace": ns,
                    "labels": dict(rs_template["metadata"]["labels"]),
                    "annotations": {
                        ANN_REVISION: str(max(revisions, default=0) + 1),
                        ANN_DESIRED: str(replicas),
                        ANN_MAX: str(replicas + surge),
                    },
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": name,
                            "uid": md["uid"],
                            "controller": True,
                            "blockOwnerDeletion": True,
                        }
                    ],
                },
                "spec": {
                    "replicas": 0,
                    "minReadySeconds": int(spec.get("minReadySeconds") or 0),
                    "selector": selector,
                    "template": rs_template,
                },
            }
            try:
                created = await self._call(self.kube.create_replica_set, ns, body)
                activity.logger.info("created canary ReplicaSet %s/%s", ns, body["metadata"]["name"])
                return created
            except ApiException as exc:
                if exc.status != 409:
                    raise
            other = await self._get_rs(ns, f"{name}-{h}")
            if other is not None and templates_equal(other["spec"]["template"], template):
                return other
        raise fail(f"could not find a free ReplicaSet name for {ns}/{name}", errors.REPLICASET_CONFLICT)

    @activity.defn
    async def retarget(self, inp: RetargetInput) -> TakeoverResult:
        """Write ``template`` into the Deployment we own (still paused) and ensure its canary ReplicaSet.

        Used by continuous release (``--replace``) and to restore our template after another writer
        changed it (approve). Idempotent: no write when the template is already there.
        """
        ns, name = inp.ref.namespace, inp.ref.name
        dep = await self._get_deployment(ns, name)
        md, spec = dep["metadata"], dep["spec"]
        annotations = md.get("annotations") or {}
        owner = annotations.get(ANN_WORKFLOW_ID)
        if owner != inp.workflow_id:
            raise fail(f"deployment {ns}/{name} is not under rollout {inp.workflow_id}", errors.NOT_OWNER)
        original = json.loads(annotations.get(ANN_ORIGINAL_STRATEGY) or "{}")
        stable = await self._get_rs(ns, inp.stable_rs)
        if stable is None:
            raise fail(f"stable ReplicaSet {ns}/{inp.stable_rs} is gone", errors.STABLE_NOT_FOUND)
        template = inp.template
        if inp.restore_template_from_rs:  # approve over another writer: our canary's template back
            template = await self._template_of(
                ns, inp.restore_template_from_rs, f"canary ReplicaSet {ns}/{inp.restore_template_from_rs}"
            )
        elif template is None:  # --replace by reference: the caller wrote it
            refusal = check_template_ref(dep, inp.workflow_id, inp.template_hash)
            if refusal is not None:
                raise refuse(refusal)
            template = spec["template"]
        if templates_equal(stable["spec"]["template"], template):
            raise fail(
                f"the new template of {ns}/{name} equals the stable revision; use undo",
                errors.INVALID_ROLLOUT_SPEC,
            )
        if not templates_equal(spec["template"], template):
            spec["template"] = copy.deepcopy(template)
            dep.pop("status", None)
            dep = await self._call(self.kube.put_deployment, dep)
            activity.logger.info("retargeted %s/%s to a new pod template", ns, name)
        canary = await self._ensure_canary(dep, original)
        return TakeoverResult(
            stable_rs=inp.stable_rs,
            stable_revision=(stable["metadata"].get("labels") or {}).get(HASH_LABEL, ""),
            canary_rs=canary["metadata"]["name"],
            canary_revision=(canary["metadata"].get("labels") or {}).get(HASH_LABEL, ""),
            original_strategy=original,
        )

    async def _template_of(self, ns: str, rs_name: str, what: str) -> Obj:
        """ReplicaSet ``rs_name``'s pod template without its hash label, to write into the Deployment."""
        rs = await self._get_rs(ns, rs_name)
        if rs is None:
            raise fail(f"{what} is gone", errors.STABLE_NOT_FOUND)
        template: Obj = copy.deepcopy(rs["spec"]["template"])
        (template.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
        return template

    @activity.defn
    async def finalize(self, inp: FinalizeInput) -> None:
        """Hand the Deployment back in one write: strategy restored, unpaused, our metadata removed.

        With ``restore_template_from_rs`` (undo) the pod template is set back to that ReplicaSet's.
        Idempotent: a Deployment without our workflow annotation is left alone.
        """
        ns, name = inp.ref.namespace, inp.ref.name
        dep = await self._get_deployment(ns, name)
        md, spec = dep["metadata"], dep["spec"]
        annotations = dict(md.get("annotations") or {})
        owner = annotations.get(ANN_WORKFLOW_ID)
        if owner is None:
            activity.logger.info("deployment %s/%s already handed back", ns, name)
            return
        if owner != inp.workflow_id:
            raise fail(f"deployment {ns}/{name} is under rollout {owner}", errors.NOT_OWNER)
        if LABEL_WORKLOAD_TYPE in (md.get("labels") or {}) and annotations.get(ANN_HANDING_BACK) != owner:
            # Under a Rollout: say "handing back" first, so the admission webhook lets the next write
            # drop our marks (and re-holds the Deployment when anyone else drops them).
            annotations[ANN_HANDING_BACK] = owner
            md["annotations"] = annotations
            dep.pop("status", None)
            dep = await self._call(self.kube.put_deployment, dep)
            md, spec = dep["metadata"], dep["spec"]
            annotations = dict(md.get("annotations") or {})
        if inp.restore_template_from_rs:
            spec["template"] = await self._template_of(
                ns, inp.restore_template_from_rs, f"stable ReplicaSet {inp.restore_template_from_rs}"
            )
        md["annotations"] = {k: v for k, v in annotations.items() if not k.startswith(ANNOTATION_PREFIX)}
        md["labels"] = {
            k: v for k, v in (md.get("labels") or {}).items() if not k.startswith(ANNOTATION_PREFIX)
        }
        spec["strategy"] = copy.deepcopy(inp.original_strategy) or {"type": "RollingUpdate"}
        spec["paused"] = False
        dep.pop("status", None)
        await self._call(self.kube.put_deployment, dep)
        activity.logger.info("handed %s/%s back to the Deployment controller", ns, name)


def _canaries_running(rss: list[Obj], stable: Obj, template: Obj) -> tuple[bool, Obj | None]:
    """Whether a ReplicaSet other than the stable one has replicas, and the largest of those that runs
    another template than ``template`` (an earlier run's canary), if any."""
    stable_name = stable["metadata"]["name"]
    running = [
        rs
        for rs in rss
        if rs["metadata"]["name"] != stable_name and int((rs.get("spec") or {}).get("replicas") or 0) > 0
    ]
    others = [
        rs for rs in running if not templates_equal((rs.get("spec") or {}).get("template") or {}, template)
    ]
    earlier = max(others, key=lambda rs: int(rs["spec"]["replicas"]), default=None)
    return bool(running), earlier
