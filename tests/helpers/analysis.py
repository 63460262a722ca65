"""Canary analysis test helpers: a local web metric endpoint and AnalysisTemplate files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

__all__ = ["MetricEndpoint", "web_template"]


class MetricEndpoint:
    """``GET /metric`` answers ``{"rate": <value>}``; tests change ``value`` and read ``hits``."""

    def __init__(self) -> None:
        self.value: Any = 0.0
        self.status = 200
        self.hits = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        body = json.dumps({"rate": self.value})
        return web.Response(status=self.status, text=body, content_type="application/json")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metric", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/metric"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def web_template(
    path: Path,
    url: str,
    *,
    name: str = "error-rate",
    interval: str | None = "1s",
    count: int | None = None,
    failure_limit: int = 1,
    success: str = "result < 0.05",
    failure: str | None = None,
    consecutive_error_limit: int | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """Write an AnalysisTemplate with one web metric (jsonPath ``$.rate``) and return its path."""
    metric: dict[str, Any] = {
        "name": name,
        **({"interval": interval} if interval else {}),
        "failureLimit": failure_limit,
        "successCondition": success,
        "provider": {"web": {"url": url, "jsonPath": "{$.rate}", "timeoutSeconds": 2}},
    }
    if count is not None:
        metric["count"] = count
    if failure:
        metric["failureCondition"] = failure
    if consecutive_error_limit is not None:
        metric["consecutiveErrorLimit"] = consecutive_error_limit
    metric.update(extra or {})
    doc = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": name},
        "spec": {"metrics": [metric]},
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)
