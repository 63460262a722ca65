"""Server-side printing: ``meta.k8s.io/v1`` Tables with the columns kubectl shows (reference 1.7).

Without a Table response ``kubectl get`` prints only NAME and AGE, so every served kind gets the column set
and cell formulas of upstream ``pkg/printers/internalversion/printers.go``. The apiserver always generates
the wide cells (kubectl hides ``priority: 1`` columns unless ``-o wide``), and each row carries the object
(as ``PartialObjectMetadata`` by default) so that ``-L`` and ``--show-labels`` can read its labels.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from kubesim import crd
from kubesim.discovery import parse_accept
from kubesim.resources import ResourceType

Obj = dict[str, Any]

_NAME_DOC = (
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name automatically. "
    "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
    "updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
_AGE_DOC = (
    "CreationTimestamp is a timestamp representing the server time when this object was created. It is "
    "not guaranteed to be set in happens-before order across separate operations. Clients may not set "
    "this value. It is represented in RFC3339 form and is in UTC."
)


def wants_table(accept: str) -> bool:
    """True if the Accept header asks for a ``meta.k8s.io/v1`` Table (kubectl get, get -w)."""
    for media, params in parse_accept(accept):
        if (
            media == "application/json"
            and params.get("as") == "Table"
            and params.get("g") == "meta.k8s.io"
            and params.get("v") == "v1"
        ):
            return True
    return False


def include_object_mode(value: str | bool | None) -> str:
    """Normalise the ``includeObject`` query parameter: "None", "Metadata" (default) or "Object"."""
    if value is True or value is None or value == "":
        return "Metadata"
    if value is False:
        return "None"
    return value if value in ("None", "Metadata", "Object") else "Metadata"


# ----------------------------------------------------------------------------------------------------
# Formatting helpers (ports of apimachinery/kubectl helpers)
# ----------------------------------------------------------------------------------------------------


def human_duration(seconds: float) -> str:
    """``k8s.io/apimachinery/pkg/util/duration.HumanDuration``."""
    secs = int(seconds)
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 60 * 2:
        return f"{secs}s"
    minutes = secs // 60
    if minutes < 10:
        s = secs % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = secs // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def parse_time(value: Any) -> datetime | None:
    """Parse an RFC 3339 timestamp (``Z``, offsets, fractions); None for absent or unparsable values."""
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def since(value: Any, now: datetime) -> str:
    """``translateTimestampSince``: ``<unknown>`` for a zero timestamp, else the human duration."""
    t = parse_time(value)
    if t is None:
        return "<unknown>"
    return human_duration((now - t).total_seconds())


def label_selector_string(selector: dict[str, Any] | None) -> str:
    """``metav1.LabelSelectorAsSelector(sel).String()``: requirements sorted by key, values sorted."""
    if not selector:
        return ""
    reqs: list[tuple[str, str]] = []
    for k, v in (selector.get("matchLabels") or {}).items():
        reqs.append((k, f"{k}={v}"))
    for expr in selector.get("matchExpressions") or []:
        key, op = expr.get("key", ""), expr.get("operator", "")
        values = ",".join(sorted(expr.get("values") or []))
        text = {
            "In": f"{key} in ({values})",
            "NotIn": f"{key} notin ({values})",
            "Exists": key,
            "DoesNotExist": f"!{key}",
        }.get(op, key)
        reqs.append((key, text))
    reqs.sort(key=lambda r: r[0])
    return ",".join(t for _, t in reqs)


def format_labels(labels: dict[str, str] | None) -> str:
    """``labels.FormatLabels``: sorted ``k=v`` joined by commas, ``<none>`` when empty."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _containers_cells(pod_spec: Obj) -> tuple[str, str]:
    containers = pod_spec.get("containers") or []
    return (
        ",".join(c.get("name", "") for c in containers),
        ",".join(c.get("image", "") for c in containers),
    )


def _more(items: list[str], count: int, limit: int = 3) -> str:
    """Join at most ``limit`` items and append `` + N more...`` like the printers' list helpers."""
    ret = ",".join(items[:limit])
    if count > limit:
        return f"{ret} + {count - limit} more..."
    return ret


# ----------------------------------------------------------------------------------------------------
# Per-kind printers: (columns, row function)
# ----------------------------------------------------------------------------------------------------


def _col(
    name: str, type_: str = "string", description: str = "", priority: int = 0, fmt: str = ""
) -> Obj:
    return {
        "name": name,
        "type": type_,
        "format": fmt,
        "description": description,
        "priority": priority,
    }


_NAME = _col("Name", fmt="name", description=_NAME_DOC)
_AGE = _col("Age", description=_AGE_DOC)

Cells = list[Any]
RowFn = Callable[[Obj, datetime], tuple[Cells, list[Obj] | None]]


def _pod_row(pod: Obj, now: datetime) -> tuple[Cells, list[Obj] | None]:
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
    if phase == "Succeeded":
        conditions = [
            {
                "type": "Completed",
                "status": "True",
                "reason": "Succeeded",
                "message": "The pod has completed successfully.",
            }
        ]
    elif phase == "Failed":
        conditions = [
            {
                "type": "Completed",
                "status": "True",
                "reason": "Failed",
                "message": "The pod failed.",
            }
        ]

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
                reason = (
                    f"Init:Signal:{sig}"
                    if sig
                    else f"Init:ExitCode:{int(term.get('exitCode') or 0)}"
                )
            else:
                reason = "Init:" + term["reason"]
        elif (
            waiting is not None
            and waiting.get("reason")
            and waiting.get("reason") != "PodInitializing"
        ):
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{n_init}"
        initializing = True
        break

    initialized = any(
        c.get("type") == "Initialized" and c.get("status") == "True"
        for c in status.get("conditions") or []
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
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or []
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


_POD_COLUMNS = [
    _NAME,
    _col("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
    _col("Status", description="The aggregate status of the containers in this pod."),
    _col(
        "Restarts",
        description="The number of times the containers in this pod have been restarted and when "
        "the last container in this pod has restarted.",
    ),
    _AGE,
    _col(
        "IP",
        priority=1,
        description="podIP address allocated to the pod. Routable at least within the cluster. "
        "Empty if not yet allocated.",
    ),
    _col("Node", priority=1, description="NodeName indicates in which node this pod is scheduled."),
    _col(
        "Nominated Node",
        priority=1,
        description="nominatedNodeName is set only when this pod preempts other pods on the node.",
    ),
    _col(
        "Readiness Gates",
        priority=1,
        description="If specified, all readiness gates will be evaluated for pod readiness.",
    ),
]


def _deployment_row(obj: Obj, now: datetime) -> tuple[Cells, list[Obj] | None]:
    spec, status, meta = obj.get("spec") or {}, obj.get("status") or {}, obj.get("metadata") or {}
    desired = int(spec.get("replicas", 1) or 0)
    containers, images = _containers_cells(((spec.get("template") or {}).get("spec")) or {})
    return [
        meta.get("name", ""),
        f"{int(status.get('readyReplicas') or 0)}/{desired}",
        int(status.get("updatedReplicas") or 0),
        int(status.get("availableReplicas") or 0),
        since(meta.get("creationTimestamp"), now),
        containers,
        images,
        label_selector_string(spec.get("selector")),
    ], None


_DEPLOYMENT_COLUMNS = [
    _NAME,
    _col("Ready", description="Number of the pod with ready state"),
    _col(
        "Up-to-date",
        description="Total number of non-terminated pods targeted by this deployment that have "
        "the desired template spec.",
    ),
    _col(
        "Available",
        description="Total number of available pods (ready for at least minReadySeconds) targeted "
        "by this deployment.",
    ),
    _AGE,
    _col("Containers", priority=1, description="Names of each container in the template."),
    _col("Images", priority=1, description="Images referenced by each container in the template."),
    _col(
        "Selector",
        priority=1,
        description="Label selector for pods. Existing ReplicaSets whose pods are "
        "selected by this will be the ones affected by this deployment.",
    ),
]


def _replicaset_row(obj: Obj, now: datetime) -> tuple[Cells, list[Obj] | None]:
    spec, status, meta = obj.get("spec") or {}, obj.get("status") or {}, obj.get("metadata") or {}
    containers, images = _containers_cells(((spec.get("template") or {}).get("spec")) or {})
    return [
        meta.get("name", ""),
        int(spec.get("replicas", 1) or 0),
        int(status.get("replicas") or 0),
        int(status.get("readyReplicas") or 0),
        since(meta.get("creationTimestamp"), now),
        containers,
        images,
        label_selector_string(spec.get("selector")),
    ], None


_REPLICASET_COLUMNS = [
    _NAME,
    _col("Desired", "integer", "Replicas is the number of desired pods."),
    _col("Current", "integer", "Replicas is the most recently observed number of replicas."),
    _col("Ready", "integer", "The number of ready replicas for this replica set."),
    _AGE,
    _col("Containers", priority=1, description="Names of each container in the template."),
    _col("Images", priority=1, description="Images referenced by each container in the template."),
    _col(
        "Selector",
        priority=1,
        description="Selector is a label query over pods that should match the replica count.",
    ),
]


def _service_external_ip(spec: Obj, status: Obj) -> str:
    svc_type = spec.get("type") or "ClusterIP"
    external = list(spec.get("externalIPs") or [])
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if svc_type == "LoadBalancer":
        lb = [
            i.get("ip") or i.get("hostname") or ""
            for i in (status.get("loadBalancer") or {}).get("ingress") or []
        ]
        lb = [x for x in lb if x]
        if external:
            return ",".join(lb + external)
        return ",".join(lb) if lb else "<pending>"
    if svc_type == "ExternalName":
        return str(spec.get("externalName") or "")
    return "<unknown>"


def _service_row(obj: Obj, now: datetime) -> tuple[Cells, list[Obj] | None]:
    spec, status, meta = obj.get("spec") or {}, obj.get("status") or {}, obj.get("metadata") or {}
    cluster_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    ports = []
    for p in spec.get("ports") or []:
        proto = p.get("protocol") or "TCP"
        if p.get("nodePort"):
            ports.append(f"{p.get('port')}:{p['nodePort']}/{proto}")
        else:
            ports.append(f"{p.get('port')}/{proto}")
    return [
        meta.get("name", ""),
        spec.get("type") or "ClusterIP",
        cluster_ips[0] if cluster_ips else "<none>",
        _service_external_ip(spec, status),
        ",".join(ports) or "<none>",
        since(meta.get("creationTimestamp"), now),
        format_labels(spec.get("selector")),
    ], None


_SERVICE_COLUMNS = [
    _NAME,
    _col("Type", description="type determines how the Service is exposed."),
    _col(
        "Cluster-IP",
        description="clusterIP is the IP address of the service and is usually assigned randomly.",
    ),
    _col(
        "External-IP",
        description="externalIPs is a list of IP addresses for which nodes in the cluster will "
        "also accept traffic for this service.",
    ),
    _col("Port(s)", description="The list of ports that are exposed by this service."),
    _AGE,
    _col(
        "Selector",
        priority=1,
        description="Route service traffic to pods with label keys and values matching "
        "this selector.",
    ),
]


def _endpoints_row(obj: Obj, now: datetime) -> tuple[Cells, list[Obj] | None]:
    meta = obj.get("metadata") or {}
    items: list[str] = []
    count = 0
    for subset in obj.get("subsets") or []:
        addresses = [a.get("ip", "") for a in subset.get("addresses") or []]
        ports = subset.get("ports") or []
        if not ports:  # headless services may have no ports
            count += len(addresses)
            items.extend(addresses)
            continue
        for port in ports:
            count += len(addresses)
            for ip in addresses:
                host = f"[{ip}]" if ":" in ip else ip
                items.append(f"{host}:{port.get('port')}")
    # kubectl 1.33+ prints an empty cell (not <none>) for no endpoints (reference 1.7).
    return [
        meta.get("name", ""),
        _more(items, count),
        since(meta.get("creationTimestamp"), now),
    ], None


_ENDPOINTS_COLUMNS = [
    _NAME,
    _col("Endpoints", description="Endpoints of the service"),
    _AGE,
]


def _endpointslice_row(obj: Obj, now: datetime) -> tuple[Cells, list[Obj] | None]:
    meta = obj.get("metadata") or {}
    ports = []
    for p in obj.get("ports") or []:
        ports.append(str(p["port"]) if p.get("port") is not None else (p.get("name") or "*"))
    addresses = [a for ep in obj.get("endpoints") or [] for a in ep.get("addresses") or []]
    return [
        meta.get("name", ""),
        obj.get("addressType", ""),
        _more(ports, len(ports)) or "<unset>",
        _more(addresses, len(addresses)) or "<unset>",
        since(meta.get("creationTimestamp"), now),
    ], None


_ENDPOINTSLICE_COLUMNS = [
    _NAME,
    _col(
        "AddressType",
        description="addressType specifies the type of address carried by this EndpointSlice.",
    ),
    _col(
        "Ports",
        description="ports specifies the list of network ports exposed by each endpoint in this slice.",
    ),
    _col("Endpoints", description="endpoints is a list of unique endpoints in this slice."),
    _AGE,
]


def _namespace_row(obj: Obj, now: datetime) -> tuple[Cells, list[Obj] | None]:
    meta = obj.get("metadata") or {}
    return [
        meta.get("name", ""),
        (obj.get("status") or {}).get("phase", ""),
        since(meta.get("creationTimestamp"), now),
    ], None


_NAMESPACE_COLUMNS = [
    _NAME,
    _col("Status", description="The status of the namespace"),
    _AGE,
]


def _configmap_row(obj: Obj, now: datetime) -> tuple[Cells, list[Obj] | None]:
    meta = obj.get("metadata") or {}
    count = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
    return [meta.get("name", ""), count, since(meta.get("creationTimestamp"), now)], None


_CONFIGMAP_COLUMNS = [_NAME, _col("Data", "integer"), _AGE]


def _secret_row(obj: Obj, now: datetime) -> tuple[Cells, list[Obj] | None]:
    meta = obj.get("metadata") or {}
    return [meta.get("name", ""), obj.get("type", ""), len(obj.get("data") or {}),
            since(meta.get("creationTimestamp"), now)], None


_SECRET_COLUMNS = [_NAME, _col("Type"), _col("Data", "integer"), _AGE]


def _lease_row(obj: Obj, now: datetime) -> tuple[Cells, list[Obj] | None]:
    meta = obj.get("metadata") or {}
    holder = (obj.get("spec") or {}).get("holderIdentity") or ""
    return [meta.get("name", ""), holder, since(meta.get("creationTimestamp"), now)], None


_LEASE_COLUMNS = [_NAME, _col("Holder"), _AGE]


def _event_row(obj: Obj, now: datetime) -> tuple[Cells, list[Obj] | None]:
    meta = obj.get("metadata") or {}
    first = (
        since(obj.get("firstTimestamp"), now)
        if obj.get("firstTimestamp")
        else since(obj.get("eventTime"), now)
    )
    last = since(obj.get("lastTimestamp"), now) if obj.get("lastTimestamp") else first
    count = int(obj.get("count") or 0)
    series = obj.get("series")
    if series:
        last = since(series.get("lastObservedTime"), now)
        count = int(series.get("count") or 0)
    elif count == 0:
        count = 1  # singleton events carry no count in the events.k8s.io API
    involved = obj.get("involvedObject") or {}
    kind = str(involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = obj.get("source") or {}
    component = source.get("component") or obj.get("reportingComponent") or ""
    instance = source.get("host") or obj.get("reportingInstance") or ""
    source_cell = f"{component}, {instance}" if instance else component
    return [
        last,
        obj.get("type", ""),
        obj.get("reason", ""),
        target,
        involved.get("fieldPath", ""),
        source_cell,
        str(obj.get("message") or "").strip(),
        first,
        count,
        meta.get("name", ""),
    ], None


_EVENT_COLUMNS = [
    _col(
        "Last Seen",
        description="The time at which the most recent occurrence of this event was recorded.",
    ),
    _col(
        "Type",
        description="Type of this event (Normal, Warning), new types could be added in the future.",
    ),
    _col(
        "Reason",
        description="This should be a short, machine understandable string that gives the reason for "
        "the transition into the object's current status.",
    ),
    _col("Object", description="The object that this event is about."),
    _col(
        "Subobject",
        priority=1,
        description="The field path of the involved object this event is about.",
    ),
    _col(
        "Source",
        priority=1,
        description="The component reporting this event. Should be a short machine "
        "understandable string.",
    ),
    _col("Message", description="A human-readable description of the status of this operation."),
    _col("First Seen", priority=1, description="The time at which the event was first recorded."),
    _col("Count", priority=1, description="The number of times this event has occurred."),
    _col("Name", priority=1, fmt="name", description=_NAME_DOC),
]


def _ingress_row(obj: Obj, now: datetime) -> tuple[Cells, list[Obj] | None]:
    spec, status, meta = obj.get("spec") or {}, obj.get("status") or {}, obj.get("metadata") or {}
    rules = spec.get("rules") or []
    hosts = [r["host"] for r in rules if r.get("host")][:3]
    host_cell = (
        "*"
        if not hosts
        else (",".join(hosts) + (f" + {len(rules) - 3} more..." if len(rules) > 3 else ""))
    )
    lb = [
        i.get("ip") or i.get("hostname") or ""
        for i in (status.get("loadBalancer") or {}).get("ingress") or []
    ]
    return [
        meta.get("name", ""),
        spec.get("ingressClassName") or "<none>",
        host_cell,
        ",".join(x for x in lb if x),
        "80, 443" if spec.get("tls") else "80",
        since(meta.get("creationTimestamp"), now),
    ], None


_INGRESS_COLUMNS = [
    _NAME,
    _col("Class", description="The name of the IngressClass cluster resource."),
    _col(
        "Hosts",
        description="Hosts that incoming requests are matched against before the ingress rule",
    ),
    _col(
        "Address", description="Address is a list containing ingress points for the load-balancer"
    ),
    _col("Ports", description="Ports of TLS configurations that open"),
    _AGE,
]


def _httproute_row(obj: Obj, now: datetime) -> tuple[Cells, list[Obj] | None]:
    # HTTPRoute is a CRD: its additionalPrinterColumns are Hostnames (.spec.hostnames, printed as
    # JSON) and Age.
    meta = obj.get("metadata") or {}
    hostnames = (obj.get("spec") or {}).get("hostnames")
    cell = json.dumps(hostnames, separators=(",", ":")) if hostnames else None
    return [meta.get("name", ""), cell, since(meta.get("creationTimestamp"), now)], None


_HTTPROUTE_COLUMNS = [
    _NAME,
    _col("Hostnames"),
    _col("Age", "date"),
]


def _mwc_row(obj: Obj, now: datetime) -> tuple[Cells, list[Obj] | None]:
    meta = obj.get("metadata") or {}
    age = since(meta.get("creationTimestamp"), now)
    return [meta.get("name", ""), len(obj.get("webhooks") or []), age], None


_MWC_COLUMNS = [_NAME, _col("Webhooks", "integer"), _col("Age", "date")]


def _default_row(obj: Obj, now: datetime) -> tuple[Cells, list[Obj] | None]:
    meta = obj.get("metadata") or {}
    return [meta.get("name", ""), meta.get("creationTimestamp")], None


_DEFAULT_COLUMNS = [_NAME, _col("Created At", "date", _AGE_DOC)]

_PRINTERS: dict[str, tuple[list[Obj], RowFn]] = {
    "Pod": (_POD_COLUMNS, _pod_row),
    "Deployment": (_DEPLOYMENT_COLUMNS, _deployment_row),
    "ReplicaSet": (_REPLICASET_COLUMNS, _replicaset_row),
    "Service": (_SERVICE_COLUMNS, _service_row),
    "Endpoints": (_ENDPOINTS_COLUMNS, _endpoints_row),
    "EndpointSlice": (_ENDPOINTSLICE_COLUMNS, _endpointslice_row),
    "Namespace": (_NAMESPACE_COLUMNS, _namespace_row),
    "ConfigMap": (_CONFIGMAP_COLUMNS, _configmap_row),
    "Secret": (_SECRET_COLUMNS, _secret_row),
    "Lease": (_LEASE_COLUMNS, _lease_row),
    "Event": (_EVENT_COLUMNS, _event_row),
    "Ingress": (_INGRESS_COLUMNS, _ingress_row),
    "HTTPRoute": (_HTTPROUTE_COLUMNS, _httproute_row),
    "MutatingWebhookConfiguration": (_MWC_COLUMNS, _mwc_row),
    "ValidatingWebhookConfiguration": (_MWC_COLUMNS, _mwc_row),
    # CustomResourceDefinition: the apiserver's default Table (Name, Created At), as kubectl shows it.
}


def column_definitions(rt: ResourceType) -> list[Obj]:
    """The Table columns for ``rt`` (copies, safe to mutate)."""
    return [dict(c) for c in (crd.printer(rt) or _PRINTERS.get(rt.kind, (_DEFAULT_COLUMNS, _default_row)))[0]]


def _row_object(rt: ResourceType, obj: Obj, mode: str) -> Obj | None:
    if mode == "None":
        return None
    if mode == "Object":
        full = dict(obj)
        full.setdefault("apiVersion", rt.group_version)
        full.setdefault("kind", rt.kind)
        return full
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": dict(obj.get("metadata") or {}),
    }


def to_table(
    rt: ResourceType,
    objs: Iterable[Obj],
    *,
    include_object: bool | str = True,
    list_meta: dict[str, Any] | None = None,
    now: datetime | None = None,
    no_headers: bool = False,
) -> Obj:
    """Render ``objs`` (all of kind ``rt``) as a ``meta.k8s.io/v1`` Table.

    ``include_object`` is the ``includeObject`` query parameter: True/"Metadata" (the apiserver
    default) puts a ``PartialObjectMetadata`` in every row, "Object" the full object, False/"None"
    nothing. ``list_meta`` becomes the Table's ``metadata`` (pass the list's ``resourceVersion``/
    ``continue``); when omitted, a single object's resourceVersion is used, as the apiserver does for
    GET. ``no_headers`` drops ``columnDefinitions``, which the apiserver does for watch events after
    the first to save bandwidth (kubectl reuses the last columns).
    """
    objs = list(objs)
    now = now or datetime.now(UTC)
    mode = include_object_mode(include_object)
    columns, row_fn = crd.printer(rt) or _PRINTERS.get(rt.kind, (_DEFAULT_COLUMNS, _default_row))
    rows = []
    for obj in objs:
        cells, conditions = row_fn(obj, now)
        row: Obj = {"cells": cells}
        if conditions:
            row["conditions"] = conditions
        ro = _row_object(rt, obj, mode)
        if ro is not None:
            row["object"] = ro
        rows.append(row)
    if list_meta is None:
        rv = ((objs[0].get("metadata") or {}).get("resourceVersion")) if len(objs) == 1 else None
        list_meta = {"resourceVersion": rv} if rv else {}
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": dict(list_meta),
        "columnDefinitions": [] if no_headers else [dict(c) for c in columns],
        "rows": rows,
    }
