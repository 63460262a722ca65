"""The Deployment controller's two strategies (upstream ``rolling.go`` and ``recreate.go``).

Functions of the controller ``dc`` (upstream: methods of ``DeploymentController`` in their own files).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubesim.controllers import deployment_util as du
from kubesim.controllers import podutil
from kubesim.controllers.cache import controller_ref
from kubesim.resources import PODS

if TYPE_CHECKING:
    from kubesim.controllers.deployment import DeploymentController

Obj = dict[str, Any]


def rollout_rolling(dc: DeploymentController, d: Obj, rs_list: list[Obj]) -> None:
    new_rs, old_rss = dc.get_all_and_sync_revision(d, rs_list, True)
    if new_rs is None:
        return
    all_rss = [*old_rss, new_rs]
    if reconcile_new(dc, d, all_rss, new_rs):
        dc.sync_rollout_status(d, dc.refresh(all_rss), dc.refresh_one(new_rs))
        return
    if reconcile_old(dc, d, all_rss, du.filter_active(old_rss), new_rs):
        dc.sync_rollout_status(d, dc.refresh(all_rss), dc.refresh_one(new_rs))
        return
    if du.deployment_complete(d, d["status"]):
        dc.cleanup(d, old_rss)
    dc.sync_rollout_status(d, dc.refresh(all_rss), dc.refresh_one(new_rs))


def reconcile_new(dc: DeploymentController, d: Obj, all_rss: list[Obj], new_rs: Obj) -> bool:
    replicas = du.replicas_of(d)
    spec = du.rs_spec_replicas(new_rs)
    if spec == replicas:
        return False
    if spec > replicas:
        return dc.scale_and_record(d, new_rs, replicas)[0]
    return dc.scale_and_record(d, new_rs, du.new_rs_new_replicas(d, all_rss, new_rs))[0]


def reconcile_old(
    dc: DeploymentController, d: Obj, all_rss: list[Obj], old_rss: list[Obj], new_rs: Obj
) -> bool:
    if du.sum_spec(old_rss) == 0:
        return False
    all_pods = du.sum_spec(all_rss)
    min_available = du.replicas_of(d) - du.max_unavailable(d)
    new_unavailable = du.rs_spec_replicas(new_rs) - du.rs_status(new_rs, "availableReplicas")
    max_scaled_down = all_pods - min_available - new_unavailable
    if max_scaled_down <= 0:
        return False
    old_rss, cleaned = cleanup_unhealthy(dc, d, old_rss, max_scaled_down)
    scaled = scale_down_old_for_rolling(dc, d, [*old_rss, new_rs], old_rss)
    return cleaned + scaled > 0


def cleanup_unhealthy(
    dc: DeploymentController, d: Obj, old_rss: list[Obj], max_cleanup: int
) -> tuple[list[Obj], int]:
    """``cleanupUnhealthyReplicas``: scale down old RSs' unavailable replicas first, oldest first."""
    old_rss = du.sort_by_creation(old_rss)
    total = 0
    for i, rs in enumerate(old_rss):
        if total >= max_cleanup:
            break
        spec = du.rs_spec_replicas(rs)
        available = du.rs_status(rs, "availableReplicas")
        if spec == 0 or spec == available:
            continue
        count = min(max_cleanup - total, spec - available)
        _, old_rss[i] = dc.scale_and_record(d, rs, spec - count)
        total += count
    return old_rss, total


def scale_down_old_for_rolling(
    dc: DeploymentController, d: Obj, all_rss: list[Obj], old_rss: list[Obj]
) -> int:
    """``scaleDownOldReplicaSetsForRollingUpdate``: scale down by availability above minAvailable."""
    min_available = du.replicas_of(d) - du.max_unavailable(d)
    available = du.sum_status(all_rss, "availableReplicas")
    if available <= min_available:
        return 0
    budget = available - min_available
    total = 0
    for rs in du.sort_by_creation(old_rss):
        if total >= budget:
            break
        spec = du.rs_spec_replicas(rs)
        if spec == 0:
            continue
        count = min(spec, budget - total)
        dc.scale_and_record(d, rs, spec - count)
        total += count
    return total


# ---- recreate ------------------------------------------------------------------------------------------


# ---- recreate --------------------------------------------------------------------------------------------


def rollout_recreate(dc: DeploymentController, d: Obj, rs_list: list[Obj]) -> None:
    new_rs, old_rss = dc.get_all_and_sync_revision(d, rs_list, False)
    all_rss: list[Obj | None] = [*old_rss, new_rs]
    scaled_down = False
    for rs in du.filter_active(old_rss):
        if dc.scale_and_record(d, rs, 0)[0]:
            scaled_down = True
    if scaled_down:
        dc.sync_rollout_status(d, dc.refresh(all_rss), dc.refresh_one(new_rs))
        return
    if old_pods_running(dc, new_rs, old_rss):
        dc.sync_rollout_status(d, dc.refresh(all_rss), dc.refresh_one(new_rs))
        return
    if new_rs is None:
        new_rs, old_rss = dc.get_all_and_sync_revision(d, rs_list, True)
        all_rss = [*old_rss, new_rs]
    if new_rs is not None:
        dc.scale_and_record(d, new_rs, du.replicas_of(d))
    if du.deployment_complete(d, d["status"]):
        dc.cleanup(d, old_rss)
    dc.sync_rollout_status(d, dc.refresh(all_rss), dc.refresh_one(new_rs))


def old_pods_running(dc: DeploymentController, new_rs: Obj | None, old_rss: list[Obj]) -> bool:
    """``oldPodsRunning``: old RSs still report pods, or any non-terminal pod of an old RS exists."""
    if du.sum_status(dc.refresh(old_rss), "replicas") > 0:
        return True
    for rs in old_rss:
        if new_rs is not None and rs["metadata"]["uid"] == new_rs["metadata"]["uid"]:
            continue
        for pod in dc.cache.owned(PODS, rs["metadata"]["uid"]):
            ref = controller_ref(pod)
            if (
                ref is not None
                and ref.get("uid") == rs["metadata"]["uid"]
                and podutil.phase(pod) not in ("Failed", "Succeeded")
            ):
                return True
    return False


# ---- history -------------------------------------------------------------------------------------------
