"""``rollout dev up|down|status``: the local stack, which the ``devstack`` package runs.

Everything after ``dev`` goes to ``devstack.stack.main`` untouched (its own parser and ``--help``), with no
connection and outside the event loop (``Verb(local=...)``).
"""

from __future__ import annotations

import argparse

from cli.edge import Subparsers, Verb, new_verb_parser

__all__ = ["add_parser", "run"]


def add_parser(sub: Subparsers) -> None:
    # "\0" as the only prefix char: no argument after `dev` looks like an option of this parser.
    p = new_verb_parser(
        sub,
        "dev",
        Verb(local=run),
        help="local stack: Temporal dev server, kubesim and a worker (rollout dev up|down|status)",
        add_help=False,
        prefix_chars="\0",
    )
    p.add_argument("dev_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    from devstack.stack import main  # lazy: only the local-stack commands need it

    return main(args.dev_args)
