"""``stamp_approver``: the approval webhook's decision (security review F3), as a table."""

from __future__ import annotations

from typing import Any

import pytest

from declarative.webhook import stamp_approver


def _st(state: str | None, index: int = 1, by: str | None = None) -> dict[str, Any]:
    canary: dict[str, Any] = {"currentStepIndex": index}
    if state:
        canary["currentStepState"] = state
    if by:
        canary["approvedBy"] = by
    return {"status": {"canaryStatus": canary}}


def _by(obj: dict[str, Any] | None) -> str | None:
    return None if obj is None else obj["status"]["canaryStatus"].get("approvedBy")


@pytest.mark.parametrize(
    ("old", "new", "want"),
    [
        # approving: the authenticated user, whatever the writer claimed
        (_st("StepPaused"), _st("StepReady"), "alice"),
        (_st("StepPaused"), _st("StepReady", by="cto@corp"), "alice"),
        # StepReady left over for step 1, now written for step 2: a new approval
        (_st("StepReady", 1, by="bob"), _st("StepReady", 2), "alice"),
        # a later write that keeps the approval keeps its approver; a forged one is put back
        (_st("StepReady", by="bob"), _st("StepReady", by="bob"), "unchanged"),
        (_st("StepReady", by="bob"), _st("StepReady", by="mallory"), "bob"),
        (_st("StepReady", by="bob"), _st("StepReady"), "bob"),
        # any other write carries no approver
        (_st("StepReady", by="bob"), _st("StepUpgrade", by="bob"), None),
        (_st("StepPaused"), _st("StepPaused", by="cto@corp"), None),
        (_st("StepPaused"), _st("StepPaused"), "unchanged"),
    ],
)
def test_stamp(old: dict[str, Any], new: dict[str, Any], want: str | None) -> None:
    out = stamp_approver(old, new, "alice")
    if want == "unchanged":
        assert out is None
    else:
        assert out is not None and _by(out) == want


def test_no_canary_status_is_left_alone() -> None:
    assert stamp_approver(None, {"status": {"phase": "Healthy"}}, "alice") is None
