"""Server-side printing: ``meta.k8s.io/v1`` Tables with the columns kubectl shows (reference 1.7).

Without a Table response ``kubectl get`` prints only NAME and AGE, so every served kind gets the column set
and cell formulas of upstream ``pkg/printers/internalversion/printers.go``. The apiserver always generates
the wide cells (kubectl hides ``priority: 1`` columns unless ``-o wide``), and each row carries the object
(as ``PartialObjectMetadata`` by default) so that ``-L`` and ``--show-labels`` can read its labels.
The cell helpers are in ``table_cells.py``, the workload printers (Pod, Deployment, ReplicaSet) in
``table_workloads.py``; the other kinds' printers and the Table itself are here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from kubesim import crd
from kubesim.discovery import parse_accept
from kubesim.resources import ResourceType
from kubesim.table_cells import (
    AGE,
    AGE_DOC,
    NAME,
    NAME_DOC,
    Cells,
    Obj,
    RowFn,
    col,
    format_labels,
    human_duration,
    more,
    parse_time,
    since,
)
from kubesim.table_workloads import (
    DEPLOYMENT_COLUMNS,
    POD_COLUMNS,
    REPLICASET_COLUMNS,
    deployment_row,
    pod_row,
    replicaset_row,
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
    NAME,
    col("Type", description="type determines how the Service is exposed."),
    col(
        "Cluster-IP",
        description="clusterIP is the IP address of the service and is usually assigned randomly.",
    ),
    col(
        "External-IP",
        description="externalIPs is a list of IP addresses for which nodes in the cluster will "
        "also accept traffic for this service.",
    ),
    col("Port(s)", description="The list of ports that are exposed by this service."),
    AGE,
    col(
        "Selector",
        priority=1,
        description="Route service traffic to pods with label keys and values matching this selector.",
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
        more(items, count),
        since(meta.get("creationTimestamp"), now),
    ], None


_ENDPOINTS_COLUMNS = [
    NAME,
    col("Endpoints", description="Endpoints of the service"),
    AGE,
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
        more(ports, len(ports)) or "<unset>",
        more(addresses, len(addresses)) or "<unset>",
        since(meta.get("creationTimestamp"), now),
    ], None


_ENDPOINTSLICE_COLUMNS = [
    NAME,
    col(
        "AddressType",
        description="addressType specifies the type of address carried by this EndpointSlice.",
    ),
    col(
        "Ports",
        description="ports specifies the list of network ports exposed by each endpoint in this slice.",
    ),
    col("Endpoints", description="endpoints is a list of unique endpoints in this slice."),
    AGE,
]


def _namespace_row(obj: Obj, now: datetime) -> tuple[Cells, list[Obj] | None]:
    meta = obj.get("metadata") or {}
    return [
        meta.get("name", ""),
        (obj.get("status") or {}).get("phase", ""),
        since(meta.get("creationTimestamp"), now),
    ], None


_NAMESPACE_COLUMNS = [
    NAME,
    col("Status", description="The status of the namespace"),
    AGE,
]


def _configmap_row(obj: Obj, now: datetime) -> tuple[Cells, list[Obj] | None]:
    meta = obj.get("metadata") or {}
    count = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
    return [meta.get("name", ""), count, since(meta.get("creationTimestamp"), now)], None


_CONFIGMAP_COLUMNS = [NAME, col("Data", "integer"), AGE]


def _secret_row(obj: Obj, now: datetime) -> tuple[Cells, list[Obj] | None]:
    meta = obj.get("metadata") or {}
    return [
        meta.get("name", ""),
        obj.get("type", ""),
        len(obj.get("data") or {}),
        since(meta.get("creationTimestamp"), now),
    ], None


_SECRET_COLUMNS = [NAME, col("Type"), col("Data", "integer"), AGE]


def _lease_row(obj: Obj, now: datetime) -> tuple[Cells, list[Obj] | None]:
    meta = obj.get("metadata") or {}
    holder = (obj.get("spec") or {}).get("holderIdentity") or ""
    return [meta.get("name", ""), holder, since(meta.get("creationTimestamp"), now)], None


_LEASE_COLUMNS = [NAME, col("Holder"), AGE]


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
    col(
        "Last Seen",
        description="The time at which the most recent occurrence of this event was recorded.",
    ),
    col(
        "Type",
        description="Type of this event (Normal, Warning), new types could be added in the future.",
    ),
    col(
        "Reason",
        description="This should be a short, machine understandable string that gives the reason for "
        "the transition into the object's current status.",
    ),
    col("Object", description="The object that this event is about."),
    col(
        "Subobject",
        priority=1,
        description="The field path of the involved object this event is about.",
    ),
    col(
        "Source",
        priority=1,
        description="The component reporting this event. Should be a short machine understandable string.",
    ),
    col("Message", description="A human-readable description of the status of this operation."),
    col("First Seen", priority=1, description="The time at which the event was first recorded."),
    col("Count", priority=1, description="The number of times this event has occurred."),
    col("Name", priority=1, fmt="name", description=NAME_DOC),
]


def _ingress_row(obj: Obj, now: datetime) -> tuple[Cells, list[Obj] | None]:
    spec, status, meta = obj.get("spec") or {}, obj.get("status") or {}, obj.get("metadata") or {}
    rules = spec.get("rules") or []
    hosts = [r["host"] for r in rules if r.get("host")][:3]
    host_cell = (
        "*" if not hosts else (",".join(hosts) + (f" + {len(rules) - 3} more..." if len(rules) > 3 else ""))
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
    NAME,
    col("Class", description="The name of the IngressClass cluster resource."),
    col(
        "Hosts",
        description="Hosts that incoming requests are matched against before the ingress rule",
    ),
    col("Address", description="Address is a list containing ingress points for the load-balancer"),
    col("Ports", description="Ports of TLS configurations that open"),
    AGE,
]


def _httproute_row(obj: Obj, now: datetime) -> tuple[Cells, list[Obj] | None]:
    # HTTPRoute is a CRD: its additionalPrinterColumns are Hostnames (.spec.hostnames, printed as
    # JSON) and Age.
    meta = obj.get("metadata") or {}
    hostnames = (obj.get("spec") or {}).get("hostnames")
    cell = json.dumps(hostnames, separators=(",", ":")) if hostnames else None
    return [meta.get("name", ""), cell, since(meta.get("creationTimestamp"), now)], None


_HTTPROUTE_COLUMNS = [
    NAME,
    col("Hostnames"),
    col("Age", "date"),
]


def _mwc_row(obj: Obj, now: datetime) -> tuple[Cells, list[Obj] | None]:
    meta = obj.get("metadata") or {}
    age = since(meta.get("creationTimestamp"), now)
    return [meta.get("name", ""), len(obj.get("webhooks") or []), age], None


_MWC_COLUMNS = [NAME, col("Webhooks", "integer"), col("Age", "date")]


def _default_row(obj: Obj, now: datetime) -> tuple[Cells, list[Obj] | None]:
    meta = obj.get("metadata") or {}
    return [meta.get("name", ""), meta.get("creationTimestamp")], None


_DEFAULT_COLUMNS = [NAME, col("Created At", "date", AGE_DOC)]

_PRINTERS: dict[str, tuple[list[Obj], RowFn]] = {
    "Pod": (POD_COLUMNS, pod_row),
    "Deployment": (DEPLOYMENT_COLUMNS, deployment_row),
    "ReplicaSet": (REPLICASET_COLUMNS, replicaset_row),
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


# human_duration and parse_time live in table_cells (crd.py shares them); tables is their usual address.
__all__ = [
    "column_definitions",
    "human_duration",
    "include_object_mode",
    "parse_time",
    "to_table",
    "wants_table",
]
