"""The verb modules behind `rollout` (cli/edge.py): each module adds its subcommands bound to a `Verb`, and
`starter` runs whatever `args.verb` says, so a new verb or verb group is one more entry in `VERBS`."""

from __future__ import annotations

import argparse
import io
import types
from typing import Any

import pytest

import starter
from cli.edge import Parser, Verb, new_verb_parser

ORDER = [
    "start",
    "approve",
    "undo",
    "pause",
    "resume",
    "abort",
    "retry",
    "status",
    "history",
    "list",
    "release",
    "dev",
]


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_verb_module_adds_its_commands_in_help_order() -> None:
    assert all(callable(m.add_parser) and callable(m.run) for m in starter.VERBS)
    assert list(_subcommands(starter.build_parser())) == ORDER


@pytest.mark.parametrize(
    ("argv", "kube", "checked", "local"),
    [
        (["start", "nginx", "--image", "nginx=nginx:1.27"], True, True, False),
        (["approve", "nginx"], True, False, False),
        (["undo", "nginx"], True, False, False),
        (["abort", "nginx", "--reason", "r"], True, False, False),
        (["status", "nginx"], True, False, False),
        (["history", "nginx"], False, False, False),  # Temporal only: no kubeconfig needed
        (["list"], False, False, False),
        (["release", "list"], False, True, False),  # Temporal, and each target's own cluster context
        (["dev", "status"], True, False, True),  # no connection, no event loop
    ],
)
def test_each_command_is_bound_to_how_it_runs(
    argv: list[str], kube: bool, checked: bool, local: bool
) -> None:
    verb: Verb = starter.build_parser().parse_args(argv).verb
    assert (verb.kube, verb.check is not None, verb.local is not None) == (kube, checked, local)
    assert (verb.run is None) == local


def _fleet_group() -> types.ModuleType:
    """A verb group as a module: `rollout fleet start|status`, leaves that need no connection."""
    module = types.ModuleType("fleet")

    def add_parser(sub: Any) -> None:
        group = sub.add_parser("fleet", help="a fleet")
        leaves = group.add_subparsers(dest="fleet_command", required=True, parser_class=Parser)
        for name, code in (("start", 7), ("status", 8)):
            leaf = new_verb_parser(leaves, name, Verb(local=lambda args, code=code: code))
            leaf.add_argument("--wave", type=int, default=1)

    module.add_parser = add_parser  # type: ignore[attr-defined]
    return module


async def test_a_verb_group_is_one_more_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(starter, "VERBS", (*starter.VERBS, _fleet_group()))
    out, err = io.StringIO(), io.StringIO()
    assert await starter.run(["fleet", "status", "--wave", "2"], out=out, err=err) == 8
    assert await starter.run(["fleet", "start"], out=out, err=err) == 7
    assert await starter.run(["fleet"], out=out, err=err) == 2
    assert err.getvalue() == "rollout: error: the following arguments are required: fleet_command\n"
    assert list(_subcommands(starter.build_parser()))[-1] == "fleet"
