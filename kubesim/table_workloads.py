"""Table printers of the workload kinds: Pod (upstream ``printPod``), Deployment and ReplicaSet."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubesim.table_cells import (
    AGE,
    NAME,
    Cells,
    Obj,
    col,
    containers_cells,
    human_duration,
    label_selector_string,
    parse_time,
    since,
)

# The row condition kubectl shows for a pod that ended, by phase (its reason is the phase).
_COMPLETED = {"Succeeded": "The pod has completed successfully.", "Failed": "The pod failed."}


def pod_row(pod: Obj, now: datetime) -> tuple[Cells, list[Obj] | None]:
    spec, status, meta = pod.get("spec") or {}, pod.get("status") or {}, pod.get("metadata") or {}
    restarts = 0
    restartable_init_restarts = 0
    total = len(spec.get("containers") or [])
    ready = 0
    last_restart: datetime | None = None
    last_restartable_init_restart: datetime | None = None
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    conditions = None
    if phase in _COMPLETED:
        conditions = [{"type": "Completed", "status": "True", "reason": phase, "message": _COMPLETED[phase]}]

    def later(current: datetime | None, cs: Obj) -> datetime | None:
        t = parse_time((((cs.get("lastState") or {}).get("terminated")) or {}).get("finishedAt"))
        if t is not None and (current is None or current < t):
            return t
        return current

    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}

    def restartable(name: Any) -> bool:
        return (init_specs.get(name) or {}).get("restartPolicy") == "Always"

    total += sum(1 for c in init_specs.values() if c.get("restartPolicy") == "Always")
    n_init = len(spec.get("initContainers") or [])
    initializing = False
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        restarts += int(cs.get("restartCount") or 0)
        last_restart = later(last_restart, cs)
        if restartable(cs.get("name")):
            restartable_init_restarts += int(cs.get("restartCount") or 0)
            last_restartable_init_restart = later(last_restartable_init_restart, cs)
        state = cs.get("state") or {}
        term, waiting = state.get("terminated"), state.get("waiting")
        if term is not None and int(term.get("exitCode") or 0) == 0:
            continue
        if restartable(cs.get("name")) and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if term is not None:
            if not term.get("reason"):
                sig = int(term.get("signal") or 0)
                reason = f"Init:Signal:{sig}" if sig else f"Init:ExitCode:{int(term.get('exitCode') or 0)}"
            else:
                reason = "Init:" + term["reason"]
        elif waiting is not None and waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{n_init}"
        initializing = True
        break

    initialized = any(
        c.get("type") == "Initialized" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    if not initializing or initialized:
        restarts = restartable_init_restarts
        last_restart = last_restartable_init_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount") or 0)
            last_restart = later(last_restart, cs)
            state = cs.get("state") or {}
            waiting, term = state.get("waiting"), state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif term is not None and term.get("reason"):
                reason = term["reason"]
            elif term is not None:
                sig = int(term.get("signal") or 0)
                reason = f"Signal:{sig}" if sig else f"ExitCode:{int(term.get('exitCode') or 0)}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            pod_ready = any(
                c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
            )
            reason = "Running" if pod_ready else "NotReady"

    if meta.get("deletionTimestamp") and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif meta.get("deletionTimestamp") and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    restarts_str = str(restarts)
    if restarts and last_restart is not None:
        restarts_str = f"{restarts} ({human_duration((now - last_restart).total_seconds())} ago)"

    pod_ips = status.get("podIPs") or []
    pod_ip = (pod_ips[0].get("ip") if pod_ips else None) or status.get("podIP") or "<none>"
    gates = spec.get("readinessGates") or []
    gates_cell = "<none>"
    if gates:
        true_count = 0
        for gate in gates:
            for cond in status.get("conditions") or []:
                if cond.get("type") == gate.get("conditionType"):
                    if cond.get("status") == "True":
                        true_count += 1
                    break
        gates_cell = f"{true_count}/{len(gates)}"
    cells = [
        meta.get("name", ""),
        f"{ready}/{total}",
        reason,
        restarts_str,
        since(meta.get("creationTimestamp"), now),
        pod_ip,
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        gates_cell,
    ]
    return cells, conditions


POD_COLUMNS = [
    NAME,
    col("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
    col("Status", description="The aggregate status of the containers in this pod."),
    col(
        "Restarts",
        description="The number of times the containers in this pod have been restarted and when "
        "the last container in this pod has restarted.",
    ),
    AGE,
    col(
        "IP",
        priority=1,
        description="podIP address allocated to the pod. Routable at least within the cluster. "
        "Empty if not yet allocated.",
    ),
    col("Node", priority=1, description="NodeName indicates in which node this pod is scheduled."),
    col(
        "Nominated Node",
        priority=1,
        description="nominatedNodeName is set only when this pod preempts other pods on the node.",
    ),
    col(
        "Readiness Gates",
        priority=1,
        description="If specified, all readiness gates will be evaluated for pod readiness.",
    ),
]


_TEMPLATE_COLUMNS = [
    col("Containers", priority=1, description="Names of each container in the template."),
    col("Images", priority=1, description="Images referenced by each container in the template."),
]


def _workload_row(obj: Obj, now: datetime, *counts: Any) -> tuple[Cells, list[Obj] | None]:
    """A workload row: name, its counts, age, then the template's containers, images and selector."""
    spec, meta = obj.get("spec") or {}, obj.get("metadata") or {}
    containers, images = containers_cells(((spec.get("template") or {}).get("spec")) or {})
    since_created = since(meta.get("creationTimestamp"), now)
    selector = label_selector_string(spec.get("selector"))
    return [meta.get("name", ""), *counts, since_created, containers, images, selector], None


def deployment_row(obj: Obj, now: datetime) -> tuple[Cells, list[Obj] | None]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired = int(spec.get("replicas", 1) or 0)
    ready = f"{int(status.get('readyReplicas') or 0)}/{desired}"
    updated, available = int(status.get("updatedReplicas") or 0), int(status.get("availableReplicas") or 0)
    return _workload_row(obj, now, ready, updated, available)


DEPLOYMENT_COLUMNS = [
    NAME,
    col("Ready", description="Number of the pod with ready state"),
    col(
        "Up-to-date",
        description="Total number of non-terminated pods targeted by this deployment that have "
        "the desired template spec.",
    ),
    col(
        "Available",
        description="Total number of available pods (ready for at least minReadySeconds) targeted "
        "by this deployment.",
    ),
    AGE,
    *_TEMPLATE_COLUMNS,
    col(
        "Selector",
        priority=1,
        description="Label selector for pods. Existing ReplicaSets whose pods are "
        "selected by this will be the ones affected by this deployment.",
    ),
]


def replicaset_row(obj: Obj, now: datetime) -> tuple[Cells, list[Obj] | None]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired, current = int(spec.get("replicas", 1) or 0), int(status.get("replicas") or 0)
    return _workload_row(obj, now, desired, current, int(status.get("readyReplicas") or 0))


REPLICASET_COLUMNS = [
    NAME,
    col("Desired", "integer", "Replicas is the number of desired pods."),
    col("Current", "integer", "Replicas is the most recently observed number of replicas."),
    col("Ready", "integer", "The number of ready replicas for this replica set."),
    AGE,
    *_TEMPLATE_COLUMNS,
    col(
        "Selector",
        priority=1,
        description="Selector is a label query over pods that should match the replica count.",
    ),
]
