"""How the workflow schedules an activity: by method reference, with its purpose's options.

Every activity the rollout workflow runs goes through ``start`` (or ``call``), so the options come
from the one table in ``workflows/contract.py`` and a reader can follow each call to its method.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import workflow

from workflows.contract import Purpose, activity_options
from workflows.model import RolloutTimings

__all__ = ["call", "start"]


def start(
    fn: Callable[..., Any],
    *args: Any,
    purpose: Purpose,
    timings: RolloutTimings,
    summary: str | None = None,
) -> workflow.ActivityHandle[Any]:
    """Schedule ``fn`` (an ``@activity.defn`` method; its name is the activity type) with ``args``."""
    return workflow.start_activity_method(  # type: ignore[call-overload, no-any-return]
        fn, *args, summary=summary, **activity_options(purpose, timings)
    )


async def call(
    fn: Callable[..., Any],
    *args: Any,
    purpose: Purpose,
    timings: RolloutTimings,
    summary: str | None = None,
) -> Any:
    """Run ``fn`` to its result (see ``start``)."""
    return await start(fn, *args, purpose=purpose, timings=timings, summary=summary)
