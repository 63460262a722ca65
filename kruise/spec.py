"""The workflow input for a plan: one rule for every setting that more than one place can give.

Pure (no I/O). ``rollout start`` (flags, or ``-r`` with flags over it) and the declarative
controller (a Rollout object) both build their ``RolloutSpec`` here. The rule, per setting: the
override (a ``rollout start`` flag, or the running run's own value on a replace), else the manifest,
else the Deployment's own (``spec.progressDeadlineSeconds``), else the default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kruise.manifest import KruisePlan
from kube.objects import containers_images, template_hash
from workflows.model import DEFAULT_PROGRESS_DEADLINE_SECONDS, RolloutSpec, RolloutTimings

__all__ = ["NO_OVERRIDES", "Overrides", "spec_for"]


@dataclass(frozen=True, kw_only=True)
class Overrides:
    """What outranks the plan; None (or False) means not given."""

    failure_threshold: int | str | None = None
    progress_deadline_seconds: int | None = None
    auto_rollback: bool = False


NO_OVERRIDES = Overrides()


def spec_for(
    plan: KruisePlan,
    deployment: dict[str, Any],
    *,
    template: dict[str, Any],
    stable_images: dict[str, str],
    requested_by: str,
    timings: RolloutTimings,
    overrides: Overrides = NO_OVERRIDES,
) -> RolloutSpec:
    """The input of a run that rolls ``deployment`` (as read) out to ``template`` in ``plan``'s steps.

    The spec refers to ``template`` by its hash and the Deployment's generation as read; a caller
    that writes the template itself refreshes both from its write. Fields only one caller knows
    (notification targets, analysis, the Rollout object's name) it sets on the result.
    """
    md = deployment.get("metadata") or {}
    return RolloutSpec(
        namespace=str(md.get("namespace") or ""),
        name=plan.deployment,
        template_hash=template_hash(template),
        generation=int(md.get("generation") or 0),
        steps=plan.steps,
        failure_threshold=_first(overrides.failure_threshold, plan.failure_threshold),
        stable_images=stable_images,
        canary_images=containers_images(template),
        requested_by=requested_by,
        timings=timings,
        traffic_routing=plan.routing,
        progress_deadline_seconds=progress_deadline(plan, deployment, overrides),
        auto_rollback=overrides.auto_rollback or bool(plan.auto_rollback),
    )


def progress_deadline(
    plan: KruisePlan, deployment: dict[str, Any], overrides: Overrides = NO_OVERRIDES
) -> int:
    """Seconds without progress before a step fails: override, else manifest, else the Deployment's own,
    else Kubernetes' default (600)."""
    own = (deployment.get("spec") or {}).get("progressDeadlineSeconds")
    return int(
        overrides.progress_deadline_seconds
        or plan.progress_deadline_seconds
        or own
        or DEFAULT_PROGRESS_DEADLINE_SECONDS
    )


def _first(*values: int | str | None) -> int | str | None:
    return next((v for v in values if v is not None), None)
