"""The flags of ``rollout start`` and the ``StartOptions`` they make (the verb is ``cli/start.py``)."""

from __future__ import annotations

import argparse

from cli.context import StartOptions

__all__ = ["add_start_flags", "start_options"]


def add_start_flags(p: argparse.ArgumentParser) -> None:
    """Every flag of ``rollout start`` but the connection flags, in ``--help`` order."""
    p.add_argument("name", nargs="?", help="Deployment name (optional with -f or -r)")
    _add_template_flags(p)
    _add_traffic_flags(p)
    _add_analysis_flags(p)
    p.add_argument(
        "--replace",
        action="store_true",
        help="supersede the running rollout with this template (without --image/-f: adopt the "
        "Deployment's current template)",
    )


def _add_template_flags(p: argparse.ArgumentParser) -> None:
    """The new pod template and the steps."""
    p.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="CONTAINER=IMAGE",
        help="new image of a container (repeatable)",
    )
    p.add_argument(
        "-f", "--filename", dest="deployment_file", help="Deployment YAML whose pod template to roll out"
    )
    p.add_argument(
        "-r", "--rollout", dest="rollout_file", help="Kruise rollouts.kruise.io/v1beta1 Rollout YAML"
    )
    p.add_argument(
        "--steps",
        help="comma list of REPLICAS[:TRAFFIC%%], e.g. 1,50%%,100%% or 1:5%%,50%%:50%%,100%% (default 100%%)",
    )
    p.add_argument(
        "--pause-duration",
        type=int,
        default=None,
        metavar="SECONDS",
        help="pause each step this long (default: wait for approve)",
    )
    p.add_argument(
        "--failure-threshold", default=None, metavar="N|N%", help="unready canary pods tolerated per step"
    )


def _add_traffic_flags(p: argparse.ArgumentParser) -> None:
    """Traffic routing, and the progress deadline."""
    p.add_argument("--service", default=None, help="stable Service for traffic routing (see docs/traffic.md)")
    p.add_argument("--ingress", default=None, help="nginx Ingress routing to --service")
    p.add_argument("--httproute", default=None, help="Gateway API HTTPRoute routing to --service")
    p.add_argument(
        "--grace-period",
        type=int,
        default=None,
        metavar="SECONDS",
        help="wait after each traffic change (default 3)",
    )
    p.add_argument(
        "--match",
        action="append",
        default=[],
        metavar="[STEP[-STEP]@]KIND:SPEC",
        help="send matching requests to the canary, e.g. 1-2@header:X-Canary=true (repeatable)",
    )
    p.add_argument(
        "--progress-deadline",
        type=int,
        default=None,
        metavar="SECONDS",
        help="fail a step whose canary makes no progress this long (default: the Deployment's, 600)",
    )
    p.add_argument(
        "--auto-rollback", action="store_true", help="roll back by itself when the progress deadline passes"
    )


def _add_analysis_flags(p: argparse.ArgumentParser) -> None:
    """Notifications and canary analysis."""
    p.add_argument(
        "--notify",
        action="append",
        default=[],
        metavar="NAME",
        help="POST a JSON event to the worker's notification target NAME ($ROLLOUT_NOTIFY_TARGETS) on pause, "
        "step, completion, rollback, abort, failure (repeatable; the worker adds $ROLLOUT_NOTIFY_DEFAULT)",
    )
    p.add_argument(
        "--analysis",
        action="append",
        default=[],
        metavar="FILE",
        help="Argo AnalysisTemplate YAML run as background analysis; a failure rolls back (repeatable)",
    )
    p.add_argument(
        "--analysis-from-step", type=int, default=None, metavar="N", help="background analysis from step N"
    )
    p.add_argument(
        "--analysis-arg", action="append", default=[], metavar="NAME=VALUE", help="fill a template arg"
    )
    p.add_argument(
        "--step-analysis",
        action="append",
        default=[],
        metavar="FILE",
        help="AnalysisTemplate YAML that steps run: --steps 1,50%%+NAME,100%% (repeatable)",
    )


def start_options(args: argparse.Namespace) -> StartOptions:
    """The ``StartOptions`` of parsed ``rollout start`` arguments."""
    return StartOptions(
        name=args.name,
        images=args.image,
        steps=args.steps,
        pause_duration=args.pause_duration,
        rollout_file=args.rollout_file,
        deployment_file=args.deployment_file,
        failure_threshold=args.failure_threshold,
        service=args.service,
        ingress=args.ingress,
        httproute=args.httproute,
        grace_period=args.grace_period,
        matches=args.match,
        progress_deadline=args.progress_deadline,
        auto_rollback=args.auto_rollback,
        replace=args.replace,
        notify=args.notify,
        analysis_files=args.analysis,
        step_analysis_files=args.step_analysis,
        analysis_args=args.analysis_arg,
        analysis_from_step=args.analysis_from_step,
    )
