"""Leaving a process that holds a Temporal client."""

from __future__ import annotations

import os
import sys
from typing import NoReturn


def exit_now(rc: int) -> NoReturn:
    """Flush, then leave without interpreter teardown.

    The Temporal SDK's Rust core threads can crash the interpreter's teardown (SIGABRT or SIGSEGV
    *after* the work is done, temporalio/sdk-python#300), turning a success into exit 134 or 139.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`rollout list | head -1`) must not change rc
            pass
    os._exit(rc)
