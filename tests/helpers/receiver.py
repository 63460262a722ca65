"""A local notification receiver, a URL nobody listens on, and the session worker's named targets
(``--notify NAME``)."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import yaml
from aiohttp import web

__all__ = ["Receiver", "dead_url", "name_targets", "receiving"]


class Receiver:
    """Records every JSON body POSTed to it; ``status`` is what it answers."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = 200
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        return web.Response(status=self.status)

    def events(self, name: str | None = None) -> list[tuple[str, int]]:
        """``(event, step)`` of every body received (of rollout ``name`` only, if given)."""
        return [(b["event"], b["step"]) for b in self.bodies if name is None or b["name"] == name]

    def first(self, event: str) -> dict[str, Any] | None:
        """The first body of ``event``, or None."""
        return next((b for b in self.bodies if b["event"] == event), None)


@asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    """A receiver on 127.0.0.1 (a free port) at ``/hook`` for the ``async with`` block."""
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    rec.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield rec
    finally:
        await runner.cleanup()


def dead_url() -> str:
    """A URL on a free port of 127.0.0.1 that nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/hook"


def name_targets(**urls: str) -> None:
    """Name the session worker's notification targets (tests/conftest.py points its
    ``ROLLOUT_NOTIFY_TARGETS_FILE`` here; the worker reads the file at each delivery)."""
    with open(os.environ["ROLLOUT_NOTIFY_TARGETS_FILE"], "w") as f:
        yaml.safe_dump(urls, f)
