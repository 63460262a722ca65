"""Reading a provider's answer and judging it, in a child process with a hard time limit.

A condition (``9**4000000``, a comprehension of them) or a jsonPath filter regex (``=~ "(a+)+$"``) is
author-controlled CPU work. Run on the worker's event loop it would stall every rollout the worker
drives (polling, heartbeats, workflow tasks, the watcher). A thread would not help: it cannot be
stopped, and it holds the GIL. So ``interpret`` (JSON, jsonPath, both conditions) runs in a small
pool of long-lived child processes (``python -m activities.analysis_eval``), and a job that overruns
its time limit has its process killed and replaced; the measurement is then an Error. A job is one
JSON line in and one out (never pickle: the parent trusts nothing the child sends but four fields).

``interpret`` is pure and returns a plain tuple; it never raises for a bad answer.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import json
import os
import re
import sys
from asyncio.subprocess import PIPE
from typing import Any

from workflows.analysis_expr import evaluate
from workflows.analysis_math import format_value
from workflows.errors import ConditionError, MeasurementError

__all__ = ["EvalPool", "Outcome", "clean_text", "interpret", "value_text"]

# (value as text, success, failure, error): error is a short line, or "" when both conditions ran.
Outcome = tuple[str, bool | None, bool | None, str]

_MEMORY_ENV = "ROLLOUT_ANALYSIS_EVAL_CHILD_MEMORY"

# C0 and C1 control characters (tab and newline included: status lines are one line) and DEL.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean_text(text: str, limit: int = 200) -> str:
    """Provider text made safe for terminals and status: no control characters, at most ``limit`` long."""
    text = _CONTROL.sub(" ", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def value_text(value: Any) -> str:
    """The value as one short line, as Argo prints it (``10``, ``+Inf``, ``NaN``, ``[10,11]``, compact
    JSON); a plain-text body as it is."""
    if isinstance(value, str):
        return clean_text(value)
    try:
        text = format_value(value)
    except ValueError:  # an int past Python's digit limit
        text = "(a value too large to show)"
    return clean_text(text)


def _json_path(expr: str) -> Any:
    from jsonpath_ng.ext import parse

    e = expr.strip()
    return parse(e[1:-1] if e.startswith("{") and e.endswith("}") else e)


def prometheus_value(body: bytes) -> float | list[float]:
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


class _Bad(MeasurementError):
    """An answer that cannot be measured (the message is ours, never the body)."""


def interpret(kind: str, body: bytes, json_path: str, success: str, failure: str) -> Outcome:
    """The measured value of ``body`` (``kind`` ``web`` or ``prometheus``) and both conditions on it."""
    try:
        value = prometheus_value(body) if kind == "prometheus" else _web_value(body, json_path)
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


class _Child:
    """One ``python -m activities.analysis_eval`` process: a JSON line in, a JSON line out."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, memory: int) -> _Child:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        env[_MEMORY_ENV] = str(memory)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", __name__, stdin=PIPE, stdout=PIPE, env=env, start_new_session=True
        )
        child = cls(proc)
        assert proc.stdout is not None
        try:
            ready = await asyncio.wait_for(proc.stdout.readline(), 30)
        except TimeoutError:
            ready = b""
        if ready != b"ready\n":
            await child.kill()
            raise RuntimeError("the evaluation process did not start")
        return child

    async def call(self, job: list[Any], timeout: float) -> Outcome:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(job).encode() + b"\n")
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError("the evaluation process ended")
        shown, ok, bad, error = json.loads(line)
        return str(shown), ok, bad, str(error)

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()  # by its PID: a process this pool started
        await self.proc.wait()


class EvalPool:
    """Child processes for ``interpret``; a job over ``timeout`` seconds has its process killed.

    At most ``processes`` jobs run at once, each in its own child; others wait, and the waiting is not
    part of a job's time limit, so one tenant's slow jobs delay others' evaluation but never fail it.
    The children are plain ``python -m`` processes (multiprocessing's would import the worker's main
    module into each), with an address-space limit of ``memory`` bytes.
    """

    def __init__(self, processes: int = 2, memory: int = 128 * 1024 * 1024) -> None:
        self.processes = processes
        self.memory = memory
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots = asyncio.Semaphore(processes)
        self._idle: list[_Child] = []

    def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # children and the semaphore belong to the loop that made them
            self.close()
            self._loop, self._slots = loop, asyncio.Semaphore(self.processes)

    def warm(self) -> None:
        """Start a child now (the worker's start), not at the first measurement."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        task = asyncio.ensure_future(self.run("web", b"1", "", "", "", timeout=30))
        _background.add(task)
        task.add_done_callback(_background.discard)

    async def run(
        self, kind: str, body: bytes, json_path: str, success: str, failure: str, *, timeout: float
    ) -> Outcome:
        """``interpret`` in a child; over ``timeout`` (or the child dying) is an Error outcome."""
        self._bind()
        job = [kind, base64.b64encode(body).decode(), json_path, success, failure]
        async with self._slots:
            try:
                child = self._idle.pop() if self._idle else await _Child.start(self.memory)
            except (OSError, RuntimeError, TimeoutError) as exc:
                return "", None, None, f"evaluation could not start ({type(exc).__name__})"
            try:
                result = await child.call(job, timeout)
            except TimeoutError:
                await child.kill()
                return (
                    "",
                    None,
                    None,
                    f"jsonPath or condition took longer than {timeout:g}s (evaluation stopped)",
                )
            except BaseException as exc:
                await asyncio.shield(child.kill())
                if not isinstance(exc, Exception):
                    raise  # cancelled: the child is gone with the job
                return "", None, None, f"evaluation failed ({type(exc).__name__})"
            self._idle.append(child)
            return result

    def close(self) -> None:
        """Kill the idle children (also at interpreter exit; busy ones end with their jobs)."""
        idle, self._idle = self._idle, []
        for child in idle:
            if child.proc.returncode is None:
                child.proc.kill()  # by its PID: a process this pool started


_background: set[asyncio.Future[Any]] = set()


_shared: EvalPool | None = None


def shared_pool(processes: int = 2, memory: int = 128 * 1024 * 1024) -> EvalPool:
    """The process's one pool (made on first use, stopped at exit)."""
    global _shared
    if _shared is None:
        _shared = EvalPool(processes, memory)
        atexit.register(_shared.close)
    return _shared


def _serve() -> None:
    """The child: answer one JSON line per job until stdin closes."""
    import resource

    memory = int(os.environ.get(_MEMORY_ENV) or 0)
    if memory:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the answers
    out.write(b"ready\n")
    out.flush()
    for line in sys.stdin.buffer:
        try:
            kind, body, json_path, success, failure = json.loads(line)
            result: Outcome = interpret(kind, base64.b64decode(body), json_path, success, failure)
        except BaseException as exc:  # noqa: BLE001 - MemoryError and the like: an Error, and carry on
            result = ("", None, None, f"evaluation failed ({type(exc).__name__})")
        out.write(json.dumps(result).encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    _serve()
