"""Committed workflow histories of durability runs, and the function that captures them.

``capture_history`` writes a history only when the file is missing or ``ROLLOUT_CAPTURE_HISTORIES=1``
is set, so a normal test run never rewrites committed files; the replay test reads them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

__all__ = ["capture_history"]


async def capture_history(handle: WorkflowHandle[Any, Any], path: Path) -> bool:
    """Write the workflow's history as JSON to ``path`` if missing or asked to; return whether it did."""
    if path.exists() and os.environ.get("ROLLOUT_CAPTURE_HISTORIES") != "1":
        return False
    history = await handle.fetch_history()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(history.to_json())
    return True
