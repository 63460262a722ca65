"""The ``rollout`` commands as importable async functions, for bench and tests (each lives in its verb's
module: ``cli/start.py``, ``cli/approve.py``, ``cli/undo.py``, ``cli/control.py``, ``cli/status.py``,
``cli/history.py``, ``cli/listing.py``; shared types in ``cli/context.py``).

Each command validates everything it can *before* writing anything, and raises ``CommandError``
with a one-line message for bad input. Kubernetes is only read here; all writes happen in the
workflow's activities (and ``rollout start``'s held write of the template, ``cli/hold.py``).
"""

from __future__ import annotations

from cli.approve import approve
from cli.context import DEFAULT_UI, CommandError, RolloutContext, StartOptions, ui_link
from cli.control import VERB_FOR, control
from cli.history import history
from cli.listing import list_rollouts
from cli.start import StartInputs, build_spec, check_start_inputs, start
from cli.status import QueryUnanswered, cluster_view, get_status, status_report
from cli.undo import undo, undo_to_revision

__all__ = [
    "DEFAULT_UI",
    "VERB_FOR",
    "CommandError",
    "QueryUnanswered",
    "RolloutContext",
    "StartInputs",
    "StartOptions",
    "approve",
    "build_spec",
    "check_start_inputs",
    "cluster_view",
    "control",
    "get_status",
    "history",
    "list_rollouts",
    "start",
    "status_report",
    "ui_link",
    "undo",
    "undo_to_revision",
]
