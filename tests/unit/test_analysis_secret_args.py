"""``args[].valueFrom.secretKeyRef`` (Argo's form): a reference, usable in web header values only."""

from __future__ import annotations

from typing import Any

import pytest

from workflows.analysis_parse import apply_args, arg_values, parse_template, substitute
from workflows.errors import AnalysisInputError
from workflows.model import SecretKeyRef


def _doc(
    arg: dict[str, Any], header: str = "Bearer {{args.token}}", url: str = "http://m/x"
) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "t"},
        "spec": {
            "args": [{"name": "token", **arg}],
            "metrics": [
                {
                    "name": "m",
                    "successCondition": "result > 0",
                    "provider": {"web": {"url": url, "headers": [{"key": "Authorization", "value": header}]}},
                }
            ],
        },
    }


REF = {"valueFrom": {"secretKeyRef": {"name": "metrics", "key": "token"}}}


def test_the_header_keeps_the_arg_and_names_the_secret() -> None:
    [spec] = apply_args([parse_template(_doc(REF), "t.yaml")], {})
    values = arg_values(spec, stable_hash="s", canary_hash="c")
    assert "token" not in values
    header = substitute(spec.metrics[0], values).web.headers[0]  # type: ignore[union-attr]
    assert header.value == "Bearer {{args.token}}"
    assert header.secrets == {"token": SecretKeyRef(name="metrics", key="token")}


@pytest.mark.parametrize(
    ("doc", "said"),
    [
        (_doc(REF, url="http://m/{{args.token}}"), "provider.web.url: args.token comes from a Secret"),
        (_doc({"valueFrom": {"secretKeyRef": {"name": "metrics"}}}), "must have exactly name and key"),
        (
            _doc(
                {"valueFrom": {"secretKeyRef": {"name": "m", "key": "k"}, "podTemplateHashValue": "Latest"}}
            ),
            "must have exactly name and key",
        ),
    ],
)
def test_refused(doc: dict[str, Any], said: str) -> None:
    with pytest.raises(AnalysisInputError, match=said):
        parse_template(doc, "t.yaml")
