"""ReplicaSet controller (upstream ``pkg/controller/replicaset/replica_set.go``, reference 2.5)."""

from __future__ import annotations

import copy
import time
from collections.abc import Hashable, Iterable
from typing import Any

from kubesim.controllers import podutil
from kubesim.controllers.base import Controller
from kubesim.controllers.cache import controller_ref
from kubesim.controllers.deployment_util import min_ready_seconds, replicas_of
from kubesim.controllers.pod_template import default_pod_template
from kubesim.controllers.writes import update_status
from kubesim.errors import ApiError
from kubesim.resources import PODS, REPLICASETS
from kubesim.selectors import matches_label_selector
from kubesim.store import WatchEvent, now_rfc3339

Obj = dict[str, Any]

BURST_REPLICAS = 500
COMPONENT = "replicaset-controller"


def owner_reference(obj: Obj, api_version: str, kind: str) -> Obj:
    """``metav1.NewControllerRef``."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod_from_template(rs: Obj, template: Obj | None = None) -> Obj:
    """``GetPodFromTemplate``: labels, annotations, finalizers and spec from the template; generateName.

    ``template`` is the RS's defaulted template when the caller already has it (the store copies on create, so
    one template may serve many pods)."""
    if template is None:
        template = default_pod_template((rs.get("spec") or {}).get("template") or {})
    tmeta = template.get("metadata") or {}
    meta: Obj = {
        "generateName": f"{rs['metadata']['name']}-",
        "namespace": rs["metadata"].get("namespace", ""),
    }
    for field in ("labels", "annotations"):
        if tmeta.get(field):
            meta[field] = dict(tmeta[field])
    if tmeta.get("finalizers"):
        meta["finalizers"] = list(tmeta["finalizers"])
    meta["ownerReferences"] = [owner_reference(rs, "apps/v1", "ReplicaSet")]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": template.get("spec") or {},
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    }


def calculate_status(rs: Obj, pods: list[Obj], now: float, failure: Obj | None, terminating: int = 0) -> Obj:
    """``calculateStatus``; zero counters omitted like the apiserver's JSON (``replicas`` is always
    present)."""
    template_labels = (((rs.get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
        "labels"
    ) or {}
    min_ready = min_ready_seconds(rs)
    fully_labeled = ready = available = 0
    for pod in pods:
        labels = pod["metadata"].get("labels") or {}
        if all(labels.get(k) == v for k, v in template_labels.items()):
            fully_labeled += 1
        if podutil.is_ready(pod):
            ready += 1
            if podutil.is_available(pod, min_ready, now):
                available += 1
    status: Obj = {"replicas": len(pods)}
    for field, value in (
        ("fullyLabeledReplicas", fully_labeled),
        ("readyReplicas", ready),
        ("availableReplicas", available),
        # Upstream 1.37 (DeploymentReplicaSetTerminatingReplicas, on by default): owned pods being deleted.
        ("terminatingReplicas", terminating),
        ("observedGeneration", int(rs["metadata"].get("generation") or 0)),
    ):
        if value:
            status[field] = value
    conditions = [
        c for c in (rs.get("status") or {}).get("conditions") or [] if c.get("type") != "ReplicaFailure"
    ]
    if failure is not None:
        old = next(
            (
                c
                for c in (rs.get("status") or {}).get("conditions") or []
                if c.get("type") == "ReplicaFailure"
            ),
            None,
        )
        if old is not None and old.get("reason") == failure["reason"] and old.get("status") == "True":
            failure = dict(failure, lastTransitionTime=old.get("lastTransitionTime"))
        conditions.append(failure)
    if conditions:
        status["conditions"] = conditions
    return status


class ReplicaSetController(Controller):
    name = "replicaset"
    coalesce = 0.01

    def keys(self) -> Iterable[Hashable]:
        return [(rs["metadata"]["namespace"], rs["metadata"]["name"]) for rs in self.cache.all(REPLICASETS)]

    def on_event(self, event: WatchEvent, old: Obj | None) -> None:
        if event.resource == REPLICASETS:
            meta = event.obj["metadata"]
            if event.type != "DELETED":
                self.enqueue((meta.get("namespace", ""), meta["name"]))
        elif event.resource == PODS:
            ns = event.obj["metadata"].get("namespace", "")
            for pod in (event.obj, old):
                if pod is None:
                    continue
                ref = controller_ref(pod)
                if ref is not None:
                    if ref.get("kind") == "ReplicaSet":
                        self.enqueue((ns, ref.get("name", "")))
                elif event.type != "DELETED" and pod is event.obj:
                    # An orphan: every RS whose selector matches may adopt it.
                    labels = pod["metadata"].get("labels") or {}
                    for rs in self.cache.in_namespace(REPLICASETS, ns):
                        if matches_label_selector((rs.get("spec") or {}).get("selector"), labels):
                            self.enqueue((ns, rs["metadata"]["name"]))

    def order(self, batch: list[Hashable]) -> list[Hashable]:
        """Shrinking ReplicaSets first: a Deployment scales its old RS down before it scales the new one up,
        and deleting before creating keeps the pod count within maxSurge even when both changes are drained in
        one batch."""
        shrinking, rest = [], []
        for key in batch:
            rs = self.cache.get(REPLICASETS, *key)  # type: ignore[misc]
            if rs is not None and replicas_of(rs) < int((rs.get("status") or {}).get("replicas") or 0):
                shrinking.append(key)
            else:
                rest.append(key)
        return shrinking + rest

    # ---- reconcile -----------------------------------------------------------------------------------------

    def reconcile(self, key: Any) -> None:
        ns, name = key
        rs = self.cache.get(REPLICASETS, ns, name)
        if rs is None:
            return
        pods = self._claim_pods(rs)
        failure: Obj | None = None
        if not rs["metadata"].get("deletionTimestamp"):
            if len(pods) != replicas_of(rs):
                failure = self._manage_replicas(rs, pods)
                pods = self._claim_pods(rs)
        now = time.time()
        status = calculate_status(rs, pods, now, failure, self._terminating(rs))
        if status != (rs.get("status") or {}):
            new = dict(rs)
            new["metadata"] = dict(rs["metadata"])
            new["status"] = status
            update_status(self.store, REPLICASETS, new, owned=True)
        self._requeue_for_availability(rs, pods, now)

    def _terminating(self, rs: Obj) -> int:
        """Owned pods with a deletionTimestamp that have not finished (upstream ``FilterTerminatingPods``)."""
        uid = rs["metadata"]["uid"]
        return sum(
            1
            for pod in self.cache.owned(PODS, uid)
            if (controller_ref(pod) or {}).get("uid") == uid
            and pod["metadata"].get("deletionTimestamp")
            and podutil.phase(pod) not in ("Succeeded", "Failed")
        )

    def _claim_pods(self, rs: Obj) -> list[Obj]:
        """``claimPods`` over active pods: keep owned matches, release owned non-matches, adopt orphans."""
        meta = rs["metadata"]
        uid, ns = meta["uid"], meta.get("namespace", "")
        selector = (rs.get("spec") or {}).get("selector")
        deleting = bool(meta.get("deletionTimestamp"))
        out: list[Obj] = []
        for pod in self.cache.owned(PODS, uid):
            ref = controller_ref(pod)
            if ref is None or ref.get("uid") != uid or not podutil.is_active(pod):
                continue
            if matches_label_selector(selector, pod["metadata"].get("labels")):
                out.append(pod)
            elif not deleting:
                self._release(pod, uid)
        if not deleting:
            for pod in self.cache.orphans_in(PODS, ns):
                if podutil.is_active(pod) and matches_label_selector(selector, pod["metadata"].get("labels")):
                    adopted = self._adopt(rs, pod)
                    if adopted is not None:
                        out.append(adopted)
        return out

    def _adopt(self, rs: Obj, pod: Obj) -> Obj | None:
        new = copy.deepcopy(pod)
        refs = new["metadata"].setdefault("ownerReferences", [])
        refs.append(owner_reference(rs, "apps/v1", "ReplicaSet"))
        try:
            self.store.update(PODS, new)
        except ApiError:
            return None
        return self.cache.get(PODS, pod["metadata"].get("namespace", ""), pod["metadata"]["name"])

    def _release(self, pod: Obj, uid: str) -> None:
        new = copy.deepcopy(pod)
        new["metadata"]["ownerReferences"] = [
            r for r in new["metadata"].get("ownerReferences") or [] if r.get("uid") != uid
        ]
        if not new["metadata"]["ownerReferences"]:
            del new["metadata"]["ownerReferences"]
        try:
            self.store.update(PODS, new)
        except ApiError as exc:
            if exc.code != 404:
                raise

    def _manage_replicas(self, rs: Obj, pods: list[Obj]) -> Obj | None:
        """Create or delete pods towards ``spec.replicas``; returns a ReplicaFailure condition on error."""
        diff = len(pods) - replicas_of(rs)
        recorder = self.ctx.recorder
        if diff < 0:
            want = min(-diff, BURST_REPLICAS)
            template = default_pod_template((rs.get("spec") or {}).get("template") or {})
            # Slow start: batches of 1, 2, 4, ...; a failed batch stops the rest.
            batch, created = 1, 0
            while created < want:
                size = min(batch, want - created)
                for _ in range(size):
                    try:
                        pod = self.store.create(PODS, pod_from_template(rs, template))
                    except ApiError as exc:
                        recorder.event(
                            rs,
                            "Warning",
                            "FailedCreate",
                            f"Error creating: {exc.message}",
                            COMPONENT,
                            "ReplicaSet",
                        )
                        return _failure("FailedCreate", exc.message)
                    recorder.event(
                        rs,
                        "Normal",
                        "SuccessfulCreate",
                        f"Created pod: {pod['metadata']['name']}",
                        COMPONENT,
                        "ReplicaSet",
                    )
                    created += 1
                batch *= 2
        elif diff > 0:
            diff = min(diff, BURST_REPLICAS)
            related = self._related_pods(rs)
            for pod in podutil.pods_to_delete(pods, related, diff, time.time()):
                pmeta = pod["metadata"]
                try:
                    self.store.delete(PODS, pmeta.get("namespace", ""), pmeta["name"], uid=pmeta.get("uid"))
                except ApiError as exc:
                    if exc.code == 404:
                        continue
                    recorder.event(
                        rs,
                        "Warning",
                        "FailedDelete",
                        f"Error deleting: {exc.message}",
                        COMPONENT,
                        "ReplicaSet",
                    )
                    return _failure("FailedDelete", exc.message)
                recorder.event(
                    rs, "Normal", "SuccessfulDelete", f"Deleted pod: {pmeta['name']}", COMPONENT, "ReplicaSet"
                )
        return None

    def _related_pods(self, rs: Obj) -> list[Obj]:
        """``getIndirectlyRelatedPods``: pods of every RS sharing this RS's controller owner."""
        ref = controller_ref(rs)
        if ref is None:
            return list(self.cache.owned(PODS, rs["metadata"]["uid"]))
        out: list[Obj] = []
        for sibling in self.cache.owned(REPLICASETS, ref.get("uid", "")):
            out.extend(self.cache.owned(PODS, sibling["metadata"]["uid"]))
        return out

    def _requeue_for_availability(self, rs: Obj, pods: list[Obj], now: float) -> None:
        """With ``minReadySeconds``, re-sync when the next ready pod turns available."""
        min_ready = min_ready_seconds(rs)
        if min_ready <= 0:
            return
        pending = [
            podutil.ready_since(p) + min_ready
            for p in pods
            if podutil.is_ready(p) and not podutil.is_available(p, min_ready, now)
        ]
        if pending:
            key = (rs["metadata"].get("namespace", ""), rs["metadata"]["name"])
            self.enqueue_after(key, max(0.0, min(pending) - now) + 0.05)


def _failure(reason: str, message: str) -> Obj:
    return {
        "type": "ReplicaFailure",
        "status": "True",
        "lastTransitionTime": now_rfc3339(),
        "reason": reason,
        "message": message,
    }
