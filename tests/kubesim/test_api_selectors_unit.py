"""Unit tests for the query-string selector parsers in kubesim.selectors (reference 2.2)."""

from __future__ import annotations

import pytest

from kubesim.selectors import (
    SelectorError,
    matches_fields,
    matches_requirements,
    parse_field_selector,
    parse_label_selector,
)

LABELS = {"app": "web", "track": "canary", "kubernetes.io/service-name": "web", "rank": "3"}


@pytest.mark.parametrize(
    "selector, matches",
    [
        ("", True),
        ("app=web", True),
        ("app = web", True),
        ("app==web,track=canary", True),
        ("app=web,track=stable", False),
        ("track!=stable", True),
        ("missing!=x", True),
        ("track in (canary, stable)", True),
        ("track notin (canary)", False),
        ("missing notin (a)", True),
        ("app", True),
        ("!app", False),
        ("!missing", True),
        ("kubernetes.io/service-name=web", True),
        ("rank>2,rank<4", True),
        ("rank>3", False),
    ],
)
def test_label_selector_semantics(selector: str, matches: bool) -> None:
    assert matches_requirements(parse_label_selector(selector), LABELS) is matches


@pytest.mark.parametrize("selector", ["a b", "a=b=c", "x/=1", "=v", "a in b", "n>x", "a,,b"])
def test_bad_label_selectors(selector: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(selector)


def test_field_selectors() -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns"}, "status": {"phase": "Running"}}
    assert matches_fields(parse_field_selector("metadata.name=p,status.phase==Running", "pods"), pod)
    assert not matches_fields(parse_field_selector("status.phase!=Running", "pods"), pod)
    event = {"involvedObject": {"kind": "Deployment", "name": "web"}, "source": {"component": "dc"}}
    assert matches_fields(parse_field_selector("involvedObject.kind=Deployment,source=dc", "events"), event)
    with pytest.raises(SelectorError, match="field label not supported: status.phase"):
        parse_field_selector("status.phase=Running", "services")
