"""Deployment controller (upstream ``pkg/controller/deployment``: ``deployment_controller.go``, ``sync.go``,
``rolling.go``, ``recreate.go``, ``progress.go``; reference 2.4).

The structure mirrors upstream function by function so behaviour can be checked against it. ``d`` is a private
working copy of the Deployment; after each write its resourceVersion is refreshed (upstream instead re-syncs
after the resulting conflict, which ends in the same state).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Hashable, Iterable
from typing import Any

from kubesim.controllers import deployment_progress as progress
from kubesim.controllers import deployment_rollout as rollout
from kubesim.controllers import deployment_util as du
from kubesim.controllers import pod_template
from kubesim.controllers.base import Controller
from kubesim.controllers.cache import controller_ref
from kubesim.controllers.replicaset import owner_reference
from kubesim.controllers.writes import update_status, with_rv
from kubesim.errors import ApiError
from kubesim.resources import DEPLOYMENTS, PODS, REPLICASETS
from kubesim.selectors import matches_label_selector
from kubesim.store import WatchEvent

Obj = dict[str, Any]

COMPONENT = "deployment-controller"


class DeploymentController(Controller):
    name = "deployment"
    coalesce = 0.01

    def keys(self) -> Iterable[Hashable]:
        return [(d["metadata"]["namespace"], d["metadata"]["name"]) for d in self.cache.all(DEPLOYMENTS)]

    def on_event(self, event: WatchEvent, old: Obj | None) -> None:
        res = event.resource
        if res == DEPLOYMENTS:
            if event.type != "DELETED":
                meta = event.obj["metadata"]
                self.enqueue((meta.get("namespace", ""), meta["name"]))
        elif res == REPLICASETS:
            ns = event.obj["metadata"].get("namespace", "")
            for rs in (event.obj, old):
                if rs is None:
                    continue
                ref = controller_ref(rs)
                if ref is not None:
                    if ref.get("kind") == "Deployment":
                        self.enqueue((ns, ref.get("name", "")))
                elif rs is event.obj and event.type != "DELETED":
                    labels = rs["metadata"].get("labels") or {}
                    for d in self.cache.in_namespace(DEPLOYMENTS, ns):
                        if matches_label_selector((d.get("spec") or {}).get("selector"), labels):
                            self.enqueue((ns, d["metadata"]["name"]))
        elif res == PODS and event.type == "DELETED":
            # Recreate waits for old pods to be gone (upstream deletePod handler).
            ref = controller_ref(event.obj)
            if ref is None or ref.get("kind") != "ReplicaSet":
                return
            ns = event.obj["metadata"].get("namespace", "")
            owner_rs = self.cache.get(REPLICASETS, ns, ref.get("name", ""))
            dref = controller_ref(owner_rs) if owner_rs is not None else None
            if dref is not None and dref.get("kind") == "Deployment":
                owner = self.cache.get(DEPLOYMENTS, ns, dref.get("name", ""))
                if owner is not None and du.strategy_type(owner) == "Recreate":
                    self.enqueue((ns, dref.get("name", "")))

    # ---- syncDeployment ------------------------------------------------------------------------------------

    def reconcile(self, key: Any) -> None:
        ns, name = key
        stored = self.cache.get(DEPLOYMENTS, ns, name)
        if stored is None:
            return
        d = _working_copy(stored)
        selector = (d.get("spec") or {}).get("selector")
        if selector is not None and not (selector.get("matchLabels") or selector.get("matchExpressions")):
            self.ctx.recorder.event(
                d,
                "Warning",
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.",
                COMPONENT,
                "Deployment",
            )
            if int(d["status"].get("observedGeneration") or 0) < int(d["metadata"].get("generation") or 0):
                d["status"]["observedGeneration"] = d["metadata"].get("generation")
                self._update_status(d)
            return
        rs_list = self._get_replica_sets(d)
        if d["metadata"].get("deletionTimestamp"):
            self._sync_status_only(d, rs_list)
            return
        if progress.paused_conditions(d):
            self._update_status(d)
        if (d.get("spec") or {}).get("paused"):
            self._sync(d, rs_list)
            self._requeue_if_stuck(d)
            return
        if self._is_scaling_event(d, rs_list):
            self._sync(d, rs_list)
            return
        if du.strategy_type(d) == "Recreate":
            rollout.rollout_recreate(self, d, rs_list)
        else:
            rollout.rollout_rolling(self, d, rs_list)
        self._requeue_if_stuck(d)

    # ---- claiming ------------------------------------------------------------------------------------------

    def _get_replica_sets(self, d: Obj) -> list[Obj]:
        """``getReplicaSetsForDeployment``: owned RSs that match, adopting orphans and releasing
        mismatches."""
        meta = d["metadata"]
        uid, ns = meta["uid"], meta.get("namespace", "")
        selector = d["spec"].get("selector")
        deleting = bool(meta.get("deletionTimestamp"))
        out: list[Obj] = []
        for rs in self.cache.owned(REPLICASETS, uid):
            ref = controller_ref(rs)
            if ref is None or ref.get("uid") != uid:
                continue
            if matches_label_selector(selector, rs["metadata"].get("labels")):
                out.append(rs)
            elif not deleting:
                released = copy.deepcopy(rs)
                released["metadata"]["ownerReferences"] = [
                    r for r in released["metadata"].get("ownerReferences") or [] if r.get("uid") != uid
                ]
                self.store.update(REPLICASETS, released)
        if not deleting:
            for rs in self.cache.orphans_in(REPLICASETS, ns):
                if rs["metadata"].get("deletionTimestamp"):
                    continue
                if not matches_label_selector(selector, rs["metadata"].get("labels")):
                    continue
                adopted = copy.deepcopy(rs)
                adopted["metadata"].setdefault("ownerReferences", []).append(
                    owner_reference(d, "apps/v1", "Deployment")
                )
                out.append(self.store.update(REPLICASETS, adopted))
        return out

    # ---- new / old replica sets ----------------------------------------------------------------------------

    def _find_new(self, d: Obj, rs_list: list[Obj]) -> Obj | None:
        """``FindNewReplicaSet``: the oldest RS whose template equals the deployment's, ignoring the hash."""
        template = pod_template.cached_comparable_template(d)
        for rs in du.sort_by_creation(rs_list):
            if pod_template.cached_comparable_template(rs) == template:
                return rs
        return None

    def get_all_and_sync_revision(
        self, d: Obj, rs_list: list[Obj], create: bool
    ) -> tuple[Obj | None, list[Obj]]:
        """``getAllReplicaSetsAndSyncRevision``: (new RS or None, all old RSs)."""
        found = self._find_new(d, rs_list)
        old = [rs for rs in rs_list if found is None or rs["metadata"]["uid"] != found["metadata"]["uid"]]
        new = self._get_new(d, rs_list, old, create)
        return new, old

    def _get_new(self, d: Obj, rs_list: list[Obj], old_rss: list[Obj], create: bool) -> Obj | None:
        """``getNewReplicaSet``."""
        existing = self._find_new(d, rs_list)
        new_revision = str(du.max_revision(old_rss) + 1)
        if existing is not None:
            rs_copy = _shallow_rs_copy(existing)
            annotations_updated = du.set_new_rs_annotations(d, rs_copy, new_revision, True)
            min_ready_changed = du.min_ready_seconds(rs_copy) != du.min_ready_seconds(d)
            if annotations_updated or min_ready_changed:
                rs_copy["spec"]["minReadySeconds"] = du.min_ready_seconds(d)
                if not rs_copy["spec"]["minReadySeconds"]:
                    del rs_copy["spec"]["minReadySeconds"]  # omitempty: the apiserver's JSON has no 0 here
                return self.store.update(REPLICASETS, rs_copy)
            needs_update = self._set_revision(d, rs_copy["metadata"]["annotations"].get(du.REVISION, ""))
            if du.progress_deadline(d) is not None and du.get_condition(d["status"], "Progressing") is None:
                du.set_condition(
                    d["status"],
                    du.new_condition(
                        "Progressing",
                        "True",
                        du.FOUND_NEW_RS_REASON,
                        f'Found new replica set "{rs_copy["metadata"]["name"]}"',
                    ),
                )
                needs_update = True
            if needs_update:
                self._update_status(d)
            return rs_copy
        if not create:
            return None
        return self._create_new(d, old_rss, new_revision)

    def _create_new(self, d: Obj, old_rss: list[Obj], new_revision: str) -> Obj | None:
        meta = d["metadata"]
        ns = meta.get("namespace", "")
        template = copy.deepcopy(d["spec"].get("template") or {})
        pod_hash = pod_template.compute_hash(template, d["status"].get("collisionCount"))
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = dict(tmeta.get("labels") or {}, **{du.POD_TEMPLATE_HASH: pod_hash})
        selector = copy.deepcopy(d["spec"].get("selector") or {})
        selector["matchLabels"] = dict(selector.get("matchLabels") or {}, **{du.POD_TEMPLATE_HASH: pod_hash})
        rs_name = f"{meta['name']}-{pod_hash}"
        new_rs: Obj = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": rs_name,
                "namespace": ns,
                "labels": dict(tmeta["labels"]),
                "ownerReferences": [owner_reference(d, "apps/v1", "Deployment")],
            },
            "spec": {
                "replicas": 0,
                **({"minReadySeconds": du.min_ready_seconds(d)} if du.min_ready_seconds(d) else {}),
                "selector": selector,
                "template": template,
            },
            "status": {"replicas": 0},
        }
        replicas = du.new_rs_new_replicas(d, [*old_rss, new_rs], new_rs)
        new_rs["spec"]["replicas"] = replicas
        du.set_new_rs_annotations(d, new_rs, new_revision, False)
        try:
            created = self.store.create(REPLICASETS, new_rs)
        except ApiError as exc:
            if exc.reason == "AlreadyExists":
                current = self.cache.get(REPLICASETS, ns, rs_name)
                ref = controller_ref(current) if current is not None else None
                if (
                    current is not None
                    and ref is not None
                    and ref.get("uid") == meta["uid"]
                    and pod_template.equal_ignore_hash(
                        d["spec"].get("template"), (current.get("spec") or {}).get("template")
                    )
                ):
                    return copy.deepcopy(current)
                # A hash collision: bump collisionCount so the next sync computes another name.
                d["status"]["collisionCount"] = int(d["status"].get("collisionCount") or 0) + 1
                self._update_status(d)
                raise
            msg = f'Failed to create new replica set "{rs_name}": {exc.message}'
            if du.progress_deadline(d) is not None:
                du.set_condition(
                    d["status"], du.new_condition("Progressing", "False", du.FAILED_RS_CREATE_REASON, msg)
                )
                self._update_status(d)
            self.ctx.recorder.event(d, "Warning", du.FAILED_RS_CREATE_REASON, msg, COMPONENT, "Deployment")
            raise
        if replicas > 0:
            self.ctx.recorder.event(
                d,
                "Normal",
                "ScalingReplicaSet",
                f"Scaled up replica set {rs_name} from 0 to {replicas}",
                COMPONENT,
                "Deployment",
            )
        self._set_revision(d, new_revision)
        if du.progress_deadline(d) is not None:
            du.set_condition(
                d["status"],
                du.new_condition(
                    "Progressing", "True", du.NEW_RS_REASON, f'Created new replica set "{rs_name}"'
                ),
            )
        self._update_status(d)
        return created

    def _set_revision(self, d: Obj, revision: str) -> bool:
        """``SetDeploymentRevision`` on the working copy."""
        annotations = d["metadata"].setdefault("annotations", {})
        if annotations.get(du.REVISION) != revision:
            annotations[du.REVISION] = revision
            return True
        return False

    # ---- scaling -------------------------------------------------------------------------------------------

    def _scale_rs(self, d: Obj, rs: Obj, new_scale: int, operation: str) -> tuple[bool, Obj]:
        """``scaleReplicaSet``: size and desired/max annotations in one RS write, event when the size
        changed."""
        replicas = du.replicas_of(d)
        max_replicas = replicas + du.max_surge(d)
        size_changed = du.rs_spec_replicas(rs) != new_scale
        if not size_changed and not du.replicas_annotations_need_update(rs, replicas, max_replicas):
            return False, rs
        old_scale = du.rs_spec_replicas(rs)
        rs_copy = _shallow_rs_copy(rs)
        rs_copy["spec"]["replicas"] = new_scale
        du.set_replicas_annotations(rs_copy, replicas, max_replicas)
        updated = self.store.update(REPLICASETS, rs_copy)
        if size_changed:
            self.ctx.recorder.event(
                d,
                "Normal",
                "ScalingReplicaSet",
                f"Scaled {operation} replica set {rs['metadata']['name']} from {old_scale} to {new_scale}",
                COMPONENT,
                "Deployment",
            )
        return size_changed, updated

    def scale_and_record(self, d: Obj, rs: Obj, new_scale: int) -> tuple[bool, Obj]:
        """``scaleReplicaSetAndRecordEvent``."""
        current = du.rs_spec_replicas(rs)
        if current == new_scale:
            return False, rs
        return self._scale_rs(d, rs, new_scale, "up" if current < new_scale else "down")

    def _scale(self, d: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> None:
        """``scale()``: scaling events and paused deployments."""
        replicas = du.replicas_of(d)
        active_or_latest = du.find_active_or_latest(new_rs, old_rss)
        if active_or_latest is not None:
            if du.rs_spec_replicas(active_or_latest) != replicas:
                self.scale_and_record(d, active_or_latest, replicas)
            return
        if du.is_saturated(d, new_rs):
            for old in du.filter_active(old_rss):
                self.scale_and_record(d, old, 0)
            return
        if du.strategy_type(d) == "RollingUpdate":
            active = du.filter_active([*old_rss, new_rs])
            ordered, sizes, operation = du.proportional_sizes(d, active)
            for rs in ordered:
                self._scale_rs(d, rs, sizes[rs["metadata"]["name"]], operation)

    def _is_scaling_event(self, d: Obj, rs_list: list[Obj]) -> bool:
        new_rs, old_rss = self.get_all_and_sync_revision(d, rs_list, False)
        for rs in du.filter_active([*old_rss, new_rs]):
            desired = du.annotation_int(rs, du.DESIRED_REPLICAS)
            if desired is not None and desired != du.replicas_of(d):
                return True
        return False

    def _sync(self, d: Obj, rs_list: list[Obj]) -> None:
        """``sync()``: scale, clean up history when paused, write status."""
        new_rs, old_rss = self.get_all_and_sync_revision(d, rs_list, False)
        self._scale(d, new_rs, old_rss)
        if (d.get("spec") or {}).get("paused"):
            self.cleanup(d, self.refresh(old_rss))
        new_rs, old_rss = self.refresh_one(new_rs), self.refresh(old_rss)
        self._sync_deployment_status([*old_rss, new_rs], new_rs, d)

    def _sync_status_only(self, d: Obj, rs_list: list[Obj]) -> None:
        new_rs, old_rss = self.get_all_and_sync_revision(d, rs_list, False)
        self._sync_deployment_status([*old_rss, new_rs], new_rs, d)

    def cleanup(self, d: Obj, old_rss: list[Obj]) -> None:
        """``cleanupDeployment``: keep at most revisionHistoryLimit old RSs."""
        limit = du.revision_history_limit(d)
        if limit is None:
            return
        cleanable = [rs for rs in old_rss if rs is not None and not rs["metadata"].get("deletionTimestamp")]
        diff = len(cleanable) - limit
        if diff <= 0:
            return
        for rs in du.sort_by_revision(cleanable)[:diff]:
            meta = rs["metadata"]
            if (
                du.rs_status(rs, "replicas") != 0
                or du.rs_spec_replicas(rs) != 0
                or int(meta.get("generation") or 0) > du.rs_status(rs, "observedGeneration")
                or meta.get("deletionTimestamp")
            ):
                continue
            try:
                self.store.delete(REPLICASETS, meta.get("namespace", ""), meta["name"])
            except ApiError as exc:
                if exc.code != 404:
                    raise

    # ---- status --------------------------------------------------------------------------------------------

    def _sync_deployment_status(self, all_rss: list[Obj | None], new_rs: Obj | None, d: Obj) -> None:
        status = progress.calculate_status(all_rss, new_rs, d)
        if status != d["status"]:
            d["status"] = status
            self._update_status(d)

    def _requeue_if_stuck(self, d: Obj) -> None:
        """``requeueStuckDeployment``: re-sync when the progress deadline would expire."""
        deadline = du.progress_deadline(d)
        cond = du.get_condition(d.get("status") or {}, "Progressing")
        if (
            deadline is None
            or cond is None
            or cond.get("reason") in (du.NEW_RS_AVAILABLE_REASON, du.TIMED_OUT_REASON)
        ):
            return
        if (d.get("spec") or {}).get("paused"):
            return
        after = du.parse_time(cond.get("lastUpdateTime")) + deadline - time.time()
        key = (d["metadata"].get("namespace", ""), d["metadata"]["name"])
        self.enqueue_after(key, max(0.0, after) + 1.0)

    def sync_rollout_status(self, d: Obj, all_rss: list[Obj | None], new_rs: Obj | None) -> None:
        """``syncRolloutStatus`` (progress.go)."""
        status = progress.rollout_status(d, all_rss, new_rs)
        if status != d["status"]:
            d["status"] = status
            self._update_status(d)

    # ---- helpers -------------------------------------------------------------------------------------------

    def _update_status(self, d: Obj) -> None:
        written = update_status(self.store, DEPLOYMENTS, d)
        with_rv(d, written)

    def refresh_one(self, rs: Obj | None) -> Obj | None:
        if rs is None:
            return None
        meta = rs["metadata"]
        current = self.cache.get(REPLICASETS, meta.get("namespace", ""), meta["name"])
        if current is None or current["metadata"].get("uid") != meta.get("uid"):
            return rs
        return current

    def refresh(self, rss: list[Any]) -> list[Any]:
        return [self.refresh_one(rs) for rs in rss]


def _working_copy(d: Obj) -> Obj:
    """The controller's copy of a Deployment: ``metadata``, annotations and ``status`` are private (they get
    modified), ``spec`` is shared read-only with the cache (never modified here)."""
    meta = dict(d["metadata"])
    meta["annotations"] = dict(meta.get("annotations") or {})
    out = dict(d)
    out["metadata"] = meta
    out["status"] = copy.deepcopy(d.get("status") or {})
    return out


def _shallow_rs_copy(rs: Obj) -> Obj:
    """A ReplicaSet copy whose metadata, annotations and top-level spec may be modified (the template is
    shared read-only; the store deep-copies on write)."""
    meta = dict(rs["metadata"])
    meta["annotations"] = dict(meta.get("annotations") or {})
    out = dict(rs)
    out["metadata"] = meta
    out["spec"] = dict(rs.get("spec") or {})
    return out
