"""Read Argo ``AnalysisTemplate`` YAML into ``AnalysisSpec``; fill ``{{args.x}}`` (pure: no I/O).

Every problem is one line naming the file, the metric and the field, e.g.
``error-rate.yaml: metric error-rate: provider.prometheus.query: {{args.svc}} is not declared in spec.args``.
A field we do not implement is an error, never ignored. Validation follows Argo's ``ValidateMetric``
(tests/conformance), plus bounds Argo does not need as one controller (``MAX_METRICS``,
``MIN_INTERVAL_SECONDS``: one rollout must not hold a shared worker's slots or hammer a target).

``substitute`` runs in the workflow (it is deterministic) once the canary and stable
pod-template-hashes are known. It fills each ``{{args.x}}`` for its place, so an arg stays a value:
inside a quoted PromQL string or condition string it is escaped, elsewhere in a query or condition it
must be a number or a plain name, and in a URL's path or query it is percent-encoded. ``apply_args``
fills the given values at ``rollout start`` and re-checks every condition after substitution, so a
bad value is one line there, never a surprise in the workflow.
The arg values and ``substitute`` live in ``analysis_args``; they are re-exported here.
"""

from __future__ import annotations

import re
from typing import Any

from workflows.analysis_args import ARG_REF, Where, arg_values, is_url, substitute
from workflows.analysis_expr import check
from workflows.errors import AnalysisInputError, ConditionError
from workflows.model import (
    ARG_LATEST,
    ARG_STABLE,
    AnalysisArg,
    AnalysisSpec,
    MetricSpec,
    PrometheusProvider,
    SecretKeyRef,
    WebHeader,
    WebProvider,
)

__all__ = [
    "MAX_METRICS",
    "MIN_INTERVAL_SECONDS",
    "PROMETHEUS_ADDRESS_ENV",
    "apply_args",
    "arg_values",
    "check_filled",
    "parse_duration",
    "parse_template",
    "substitute",
]

API_VERSION = "argoproj.io/v1alpha1"
KINDS = ("AnalysisTemplate", "ClusterAnalysisTemplate")
PROVIDERS = ("prometheus", "web")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_METRIC_FIELDS = {
    "name",
    "interval",
    "initialDelay",
    "count",
    "successCondition",
    "failureCondition",
    "failureLimit",
    "inconclusiveLimit",
    "consecutiveErrorLimit",
    "provider",
}
_METHODS = ("GET", "POST", "PUT")
PROMETHEUS_ADDRESS_ENV = "ARGO_ROLLOUTS_PROMETHEUS_ADDRESS"  # Argo's default address, read by the CLI
MAX_METRICS = 10  # per template (security review F7)
MIN_INTERVAL_SECONDS = 1.0  # interval floor (F7); Argo has none


def parse_duration(text: Any) -> float:
    """Go-style duration (``30s``, ``1m30s``, ``500ms``, ``2h``) or a bare number of seconds."""
    if isinstance(text, int | float) and not isinstance(text, bool) and text >= 0:
        return float(text)
    s = str(text).strip()
    if s.isdigit():
        return float(s)
    parts = _DURATION.findall(s)
    if not parts or "".join(n + u for n, u in parts) != s:
        raise ValueError(f"{text!r} is not a duration like 30s, 5m or 1m30s")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    raise ValueError(f"{value!r} is not an integer")


def _unknown(obj: dict[str, Any], allowed: set[str], prefix: str, where: Where) -> None:
    extra = sorted(set(obj) - allowed)
    if extra:
        raise where.error(f"{prefix}{extra[0]}", "field is not supported (see docs/analysis.md)")


def _args(raw: Any, where: Where) -> list[AnalysisArg]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise where.error("spec.args", "must be a list")
    out: list[AnalysisArg] = []
    for i, item in enumerate(raw):
        field = f"spec.args[{i}]"
        if not isinstance(item, dict) or not item.get("name"):
            raise where.error(field, "needs a name")
        _unknown(item, {"name", "value", "valueFrom"}, f"{field}.", where)
        vf = item.get("valueFrom")
        pth: str | None = None
        secret: SecretKeyRef | None = None
        if vf is not None:
            if not isinstance(vf, dict):
                raise where.error(f"{field}.valueFrom", "must be a mapping")
            _unknown(vf, {"podTemplateHashValue", "secretKeyRef"}, f"{field}.valueFrom.", where)
            if "secretKeyRef" in vf:
                ref = vf["secretKeyRef"]
                if (
                    set(vf) != {"secretKeyRef"}
                    or not isinstance(ref, dict)
                    or set(ref) != {"name", "key"}
                    or not all(isinstance(ref[k], str) and ref[k] for k in ("name", "key"))
                ):
                    raise where.error(f"{field}.valueFrom.secretKeyRef", "must have exactly name and key")
                secret = SecretKeyRef(name=ref["name"], key=ref["key"])
            else:
                pth = vf.get("podTemplateHashValue")
                if pth not in (ARG_LATEST, ARG_STABLE):
                    raise where.error(f"{field}.valueFrom.podTemplateHashValue", "must be Latest or Stable")
        value = item.get("value")
        out.append(
            AnalysisArg(
                name=str(item["name"]),
                value=None if value is None else str(value),
                pod_template_hash=pth,
                secret_key_ref=secret if vf is not None and "secretKeyRef" in vf else None,
            )
        )
    return out


def _provider(
    raw: Any, where: Where, default_address: str = ""
) -> tuple[PrometheusProvider | None, WebProvider | None]:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise where.error("provider", f"needs exactly one provider ({', '.join(PROVIDERS)})")
    ((kind, body),) = raw.items()
    if kind not in PROVIDERS:
        raise where.error(
            f"provider.{kind}", f"provider is not supported (supported: {', '.join(PROVIDERS)})"
        )
    if not isinstance(body, dict):
        raise where.error(f"provider.{kind}", "must be a mapping")
    if kind == "prometheus":
        _unknown(body, {"address", "query", "timeout"}, "provider.prometheus.", where)
        if not body.get("query"):
            raise where.error("provider.prometheus.query", "is required")
        address = str(body.get("address") or default_address)
        if not address:
            raise where.error(
                "provider.prometheus.address",
                f"prometheus address is not configured (give it here or set {PROMETHEUS_ADDRESS_ENV})",
            )
        if not ARG_REF.search(address) and not is_url(address):
            raise where.error("provider.prometheus.address", f"{address!r} is not a URL (http://host:port)")
        try:
            timeout = _int(body.get("timeout", 30))
        except ValueError as exc:
            raise where.error("provider.prometheus.timeout", str(exc)) from None
        if timeout < 0:
            raise where.error("provider.prometheus.timeout", "prometheus timeout should not be negative")
        return PrometheusProvider(address=address, query=str(body["query"]), timeout=timeout), None
    _unknown(body, {"url", "method", "headers", "body", "jsonPath", "timeoutSeconds"}, "provider.web.", where)
    if not body.get("url"):
        raise where.error("provider.web.url", "is required")
    method = str(body.get("method") or "GET").upper()
    if method not in _METHODS:
        raise where.error("provider.web.method", f"must be one of {', '.join(_METHODS)}")
    if body.get("body") and method == "GET":
        raise where.error(
            "provider.web.body", "Body/JSONBody can only be used with POST or PUT WebMetric Method types"
        )
    headers = []
    for i, h in enumerate(body.get("headers") or []):
        if not isinstance(h, dict) or set(h) != {"key", "value"}:
            raise where.error(f"provider.web.headers[{i}]", "must have exactly key and value")
        headers.append(WebHeader(key=str(h["key"]), value=str(h["value"])))
    json_path = str(body.get("jsonPath") or "")
    if json_path and not ARG_REF.search(json_path):
        _check_json_path(json_path, where)
    try:
        timeout = _int(body.get("timeoutSeconds", 10))
    except ValueError as exc:
        raise where.error("provider.web.timeoutSeconds", str(exc)) from None
    return None, WebProvider(
        url=str(body["url"]),
        method=method,
        headers=headers,
        body=str(body.get("body") or ""),
        json_path=json_path,
        timeout_seconds=timeout,
    )


def _check_json_path(expr: str, where: Where) -> None:
    from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
    from jsonpath_ng.ext import parse

    try:
        parse(_argo_json_path(expr))
    except (JsonPathLexerError, JsonPathParserError, Exception) as exc:  # noqa: BLE001 - library raises broadly
        raise where.error("provider.web.jsonPath", f"{expr!r} does not parse: {exc}") from None


def _argo_json_path(expr: str) -> str:
    """Argo writes ``{$.data.ok}`` (kubectl style); jsonpath-ng wants ``$.data.ok``."""
    e = expr.strip()
    return e[1:-1] if e.startswith("{") and e.endswith("}") else e


def _metric(raw: Any, index: int, where: Where, default_address: str = "") -> MetricSpec:
    if not isinstance(raw, dict) or not raw.get("name"):
        raise where.error(f"spec.metrics[{index}]", "needs a name")
    w = Where(where.source, str(raw["name"]))
    _unknown(raw, _METRIC_FIELDS, "", w)
    fields: dict[str, Any] = {"name": str(raw["name"])}
    for key, attr in (("interval", "interval_seconds"), ("initialDelay", "initial_delay_seconds")):
        if key in raw:
            try:
                fields[attr] = parse_duration(raw[key])
            except ValueError as exc:
                raise w.error(key, str(exc)) from None
    for key, attr, low in (
        ("count", "count", 0),
        ("failureLimit", "failure_limit", -1),
        ("inconclusiveLimit", "inconclusive_limit", 0),
        ("consecutiveErrorLimit", "consecutive_error_limit", 0),
    ):
        if key in raw:
            try:
                n = _int(raw[key])
            except ValueError as exc:
                raise w.error(key, str(exc)) from None
            if n < low:
                raise w.error(key, f"must be >= {low}" if low >= 0 else "must be >= 0, or -1 to be disabled")
            fields[attr] = n
    _limits(fields, w)
    if fields.get("interval_seconds") is not None and fields["interval_seconds"] < MIN_INTERVAL_SECONDS:
        raise w.error("interval", f"must be at least {MIN_INTERVAL_SECONDS:g}s")
    for key, attr in (("successCondition", "success_condition"), ("failureCondition", "failure_condition")):
        if raw.get(key):
            text = str(raw[key])
            try:
                check(ARG_REF.sub("0", text))
            except ConditionError as exc:
                raise w.error(key, str(exc)) from None
            fields[attr] = text
    fields["prometheus"], fields["web"] = _provider(raw.get("provider"), w, default_address)
    return MetricSpec(**fields)


def _limits(fields: dict[str, Any], w: Where) -> None:
    """Argo's ``ValidateMetric`` rules between count and the limits (no consecutiveSuccessLimit here)."""
    count = fields.get("count") or 0
    failure_limit = fields.get("failure_limit", 0)
    inconclusive_limit = fields.get("inconclusive_limit", 0)
    if failure_limit == -1:
        raise w.error("failureLimit", "failureLimit and consecutiveSuccessLimit cannot both be disabled")
    if count > 0 and count < failure_limit:
        raise w.error(
            "count",
            f"count ({count}) must be >= failureLimit + consecutiveSuccessLimit ({failure_limit} + 0) "
            "if both >= 0",
        )
    if count > 0 and count < inconclusive_limit:
        raise w.error("count", "count must be >= inconclusiveLimit")
    if count > 1 and not fields.get("interval_seconds"):
        raise w.error("interval", "interval must be specified when count > 1")
    if count == 0:
        fields.pop("count", None)  # Argo: count 0 is no count (one measurement without interval)


def _strings(metric: MetricSpec) -> list[tuple[str, str]]:
    """(field, text) of every string that may hold ``{{args.x}}``."""
    out = [("successCondition", metric.success_condition), ("failureCondition", metric.failure_condition)]
    if metric.prometheus is not None:
        p = metric.prometheus
        out += [("provider.prometheus.address", p.address), ("provider.prometheus.query", p.query)]
    if metric.web is not None:
        w = metric.web
        out += [
            ("provider.web.url", w.url),
            ("provider.web.body", w.body),
            ("provider.web.jsonPath", w.json_path),
        ]
        out += [(f"provider.web.headers[{i}].value", h.value) for i, h in enumerate(w.headers)]
    return out


def parse_template(doc: Any, source: str, *, default_prometheus_address: str = "") -> AnalysisSpec:
    """One AnalysisTemplate document -> ``AnalysisSpec`` (raises ``AnalysisInputError``).

    ``default_prometheus_address``: the address of a Prometheus metric that names none (the CLI passes
    ``$ARGO_ROLLOUTS_PROMETHEUS_ADDRESS``, as Argo's controller reads it).
    """
    where = Where(source)
    if not isinstance(doc, dict):
        raise where.error("document", "want an AnalysisTemplate mapping")
    if doc.get("apiVersion") != API_VERSION or doc.get("kind") not in KINDS:
        raise where.error(
            "kind",
            f"want AnalysisTemplate of {API_VERSION}, got {doc.get('kind')} of {doc.get('apiVersion')}",
        )
    _unknown(doc, {"apiVersion", "kind", "metadata", "spec"}, "", where)
    name = (doc.get("metadata") or {}).get("name")
    if not name:
        raise where.error("metadata.name", "is required")
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        raise where.error("spec", "is required")
    _unknown(spec, {"args", "metrics"}, "spec.", where)
    args = _args(spec.get("args"), where)
    raw_metrics = spec.get("metrics")
    if not isinstance(raw_metrics, list) or not raw_metrics:
        raise where.error("spec.metrics", "needs at least one metric")
    if len(raw_metrics) > MAX_METRICS:
        raise where.error("spec.metrics", f"at most {MAX_METRICS} metrics per template")
    metrics = [_metric(m, i, where, default_prometheus_address) for i, m in enumerate(raw_metrics)]
    names = [m.name for m in metrics]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise where.error(
            f"spec.metrics[{names.index(dup, names.index(dup) + 1)}].name", f"{dup!r} is used twice"
        )
    declared = {a.name for a in args}
    secrets = {a.name: a.secret_key_ref for a in args if a.secret_key_ref is not None}
    for metric in metrics:
        for field, text in _strings(metric):
            for ref in ARG_REF.findall(text):
                if ref not in declared:
                    raise Where(source, metric.name).error(
                        field, f"{{{{args.{ref}}}}} is not declared in spec.args"
                    )
                if ref in secrets and not field.startswith("provider.web.headers"):
                    raise Where(source, metric.name).error(
                        field,
                        f"args.{ref} comes from a Secret (valueFrom.secretKeyRef): only "
                        "provider.web.headers values may use it",
                    )
    if secrets:
        metrics = [_with_secret_refs(m, secrets) for m in metrics]
    return AnalysisSpec(name=str(name), source=source, args=args, metrics=metrics)


def _with_secret_refs(metric: MetricSpec, secrets: dict[str, SecretKeyRef]) -> MetricSpec:
    """Each web header names the Secrets its value reads (the worker fills them in; never the workflow)."""
    if metric.web is None:
        return metric
    headers = [
        h.model_copy(update={"secrets": {r: secrets[r] for r in ARG_REF.findall(h.value) if r in secrets}})
        for h in metric.web.headers
    ]
    return metric.model_copy(update={"web": metric.web.model_copy(update={"headers": headers})})


def apply_args(specs: list[AnalysisSpec], given: dict[str, str]) -> list[AnalysisSpec]:
    """Fill ``--analysis-arg NAME=VALUE`` into the templates' args; every arg must end with a value.

    Raises:
        AnalysisInputError: an arg without a value, or a given NAME that no template declares.
    """
    used: set[str] = set()
    out = []
    for spec in specs:
        args = []
        for a in spec.args:
            if a.name in given:
                used.add(a.name)
                a = a.model_copy(update={"value": given[a.name], "pod_template_hash": None})
            if a.value is None and a.pod_template_hash is None and a.secret_key_ref is None:
                raise AnalysisInputError(
                    f"{spec.source}: spec.args: {a.name} has no value (give --analysis-arg {a.name}=VALUE)"
                )
            args.append(a)
        filled = spec.model_copy(update={"args": args})
        check_filled(filled)
        out.append(filled)
    unused = sorted(set(given) - used)
    if unused:
        raise AnalysisInputError(f"--analysis-arg {unused[0]}: no analysis template declares this arg")
    return out


def check_filled(spec: AnalysisSpec) -> None:
    """Substitute ``spec``'s given values (hashes as placeholders) and re-check what the workflow will run.

    Raises:
        AnalysisInputError: one line naming the file, metric and field.
    """
    values = arg_values(spec, stable_hash="0123456789", canary_hash="0123456789")
    for metric in spec.metrics:
        try:
            filled = substitute(metric, values)
        except AnalysisInputError as exc:
            raise AnalysisInputError(f"{spec.source}: {str(exc).removeprefix('args: ')}") from None
        for key, text in (
            ("successCondition", filled.success_condition),
            ("failureCondition", filled.failure_condition),
        ):
            if text:
                try:
                    check(text)
                except ConditionError as exc:
                    raise Where(spec.source, metric.name).error(key, f"after args: {exc}") from None
        if filled.web is not None and filled.web.json_path:
            _check_json_path(filled.web.json_path, Where(spec.source, metric.name))
