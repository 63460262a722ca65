"""The declarative controller's Kubernetes writes: its finalizer on a Rollout, the workload-type label on a
Deployment, Kruise's marks going with the hand-back, Kruise's bookkeeping of a running release (the
canary's pod counts, ``deployment-strategy``'s partition, ``deployment-extra-status``), the idle status of
a Rollout with no rollout running, and the release of a Deployment the webhook held that no workflow took
over."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes.client.exceptions import ApiException

from declarative.objects import CONTROLLER, Obj, by_hash, without_hash
from declarative.webhook import stable_hash_from
from kruise.bookkeeping import canary_counts, counts_patch, deployment_marks, marks_patch
from kruise.rollout_object import NOT_FOUND, RolloutRef
from kruise.status import idle_status
from kube.client import Kube, rollout_path
from kube.names import KRUISE_MARKS
from kube.objects import owned_replica_sets
from workflows.model import (
    ANN_HANDING_BACK,
    ANN_IN_PROGRESS,
    ANN_ORIGINAL_STRATEGY,
    ANN_WORKFLOW_ID,
    ANNOTATION_PREFIX,
    LABEL_STABLE_REVISION,
    LABEL_WORKLOAD_TYPE,
    RolloutStatus,
)

__all__ = ["KubeWrites"]

log = logging.getLogger("rollout-controller")


class KubeWrites:
    """The Kubernetes side of ``Controller`` (its API client and thread pool are set by ``Controller``)."""

    kube: Kube
    executor: ThreadPoolExecutor

    async def _req(self, method: str, path: str, body: Any = None, **kw: Any) -> Obj:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: self.kube.request(method, path, body, **kw))

    async def _release(self, dep: Obj, rss: list[Obj], *, to_stable: bool = False) -> None:
        """Undo the webhook's hold of a Deployment no workflow took over: strategy back, unpaused."""
        md = dep["metadata"]
        ann = dict(md.get("annotations") or {})
        if not ann.get(ANN_HANDING_BACK):  # first say so, or the webhook keeps holding the Deployment
            md["annotations"] = {**ann, ANN_HANDING_BACK: CONTROLLER}
            dep.pop("status", None)
            dep = await self._req("PUT", Kube.deployment_path(md["namespace"], md["name"]), dep)
            md = dep["metadata"]
            ann = dict(md.get("annotations") or {})
        spec = dep["spec"]
        labels = dict(md.get("labels") or {})
        stable_hash = labels.get(LABEL_STABLE_REVISION, "")
        if to_stable:
            stable = by_hash(rss, stable_hash)
            if stable is not None:
                spec["template"] = without_hash(stable["spec"]["template"])
        spec["strategy"] = json.loads(ann.get(ANN_ORIGINAL_STRATEGY) or '{"type": "RollingUpdate"}')
        spec["paused"] = False
        md["annotations"] = {
            k: v for k, v in ann.items() if not k.startswith(ANNOTATION_PREFIX) and k not in KRUISE_MARKS
        }
        md["labels"] = {
            k: v for k, v in labels.items() if not k.startswith(ANNOTATION_PREFIX) and k not in KRUISE_MARKS
        }
        dep.pop("status", None)
        await self._req("PUT", Kube.deployment_path(md["namespace"], md["name"]), dep)
        log.info("released %s/%s held by the webhook (no rollout took it over)", md["namespace"], md["name"])

    async def _drop_kruise_marks(self, dep: Obj) -> None:
        """Kruise's bookkeeping goes with the hand-back (the workflow's finalize drops only ours)."""
        md = dep["metadata"]
        ann, labels = md.get("annotations") or {}, md.get("labels") or {}
        if ann.get(ANN_IN_PROGRESS) or ann.get(ANN_WORKFLOW_ID):
            return  # still held
        drop_ann = [k for k in KRUISE_MARKS if k in ann]
        drop_labels = [k for k in KRUISE_MARKS if k in labels]
        if not drop_ann and not drop_labels:
            return
        patch = {"metadata": {"annotations": dict.fromkeys(drop_ann), "labels": dict.fromkeys(drop_labels)}}
        await self._req(
            "PATCH",
            Kube.deployment_path(md["namespace"], md["name"]),
            patch,
            content_type="application/merge-patch+json",
        )

    async def _label(self, dep: Obj, on: bool) -> None:
        labels = dep["metadata"].get("labels") or {}
        if (LABEL_WORKLOAD_TYPE in labels) == on:
            return
        patch: Obj = {"metadata": {"labels": {LABEL_WORKLOAD_TYPE: "deployment" if on else None}}}
        if not on:  # handed back: Kruise's bookkeeping goes too
            ann = dep["metadata"].get("annotations") or {}
            patch["metadata"]["labels"].update(dict.fromkeys(k for k in KRUISE_MARKS if k in labels))
            patch["metadata"]["annotations"] = dict.fromkeys(k for k in KRUISE_MARKS if k in ann)
        md = dep["metadata"]
        await self._req(
            "PATCH",
            Kube.deployment_path(md["namespace"], md["name"]),
            patch,
            content_type="application/merge-patch+json",
        )

    async def _bookkeeping(self, obj: Obj, dep: Obj, st: RolloutStatus, canary: Obj | None, wid: str) -> None:
        """Kruise's bookkeeping between the run's status writes, which come per step: on the Deployment
        the partition of the current step and ``deployment-extra-status``, then in the Rollout's
        ``canaryStatus`` the canary's pods (created, ready) and the Deployment's generation, as Kruise's
        controllers keep them on every sync."""
        if canary is None:
            return
        counts = canary_counts(canary)
        dmd = dep["metadata"]
        generation = int(dmd.get("generation") or 0)
        marks = deployment_marks(
            dmd.get("annotations") or {}, st, int(dep["spec"].get("replicas") or 0), counts[1]
        )
        if marks:
            try:
                written = await self._req(
                    "PATCH",
                    Kube.deployment_path(dmd["namespace"], dmd["name"]),
                    marks_patch(marks, wid),
                    content_type="application/json-patch+json",
                )
                generation = int(written["metadata"].get("generation") or 0)
            except ApiException as exc:
                if exc.status not in (404, 409, 422):  # gone, or no longer held by this run
                    raise
                return
        stored = (obj.get("status") or {}).get("canaryStatus") or {}
        if stored.get("canaryRevision") != st.canary_revision:
            return  # the run has not written this release's status yet
        patch = counts_patch(stored, counts, generation)
        if patch is None:
            return
        md = obj["metadata"]
        try:
            await self._req(
                "PATCH",
                rollout_path(md["namespace"], md["name"], "status"),
                patch,
                content_type="application/merge-patch+json",
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    async def _set_finalizers(self, obj: Obj, finalizers: list[str]) -> Obj:
        md = obj["metadata"]
        patch = {"metadata": {"finalizers": finalizers, "resourceVersion": md["resourceVersion"]}}
        try:
            return await self._req(
                "PATCH",
                rollout_path(md["namespace"], md["name"]),
                patch,
                content_type="application/merge-patch+json",
            )
        except ApiException as exc:
            if exc.status in (404, 409):
                return obj
            if exc.status == 422:  # refused by the validating webhook (a spec it refuses): nothing to add
                log.info("%s/%s: finalizer not written: %s", md["namespace"], md["name"], exc.body)
                return obj
            raise

    async def _idle(self, obj: Obj, ref: RolloutRef, dep: Obj) -> bool:
        """No release running: Kruise's idle status (Healthy, the synthetic completed canaryStatus,
        generations that follow the Rollout and the Deployment)."""
        assert ref.plan is not None
        rss = await self._replica_sets(dep)
        revision = stable_hash_from(rss)(dep["spec"].get("template") or {})
        if not revision:
            return False  # the Deployment's ReplicaSet is not there yet: the next pass
        new = idle_status(
            obj.get("status") or {},
            generation=ref.generation,
            steps=len(ref.plan.steps),
            workload_generation=int(dep["metadata"].get("generation") or 0),
            revision=revision,
        )
        await self._put_status(obj, new)
        return True

    async def _idle_status(self, obj: Obj, phase: str, message: str) -> None:
        """Status of a Rollout with no rollout running (written only when it changes: no hot loop)."""
        md = obj["metadata"]
        current = obj.get("status") or {}
        generation = int(md.get("generation") or 0)
        if phase == "Initial" and message == NOT_FOUND:
            current = {}  # Kruise resets the whole status when the workload is gone
        await self._put_status(
            obj, {**current, "phase": phase, "message": message, "observedGeneration": generation}
        )

    async def _put_status(self, obj: Obj, status: Obj) -> None:
        if status == (obj.get("status") or {}):
            return  # written only when it changes: no hot loop
        md = obj["metadata"]
        try:
            await self._req(
                "PUT",
                rollout_path(md["namespace"], md["name"], "status"),
                {**copy.deepcopy(obj), "status": status},
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    async def _replica_sets(self, dep: Obj) -> list[Obj]:
        loop = asyncio.get_running_loop()
        rss = await loop.run_in_executor(self.executor, self.kube.list_deployment_replica_sets, dep)
        return owned_replica_sets(dep, rss)
