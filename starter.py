"""The ``rollout`` CLI: argv to a verb module, the connections, and the exit codes.

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
    rollout dev up|down|status    (local stack; see devstack/)

Each verb is a module in ``cli/`` with ``add_parser`` and ``run`` (``cli/edge.py``); a new verb (group)
is one more entry in ``VERBS``. Errors are one line on stderr and a non-zero exit; ``-o json`` prints
only JSON on stdout. ``status -w`` exits by outcome: 0 Completed, 3 RolledBack, 4 Failed, 5 Aborted
(see ``cli.view``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import NoReturn, TextIO

from kubernetes.client import ApiClient
from temporalio.client import Client

from cli import approve, control, dev, history, listing, release, start, status, undo
from cli.context import CommandError, RolloutContext
from cli.edge import Parser, Verb
from connect import CLI_USER_AGENT, connect_temporal, exit_now, load_api_client, unreachable_text

__all__ = ["VERBS", "build_parser", "main", "run"]

# The verbs in `rollout --help` order; each module adds its subcommand(s).
VERBS = (start, approve, undo, control, status, history, listing, release, dev)

EXIT_ERROR = 1  # one line `rollout: error: ...` (a CommandError may carry its own code)
EXIT_USAGE = 2  # argparse: unknown flag, missing argument
EXIT_INTERRUPTED = 130  # Ctrl-C


def build_parser() -> argparse.ArgumentParser:
    """The ``rollout`` argument parser: one subcommand (or more) per verb module."""
    parser = Parser(prog="rollout", description="Progressive delivery of Deployments as Temporal workflows")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for verb in VERBS:
        verb.add_parser(sub)
    return parser


def _parse(argv: list[str], out: TextIO, err: TextIO) -> argparse.Namespace | int:
    """The parsed arguments, or the exit code of ``--help`` (0) or a usage error (2)."""
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            return build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


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
    args = _parse(argv, out, err)
    if isinstance(args, int):
        return args
    verb: Verb = args.verb
    if verb.local is not None:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            return verb.local(args)
    return await _connected(args, verb, client, api_client, out, err)


async def _connected(
    args: argparse.Namespace,
    verb: Verb,
    client: Client | None,
    api_client: ApiClient | None,
    out: TextIO,
    err: TextIO,
) -> int:
    """Check the arguments, connect, run the verb; every failure is one line on ``err``."""
    assert verb.run is not None
    own_api = api_client is None
    try:
        if verb.check is not None:  # bad arguments fail before any connection is made
            verb.check(args)
        if client is None:
            client = await connect_temporal(args.address, args.temporal_namespace)
        if api_client is None and not verb.kube:
            api_client = ApiClient()  # never used: the verb reads Temporal only, so needs no kubeconfig
        elif api_client is None:
            # --cluster NAME is also the kubeconfig context of that cluster, unless --context says otherwise.
            kube_context = args.context or getattr(args, "cluster", None)
            api_client = load_api_client(args.kubeconfig, kube_context, user_agent=CLI_USER_AGENT)
        ctx = RolloutContext(
            client=client,
            api_client=api_client,
            namespace=args.namespace or "default",
            task_queue=args.task_queue,
            cluster=getattr(args, "cluster", None) or "",
        )
        return await verb.run(args, ctx, out, err)
    except CommandError as exc:
        err.write(f"rollout: error: {exc}\n")
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - one line at the edge, never a traceback
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        text = unreachable_text(exc, api_client) or first
        err.write(f"rollout: error: {text}\n")
        return EXIT_ERROR
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
        args = _parse(argv, sys.stdout, sys.stderr)
        if isinstance(args, int):
            rc = args
        elif args.verb.local is not None:
            # Outside asyncio.run: its SIGINT handler would swallow Ctrl-C while `dev up` blocks.
            rc = args.verb.local(args)
        else:
            rc = asyncio.run(_connected(args, args.verb, None, None, sys.stdout, sys.stderr))
    except KeyboardInterrupt:
        rc = EXIT_INTERRUPTED
    exit_now(rc)


if __name__ == "__main__":
    main()
