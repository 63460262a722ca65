"""``worker.py`` with another workflow runner, to measure worker tuning without editing the worker.

    python bench/worker_variant.py --runner passthrough [worker.py's own arguments]

Runners:

- ``sandboxed``: the SDK default (what ``worker.py`` uses).
- ``passthrough``: the sandbox, but the workflow's pure dependencies (``workflows.model``, ``workflows.plan``,
  ``workflows.errors``, ``activities``, ``pydantic``) are passed through instead of re-imported into every
  new workflow instance's sandbox.
- ``unsandboxed``: ``UnsandboxedWorkflowRunner`` (no per-instance module loading, no restricted proxies).

It swaps the ``Worker`` class that ``worker.build_worker`` calls for one with ``workflow_runner`` preset, then
runs ``worker.main`` unchanged.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from temporalio.worker import UnsandboxedWorkflowRunner, Worker  # noqa: E402
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions  # noqa: E402

import worker  # noqa: E402

PASSTHROUGH = (
    "workflows.model",
    "workflows.plan",
    "workflows.errors",
    "activities",
    "pydantic",
    "pydantic_core",
)
RUNNERS = ("sandboxed", "passthrough", "unsandboxed")


def runner_for(name: str) -> Any:
    """The ``workflow_runner`` for a variant name (``None``: the SDK default)."""
    if name == "passthrough":
        return SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
        )
    if name == "unsandboxed":
        return UnsandboxedWorkflowRunner()
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], add_help=False)
    parser.add_argument("--runner", choices=RUNNERS, default="sandboxed")
    args, rest = parser.parse_known_args(argv)
    runner = runner_for(args.runner)
    if runner is not None:
        worker.Worker = functools.partial(Worker, workflow_runner=runner)  # type: ignore[misc,assignment]
    return worker.main(rest)


if __name__ == "__main__":
    sys.exit(main())
