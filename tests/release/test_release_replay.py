"""Recorded release histories replay on the current code (the parent and a target held at 100%).

Captured by ``ROLLOUT_CAPTURE_RELEASE=1 pytest tests/release/test_release_waves.py -k happy`` (by hand, after
an intended change; ``test_release_notify.py`` and ``test_release_targets.py`` capture ``release_notify``, a
release telling its notify targets, and ``release_user_undo``, a target undone by ``rollout undo``;
``test_release_continue.py -k continues`` captures ``release_continue_first``, a run that continues as new
after its first wave, and ``release_continue_last``, the run that finishes the release with targets an
earlier run started); a nondeterministic change needs ``workflow.patched`` instead.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.model import (
    RELEASE_WORKFLOW_TYPE,
    ReleaseInput,
    ReleaseStatus,
    release_workflow_id,
    workflow_id_for,
)
from workflows.release import ReleaseWorkflow
from workflows.rollout import RolloutWorkflow

HISTORIES = Path(__file__).resolve().parent / "histories"


def _history(name: str) -> WorkflowHistory:
    """The history under the ID its run had (the child checks that its ID is its target's)."""
    text = (HISTORIES / f"{name}.json").read_text()
    payload = json.loads(text)["events"][0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0]
    spec = json.loads(base64.b64decode(payload["data"]))
    if "releaseId" in spec and "waves" in spec:
        wid = release_workflow_id(spec["releaseId"])
    else:
        wid = workflow_id_for(spec["namespace"], spec["name"], spec["cluster"])
    return WorkflowHistory.from_json(wid, text)


@pytest.mark.parametrize(
    "name",
    [
        "release_happy",
        "release_target",
        "release_notify",
        "release_user_undo",
        "release_continue_first",
        "release_continue_last",
    ],
)
async def test_release_history_replays(name: str) -> None:
    replayer = Replayer(workflows=[ReleaseWorkflow, RolloutWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(_history(name), raise_on_replay_failure=True)
    assert result.replay_failure is None


@workflow.defn(name=RELEASE_WORKFLOW_TYPE, sandboxed=False)
class ChangedRelease(ReleaseWorkflow):
    """An incompatible edit: a timer before the first wave."""

    @workflow.run
    async def run(self, spec: ReleaseInput) -> ReleaseStatus:
        await workflow.sleep(timedelta(seconds=1))
        return await super().run(spec)


async def test_an_incompatible_release_change_fails_replay() -> None:
    replayer = Replayer(workflows=[ChangedRelease], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(_history("release_happy"), raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()
