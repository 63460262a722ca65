"""``worker.py`` with another workflow runner, to measure worker tuning without editing the worker.

    python -c "import sys; from bench.worker_variant import main; sys.exit(main())" \\
        --runner passthrough [worker.py's own arguments]

(``BenchStack(runner=...)`` and ``python -m bench.concurrent --runner`` start it that way.)

Runners:

- ``sandboxed``: the SDK default (what ``worker.py`` uses).
- ``passthrough``: the sandbox, but the workflow's pure dependencies (``workflows.model``, ``workflows.plan``,
  ``workflows.errors``, ``activities``, ``pydantic``) are passed through instead of re-imported into every
  new workflow instance's sandbox.
- ``unsandboxed``: ``UnsandboxedWorkflowRunner`` (no per-instance module loading, no restricted proxies).

``--threads N`` also gives activities N executor threads and N pooled API connections.
``--metrics-port P`` serves the SDK's Prometheus metrics (task slots in use, poll counts) on 127.0.0.1:P
(set as the default runtime before ``worker.main`` connects).

It swaps the ``Worker`` class that ``worker.build_worker`` calls for one with ``workflow_runner`` preset, then
runs ``worker.main`` unchanged.
"""

from __future__ import annotations

import argparse
import functools
from typing import Any

from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import worker

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


def _with_threads(threads: int) -> None:
    """Give activities ``threads`` executor threads and as many pooled HTTP connections to the API server.

    ``worker.py`` sizes both at ``ACTIVITY_THREADS`` (the pool of the activities' one ``KubeClient``);
    this overrides both, e.g. to measure the engine as it was before (6 default threads, 10 connections).
    """
    load_api_client = worker.load_api_client

    def load_with_pool(*args: Any, **kwargs: Any) -> Any:
        api = load_api_client(*args, **kwargs)
        api.configuration.connection_pool_maxsize = threads
        api.rest_client = type(api.rest_client)(api.configuration)  # the pool is built from the configuration
        return api

    worker.ACTIVITY_THREADS = threads  # build_worker sizes the activities' KubeClient pool with it
    worker.load_api_client = load_with_pool  # type: ignore[assignment]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], add_help=False)
    parser.add_argument("--runner", choices=RUNNERS, default="sandboxed")
    parser.add_argument("--threads", type=int, default=0, help="activity executor threads (0: default)")
    parser.add_argument("--metrics-port", type=int, default=0, help="serve Prometheus metrics on this port")
    args, rest = parser.parse_known_args(argv)
    if args.metrics_port:
        from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

        Runtime.set_default(
            Runtime(
                telemetry=TelemetryConfig(
                    metrics=PrometheusConfig(bind_address=f"127.0.0.1:{args.metrics_port}")
                )
            )
        )
    runner = runner_for(args.runner)
    if runner is not None:
        worker.Worker = functools.partial(Worker, workflow_runner=runner)  # type: ignore[misc,assignment]
    if args.threads:
        _with_threads(args.threads)
    return worker.main(rest)
