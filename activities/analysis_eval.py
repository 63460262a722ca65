"""Reading a provider's answer and judging it, in a child process with a hard time limit.

A condition (``9**4000000``, a comprehension of them) or a jsonPath filter regex (``=~ "(a+)+$"``) is
author-controlled CPU work. Run on the worker's event loop it would stall every rollout the worker
drives (polling, heartbeats, workflow tasks, the watcher). A thread would not help: it cannot be
stopped, and it holds the GIL. So ``interpret`` (JSON, jsonPath, both conditions) runs in a small
pool of child processes (pebble), and a job that overruns ``eval_timeout`` has its process killed and
replaced; the measurement is then an Error. The children are forked from a fork server that has
imported this module, so a job costs a pipe round trip, not an interpreter start.

``interpret`` is pure and returns a plain tuple (it must pickle); it never raises for a bad answer.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import math
import multiprocessing
import re
import threading
from concurrent.futures import CancelledError as FutureCancelled
from typing import Any

from workflows.analysis_expr import evaluate
from workflows.errors import ConditionError

__all__ = ["EvalPool", "Outcome", "clean_text", "interpret", "value_text"]

# (value as text, success, failure, error): error is a short line, or "" when both conditions ran.
Outcome = tuple[str, bool | None, bool | None, str]

# C0 and C1 control characters (tab and newline included: status lines are one line) and DEL.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean_text(text: str, limit: int = 200) -> str:
    """Provider text made safe for terminals and status: no control characters, at most ``limit`` long."""
    text = _CONTROL.sub(" ", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def value_text(value: Any) -> str:
    """The value as one short line (JSON; NaN stays NaN; a plain-text body as it is)."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, str):
        return clean_text(value)
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return clean_text(text)


def _json_path(expr: str) -> Any:
    from jsonpath_ng.ext import parse

    e = expr.strip()
    return parse(e[1:-1] if e.startswith("{") and e.endswith("}") else e)


def _prometheus_value(body: bytes) -> float | list[float]:
    doc = json.loads(body)
    if not isinstance(doc, dict) or doc.get("status") != "success":
        kind = doc.get("errorType") if isinstance(doc, dict) else None
        why = f" ({kind})" if isinstance(kind, str) and re.fullmatch(r"[A-Za-z_]{1,32}", kind) else ""
        raise _Bad(f"the query did not succeed{why}")
    data = doc.get("data") or {}
    kind, result = data.get("resultType"), data.get("result") or []
    if kind == "vector":
        return [float(sample["value"][1]) for sample in result]
    if kind == "scalar":
        return float(result[1])
    raise _Bad(f"result type {clean_text(str(kind), 32)!r} is not supported (want vector or scalar)")


def _web_value(body: bytes, json_path: str) -> Any:
    """Argo's web provider: a JSON body through jsonPath; any other body (empty too) is the text itself."""
    text = body.decode("utf-8", errors="replace")
    try:
        doc = json.loads(text)
    except ValueError:
        return text
    if not json_path:
        return doc
    matches = [m.value for m in _json_path(json_path).find(doc)]
    if not matches:
        raise _Bad(f"jsonPath {clean_text(json_path, 80)} matched nothing")
    return matches[0] if len(matches) == 1 else matches


class _Bad(Exception):
    """An answer that cannot be measured (the message is ours, never the body)."""


def interpret(kind: str, body: bytes, json_path: str, success: str, failure: str) -> Outcome:
    """The measured value of ``body`` (``kind`` ``web`` or ``prometheus``) and both conditions on it."""
    try:
        value = _prometheus_value(body) if kind == "prometheus" else _web_value(body, json_path)
    except _Bad as exc:
        return "", None, None, str(exc)
    except (ValueError, KeyError, IndexError, TypeError, RecursionError) as exc:
        what = "the body is not Prometheus JSON" if kind == "prometheus" else "jsonPath failed"
        return "", None, None, f"{what} ({type(exc).__name__})"
    shown = value_text(value)
    try:
        ok = evaluate(success, value) if success else None
        bad = evaluate(failure, value) if failure else None
    except ConditionError as exc:
        return shown, None, None, clean_text(str(exc), 300)
    except Exception as exc:  # noqa: BLE001 - anything a condition can raise is an Error measurement
        return shown, None, None, f"condition failed ({type(exc).__name__})"
    return shown, ok, bad, ""


class EvalPool:
    """Child processes for ``interpret``; a job over ``timeout`` seconds has its process killed."""

    def __init__(self, processes: int = 2) -> None:
        self.processes = processes
        self._pool: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        with self._lock:
            if self._pool is None or not self._pool.active:
                from pebble import ProcessPool

                ctx = multiprocessing.get_context("forkserver")
                ctx.set_forkserver_preload(
                    [__name__]
                )  # children fork with this module (and simpleeval) loaded
                self._pool = ProcessPool(max_workers=self.processes, context=ctx)
            return self._pool

    async def run(
        self, kind: str, body: bytes, json_path: str, success: str, failure: str, *, timeout: float
    ) -> Outcome:
        """``interpret`` in a child; over ``timeout`` (or the child dying) is an Error outcome."""
        future = self._get().schedule(
            interpret, args=(kind, body, json_path, success, failure), timeout=timeout
        )
        try:
            result: Outcome = await asyncio.wrap_future(future)
        except TimeoutError:
            return "", None, None, f"jsonPath or condition took longer than {timeout:g}s (evaluation stopped)"
        except FutureCancelled:
            raise asyncio.CancelledError() from None
        except Exception as exc:  # noqa: BLE001 - the child died (memory, signal): an Error measurement
            return "", None, None, f"evaluation failed ({type(exc).__name__})"
        return result

    def close(self) -> None:
        """Stop the children (the worker's shutdown; also at interpreter exit)."""
        with self._lock:
            if self._pool is not None:
                self._pool.stop()
                self._pool.join(timeout=5)
                self._pool = None


_shared: EvalPool | None = None


def shared_pool(processes: int = 2) -> EvalPool:
    """The process's one pool (made on first use, stopped at exit)."""
    global _shared
    if _shared is None:
        _shared = EvalPool(processes)
        atexit.register(_shared.close)
    return _shared
