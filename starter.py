"""The ``rollout`` CLI: argv parsing and output only; the work is in ``cli.commands``.

    rollout start NAME --image nginx=nginx:1.27 --steps 1,50%,100% [--pause-duration S]
    rollout start NAME --image ... --steps 1:5%,50%:50%,100% --service S --ingress I|--httproute R
    rollout start NAME --image ... --replace        (supersede the running rollout)
    rollout start -r rollout.yaml --image nginx=nginx:1.27 | rollout start -f deployment.yaml --steps ...
    rollout approve NAME [--step N] [--comment TEXT] | rollout approve NAME --full
    rollout undo NAME [--reason TEXT] | rollout undo NAME --to-revision N [--steps S]
    rollout pause|resume|abort|retry NAME
    rollout status NAME [-o json] [-w [--no-color]]
    rollout list [-o json] [-A]
    rollout history NAME [-o json] [--limit N]
    rollout release start|status|approve|halt|resume|abort|revert|list ...   (see cli/release.py)
    rollout dev up|down|status    (local stack; see cli/dev.py)

Errors are one line on stderr and a non-zero exit; ``-o json`` prints only JSON on stdout.
``status -w`` exits by outcome: 0 Completed, 3 RolledBack, 4 Failed, 5 Aborted (see ``cli.view``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from typing import Any, NoReturn, TextIO

from kubernetes.client import ApiClient
from temporalio.client import Client

from cli import commands
from cli.commands import CommandError, RolloutContext, StartOptions
from cli.status import history_text, status_text, watch
from connect import exit_now
from workflows.model import TASK_QUEUE, ControlAction, workflow_id_for

__all__ = ["build_parser", "main", "run"]

TEMPORAL_ONLY = ("list", "history")  # commands that never touch Kubernetes


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"rollout: error: {message}\n")


def _common(parser: argparse.ArgumentParser, *, output: bool = False) -> None:
    parser.add_argument("-n", "--namespace", default=None, help="Kubernetes namespace (default: default)")
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG)")
    parser.add_argument("--context", default=None, help="kubeconfig context")
    parser.add_argument("--address", default=None, help="Temporal address (overrides TEMPORAL_ADDRESS)")
    parser.add_argument("--temporal-namespace", default=None, help="Temporal namespace (overrides env)")
    parser.add_argument(
        "--task-queue",
        default=os.environ.get("ROLLOUT_TASK_QUEUE", TASK_QUEUE),
        help=f"worker task queue (default: $ROLLOUT_TASK_QUEUE or {TASK_QUEUE})",
    )
    if output:
        parser.add_argument("-o", "--output", choices=["text", "json"], default="text", help="default text")


def build_parser() -> argparse.ArgumentParser:
    """The ``rollout`` argument parser."""
    parser = _Parser(prog="rollout", description="Progressive delivery of Deployments as Temporal workflows")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("start", help="start a canary rollout of a Deployment")
    p.add_argument("name", nargs="?", help="Deployment name (optional with -f or -r)")
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
    p.add_argument(
        "--replace",
        action="store_true",
        help="supersede the running rollout with this template (without --image/-f: adopt the "
        "Deployment's current template)",
    )
    _common(p, output=True)

    p = sub.add_parser("approve", help="approve the paused step")
    p.add_argument("name")
    p.add_argument("--step", type=int, default=None, help="the step to approve (default: the paused one)")
    p.add_argument("--comment", default="", help="kept with the approval in status.approvals")
    p.add_argument(
        "--full",
        action="store_true",
        help="skip the remaining steps and pauses and go to 100%% (promote --full)",
    )
    p.add_argument("--by", default="", help="who approves (default: your user name)")
    _common(p, output=True)

    p = sub.add_parser(
        "undo", help="roll back to the stable revision, or (--to-revision N) roll out an earlier template"
    )
    p.add_argument("name")
    p.add_argument("--reason", default="", help="why (the worker logs it with the undo)")
    p.add_argument("--by", default="", help="who asks (default: your user name)")
    p.add_argument(
        "--to-revision",
        type=int,
        default=None,
        metavar="N",
        help="with no rollout in flight: a new rollout to the pod template of Deployment revision N",
    )
    p.add_argument("--steps", default=None, help="steps of the --to-revision rollout (default 100%%)")
    _common(p, output=True)

    for verb, text in (
        ("pause", "hold the rollout at its current step (also through a timed pause or a running scale)"),
        ("resume", "release a rollout held by `rollout pause`"),
        ("abort", "traffic and pods back to stable; the Deployment stays held (then retry or undo)"),
        ("retry", "restart an aborted rollout from step 1"),
    ):
        p = sub.add_parser(verb, help=text)
        p.add_argument("name")
        p.add_argument("--by", default="", help="who asks (default: your user name)")
        if verb == "abort":
            p.add_argument("--reason", default="", help="why (kept in the worker log)")
        _common(p, output=True)

    p = sub.add_parser("status", help="show a rollout")
    p.add_argument("name")
    p.add_argument(
        "-w",
        "--watch",
        action="store_true",
        help="live view until the rollout ends; exit 0 Completed, 3 RolledBack, 4 Failed, 5 Aborted",
    )
    p.add_argument(
        "--no-color", action="store_true", help="no colour in the live view (also: NO_COLOR, TERM=dumb)"
    )
    _common(p, output=True)

    p = sub.add_parser("history", help="past rollouts of a Deployment, newest first")
    p.add_argument("name")
    p.add_argument("--limit", type=int, default=20, help="at most this many rollouts (default 20)")
    _common(p, output=True)

    p = sub.add_parser("list", help="list rollouts")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="rollouts of every namespace")
    _common(p, output=True)

    from cli.release import add_parser as add_release_parser  # `rollout release ...`

    add_release_parser(sub, _common)

    # Everything after `dev` goes to cli.dev untouched (its own parser and --help): "\0" as the
    # only prefix char means no argument here looks like an option.
    p = sub.add_parser(
        "dev",
        help="local stack: Temporal dev server, kubesim and a worker (rollout dev up|down|status)",
        add_help=False,
        prefix_chars="\0",
    )
    p.add_argument("dev_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def _print_json(data: Any, out: TextIO) -> None:
    out.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def _said(args: argparse.Namespace, ctx: RolloutContext, text: str, out: TextIO) -> int:
    """Print what a verb did: the sentence, or with ``-o json`` the workflow ID, verb and sentence."""
    if args.output == "json":
        verb = "approve --full" if getattr(args, "full", False) else args.command
        wid = workflow_id_for(ctx.namespace, args.name)
        _print_json({"workflowId": wid, "verb": verb, "message": text}, out)
    else:
        out.write(text + "\n")
    return 0


def _start_options(args: argparse.Namespace) -> StartOptions:
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


async def _dispatch(args: argparse.Namespace, ctx: RolloutContext, out: TextIO, err: TextIO) -> int:
    if args.command == "start":
        spec, run_id = await commands.start(ctx, _start_options(args))
        link = commands.ui_link(ctx, spec.workflow_id)
        if args.output == "json":
            _print_json(
                {
                    "workflowId": spec.workflow_id,
                    "runId": run_id,
                    "uiUrl": link,
                    "spec": spec.model_dump(mode="json"),
                },
                out,
            )
        else:
            steps = ", ".join(str(s.replicas) for s in spec.steps)
            verb = "retargeted" if args.replace else "started"
            out.write(f"rollout {spec.workflow_id} {verb} for {spec.target} (steps {steps})\n")
            out.write(f"Temporal UI: {link}\n")
        return 0
    if args.command in ("approve", "undo", "status"):
        from cli.rollout_objects import deployment_for

        args.name = await deployment_for(ctx, args.name)
    if args.command == "approve":
        if args.full:
            if args.step is not None:
                raise CommandError("--full approves every remaining step; drop --step")
            text = await commands.control(ctx, args.name, ControlAction.PROMOTE_FULL, by=args.by)
        else:
            text = await commands.approve(ctx, args.name, step=args.step, by=args.by, comment=args.comment)
        return _said(args, ctx, text, out)
    if args.command == "undo" and args.to_revision is not None:
        spec, run_id = await commands.undo_to_revision(
            ctx, args.name, args.to_revision, steps=args.steps, by=args.by
        )
        link = commands.ui_link(ctx, spec.workflow_id)
        if args.output == "json":
            _print_json(
                {
                    "workflowId": spec.workflow_id,
                    "runId": run_id,
                    "uiUrl": link,
                    "revision": args.to_revision,
                },
                out,
            )
        else:
            steps = ", ".join(str(s.replicas) for s in spec.steps)
            out.write(
                f"rollout {spec.workflow_id} started for {spec.target}: back to the template of revision "
                f"{args.to_revision} (steps {steps})\nTemporal UI: {link}\n"
            )
        return 0
    if args.command == "undo":
        if args.steps is not None:
            raise CommandError("--steps goes with --to-revision")
        return _said(args, ctx, await commands.undo(ctx, args.name, by=args.by, reason=args.reason), out)
    if args.command in ("pause", "resume", "abort", "retry"):
        action = ControlAction(args.command)
        text = await commands.control(ctx, args.name, action, by=args.by, reason=getattr(args, "reason", ""))
        return _said(args, ctx, text, out)
    if args.command == "status":
        if args.watch and args.output != "json":
            return await watch(ctx, args.name, out, err, no_color=args.no_color)
        st, note = await commands.status_report(ctx, args.name)
        link = commands.ui_link(ctx, st.workflow_id)
        if args.output == "json":
            extra = {"workerAnswered": not note, "note": note} if note else {"workerAnswered": True}
            _print_json({**st.model_dump(mode="json"), "uiUrl": link, **extra}, out)
        else:
            out.write(status_text(st, link))
            if note:
                out.write(f"Worker:    {note}\n")
        return 0
    if args.command == "history":
        records = await commands.history(ctx, args.name, limit=args.limit)
        if args.output == "json":
            _print_json([r.as_json() for r in records], out)
        else:
            out.write(history_text(records))
        return 0
    if args.command == "list":
        rows = await commands.list_rollouts(ctx, all_namespaces=args.all_namespaces)
        if args.output == "json":
            _print_json(rows, out)
            return 0
        out.write(f"{'WORKFLOW ID':<40} {'PHASE':<12} {'STEP':<6} {'STATE':<12} TEMPORAL UI\n")
        for r in rows:
            step = f"{r.get('currentStepIndex', '-')}/{r.get('totalSteps', '-')}"
            out.write(
                f"{r['workflowId']:<40} {r.get('phase', ''):<12} {step:<6} {r.get('stepState', '-'):<12} "
                f"{r['uiUrl']}\n"
            )
            if r.get("orphanedHold"):
                out.write(f"  ! {r['message']}\n")
        return 0
    raise CommandError(f"unknown command {args.command}")  # pragma: no cover - argparse guards this


async def run(
    argv: list[str],
    *,
    client: Client | None = None,
    api_client: ApiClient | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run one CLI invocation; tests pass their own clients. Returns the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.command == "dev":
        from cli.dev import main as dev_main  # lazy: only the local-stack commands need it

        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            return dev_main(args.dev_args)
    own_api = api_client is None
    try:
        if args.command == "release":  # its own clients: one Kubernetes context per cluster
            from cli.release import run_release

            return await run_release(args, client, out, err)
        if args.command == "start":  # bad arguments fail before any connection is made
            commands.check_start_inputs(_start_options(args), args.namespace or "default")
        if client is None:
            from connect import connect_temporal

            client = await connect_temporal(args.address, args.temporal_namespace)
        if api_client is None and args.command in TEMPORAL_ONLY:
            api_client = ApiClient()  # never used: these commands read Temporal only, so need no kubeconfig
        elif api_client is None:
            from connect import CLI_USER_AGENT, load_api_client

            api_client = load_api_client(args.kubeconfig, args.context, user_agent=CLI_USER_AGENT)
        ctx = RolloutContext(
            client=client,
            api_client=api_client,
            namespace=args.namespace or "default",
            task_queue=args.task_queue,
        )
        return await _dispatch(args, ctx, out, err)
    except CommandError as exc:
        err.write(f"rollout: error: {exc}\n")
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - one line at the edge, never a traceback
        from connect import unreachable_text

        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        text = unreachable_text(exc, api_client) or first
        err.write(f"rollout: error: {text}\n")
        return 1
    finally:
        if own_api and api_client is not None:
            api_client.close()


def main(argv: list[str] | None = None) -> NoReturn:
    """``rollout`` console script: run, flush, and leave without interpreter teardown.

    ``exit_now`` skips the interpreter teardown that the Temporal SDK can crash (2 to 7 of 40 calls
    exited 134 or 139 before); ``run`` still returns the code for in-process callers.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["dev"]:
            # Outside asyncio.run: its SIGINT handler would swallow Ctrl-C while `dev up` blocks.
            from cli.dev import main as dev_main

            rc = dev_main(argv[1:])
        else:
            rc = asyncio.run(run(argv))
    except KeyboardInterrupt:
        rc = 130
    exit_now(rc)


if __name__ == "__main__":
    main()
