"""argo-rollouts ``utils/analysis/factory_test.go`` (``TestValidateMetrics``, ``TestResolveMetricArgs*``),
``utils/analysis/helpers_test.go`` (``TestMergeArgs``) and the Prometheus provider's address and timeout
tests, ported to our template parser.

Upstream: github.com/argoproj/argo-rollouts v1.8.5 (test files identical to ``release-1.8`` at
f49f57137258cbe049d7db052c41a7ee362a6002). Argo validates a metric when the AnalysisRun is created;
we do it at ``rollout start``: an invalid template is one line there, naming the file, metric and field.
Upstream's metrics have an empty Prometheus provider; ours need a query (we check what Argo only finds
at the first measurement), so every case adds one.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from workflows.analysis_parse import apply_args, arg_values, parse_template, substitute
from workflows.errors import AnalysisInputError

PROM = {"prometheus": {"address": "http://prometheus:9090", "query": "up"}}


def template(*metrics: dict[str, Any], args: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"metrics": [{"provider": copy.deepcopy(PROM), **m} for m in metrics]}
    if args is not None:
        spec["args"] = args
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "t"},
        "spec": spec,
    }


def refused(doc: dict[str, Any], **kw: Any) -> str:
    with pytest.raises(AnalysisInputError) as info:
        parse_template(doc, "t.yaml", **kw)
    text = str(info.value)
    assert "\n" not in text
    return text


# -- TestValidateMetrics ---------------------------------------------------------------------------------


def test_count_at_least_failure_limit() -> None:  # "Ensure count >= failureLimit + consecutiveSuccessLimit"
    msg = refused(template({"name": "success-rate", "count": 1, "failureLimit": 2}))
    assert "count (1) must be >= failureLimit + consecutiveSuccessLimit (2 + 0) if both >= 0" in msg
    parse_template(template({"name": "success-rate", "count": 0, "failureLimit": 2}), "t.yaml")


def test_count_at_least_inconclusive_limit() -> None:  # "Ensure count must be >= inconclusiveLimit"
    msg = refused(template({"name": "success-rate", "count": 1, "inconclusiveLimit": 2}))
    assert "count must be >= inconclusiveLimit" in msg
    parse_template(template({"name": "success-rate", "count": 0, "inconclusiveLimit": 2}), "t.yaml")


def test_count_zero_is_no_count() -> None:
    """Argo's ``EffectiveCount``: count 0 is no count (one measurement without interval, endless with)."""
    [m] = parse_template(template({"name": "m", "count": 0}), "t.yaml").metrics
    assert m.planned == 1
    [m] = parse_template(template({"name": "m", "count": 0, "interval": "60s"}), "t.yaml").metrics
    assert m.planned == 0


def test_validate_metric() -> None:  # "Validate metric"
    spec = parse_template(
        template({"name": "success-rate", "count": 2, "interval": "60s", "failureLimit": 2}), "t.yaml"
    )
    assert spec.metrics[0].count == 2


@pytest.mark.parametrize(("field", "value"), [("interval", "60s-typo"), ("initialDelay", "60s-typo")])
def test_valid_duration_strings(
    field: str, value: str
) -> None:  # "Ensure valid internal/initialDelay string"
    doc = template({"name": "success-rate", "count": 2, "interval": "60s", "failureLimit": 2, field: value})
    assert f"metric success-rate: {field}: '60s-typo' is not a duration" in refused(doc)


def test_metric_listed() -> None:  # "Ensure metric provider listed" (no metrics specified)
    doc = template()
    assert "spec.metrics: needs at least one metric" in refused(doc)


def test_interval_when_count_above_one() -> None:  # "Ensure interval set when count > 1"
    assert "interval must be specified when count > 1" in refused(
        template({"name": "success-rate", "count": 2})
    )


def test_no_duplicate_names() -> None:  # "Ensure no duplicate metric names"
    msg = refused(template({"name": "success-rate"}, {"name": "success-rate"}))
    assert "spec.metrics[1].name: 'success-rate' is used twice" in msg


@pytest.mark.parametrize(
    ("field", "value", "want"),
    [
        (
            "failureLimit",
            -2,
            "failureLimit: must be >= 0, or -1 to be disabled",
        ),  # "Ensure failureLimit >= -1"
        ("inconclusiveLimit", -1, "inconclusiveLimit: must be >= 0"),  # "Ensure inconclusiveLimit >= 0"
        ("consecutiveErrorLimit", -1, "consecutiveErrorLimit: must be >= 0"),  # "... >= 0"
        # "Ensure consecutiveSuccessLimit and failureLimit are not both disabled": we have no
        # consecutiveSuccessLimit, so failureLimit -1 alone is that case
        ("failureLimit", -1, "failureLimit and consecutiveSuccessLimit cannot both be disabled"),
    ],
)
def test_limits(field: str, value: int, want: str) -> None:
    assert want in refused(template({"name": "success-rate", field: value}))


def test_metric_has_one_provider() -> None:  # "Ensure metric has provider" / "... not more than 1 provider"
    doc = template({"name": "success-rate"})
    doc["spec"]["metrics"][0]["provider"] = {}
    assert "provider: needs exactly one provider" in refused(doc)
    doc["spec"]["metrics"][0]["provider"] = {**PROM, "web": {"url": "http://x"}}
    assert "provider: needs exactly one provider" in refused(doc)


def test_consecutive_success_limit() -> None:
    """Case "Ensure consecutiveSuccessLimit >= 0": not implemented here, so any value is refused."""
    assert "consecutiveSuccessLimit: field is not supported" in refused(
        template({"name": "success-rate", "consecutiveSuccessLimit": -1})
    )


# -- Prometheus provider: address, environment default, timeout ----------------------------------------


def test_new_prometheus_api_with_env() -> None:
    """TestNewPrometheusAPIWithEnv: no address -> $ARGO_ROLLOUTS_PROMETHEUS_ADDRESS (read by the CLI)."""
    doc = template({"name": "m"})
    doc["spec"]["metrics"][0]["provider"] = {"prometheus": {"query": "up"}}
    spec = parse_template(doc, "t.yaml", default_prometheus_address="http://env-prometheus:9090")
    assert spec.metrics[0].prometheus is not None
    assert spec.metrics[0].prometheus.address == "http://env-prometheus:9090"


def test_new_prometheus_address_not_configured() -> None:  # TestNewPrometheusAddressNotConfigured
    doc = template({"name": "m"})
    doc["spec"]["metrics"][0]["provider"] = {"prometheus": {"query": "up"}}
    assert "prometheus address is not configured" in refused(doc)


def test_new_prometheus_api_not_url() -> None:  # TestNewPrometheusAPI ("not is url format")
    doc = template({"name": "m"})
    doc["spec"]["metrics"][0]["provider"] = {"prometheus": {"query": "up", "address": ":::"}}
    assert "provider.prometheus.address: ':::' is not a URL" in refused(doc)


def test_new_prometheus_negative_timeout() -> None:
    """TestNewPrometheusNegativeTimeout: Argo errs every measurement; we refuse at start (earlier)."""
    doc = template({"name": "m"})
    doc["spec"]["metrics"][0]["provider"] = {"prometheus": {**PROM["prometheus"], "timeout": -20}}
    assert "prometheus timeout should not be negative" in refused(doc)


# -- args: TestMergeArgs, TestResolveMetricArgs* ------------------------------------------------------------


def test_merge_args() -> None:
    """TestMergeArgs: defaults are used, given values overwrite them, an arg without value is an error."""
    doc = template(
        {"name": "m", "successCondition": "result > {{args.foo}}"}, args=[{"name": "foo", "value": "1"}]
    )
    spec = parse_template(doc, "t.yaml")
    [used] = apply_args([spec], {})
    assert arg_values(used, stable_hash="s", canary_hash="c") == {"foo": "1"}
    [over] = apply_args([spec], {"foo": "2"})
    assert arg_values(over, stable_hash="s", canary_hash="c") == {"foo": "2"}
    unresolved = parse_template(template({"name": "m"}, args=[{"name": "foo"}]), "t.yaml")
    with pytest.raises(AnalysisInputError, match="foo has no value"):
        apply_args([unresolved], {})


def test_merge_args_extra_arg() -> None:
    """TestMergeArgs "extra arg": Argo ignores an arg no template declares. Difference kept: on our
    command line that is almost always a typo (``--analysis-arg namespce=prod``) that would leave the
    template's default in force, so it is refused."""
    spec = parse_template(template({"name": "m"}, args=[{"name": "foo", "value": "x"}]), "t.yaml")
    with pytest.raises(AnalysisInputError, match="--analysis-arg extra-arg: no analysis template declares"):
        apply_args([spec], {"foo": "my-value", "extra-arg": "extra-value"})


def test_resolve_metric_args() -> None:
    """TestResolveMetricArgs: args fill conditions. Argo pastes any text; ours must stay a value there
    (a number outside quotes, escaped inside), so ``result > success-rate`` (upstream's sample) is
    refused and a number works (security review F13: an arg must not change the condition's logic)."""
    doc = template(
        {"name": "m", "successCondition": "result > {{args.metric-name}}"}, args=[{"name": "metric-name"}]
    )
    spec = parse_template(doc, "t.yaml")
    [filled] = apply_args([spec], {"metric-name": "0.95"})
    m = substitute(filled.metrics[0], arg_values(filled, stable_hash="s", canary_hash="c"))
    assert m.success_condition == "result > 0.95"
    with pytest.raises(AnalysisInputError, match="must be a number"):
        apply_args([spec], {"metric-name": "success-rate"})
    with pytest.raises(AnalysisInputError, match="must be a number"):
        apply_args([spec], {"metric-name": "1 or true"})


def test_resolve_metric_args_with_quotes() -> None:
    """TestResolveMetricArgsWithQuotes: a value with quotes. Argo's sample makes it the whole condition;
    ours keeps it a string: inside a quoted string it is escaped, so it compares as the text it is."""
    doc = template({"name": "m", "successCondition": 'result == "{{args.rate}}"'}, args=[{"name": "rate"}])
    spec = parse_template(doc, "t.yaml")
    arg = 'foo "bar" baz'
    [filled] = apply_args([spec], {"rate": arg})
    m = substitute(filled.metrics[0], arg_values(filled, stable_hash="s", canary_hash="c"))
    assert m.success_condition == 'result == "foo \\"bar\\" baz"'
    from workflows.analysis_expr import evaluate

    assert evaluate(m.success_condition, arg) is True


def test_args_in_promql_and_urls_stay_values() -> None:
    """Security review F13: a label value is escaped, a URL path/query part percent-encoded."""
    doc = template(
        {
            "name": "m",
            "provider": {
                "prometheus": {
                    "address": "{{args.prom}}",
                    "query": 'sum(rate(x{namespace="{{args.ns}}"}[{{args.window}}]))',
                }
            },
        },
        args=[{"name": "prom"}, {"name": "ns"}, {"name": "window", "value": "5m"}],
    )
    spec = parse_template(doc, "t.yaml")
    evil = 'default"} * 0 or vector(0) or up{x="'
    [filled] = apply_args([spec], {"prom": "http://p:9090", "ns": evil})
    m = substitute(filled.metrics[0], arg_values(filled, stable_hash="s", canary_hash="c"))
    assert m.prometheus is not None
    assert m.prometheus.query == 'sum(rate(x{namespace="default\\"} * 0 or vector(0) or up{x=\\""}[5m]))'
    with pytest.raises(AnalysisInputError, match="window"):
        apply_args([spec], {"prom": "http://p:9090", "ns": "x", "window": "5m]) or vector(1"})
    with pytest.raises(AnalysisInputError, match="is not a URL after substituting args"):
        apply_args([spec], {"prom": "not a url", "ns": "x"})
    web = template(
        {"name": "w", "provider": {"web": {"url": "http://svc/api/{{args.app}}?q={{args.q}}"}}},
        args=[{"name": "app"}, {"name": "q"}],
    )
    [wf] = apply_args([parse_template(web, "t.yaml")], {"app": "a b", "q": "x&admin=1"})
    w = substitute(wf.metrics[0], arg_values(wf, stable_hash="s", canary_hash="c"))
    assert w.web is not None and w.web.url == "http://svc/api/a%20b?q=x%26admin%3D1"


def test_web_body_needs_post_or_put() -> None:
    """webmetric ``Run``: "Body/JSONBody can only be used with POST or PUT WebMetric Method types"
    (Argo: an Error measurement; ours: refused at start)."""
    doc = template({"name": "w", "provider": {"web": {"url": "http://svc/x", "body": "{}"}}})
    assert "provider.web.body: Body/JSONBody can only be used with POST or PUT" in refused(doc)
    doc["spec"]["metrics"][0]["provider"]["web"]["method"] = "POST"
    assert parse_template(doc, "t.yaml").metrics[0].web is not None
