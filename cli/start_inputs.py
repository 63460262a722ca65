"""``rollout start``'s flags and files, parsed once into ``StartInputs`` (pure: no cluster, no Temporal).

- The plan (deployment, steps, failure threshold, traffic routing) comes from ``-r`` (a Kruise Rollout,
  ``kruise/manifest.py``) or from ``--steps``, ``--pause-duration`` and the traffic flags
  (``cli/traffic_flags.py``).
- The flags that outrank a manifest (``--failure-threshold``, ``--progress-deadline``,
  ``--auto-rollback``) are kept apart as ``Overrides``; ``kruise.spec.spec_for`` applies them.
- The new pod template comes from ``-f`` (a Deployment manifest), from a caller (``undo
  --to-revision``), or is ``--image`` on the Deployment's current one (applied once it is read).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from cli.analysis_input import AnalysisInputs, resolve_analysis, split_step_analysis
from cli.inputs import load_single_doc, parse_images, template_from_deployment_doc
from cli.traffic_flags import apply_matches, routing_from_flags, split_steps_traffic
from kruise.manifest import KruisePlan, parse_kruise_rollout
from kruise.spec import Overrides
from kruise.traffic import validate_steps_traffic
from workflows.errors import InputError
from workflows.notify import MAX_NOTIFY_TARGETS, NOTIFY_TARGETS_ENV, is_target_name
from workflows.plan import parse_steps, validate_failure_threshold, validate_steps

if TYPE_CHECKING:
    from cli.context import StartOptions

__all__ = ["StartInputs"]


@dataclass(frozen=True, kw_only=True)
class StartInputs:
    """One ``rollout start``, checked without the cluster."""

    plan: KruisePlan  # the deployment, steps, failure threshold and routing: from -r, or from the flags
    overrides: Overrides  # the flags that outrank a manifest (and the Deployment's own deadline)
    template: dict[str, Any] | None  # -f's template or a caller's; None: --image on the current one
    images: dict[str, str]  # --image CONTAINER=IMAGE
    analysis: AnalysisInputs  # --analysis/--step-analysis templates, resolved against the steps
    notify: list[str]  # --notify target names, each once, in the order given

    @property
    def name(self) -> str:
        """The Deployment to roll out."""
        return self.plan.deployment

    @classmethod
    def parse(cls, opts: StartOptions, namespace: str) -> StartInputs:
        """Parse and check every flag and file of ``rollout start`` (``namespace``: ``-n``'s).

        Raises:
            InputError: (or ``AnalysisInputError``) with the one line the CLI prints.
        """
        _check_flags(opts)
        plan = _manifest_plan(opts) if opts.rollout_file else _flags_plan(opts)
        try:
            validate_failure_threshold(opts.failure_threshold)
        except ValueError as exc:
            raise InputError(str(exc)) from exc
        name, template = _template(opts, namespace, plan.deployment)
        if not name:
            raise InputError("missing deployment name")
        images = parse_images(opts.images)
        analysis = resolve_analysis(
            background_files=opts.analysis_files,
            step_files=opts.step_analysis_files,
            args=opts.analysis_args,
            from_step=opts.analysis_from_step,
            steps=plan.steps,
        )
        return cls(
            plan=replace(plan, deployment=name),
            overrides=Overrides(
                failure_threshold=opts.failure_threshold,
                progress_deadline_seconds=opts.progress_deadline,
                auto_rollback=opts.auto_rollback,
            ),
            template=template,
            images=images,
            analysis=analysis,
            notify=list(dict.fromkeys(opts.notify)),
        )


def _check_flags(opts: StartOptions) -> None:
    """The flags on their own and the combinations that make no sense."""
    for target in opts.notify:
        if "://" in target:
            raise InputError(
                f"--notify takes a target name from the worker's {NOTIFY_TARGETS_ENV}, not a URL "
                "(webhook URLs stay in the worker's configuration)"
            )
        if not is_target_name(target):
            raise InputError(f"--notify {target!r} is not a target name (lower-case letters, digits, -_.)")
    if len(set(opts.notify)) > MAX_NOTIFY_TARGETS:
        raise InputError(f"--notify: at most {MAX_NOTIFY_TARGETS} targets")
    if opts.progress_deadline is not None and opts.progress_deadline <= 0:
        raise InputError("--progress-deadline must be a positive number of seconds")
    analysis = opts.analysis_files or opts.step_analysis_files or opts.analysis_from_step is not None
    if opts.replace and analysis:
        raise InputError(
            "--analysis/--step-analysis/--analysis-from-step cannot be combined with --replace "
            "(the running rollout keeps its analysis)"
        )
    if opts.rollout_file and opts.steps:
        raise InputError("use either --steps or -r/--rollout, not both")


def _manifest_plan(opts: StartOptions) -> KruisePlan:
    """``-r rollout.yaml``: the Kruise Rollout's plan; its own fields replace the step and traffic flags."""
    path = str(opts.rollout_file)
    if opts.service or opts.ingress or opts.httproute or opts.matches or opts.grace_period is not None:
        raise InputError(
            "--service/--ingress/--httproute/--grace-period/--match cannot be combined with "
            "-r/--rollout (use its trafficRoutings)"
        )
    kp = parse_kruise_rollout(load_single_doc(path), path)
    if opts.name and opts.name != kp.deployment:
        raise InputError(f"{path} targets deployment {kp.deployment!r}, not {opts.name!r}")
    if opts.pause_duration is not None:
        raise InputError("--pause-duration cannot be combined with -r/--rollout (use pause.duration)")
    return kp


def _flags_plan(opts: StartOptions) -> KruisePlan:
    """``--steps`` tokens ``<replicas>[:<traffic%>][+<template>...]``, ``--match``, the routing flags."""
    if opts.pause_duration is not None and opts.pause_duration < 0:
        raise InputError("--pause-duration must be >= 0")
    try:
        steps_text, step_refs = split_step_analysis(opts.steps or "100%")
        tokens, traffic = split_steps_traffic(steps_text)
        steps = parse_steps(",".join(tokens), opts.pause_duration)
        traffic = apply_matches(traffic, opts.matches)
        routing = routing_from_flags(
            service=opts.service,
            ingress=opts.ingress,
            httproute=opts.httproute,
            grace_period_seconds=opts.grace_period,
        )
        validate_steps_traffic(routing, [*tokens], traffic)
        steps = [
            s.model_copy(update={"traffic": t, "analysis": refs})
            for s, t, refs in zip(steps, traffic, step_refs, strict=True)
        ]
        validate_steps(steps)
    except ValueError as exc:  # TrafficSpecError and AnalysisInputError are ValueErrors
        raise InputError(str(exc)) from exc
    return KruisePlan(
        deployment=opts.name or "", namespace=None, steps=steps, failure_threshold=None, routing=routing
    )


def _template(opts: StartOptions, namespace: str, name: str) -> tuple[str, dict[str, Any] | None]:
    """The Deployment's name and the new pod template (None: ``--image`` on the current one)."""
    path = opts.deployment_file
    if path:
        if opts.images:
            raise InputError("use either --image or -f/--filename, not both")
        file_name, file_ns, template = template_from_deployment_doc(load_single_doc(path), path)
        if name and name != file_name:
            raise InputError(f"{path} is deployment {file_name!r}, not {name!r}")
        if file_ns and file_ns != namespace:
            raise InputError(f"{path} is in namespace {file_ns!r}, not {namespace!r}")
        return file_name, template
    if opts.template is not None:
        return name, opts.template
    if not opts.images and not opts.replace:
        raise InputError("nothing to roll out: give --image CONTAINER=IMAGE or -f deployment.yaml")
    return name, None
