"""``{{args.x}}`` in an analysis template: arg values (Latest and Stable resolved to pod-template-hashes) and
``substitute``, which fills each arg for its place so it stays a value (see ``analysis_parse``).

Pure: no I/O; ``substitute`` runs in the workflow (it is deterministic).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote, urlsplit

from workflows.errors import AnalysisInputError
from workflows.model import ARG_LATEST, ARG_STABLE, AnalysisSpec, MetricSpec

__all__ = ["ARG_REF", "Where", "arg_values", "is_url", "substitute"]

ARG_REF = re.compile(r"\{\{\s*args\.([A-Za-z0-9_.-]+)\s*\}\}")


class Where:
    """Builds the ``file: metric m: field: problem`` line."""

    def __init__(self, source: str, metric: str = "") -> None:
        self.source, self.metric = source, metric

    def error(self, field: str, problem: str) -> AnalysisInputError:
        where = f"{self.source}: " + (f"metric {self.metric}: " if self.metric else "")
        return AnalysisInputError(f"{where}{field}: {problem}")


def is_url(text: str) -> bool:
    """Argo's ``IsUrl``: a scheme and a host."""
    try:
        u = urlsplit(text)
    except ValueError:
        return False
    return bool(u.scheme and u.netloc)


def arg_values(spec: AnalysisSpec, *, stable_hash: str, canary_hash: str) -> dict[str, str]:
    """Arg values with ``podTemplateHashValue`` resolved (Latest = canary, Stable = stable)."""
    out: dict[str, str] = {}
    for a in spec.args:
        if a.pod_template_hash == ARG_LATEST:
            out[a.name] = canary_hash
        elif a.pod_template_hash == ARG_STABLE:
            out[a.name] = stable_hash
        elif a.secret_key_ref is not None and a.value is None:
            continue  # read by the worker when it measures: ``{{args.x}}`` stays in the header
        else:
            out[a.name] = a.value or ""
    return out


_PLAIN = re.compile(r"[A-Za-z0-9_.:-]*")  # a name, number, duration or hash: safe anywhere in a query
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _in_string(text: str, at: int) -> str | None:
    """The quote character of the string literal that position ``at`` of ``text`` is inside, if any."""
    quote_char: str | None = None
    i = 0
    while i < at:
        ch = text[i]
        if quote_char is not None and ch == "\\":
            i += 2
            continue
        if quote_char is None and ch in "\"'`":
            quote_char = ch
        elif ch == quote_char:
            quote_char = None
        i += 1
    return quote_char


def _escape_in_string(value: str, quote_char: str) -> str:
    if quote_char == "`":  # a raw string cannot escape its delimiter
        if "`" in value:
            raise ValueError("contains ` inside a `raw` string")
        return value
    return json.dumps(value)[1:-1] if quote_char == '"' else value.replace("\\", "\\\\").replace("'", "\\'")


def _fill_expression(text: str, values: dict[str, str], what: str) -> str:
    """Args in a PromQL query or a condition: escaped inside a string, else a plain name or number."""

    def one(m: re.Match[str]) -> str:
        value = values.get(m[1])
        if value is None:
            return m[0]
        quote_char = _in_string(text, m.start())
        if quote_char is not None:
            return _escape_in_string(value, quote_char)
        ok = _NUMBER.fullmatch(value) if what == "condition" else _PLAIN.fullmatch(value)
        if not ok:
            raise ValueError(
                f"args.{m[1]} = {value!r} is outside quotes; there it must be "
                + ("a number" if what == "condition" else "a plain name, number or duration")
            )
        return value

    return ARG_REF.sub(one, text)


def _fill_url(text: str, values: dict[str, str]) -> str:
    """Args in a URL: the scheme and host verbatim (then it must still be a URL), path and query encoded."""
    head_end = _url_head_end(text)

    def one(m: re.Match[str]) -> str:
        value = values.get(m[1])
        if value is None:
            return m[0]
        if m.start() < head_end:
            return value
        in_query = "?" in text[head_end : m.start()]
        return quote(value, safe="" if in_query else "/")

    out = ARG_REF.sub(one, text)
    if not is_url(out):
        raise ValueError(f"{out!r} is not a URL after substituting args")
    return out


def _url_head_end(text: str) -> int:
    """Where a URL's scheme://host part ends (the first / after ://, or ?)."""
    start = text.find("://")
    start = start + 3 if start >= 0 else 0
    ends = [i for i in (text.find("/", start), text.find("?", start)) if i >= 0]
    return min(ends) if ends else len(text)


def _plain(text: str, values: dict[str, str]) -> str:
    return ARG_REF.sub(lambda m: values.get(m[1], m[0]), text)


def _header(text: str, values: dict[str, str]) -> str:
    out = _plain(text, values)
    if "\r" in out or "\n" in out:
        raise ValueError("a header value cannot contain a line break")
    return out


def substitute(metric: MetricSpec, values: dict[str, str]) -> MetricSpec:
    """The metric with every ``{{args.x}}`` filled for its place (see the module doc).

    Raises:
        AnalysisInputError: a value that would change the meaning of its field (``apply_args`` checks
            every given value at ``rollout start``; the pod-template-hashes the workflow adds are plain).
    """
    where = Where("args", metric.name)
    field = ""
    try:
        field = "successCondition"
        success = _fill_expression(metric.success_condition, values, "condition")
        field = "failureCondition"
        failure = _fill_expression(metric.failure_condition, values, "condition")
        update: dict[str, Any] = {"success_condition": success, "failure_condition": failure}
        if metric.prometheus is not None:
            p = metric.prometheus
            field = "provider.prometheus.address"
            address = _fill_url(p.address, values) if ARG_REF.search(p.address) else p.address
            field = "provider.prometheus.query"
            query = _fill_expression(p.query, values, "query")
            update["prometheus"] = p.model_copy(update={"address": address, "query": query})
        if metric.web is not None:
            w = metric.web
            field = "provider.web.url"
            url = _fill_url(w.url, values) if ARG_REF.search(w.url) else w.url
            field = "provider.web.headers"
            headers = [h.model_copy(update={"value": _header(h.value, values)}) for h in w.headers]
            update["web"] = w.model_copy(
                update={
                    "url": url,
                    "body": _plain(w.body, values),
                    "json_path": _plain(w.json_path, values),
                    "headers": headers,
                }
            )
    except ValueError as exc:
        raise where.error(field, str(exc)) from None
    return metric.model_copy(update=update)
