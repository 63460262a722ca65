"""The polling helpers themselves: ``assert_holds`` must fail on a violation seen at any poll."""

from __future__ import annotations

import pytest

from tests.helpers.poll import assert_holds


async def test_assert_holds_passes_when_the_condition_stays_true() -> None:
    await assert_holds(lambda: True, seconds=0.2, interval=0.05)


async def test_assert_holds_fails_on_a_transient_violation() -> None:
    polls = iter([True, True, False, True, True, True, True, True, True, True])
    with pytest.raises(AssertionError, match="stopped holding: False"):
        await assert_holds(lambda: next(polls), seconds=0.3, interval=0.02)


async def test_assert_holds_fails_when_the_check_asserts() -> None:
    def check() -> bool:
        raise AssertionError("boom")

    with pytest.raises(AssertionError, match="stopped holding.*boom"):
        await assert_holds(check, seconds=0.2, interval=0.05)
