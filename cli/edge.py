"""The argv edge every verb module shares (argo-rollouts' ``cmd/<verb>/``, one module per verb).

A verb module has ``add_parser(subparsers)``, which adds its subcommand(s) and binds them to a ``Verb``
(``parser.set_defaults(verb=Verb(run))``), and ``run(args, ctx, out, err) -> int``. ``starter.py`` lists
the verb modules, parses argv, connects, and calls ``args.verb``: it holds no verb of its own.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TextIO

from cli.context import RolloutContext, ui_link
from workflows.model import TASK_QUEUE, RolloutSpec, workflow_id_for

__all__ = [
    "Parser",
    "Subparsers",
    "Verb",
    "add_cluster_flag",
    "add_connection_flags",
    "new_verb_parser",
    "print_json",
    "said",
    "said_started",
]

Subparsers = Any  # argparse's _SubParsersAction (private)


@dataclass(frozen=True)
class Verb:
    """How ``starter.run`` runs a parsed command.

    ``run`` gets the connected context. ``kube=False``: the verb reads Temporal only and needs no
    kubeconfig. ``check`` runs on the arguments before any connection is made (bad input fails fast).
    ``local`` instead runs with no connection and no event loop (``rollout dev``).
    """

    run: Callable[[argparse.Namespace, RolloutContext, TextIO, TextIO], Awaitable[int]] | None = None
    kube: bool = True
    check: Callable[[argparse.Namespace], None] | None = None
    local: Callable[[argparse.Namespace], int] | None = None


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"rollout: error: {message}\n")


def add_connection_flags(parser: argparse.ArgumentParser, *, output: bool = True) -> None:
    """The flags every connected verb takes: where the cluster and Temporal are, and ``-o``."""
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


def add_cluster_flag(parser: argparse.ArgumentParser) -> None:
    """``--cluster NAME``: the Deployment is a release target in cluster NAME (its kubeconfig context)."""
    parser.add_argument(
        "--cluster",
        default=None,
        help="a release target's cluster: the rollout rollout/<cluster>/<ns>/<name>, read through the "
        "kubeconfig context of that name (unless --context)",
    )


def new_verb_parser(sub: Subparsers, name: str, verb: Verb, **kwargs: Any) -> argparse.ArgumentParser:
    """A subcommand bound to ``verb``; the caller adds its own arguments, then the connection flags."""
    parser: argparse.ArgumentParser = sub.add_parser(name, **kwargs)
    parser.set_defaults(verb=verb)
    return parser


def print_json(data: Any, out: TextIO) -> None:
    out.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def said(args: argparse.Namespace, ctx: RolloutContext, text: str, out: TextIO) -> int:
    """Print what a verb did: the sentence, or with ``-o json`` the workflow ID, verb and sentence."""
    if args.output == "json":
        verb = "approve --full" if getattr(args, "full", False) else args.command
        wid = workflow_id_for(ctx.namespace, args.name, ctx.cluster)
        print_json({"workflowId": wid, "verb": verb, "message": text}, out)
    else:
        out.write(text + "\n")
    return 0


def said_started(
    args: argparse.Namespace,
    ctx: RolloutContext,
    started: tuple[RolloutSpec, str],
    what: str,
    out: TextIO,
    **extra: Any,
) -> int:
    """Print a run a verb started (or retargeted): ``rollout ID <what> (steps ...)`` and the UI link, or
    with ``-o json`` the workflow and run IDs, the link and ``extra``."""
    spec, run_id = started
    link = ui_link(ctx, spec.workflow_id)
    if args.output == "json":
        print_json({"workflowId": spec.workflow_id, "runId": run_id, "uiUrl": link, **extra}, out)
    else:
        steps = ", ".join(str(s.replicas) for s in spec.steps)
        out.write(f"rollout {spec.workflow_id} {what} (steps {steps})\nTemporal UI: {link}\n")
    return 0
