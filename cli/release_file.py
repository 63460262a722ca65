"""The Release file (``rollout release start -f release.yaml``): read, validated, one line per problem.

A file for the CLI, not a CRD::

    apiVersion: rollouts.temporal.io/v1alpha1
    kind: Release
    metadata: {name: checkout-1-43}
    spec:
      change: {images: {app: registry.example/checkout:1.43.0}}
      defaults: {steps: "1,25%,50%,100%", pause: 5m, progressDeadline: 120s, autoRollback: true}
      waves:
      - name: dev
        targets: [{cluster: dev, namespace: shop, deployment: checkout}]
        bake: 10m
      - name: prod
        steps: "1,10%,50%,100%"
        maxParallel: 1
        maxFailures: 0
        approval: {required: true, timeout: 24h, onTimeout: halt}
        analysis: {templates: [error-rate.yaml], args: {service: checkout}}
        targets: [...]
      failurePolicy: {onTargetFailure: halt, rollback: previousWaves}
      notify: [team-slack]             # the worker's named targets: told when a wave starts/ends, at the end

Everything here is pure (no cluster, no Temporal): the cluster checks are in ``cli/release.py``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from kube.image_ref import image_error
from workflows import plan
from workflows.analysis_parse import parse_duration
from workflows.model import AnalysisSpec, FailurePolicy, ReleaseTarget, StepSpec, WaveApproval
from workflows.notify import MAX_NOTIFY_TARGETS, is_target_name

__all__ = [
    "API_VERSION",
    "ReleaseFile",
    "ReleaseFileError",
    "WaveFile",
    "load_release_file",
    "parse_release",
    "wave_analysis",
]

API_VERSION = "rollouts.temporal.io/v1alpha1"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class ReleaseFileError(ValueError):
    """A bad Release file: ``str()`` is the one line the CLI prints."""


class _Strict(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, extra="forbid"
    )


def _seconds(value: Any) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None


class ApprovalFile(_Strict):
    required: bool = False
    timeout: float | None = None
    on_timeout: Literal["halt"] = "halt"

    _timeout = field_validator("timeout", mode="before")(lambda v: None if v is None else _seconds(v))


class Defaults(_Strict):
    steps: str = "100%"
    pause: float = 0
    progress_deadline: float | None = None
    auto_rollback: bool = True

    _durations = field_validator("pause", "progress_deadline", mode="before")(
        lambda v: None if v is None else _seconds(v)
    )


class WaveAnalysis(_Strict):
    """``waves[].analysis``: AnalysisTemplate files (relative to the Release file) every target of the
    wave runs as its background analysis, with ``args`` filling the templates' arguments."""

    templates: list[str] = Field(min_length=1)
    args: dict[str, str] = Field(default_factory=dict)


class WaveFile(_Strict):
    name: str
    targets: list[ReleaseTarget] = Field(min_length=1)
    steps: str | None = None
    pause: float | None = None
    bake: float = 0
    max_parallel: int = Field(default=0, ge=0)
    max_failures: int = Field(default=0, ge=0)
    approval: ApprovalFile = Field(default_factory=ApprovalFile)
    analysis: WaveAnalysis | None = None

    _durations = field_validator("pause", "bake", mode="before")(lambda v: None if v is None else _seconds(v))


class Change(_Strict):
    images: dict[str, str] = Field(min_length=1)


class ReleaseSpecFile(_Strict):
    change: Change
    defaults: Defaults = Field(default_factory=Defaults)
    waves: list[WaveFile] = Field(min_length=1)
    failure_policy: FailurePolicy = Field(default_factory=FailurePolicy)
    notify: list[str] = Field(default_factory=list, max_length=MAX_NOTIFY_TARGETS)


class Metadata(BaseModel):
    name: str


class ReleaseFile(_Strict):
    api_version: Literal["rollouts.temporal.io/v1alpha1"]
    kind: Literal["Release"]
    metadata: Metadata
    spec: ReleaseSpecFile

    @property
    def name(self) -> str:
        return self.metadata.name

    def wave_steps(self, wave: WaveFile) -> list[StepSpec]:
        """The wave's steps (its own, else the defaults), each pausing ``pause`` seconds."""
        pause = wave.pause if wave.pause is not None else self.spec.defaults.pause
        return plan.parse_steps(wave.steps or self.spec.defaults.steps, round(pause))


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_release(doc: Any, source: str) -> ReleaseFile:
    """Validate a loaded document: schema, names, steps, images, no target twice.

    Raises:
        ReleaseFileError: one line naming the file and the field.
    """
    if not isinstance(doc, dict):
        raise ReleaseFileError(f"{source}: not a Release (want apiVersion {API_VERSION}, kind Release)")
    try:
        rel = ReleaseFile.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise ReleaseFileError(f"{source}: {_where(tuple(err['loc']))}: {msg}") from None
    if not _NAME.match(rel.name) or len(rel.name) > 63:
        raise ReleaseFileError(f"{source}: metadata.name {rel.name!r} must be a DNS label (a-z, 0-9, -)")
    spec = rel.spec
    if not spec.defaults.auto_rollback:
        raise ReleaseFileError(
            f"{source}: spec.defaults.autoRollback: false is not supported: a release target that fails "
            "always rolls itself back, then the failurePolicy applies"
        )
    _check_notify(spec.notify, source)
    for container, image in spec.change.images.items():
        problem = image_error(container, image)
        if problem:
            raise ReleaseFileError(f"{source}: spec.change.images: {problem}")
    seen: dict[str, str] = {}
    names: set[str] = set()
    for i, wave in enumerate(spec.waves):
        where = f"{source}: spec.waves[{i}]"
        if wave.name in names:
            raise ReleaseFileError(f"{where}: wave name {wave.name!r} is used twice")
        names.add(wave.name)
        try:
            plan.validate_steps(rel.wave_steps(wave))
        except ValueError as exc:
            raise ReleaseFileError(f"{where}.steps: {exc}") from None
        for t in wave.targets:
            if t.key in seen:
                raise ReleaseFileError(
                    f"{where}: target {t.key} is listed twice (also in wave {seen[t.key]})"
                )
            seen[t.key] = wave.name
            for part in (t.cluster, t.namespace, t.deployment):
                if not _NAME.match(part):
                    raise ReleaseFileError(f"{where}: target {t.key}: {part!r} is not a valid name")
    return rel


def _check_notify(names: list[str], source: str) -> None:
    for name in names:
        if not is_target_name(name):
            raise ReleaseFileError(
                f"{source}: spec.notify: {name!r} is not a notification target name "
                "(the worker's ROLLOUT_NOTIFY_TARGETS names: a-z, 0-9, -, _, .)"
            )


def approval_of(wave: WaveFile) -> WaveApproval:
    """The wave's approval as the workflow input carries it."""
    a = wave.approval
    return WaveApproval(required=a.required, timeout_seconds=a.timeout, on_timeout=a.on_timeout)


def load_release_file(path: str) -> ReleaseFile:
    """Read and validate ``path`` (one YAML document)."""
    try:
        docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if d is not None]
    except OSError as exc:
        raise ReleaseFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ReleaseFileError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if len(docs) != 1:
        raise ReleaseFileError(f"{path}: want exactly one Release document, found {len(docs)}")
    rel = parse_release(docs[0], path)
    base = Path(path).parent
    for wave in rel.spec.waves:
        if wave.analysis is not None:
            wave.analysis.templates = [str(base / t) for t in wave.analysis.templates]
    return rel


def wave_analysis(wave: WaveFile) -> list[AnalysisSpec]:
    """The wave's background analysis: its templates read and checked (``AnalysisInputError``)."""
    if wave.analysis is None:
        return []
    # Lazy: the template reader pulls the analysis parser in only for files that use it.
    from cli.analysis_input import resolve_analysis

    args = [f"{k}={v}" for k, v in wave.analysis.args.items()]
    inputs = resolve_analysis(
        background_files=wave.analysis.templates, step_files=[], args=args, from_step=None, steps=[]
    )
    return inputs.background
