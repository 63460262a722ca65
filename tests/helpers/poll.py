"""Polling with a deadline (no sleep as synchronisation): sync ``wait_for``, async ``assert_eventually``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_for(
    fn: Callable[[], T], *, timeout: float = 15.0, interval: float = 0.05, what: str = "condition"
) -> T:
    """Poll ``fn`` until truthy (returned) or raise AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {value!r}")
        time.sleep(interval)


async def assert_eventually(
    check: Callable[[], Awaitable[T | None]] | Callable[[], T | None],
    *,
    timeout: float = 30.0,
    interval: float = 0.1,
    message: str = "condition",
) -> T:
    """Call ``check`` until it returns a truthy value (awaiting it if needed); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            last = result
            if result:
                return result  # type: ignore[return-value]
        except AssertionError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}; last: {last!r}")
        await asyncio.sleep(interval)


async def assert_holds(
    check: Callable[[], Awaitable[T | None]] | Callable[[], T | None],
    *,
    seconds: float,
    interval: float = 0.2,
    message: str = "condition",
) -> None:
    """Poll ``check`` throughout a window of ``seconds``: it must stay truthy at every poll.

    For "nothing may happen" checks (no native roll, no hot loop, a hold outlasting its timer): the
    condition is sampled all along instead of once at the end, so a transient violation is caught too.
    It is ``assert_eventually`` waiting for a violation: its timeout means the condition held.
    """

    async def violation() -> tuple[str, Any] | None:
        try:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
        except AssertionError as exc:
            return ("raised", exc)
        return None if result else ("returned", result)

    try:
        found = await assert_eventually(violation, timeout=seconds, interval=interval, message=message)
    except AssertionError:
        return  # no poll in the window saw it fail
    raise AssertionError(f"{message} stopped holding: {found[1]!r}")
