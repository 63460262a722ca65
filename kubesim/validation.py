"""Object validation (reference sections 2.1 and 4).

``validate`` returns Status causes as (field, message, reason) tuples; the server turns them into a 422
Invalid. What the typed decoder itself rejects (unknown fields, wrong JSON types) is in ``decoding.py``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from kubesim import configdata
from kubesim.selectors import matches_label_selector

Obj = dict[str, Any]
Cause = tuple[str, str, str]

INVALID, REQUIRED, DUPLICATE, UNSUPPORTED, FORBIDDEN = (
    "FieldValueInvalid",
    "FieldValueRequired",
    "FieldValueDuplicate",
    "FieldValueNotSupported",
    "FieldValueForbidden",
)

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_RE = re.compile(rf"^{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*$")
_DNS1123_LABEL_RE = re.compile(rf"^{_DNS1123_LABEL}$")
_DNS1035_LABEL_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_PERCENT_RE = re.compile(r"^[0-9]+%$")

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_1123_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
    "'-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
LABEL_1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', "
    "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
NAME_PART_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
    "and end with "
    "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', "
    "'_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or "
    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
PERCENT_MSG = (
    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or "
    "'93%', regex used for validation is '[0-9]+%')"
)


def go_value(value: Any) -> str:
    """Render a value roughly like Go's ``%v`` in field errors: strings quoted, numbers bare."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if value is None:
        return "null"
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _invalid(field: str, value: Any, detail: str) -> Cause:
    return field, f"Invalid value: {go_value(value)}: {detail}", INVALID


def _required(field: str) -> Cause:
    return field, "Required value", REQUIRED


# ---- metadata ----------------------------------------------------------------------------------------------


def _validate_name(name: Any, style: str) -> list[Cause]:
    if not name:
        return []  # generateName-only creates are checked by the server
    if not isinstance(name, str):
        return [_invalid("metadata.name", name, "must be a string")]
    if style == "1035":
        ok, msg, limit = _DNS1035_LABEL_RE.match(name), LABEL_1035_MSG, 63
    elif style == "1123label":
        ok, msg, limit = _DNS1123_LABEL_RE.match(name), LABEL_1123_MSG, 63
    else:
        ok, msg, limit = _DNS1123_SUBDOMAIN_RE.match(name), SUBDOMAIN_MSG, 253
    causes = []
    if len(name) > limit:
        causes.append(_invalid("metadata.name", name, f"must be no more than {limit} characters"))
    if not ok:
        causes.append(_invalid("metadata.name", name, msg))
    return causes


def label_key_errors(key: str) -> list[str]:
    """Qualified-name checks (``prefix/name``) for a label key; returns messages."""
    out = []
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or not _DNS1123_SUBDOMAIN_RE.match(prefix) or len(prefix) > 253):
        out.append("prefix part " + SUBDOMAIN_MSG)
    if not name:
        out.append("name part must be non-empty")
    elif len(name) > 63:
        out.append("name part must be no more than 63 characters")
    elif not _QUALIFIED_NAME_RE.match(name):
        out.append(NAME_PART_MSG)
    return out


def validate_labels(labels: Any, field: str) -> list[Cause]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [_invalid(field, labels, "must be a map of string keys and values")]
    causes = []
    for key, value in labels.items():
        for msg in label_key_errors(str(key)):
            causes.append(_invalid(field, key, msg))
        if not isinstance(value, str):
            causes.append(_invalid(f"{field}", value, "label values must be strings"))
        elif len(value) > 63:
            causes.append(_invalid(field, value, "must be no more than 63 characters"))
        elif not _LABEL_VALUE_RE.match(value):
            causes.append(_invalid(field, value, LABEL_VALUE_MSG))
    return causes


def _validate_meta(obj: Obj, name_style: str, field: str = "metadata") -> list[Cause]:
    meta = obj.get("metadata") or {}
    causes = _validate_name(meta.get("name"), name_style) if field == "metadata" else []
    causes += validate_labels(meta.get("labels"), f"{field}.labels")
    annotations = meta.get("annotations")
    if annotations is not None:
        if not isinstance(annotations, dict):
            causes.append(_invalid(f"{field}.annotations", annotations, "must be a map"))
        else:
            for key, value in annotations.items():
                for msg in label_key_errors(str(key)):
                    causes.append(_invalid(f"{field}.annotations", key, msg))
                if not isinstance(value, str):
                    causes.append(
                        _invalid(f"{field}.annotations", value, "annotation values must be strings")
                    )
    return causes


# ---- pods --------------------------------------------------------------------------------------------------


def validate_pod_spec(spec: Any, field: str, *, template: bool) -> list[Cause]:
    if not isinstance(spec, dict):
        return [_required(field)]
    causes: list[Cause] = []
    containers = spec.get("containers")
    if not containers:
        causes.append(_required(f"{field}.containers"))
    seen: set[str] = set()
    for key in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(key) or []):
            path = f"{field}.{key}[{i}]"
            if not isinstance(container, dict):
                causes.append(_invalid(path, container, "must be an object"))
                continue
            name = container.get("name")
            if not name:
                causes.append(_required(f"{path}.name"))
            elif not isinstance(name, str) or not _DNS1123_LABEL_RE.match(name):
                causes.append(_invalid(f"{path}.name", name, LABEL_1123_MSG))
            elif name in seen:
                causes.append((f"{path}.name", f"Duplicate value: {go_value(name)}", DUPLICATE))
            else:
                seen.add(name)
            if not container.get("image") and key == "containers":
                causes.append(_required(f"{path}.image"))
            port_names: set[str] = set()
            for j, port in enumerate(container.get("ports") or []):
                ppath = f"{path}.ports[{j}]"
                cport = port.get("containerPort") if isinstance(port, dict) else None
                if not isinstance(cport, int) or isinstance(cport, bool) or not 1 <= cport <= 65535:
                    causes.append(
                        _invalid(f"{ppath}.containerPort", cport, "must be between 1 and 65535, inclusive")
                    )
                pname = port.get("name") if isinstance(port, dict) else None
                if pname:
                    if pname in port_names:
                        causes.append((f"{ppath}.name", f"Duplicate value: {go_value(pname)}", DUPLICATE))
                    port_names.add(pname)
    restart = spec.get("restartPolicy")
    if restart is not None and restart not in ("Always", "OnFailure", "Never"):
        causes.append(
            (
                f"{field}.restartPolicy",
                f'Unsupported value: {go_value(restart)}: supported values: "Always", "OnFailure", "Never"',
                UNSUPPORTED,
            )
        )
    elif template and restart not in (None, "Always"):
        causes.append(
            (
                f"{field}.restartPolicy",
                f'Unsupported value: {go_value(restart)}: supported values: "Always"',
                UNSUPPORTED,
            )
        )
    return causes


def _validate_pod(obj: Obj, old: Obj | None) -> list[Cause]:
    causes = _validate_meta(obj, "subdomain")
    causes += validate_pod_spec(obj.get("spec"), "spec", template=False)
    if old is not None:
        new_c = [
            (c.get("name"), c.get("image"))
            for c in (obj.get("spec") or {}).get("containers") or []
            if isinstance(c, dict)
        ]
        old_c = [(c.get("name"), c.get("image")) for c in (old.get("spec") or {}).get("containers") or []]
        if [n for n, _ in new_c] != [n for n, _ in old_c]:
            causes.append(
                (
                    "spec",
                    "Forbidden: pod updates may not change fields other than "
                    "`spec.containers[*]."
                    "image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, "
                    "`spec.tolerations` (only additions to existing tolerations) or "
                    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
                    "previously "
                    "negative)",
                    FORBIDDEN,
                )
            )
    return causes


# ---- workloads ---------------------------------------------------------------------------------------------


def _validate_int_or_percent(value: Any, field: str) -> tuple[list[Cause], int | None, bool]:
    """Returns causes, the numeric value and whether it was a percentage."""
    if isinstance(value, bool):
        return [_invalid(field, value, "must be an integer or percentage")], None, False
    if isinstance(value, int):
        if value < 0:
            return [_invalid(field, value, "must be greater than or equal to 0")], value, False
        return [], value, False
    if isinstance(value, str):
        if value.isdigit():
            # The apiserver accepts numeric strings only as percentages; "1" is not valid.
            return [_invalid(field, value, PERCENT_MSG)], None, True
        if not _PERCENT_RE.match(value):
            return [_invalid(field, value, PERCENT_MSG)], None, True
        pct = int(value[:-1])
        return [], pct, True
    return [_invalid(field, value, "must be an integer or percentage")], None, False


def _validate_workload(obj: Obj, old: Obj | None, *, deployment: bool) -> list[Cause]:
    causes = _validate_meta(obj, "subdomain")
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return causes + [_required("spec")]
    replicas = spec.get("replicas")
    if replicas is not None and (not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0):
        causes.append(_invalid("spec.replicas", replicas, "must be greater than or equal to 0"))
    for key in ("minReadySeconds", "revisionHistoryLimit"):
        value = spec.get(key)
        if value is not None and (not isinstance(value, int) or value < 0):
            causes.append(_invalid(f"spec.{key}", value, "must be greater than or equal to 0"))
    selector = spec.get("selector")
    template = spec.get("template")
    if selector is None:
        causes.append(_required("spec.selector"))
    elif not isinstance(selector, dict) or (
        not selector.get("matchLabels") and not selector.get("matchExpressions")
    ):
        causes.append(_invalid("spec.selector", selector, "empty selector is invalid for deployment"))
    else:
        causes += validate_labels(selector.get("matchLabels"), "spec.selector.matchLabels")
        for i, expr in enumerate(selector.get("matchExpressions") or []):
            op, values = (expr or {}).get("operator"), (expr or {}).get("values") or []
            efield = f"spec.selector.matchExpressions[{i}]"
            if op in ("In", "NotIn") and not values:
                causes.append(
                    (
                        f"{efield}.values",
                        "Required value: must be specified when `operator` is 'In' or 'NotIn'",
                        REQUIRED,
                    )
                )
            elif op in ("Exists", "DoesNotExist") and values:
                causes.append(
                    (
                        f"{efield}.values",
                        "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                        FORBIDDEN,
                    )
                )
            elif op not in ("In", "NotIn", "Exists", "DoesNotExist"):
                causes.append(
                    (
                        f"{efield}.operator",
                        f"Unsupported value: {go_value(op)}: supported values: "
                        '"In", "NotIn", "Exists", "DoesNotExist"',
                        UNSUPPORTED,
                    )
                )
    if not isinstance(template, dict):
        causes.append(_required("spec.template"))
    else:
        tmeta = template.get("metadata") or {}
        causes += validate_labels(tmeta.get("labels"), "spec.template.metadata.labels")
        if (
            isinstance(selector, dict)
            and (selector.get("matchLabels") or selector.get("matchExpressions"))
            and not matches_label_selector(selector, tmeta.get("labels") or {})
        ):
            causes.append(
                _invalid(
                    "spec.template.metadata.labels",
                    tmeta.get("labels") or {},
                    "`selector` does not match template `labels`",
                )
            )
        causes += validate_pod_spec(template.get("spec"), "spec.template.spec", template=True)
    if deployment:
        causes += _validate_strategy(spec)
        deadline, min_ready = spec.get("progressDeadlineSeconds"), spec.get("minReadySeconds") or 0
        if isinstance(deadline, int) and isinstance(min_ready, int) and deadline <= min_ready:
            causes.append(
                _invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds")
            )
    if old is not None:
        old_selector = (old.get("spec") or {}).get("selector")
        if selector != old_selector:
            causes.append(_invalid("spec.selector", selector, "field is immutable"))
    return causes


def _validate_strategy(spec: Obj) -> list[Cause]:
    strategy = spec.get("strategy") or {}
    causes: list[Cause] = []
    stype = strategy.get("type")
    if stype not in ("RollingUpdate", "Recreate"):
        return [
            (
                "spec.strategy.type",
                f'Unsupported value: {go_value(stype)}: supported values: "Recreate", "RollingUpdate"',
                UNSUPPORTED,
            )
        ]
    rolling = strategy.get("rollingUpdate")
    if stype == "Recreate":
        if rolling is not None:
            causes.append(
                (
                    "spec.strategy.rollingUpdate",
                    "Forbidden: may not be specified when strategy `type` is 'Recreate'",
                    FORBIDDEN,
                )
            )
        return causes
    if not isinstance(rolling, dict):
        return causes
    surge_c, surge, _ = _validate_int_or_percent(
        rolling.get("maxSurge", "25%"), "spec.strategy.rollingUpdate.maxSurge"
    )
    unavail_c, unavail, unavail_pct = _validate_int_or_percent(
        rolling.get("maxUnavailable", "25%"), "spec.strategy.rollingUpdate.maxUnavailable"
    )
    causes += surge_c + unavail_c
    if unavail_pct and unavail is not None and unavail > 100:
        causes.append(
            _invalid(
                "spec.strategy.rollingUpdate.maxUnavailable",
                rolling.get("maxUnavailable"),
                "must not be greater than 100%",
            )
        )
    if surge == 0 and unavail == 0:
        causes.append(
            _invalid(
                "spec.strategy.rollingUpdate.maxUnavailable",
                rolling.get("maxUnavailable"),
                "may not be 0 when `maxSurge` is 0",
            )
        )
    return causes


# ---- services ----------------------------------------------------------------------------------------------


def _validate_service(obj: Obj, old: Obj | None) -> list[Cause]:
    causes = _validate_meta(obj, "1035")
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return causes + [_required("spec")]
    stype = spec.get("type", "ClusterIP")
    if stype not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        causes.append(
            (
                "spec.type",
                f'Unsupported value: {go_value(stype)}: supported values: "ClusterIP", '
                '"ExternalName", "LoadBalancer", "NodePort"',
                UNSUPPORTED,
            )
        )
    ports = spec.get("ports") or []
    if not ports and stype != "ExternalName" and spec.get("clusterIP") != "None":
        causes.append(_required("spec.ports"))
    names: set[str] = set()
    for i, port in enumerate(ports):
        field = f"spec.ports[{i}]"
        if not isinstance(port, dict):
            causes.append(_invalid(field, port, "must be an object"))
            continue
        number = port.get("port")
        if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= 65535:
            causes.append(_invalid(f"{field}.port", number, "must be between 1 and 65535, inclusive"))
        name = port.get("name")
        if len(ports) > 1 and not name:
            causes.append(_required(f"{field}.name"))
        elif name:
            if name in names:
                causes.append((f"{field}.name", f"Duplicate value: {go_value(name)}", DUPLICATE))
            names.add(name)
    selector = spec.get("selector")
    if selector is not None:
        causes += validate_labels(selector, "spec.selector")
    if old is not None:
        old_ip = (old.get("spec") or {}).get("clusterIP")
        if old_ip and spec.get("clusterIP") and spec["clusterIP"] != old_ip:
            causes.append(_invalid("spec.clusterIPs[0]", [spec["clusterIP"]], "may not change once set"))
    return causes


def _validate_lease(spec: Obj) -> list[Cause]:
    causes = []
    duration, transitions = spec.get("leaseDurationSeconds"), spec.get("leaseTransitions")
    if isinstance(duration, int) and duration <= 0:
        causes.append(_invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    if isinstance(transitions, int) and transitions < 0:
        causes.append(_invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0"))
    return causes


def validate(resource: str, obj: Obj, old: Obj | None = None) -> list[Cause]:
    """Causes for an object of store key ``resource`` (``old`` is the stored object on update)."""
    if resource == "deployments.apps":
        return _validate_workload(obj, old, deployment=True)
    if resource == "replicasets.apps":
        return _validate_workload(obj, old, deployment=False)
    if resource == "pods":
        return _validate_pod(obj, old)
    if resource == "services":
        return _validate_service(obj, old)
    if resource == "namespaces":
        return _validate_meta(obj, "1123label")
    if resource == "configmaps":
        return _validate_meta(obj, "subdomain") + configdata.validate_configmap(obj, old)
    if resource == "secrets":
        return _validate_meta(obj, "subdomain") + configdata.validate_secret(obj, old)
    if resource == "leases.coordination.k8s.io":
        return _validate_meta(obj, "subdomain") + _validate_lease(obj.get("spec") or {})
    return _validate_meta(obj, "subdomain")
