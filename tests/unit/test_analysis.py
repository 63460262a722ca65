"""Pure analysis parts: measurement/metric math (tables), conditions, template parsing, pod metrics text."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.analysis_input import load_templates, resolve_analysis, split_step_analysis
from kubesim.pod_metrics import render
from workflows import analysis_math as am
from workflows.analysis_expr import check, evaluate
from workflows.analysis_parse import (
    apply_args,
    arg_values,
    parse_duration,
    parse_template,
    substitute,
)
from workflows.errors import AnalysisInputError, ConditionError
from workflows.model import MeasurementPhase as M
from workflows.model import MetricCounts, MetricSpec, StepSpec
from workflows.model import MetricPhase as P

# --- one measurement ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("success", "failure", "want"),
    [
        (None, None, M.SUCCESSFUL),  # no conditions: always successful
        (True, None, M.SUCCESSFUL),
        (False, None, M.FAILED),  # success only: not met = failed
        (None, True, M.FAILED),
        (None, False, M.SUCCESSFUL),  # failure only: not met = successful
        (True, False, M.SUCCESSFUL),
        (False, True, M.FAILED),
        (True, True, M.FAILED),  # failure wins
        (False, False, M.INCONCLUSIVE),  # neither
    ],
)
def test_measurement_phase(success: bool | None, failure: bool | None, want: M) -> None:
    assert am.measurement_phase(success, failure) == want


def _metric(**kw: Any) -> MetricSpec:
    return MetricSpec(name="m", web={"url": "http://x"}, **kw)


def _counts(seq: list[M]) -> MetricCounts:
    c = MetricCounts()
    for phase in seq:
        c = am.count_measurement(c, phase)
    return c


S, F, Q, E = M.SUCCESSFUL, M.FAILED, M.INCONCLUSIVE, M.ERROR


@pytest.mark.parametrize(
    ("kw", "seq", "want"),
    [
        ({}, [], P.PENDING),
        ({}, [S], P.SUCCESSFUL),  # no interval, no count: one measurement
        ({"interval_seconds": 5}, [S, S, S], P.RUNNING),  # interval, no count: until stopped
        ({"interval_seconds": 5, "count": 3}, [S, S], P.RUNNING),
        ({"interval_seconds": 5, "count": 3}, [S, S, S], P.SUCCESSFUL),
        ({"interval_seconds": 5}, [F], P.FAILED),  # failureLimit 0
        ({"interval_seconds": 5, "failure_limit": 1}, [F], P.RUNNING),
        ({"interval_seconds": 5, "failure_limit": 1}, [F, S, F], P.FAILED),  # not consecutive: total
        ({"interval_seconds": 5, "failure_limit": -1}, [F, F, F, F], P.RUNNING),  # disabled
        ({"interval_seconds": 5, "count": 3, "failure_limit": 2}, [F, F, S], P.SUCCESSFUL),
        ({"interval_seconds": 5}, [Q], P.INCONCLUSIVE),
        ({"interval_seconds": 5, "inconclusive_limit": 1}, [Q, S], P.RUNNING),
        ({"interval_seconds": 5}, [E, E, E, E], P.RUNNING),  # consecutiveErrorLimit 4
        ({"interval_seconds": 5}, [E, E, E, E, E], P.ERROR),
        ({"interval_seconds": 5}, [E, E, E, E, S, E, E, E, E], P.RUNNING),  # a success resets the streak
        ({"interval_seconds": 5, "consecutive_error_limit": 0}, [E], P.ERROR),
        # Argo's precedence: failed, then inconclusive, then consecutive errors, the later one winning
        ({"interval_seconds": 5, "failure_limit": 0}, [F, E, E, E, E, E], P.ERROR),
        # an Error never counts towards count: a metric without interval is not done by an error
        ({}, [E], P.RUNNING),
        ({}, [E, E, E, E], P.RUNNING),
        ({}, [E, E, E, E, E], P.ERROR),
        ({}, [E, S], P.SUCCESSFUL),
        ({"interval_seconds": 5, "count": 3}, [E, E, S], P.RUNNING),
        ({"interval_seconds": 5, "count": 3}, [E, S, E, S, S], P.SUCCESSFUL),
    ],
)
def test_metric_phase(kw: dict[str, Any], seq: list[M], want: P) -> None:
    assert am.metric_phase(_metric(**kw), _counts(seq)) == want


def test_counts() -> None:
    c = _counts([S, E, E, F, Q, E])
    assert (c.count, c.successful, c.error, c.consecutive_error, c.failed, c.inconclusive) == (
        3,
        1,
        3,
        1,
        1,
        1,
    )


@pytest.mark.parametrize(
    ("kw", "seq", "new", "want"),
    [
        ({"interval_seconds": 5}, [], S, True),  # the first value
        ({"interval_seconds": 5}, [S], S, False),  # successes: heartbeat only
        ({"interval_seconds": 5}, [S], E, False),  # errors below the limit: heartbeat only
        ({"interval_seconds": 5}, [S, E, E, E, E], E, True),  # error limit reached: terminal
        ({"interval_seconds": 5, "failure_limit": 3}, [S], F, True),  # a failure that counts
        ({"interval_seconds": 5, "failure_limit": -1}, [S], F, False),  # a failure that cannot count
        ({"interval_seconds": 5, "inconclusive_limit": 2}, [S], Q, True),
        ({"interval_seconds": 5, "count": 2}, [S], S, True),  # count reached: terminal
    ],
)
def test_should_report(kw: dict[str, Any], seq: list[M], new: M, want: bool) -> None:
    metric = _metric(**kw)
    before = _counts(seq)
    after = am.count_measurement(before, new)
    assert am.should_report(metric, before, after, am.metric_phase(metric, after)) is want


def test_reports_are_bounded_by_the_limits() -> None:
    """A day of 1 s measurements that alternate success/error/failure (failureLimit -1) reports once."""
    metric = _metric(interval_seconds=1, failure_limit=-1)
    c, reports = MetricCounts(), 0
    for i in range(86_400):
        before = c
        c = am.count_measurement(c, (S, E, F)[i % 3])
        reports += am.should_report(metric, before, c, am.metric_phase(metric, c))
    assert reports == 1


@pytest.mark.parametrize(
    ("phases", "want"),
    [
        ([], P.PENDING),
        ([P.PENDING, P.PENDING], P.PENDING),
        ([P.RUNNING, P.PENDING], P.RUNNING),
        ([P.SUCCESSFUL, P.RUNNING], P.RUNNING),
        ([P.SUCCESSFUL, P.SUCCESSFUL], P.SUCCESSFUL),
        ([P.SUCCESSFUL, P.INCONCLUSIVE], P.INCONCLUSIVE),
        ([P.INCONCLUSIVE, P.FAILED], P.FAILED),
        ([P.ERROR, P.RUNNING], P.ERROR),
    ],
)
def test_run_phase(phases: list[P], want: P) -> None:
    assert am.run_phase(phases) == want


def test_failure_message_names_metric_value_condition() -> None:
    metric = _metric(interval_seconds=1, failure_condition="result[0] > 0.05", failure_limit=1)
    msg = am.outcome_message(metric, P.FAILED, _counts([F, F]), "[0.5]", "")
    assert (
        msg
        == "metric m failed: measured [0.5], failureCondition `result[0] > 0.05`; 2 failed > failureLimit 1"
    )


# --- conditions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cond", "result", "want"),
    [
        ("result < 0.05", 0.01, True),
        ("result < 0.05", 0.5, False),
        ("result[0] >= 0.99", [0.995], True),
        ("len(result) == 0", [], True),
        ("isNaN(result)", math.nan, True),
        ("isNaN(result[0])", [1.0], False),
        ("all(result, {# < 0.05})", [0.01, 0.02], True),
        ("all(result, # < 0.05)", [0.01, 0.2], False),
        ("any(result, {# > 0.5})", [0.1, 0.9], True),
        ("len(result) == 0 || result[0] < 0.05", [], True),  # short-circuit: no index error
        ("!isNaN(result) && result != 1", 2.0, True),
        ("result == 'a && b'", "a && b", True),  # quoted text is left alone
        ("default(result, 0) < 1", None, True),
        ("asInt(result) == 3", "3", True),
        ("result == true", True, True),
    ],
)
def test_conditions(cond: str, result: Any, want: bool) -> None:
    check(cond)
    assert evaluate(cond, result) is want


@pytest.mark.parametrize(
    ("cond", "needle"),
    [
        ("result <", "does not parse"),
        ("foo(result)", "unknown function 'foo'"),
        ("resutl > 1", "unknown name 'resutl'"),
        ("result.__class__", "member '__class__' is not allowed"),
        ("result.values()", "unknown function 'result.values'"),  # a member is a key, never a method
        ("[x for x in result]", "unknown name 'x'"),
        ("__import__('os').system('true')", "unknown function"),
    ],
)
def test_bad_conditions(cond: str, needle: str) -> None:
    with pytest.raises(ConditionError, match=None) as info:
        check(cond)
    assert needle in str(info.value)


def test_condition_errors_on_values() -> None:
    with pytest.raises(ConditionError, match="index out of range"):
        evaluate("result[0] > 1", [])
    with pytest.raises(ConditionError, match="expected bool, but got float64"):
        evaluate("result + 1", 1)


# --- templates ---------------------------------------------------------------------------------------


def _doc(metric: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    m = {
        "name": "error-rate",
        "interval": "5s",
        "failureLimit": 1,
        "successCondition": "result[0] < 0.05",
        "provider": {"prometheus": {"address": "http://p:9090", "query": 'q{app="{{args.app}}"}'}},
    }
    m.update(metric or {})
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "error-rate"},
        "spec": {"args": [{"name": "app"}], "metrics": [m], **spec},
    }


def test_parse_template_defaults_and_args() -> None:
    spec = parse_template(_doc(), "t.yaml")
    m = spec.metrics[0]
    assert (m.interval_seconds, m.failure_limit, m.inconclusive_limit, m.consecutive_error_limit) == (
        5,
        1,
        0,
        4,
    )
    [filled] = apply_args([spec], {"app": "nginx"})
    assert (
        substitute(m, arg_values(filled, stable_hash="s", canary_hash="c")).prometheus.query
        == 'q{app="nginx"}'
    )


def test_pod_template_hash_args() -> None:
    doc = _doc({"provider": {"web": {"url": "http://x/{{args.canary}}/{{args.stable}}"}}})
    doc["spec"]["args"] = [
        {"name": "canary", "valueFrom": {"podTemplateHashValue": "Latest"}},
        {"name": "stable", "valueFrom": {"podTemplateHashValue": "Stable"}},
    ]
    spec = parse_template(doc, "t.yaml")
    values = arg_values(spec, stable_hash="aaa", canary_hash="bbb")
    assert substitute(spec.metrics[0], values).web.url == "http://x/bbb/aaa"


@pytest.mark.parametrize(
    ("metric", "spec", "want"),
    [
        (
            {"provider": {"datadog": {"query": "x"}}},
            {},
            "t.yaml: metric error-rate: provider.datadog: provider is not supported",
        ),
        ({"successCondition": "result[0] <"}, {}, "t.yaml: metric error-rate: successCondition: condition"),
        (
            {"provider": {"prometheus": {"address": "http://p", "query": "{{args.missing}}"}}},
            {},
            "provider.prometheus.query: {{args.missing}} is not declared in spec.args",
        ),
        (
            {"consecutiveSuccessLimit": 2},
            {},
            "t.yaml: metric error-rate: consecutiveSuccessLimit: field is not supported",
        ),
        ({"interval": "five"}, {}, "t.yaml: metric error-rate: interval: 'five' is not a duration"),
        ({"count": 3, "interval": None}, {}, "t.yaml: metric error-rate: interval"),
        ({"failureLimit": -2}, {}, "t.yaml: metric error-rate: failureLimit: must be >= 0, or -1 to be"),
        (
            {"provider": {"prometheus": {"address": "http://p", "query": "q", "authentication": {}}}},
            {},
            "provider.prometheus.authentication: field is not supported",
        ),
        ({"provider": {"web": {"url": "http://x", "jsonPath": "$[?("}}}, {}, "provider.web.jsonPath:"),
        ({}, {"dryRun": [{"metricName": "x"}]}, "t.yaml: spec.dryRun: field is not supported"),
    ],
)
def test_bad_templates(metric: dict[str, Any], spec: dict[str, Any], want: str) -> None:
    doc = _doc(metric, **spec)
    if metric.get("interval", "") is None:
        del doc["spec"]["metrics"][0]["interval"]
    with pytest.raises(AnalysisInputError) as info:
        parse_template(doc, "t.yaml")
    assert want in str(info.value)
    assert "\n" not in str(info.value)


def test_args_must_have_values() -> None:
    spec = parse_template(_doc(), "t.yaml")
    with pytest.raises(AnalysisInputError, match=r"app has no value \(give --analysis-arg app=VALUE\)"):
        apply_args([spec], {})
    with pytest.raises(AnalysisInputError, match="--analysis-arg other: no analysis template declares"):
        apply_args([spec], {"app": "x", "other": "y"})


@pytest.mark.parametrize(("text", "want"), [("30s", 30), ("1m30s", 90), ("500ms", 0.5), ("2h", 7200), (5, 5)])
def test_durations(text: Any, want: float) -> None:
    assert parse_duration(text) == want


def test_step_references_and_files(tmp_path: Path) -> None:
    assert split_step_analysis("1,50%:50%+error-rate+latency,100%") == (
        "1,50%:50%,100%",
        [[], ["error-rate", "latency"], []],
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [unclosed")
    with pytest.raises(AnalysisInputError, match=r"bad.yaml: invalid YAML"):
        load_templates(str(bad))
    good = tmp_path / "t.yaml"
    doc = _doc({"count": 2})
    good.write_text(yaml.safe_dump(doc))
    steps = [StepSpec(replicas=1), StepSpec(replicas="100%", analysis=["nope"])]
    with pytest.raises(AnalysisInputError, match="step 2: analysis template 'nope' not found"):
        resolve_analysis(
            background_files=[], step_files=[str(good)], args=["app=x"], from_step=None, steps=steps
        )
    endless = tmp_path / "endless.yaml"
    endless.write_text(yaml.safe_dump(_doc()))
    steps[1].analysis = ["error-rate"]
    with pytest.raises(AnalysisInputError, match="a step analysis needs count"):
        resolve_analysis(
            background_files=[], step_files=[str(endless)], args=["app=x"], from_step=None, steps=steps
        )
    ok = resolve_analysis(
        background_files=[], step_files=[str(good)], args=["app=x"], from_step=None, steps=steps
    )
    assert [s.name for s in ok.steps] == ["error-rate"]
    with pytest.raises(AnalysisInputError, match="--analysis-from-step must be between 1 and 2"):
        resolve_analysis(
            background_files=[str(good)], step_files=[], args=["app=x"], from_step=3, steps=steps[:1] * 2
        )


# --- kubesim pod metrics -------------------------------------------------------------------------------


def _pod(name: str, ready_at: str | None, **annotations: str) -> dict[str, Any]:
    conds = [] if ready_at is None else [{"type": "Ready", "status": "True", "lastTransitionTime": ready_at}]
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "labels": {"pod-template-hash": "abc"},
            "annotations": annotations,
        },
        "status": {"conditions": conds},
    }


def test_pod_metrics_text() -> None:
    from datetime import datetime

    t0 = datetime.fromisoformat("2026-01-01T00:00:00+00:00").timestamp()
    pods = [
        _pod(
            "bad",
            "2026-01-01T00:00:00Z",
            **{"kubesim.io/error-rate": "0.5", "kubesim.io/latency-ms": "100"},
        ),
        _pod("unready", None),
    ]
    text = render(pods, t0 + 10)
    lines = set(text.splitlines())
    assert 'http_requests_total{namespace="ns",pod="bad",pod_template_hash="abc",code="500"} 50' in lines
    assert 'http_requests_total{namespace="ns",pod="bad",pod_template_hash="abc",code="200"} 50' in lines
    assert (
        'http_request_duration_seconds_bucket{namespace="ns",pod="bad",pod_template_hash="abc",le="0.1"} 50'
        in lines
    )
    assert (
        'http_request_duration_seconds_count{namespace="ns",pod="bad",pod_template_hash="abc"} 100' in lines
    )
    assert "unready" not in text
    later = render(pods, t0 + 20)
    assert 'http_requests_total{namespace="ns",pod="bad",pod_template_hash="abc",code="500"} 100' in later


def test_kruise_manifest_step_analysis() -> None:
    from kruise.manifest import parse_kruise_rollout
    from workflows.errors import InputError

    doc = {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": "r"},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "nginx"},
            "strategy": {
                "canary": {
                    "steps": [
                        {"replicas": 1, "analysis": {"templates": [{"templateName": "smoke"}]}},
                        {"replicas": "100%"},
                    ]
                }
            },
        },
    }
    plan = parse_kruise_rollout(doc, "r.yaml")
    assert [s.analysis for s in plan.steps] == [["smoke"], []]
    doc["spec"]["strategy"]["canary"]["steps"][0]["analysis"] = {"templates": [{"name": "smoke"}]}
    with pytest.raises(InputError, match=r"r.yaml: spec.strategy.canary.steps\[0\].analysis.templates\[0\]"):
        parse_kruise_rollout(doc, "r.yaml")


# --- security review bounds (F5, F7) ------------------------------------------------------------------


def test_expensive_conditions_are_refused_quickly() -> None:
    """F5: no big-integer power, no list repetition, bounded length; each answer comes at once."""
    import time

    t0 = time.monotonic()
    assert evaluate("9**4000000 > 1", 0) is True  # a float power: +Inf, like Go's math.Pow
    with pytest.raises(ConditionError):
        evaluate("len([9**4000000 for it_ in [0]*9999]) > 0", 0)  # list * int is not expr
    with pytest.raises(ConditionError):
        check("len([9**4000000 for i in [0]*20]) > 0")
    with pytest.raises(ConditionError, match="longer than 4096"):
        check("result > 1 && " * 400 + "true")
    assert time.monotonic() - t0 < 1.0


def test_metric_bounds() -> None:
    """F7: intervals of at least 1 s, at most 10 metrics per template."""
    with pytest.raises(AnalysisInputError, match="interval: must be at least 1s"):
        parse_template(_doc({"interval": "500ms"}), "t.yaml")
    doc = _doc()
    doc["spec"]["metrics"] = [{**doc["spec"]["metrics"][0], "name": f"m{i}"} for i in range(11)]
    with pytest.raises(AnalysisInputError, match="spec.metrics: at most 10 metrics per template"):
        parse_template(doc, "t.yaml")
