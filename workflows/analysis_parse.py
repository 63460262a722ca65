"""Read Argo ``AnalysisTemplate`` YAML into ``AnalysisSpec``; fill ``{{args.x}}`` (pure: no I/O).

Every problem is one line naming the file, the metric and the field, e.g.
``error-rate.yaml: metric error-rate: provider.prometheus.query: {{args.svc}} is not declared in spec.args``.
A field we do not implement is an error, never ignored. ``substitute`` runs in the workflow (it is
deterministic) once the canary and stable pod-template-hashes are known.
"""

from __future__ import annotations

import re
from typing import Any

from workflows.analysis_expr import check
from workflows.errors import AnalysisInputError, ConditionError
from workflows.model import (
    ARG_LATEST,
    ARG_STABLE,
    AnalysisArg,
    AnalysisSpec,
    MetricSpec,
    PrometheusProvider,
    WebHeader,
    WebProvider,
)

__all__ = [
    "apply_args",
    "arg_values",
    "parse_duration",
    "parse_template",
    "substitute",
]

API_VERSION = "argoproj.io/v1alpha1"
KINDS = ("AnalysisTemplate", "ClusterAnalysisTemplate")
PROVIDERS = ("prometheus", "web")
_ARG_REF = re.compile(r"\{\{\s*args\.([A-Za-z0-9_.-]+)\s*\}\}")
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


class _Where:
    """Builds the ``file: metric m: field: problem`` line."""

    def __init__(self, source: str, metric: str = "") -> None:
        self.source, self.metric = source, metric

    def error(self, field: str, problem: str) -> AnalysisInputError:
        where = f"{self.source}: " + (f"metric {self.metric}: " if self.metric else "")
        return AnalysisInputError(f"{where}{field}: {problem}")


def _unknown(obj: dict[str, Any], allowed: set[str], prefix: str, where: _Where) -> None:
    extra = sorted(set(obj) - allowed)
    if extra:
        raise where.error(f"{prefix}{extra[0]}", "field is not supported (see docs/analysis.md)")


def _args(raw: Any, where: _Where) -> list[AnalysisArg]:
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
        if vf is not None:
            if not isinstance(vf, dict):
                raise where.error(f"{field}.valueFrom", "must be a mapping")
            _unknown(vf, {"podTemplateHashValue"}, f"{field}.valueFrom.", where)
            pth = vf.get("podTemplateHashValue")
            if pth not in (ARG_LATEST, ARG_STABLE):
                raise where.error(f"{field}.valueFrom.podTemplateHashValue", "must be Latest or Stable")
        value = item.get("value")
        out.append(
            AnalysisArg(
                name=str(item["name"]), value=None if value is None else str(value), pod_template_hash=pth
            )
        )
    return out


def _provider(raw: Any, where: _Where) -> tuple[PrometheusProvider | None, WebProvider | None]:
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
        for key in ("address", "query"):
            if not body.get(key):
                raise where.error(f"provider.prometheus.{key}", "is required")
        try:
            timeout = _int(body.get("timeout", 30))
        except ValueError as exc:
            raise where.error("provider.prometheus.timeout", str(exc)) from None
        return PrometheusProvider(
            address=str(body["address"]), query=str(body["query"]), timeout=timeout
        ), None
    _unknown(
        body, {"url", "method", "headers", "body", "jsonPath", "timeoutSeconds"}, "provider.web.", where
    )
    if not body.get("url"):
        raise where.error("provider.web.url", "is required")
    method = str(body.get("method") or "GET").upper()
    if method not in _METHODS:
        raise where.error("provider.web.method", f"must be one of {', '.join(_METHODS)}")
    headers = []
    for i, h in enumerate(body.get("headers") or []):
        if not isinstance(h, dict) or set(h) != {"key", "value"}:
            raise where.error(f"provider.web.headers[{i}]", "must have exactly key and value")
        headers.append(WebHeader(key=str(h["key"]), value=str(h["value"])))
    json_path = str(body.get("jsonPath") or "")
    if json_path and not _ARG_REF.search(json_path):
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


def _check_json_path(expr: str, where: _Where) -> None:
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


def _metric(raw: Any, index: int, where: _Where) -> MetricSpec:
    if not isinstance(raw, dict) or not raw.get("name"):
        raise where.error(f"spec.metrics[{index}]", "needs a name")
    w = _Where(where.source, str(raw["name"]))
    _unknown(raw, _METRIC_FIELDS, "", w)
    fields: dict[str, Any] = {"name": str(raw["name"])}
    for key, attr in (("interval", "interval_seconds"), ("initialDelay", "initial_delay_seconds")):
        if key in raw:
            try:
                fields[attr] = parse_duration(raw[key])
            except ValueError as exc:
                raise w.error(key, str(exc)) from None
    for key, attr, low in (
        ("count", "count", 1),
        ("failureLimit", "failure_limit", -1),
        ("inconclusiveLimit", "inconclusive_limit", -1),
        ("consecutiveErrorLimit", "consecutive_error_limit", -1),
    ):
        if key in raw:
            try:
                n = _int(raw[key])
            except ValueError as exc:
                raise w.error(key, str(exc)) from None
            if n < low:
                raise w.error(key, f"must be >= {low}")
            fields[attr] = n
    if fields.get("count", 1) > 1 and not fields.get("interval_seconds"):
        raise w.error("interval", "is required when count > 1")
    for key, attr in (("successCondition", "success_condition"), ("failureCondition", "failure_condition")):
        if raw.get(key):
            text = str(raw[key])
            try:
                check(_ARG_REF.sub("0", text))
            except ConditionError as exc:
                raise w.error(key, str(exc)) from None
            fields[attr] = text
    fields["prometheus"], fields["web"] = _provider(raw.get("provider"), w)
    return MetricSpec(**fields)


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


def parse_template(doc: Any, source: str) -> AnalysisSpec:
    """One AnalysisTemplate document -> ``AnalysisSpec`` (raises ``AnalysisInputError``)."""
    where = _Where(source)
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
    metrics = [_metric(m, i, where) for i, m in enumerate(raw_metrics)]
    names = [m.name for m in metrics]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise where.error(
            f"spec.metrics[{names.index(dup, names.index(dup) + 1)}].name", f"{dup!r} is used twice"
        )
    declared = {a.name for a in args}
    for metric in metrics:
        for field, text in _strings(metric):
            for ref in _ARG_REF.findall(text):
                if ref not in declared:
                    raise _Where(source, metric.name).error(
                        field, f"{{{{args.{ref}}}}} is not declared in spec.args"
                    )
    return AnalysisSpec(name=str(name), source=source, args=args, metrics=metrics)


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
            if a.value is None and a.pod_template_hash is None:
                raise AnalysisInputError(
                    f"{spec.source}: spec.args: {a.name} has no value (give --analysis-arg {a.name}=VALUE)"
                )
            args.append(a)
        out.append(spec.model_copy(update={"args": args}))
    unused = sorted(set(given) - used)
    if unused:
        raise AnalysisInputError(f"--analysis-arg {unused[0]}: no analysis template declares this arg")
    return out


def arg_values(spec: AnalysisSpec, *, stable_hash: str, canary_hash: str) -> dict[str, str]:
    """Arg values with ``podTemplateHashValue`` resolved (Latest = canary, Stable = stable)."""
    out: dict[str, str] = {}
    for a in spec.args:
        if a.pod_template_hash == ARG_LATEST:
            out[a.name] = canary_hash
        elif a.pod_template_hash == ARG_STABLE:
            out[a.name] = stable_hash
        else:
            out[a.name] = a.value or ""
    return out


def substitute(metric: MetricSpec, values: dict[str, str]) -> MetricSpec:
    """The metric with every ``{{args.x}}`` replaced (names were checked by ``parse_template``)."""

    def fill(text: str) -> str:
        return _ARG_REF.sub(lambda m: values.get(m[1], m[0]), text)

    update: dict[str, Any] = {
        "success_condition": fill(metric.success_condition),
        "failure_condition": fill(metric.failure_condition),
    }
    if metric.prometheus is not None:
        p = metric.prometheus
        update["prometheus"] = p.model_copy(update={"address": fill(p.address), "query": fill(p.query)})
    if metric.web is not None:
        w = metric.web
        update["web"] = w.model_copy(
            update={
                "url": fill(w.url),
                "body": fill(w.body),
                "json_path": fill(w.json_path),
                "headers": [h.model_copy(update={"value": fill(h.value)}) for h in w.headers],
            }
        )
    return metric.model_copy(update=update)
