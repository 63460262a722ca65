"""``rollout start`` analysis inputs: template files, ``--analysis-arg``, step references (pure: no cluster).

- ``--analysis FILE`` (repeatable): background analysis from step 1 (``--analysis-from-step N``).
- ``--step-analysis FILE`` (repeatable): templates that steps run; a ``--steps`` token names them after
  ``+``: ``--steps 1,50%+error-rate,100%`` (``<replicas>[:<traffic%>][+<template>...]``). A Kruise
  manifest step names them in ``analysis.templates[].templateName`` (``kruise.manifest``).
- ``--analysis-arg NAME=VALUE`` fills the templates' ``args``.
"""

from __future__ import annotations

import os

from cli.inputs import read_yaml_docs
from workflows.analysis_parse import PROMETHEUS_ADDRESS_ENV, apply_args, parse_template
from workflows.errors import AnalysisInputError
from workflows.model import AnalysisSpec, StepSpec

__all__ = [
    "AnalysisInputs",
    "load_templates",
    "parse_analysis_args",
    "resolve_analysis",
    "split_step_analysis",
]


MAX_ROLLOUT_METRICS = 20  # every metric is one long activity on the shared worker (security review F7)


class AnalysisInputs:
    """The checked analysis part of a rollout spec."""

    def __init__(self, background: list[AnalysisSpec], steps: list[AnalysisSpec], from_step: int) -> None:
        self.background, self.steps, self.from_step = background, steps, from_step


def load_templates(path: str) -> list[AnalysisSpec]:
    """Every AnalysisTemplate in a YAML file (one or more documents)."""
    docs = read_yaml_docs(path, AnalysisInputError)
    if not docs:
        raise AnalysisInputError(f"{path}: no AnalysisTemplate in the file")
    address = os.environ.get(PROMETHEUS_ADDRESS_ENV, "")
    return [parse_template(doc, path, default_prometheus_address=address) for doc in docs]


def parse_analysis_args(values: list[str]) -> dict[str, str]:
    """``["service=nginx"]`` -> ``{"service": "nginx"}``."""
    out: dict[str, str] = {}
    for value in values:
        name, sep, arg = value.partition("=")
        if not sep or not name.strip():
            raise AnalysisInputError(f"invalid --analysis-arg {value!r}: want NAME=VALUE")
        out[name.strip()] = arg
    return out


def split_step_analysis(steps: str) -> tuple[str, list[list[str]]]:
    """``"1,50%:50%+error-rate,100%"`` -> ``("1,50%:50%,100%", [[], ["error-rate"], []])``."""
    tokens, names = [], []
    for token in steps.split(","):
        head, *refs = token.split("+")
        refs = [r.strip() for r in refs]
        if any(not r for r in refs):
            raise AnalysisInputError(
                f"invalid step {token.strip()!r}: want <replicas>[:<traffic%>][+<template>]"
            )
        tokens.append(head)
        names.append(refs)
    return ",".join(tokens), names


def _unique(specs: list[AnalysisSpec], flag: str) -> None:
    seen: dict[str, str] = {}
    for s in specs:
        if s.name in seen:
            raise AnalysisInputError(
                f"{s.source}: metadata.name: {s.name!r} is also in {seen[s.name]} ({flag})"
            )
        seen[s.name] = s.source


def resolve_analysis(
    *,
    background_files: list[str],
    step_files: list[str],
    args: list[str],
    from_step: int | None,
    steps: list[StepSpec],
) -> AnalysisInputs:
    """Load and check every template; step template names must resolve (raises ``AnalysisInputError``)."""
    given = parse_analysis_args(args)
    background = [t for f in background_files for t in load_templates(f)]
    step_specs = [t for f in step_files for t in load_templates(f)]
    _unique(background, "--analysis")
    _unique(step_specs, "--step-analysis")
    total = sum(len(s.metrics) for s in background + step_specs)
    if total > MAX_ROLLOUT_METRICS:
        raise AnalysisInputError(
            f"{total} analysis metrics: at most {MAX_ROLLOUT_METRICS} per rollout (each holds a worker slot)"
        )
    filled = apply_args(background + step_specs, given) if background or step_specs else []
    if given and not filled:
        raise AnalysisInputError("--analysis-arg given without --analysis or --step-analysis")
    background, step_specs = filled[: len(background)], filled[len(background) :]
    if from_step is not None:
        if not background:
            raise AnalysisInputError("--analysis-from-step needs --analysis FILE")
        if not 1 <= from_step <= len(steps):
            raise AnalysisInputError(
                f"--analysis-from-step must be between 1 and {len(steps)} (the step count)"
            )
    known = {s.name: s for s in step_specs}
    referenced: set[str] = set()
    for i, step in enumerate(steps, start=1):
        for name in step.analysis:
            if name not in known:
                hint = (
                    " (it is a background template; give it with --step-analysis)"
                    if any(b.name == name for b in background)
                    else ""
                )
                raise AnalysisInputError(
                    f"step {i}: analysis template {name!r} not found in --step-analysis files{hint}"
                )
            referenced.add(name)
    for spec in step_specs:
        if spec.name not in referenced:
            raise AnalysisInputError(
                f"{spec.source}: template {spec.name!r} is not used by any step (+{spec.name})"
            )
        for m in spec.metrics:
            if m.planned == 0:
                raise AnalysisInputError(
                    f"{spec.source}: metric {m.name}: count: a step analysis needs count (or no interval)"
                )
    return AnalysisInputs(background, step_specs, from_step or 1)
