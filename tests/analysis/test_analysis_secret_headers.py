"""Web metric header values from a Secret (Argo's ``args[].valueFrom.secretKeyRef``; security review F8).

The endpoint answers only with the right bearer token; the token lives in a Secret of the rollout's
namespace. The worker reads it when it measures: the step analysis passes, and the workflow's history
(inputs, results, heartbeats, summaries) never holds the token.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from workflows.model import MetricPhase, Phase, workflow_id_for

TOKEN = "s3cr3t-metrics-token-8f2a"


class _AuthEndpoint:
    """``GET /metric``: 200 ``{"rate": 0.01}`` with ``Authorization: Bearer TOKEN``, else 401."""

    def __init__(self) -> None:
        self.authorized = self.refused = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.refused += 1
            return web.Response(status=401, text="no")
        self.authorized += 1
        return web.json_response({"rate": 0.01})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metric", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/metric"  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def auth_endpoint() -> AsyncIterator[_AuthEndpoint]:
    ep = _AuthEndpoint()
    await ep.start()
    try:
        yield ep
    finally:
        await ep.stop()


def _template(path: Path, url: str) -> str:
    doc = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "smoke"},
        "spec": {
            "args": [{"name": "token", "valueFrom": {"secretKeyRef": {"name": "metrics", "key": "token"}}}],
            "metrics": [
                {
                    "name": "smoke",
                    "interval": "1s",
                    "count": 2,
                    "failureLimit": 0,
                    "successCondition": "result < 0.05",
                    "provider": {
                        "web": {
                            "url": url,
                            "jsonPath": "{$.rate}",
                            "timeoutSeconds": 2,
                            "headers": [{"key": "Authorization", "value": "Bearer {{args.token}}"}],
                        }
                    },
                }
            ],
        },
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


async def test_header_from_a_secret_never_reaches_history(
    kit: Any, rollout_worker: None, auth_endpoint: _AuthEndpoint, tmp_path: Path
) -> None:
    kit.kube.request(
        "POST",
        f"/api/v1/namespaces/{kit.namespace}/secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "metrics"},
            "data": {"token": base64.b64encode(TOKEN.encode()).decode()},
        },
    )
    await kit.create(kit.seed())
    rc, _, err = await kit.cli(
        "start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1+smoke,100%",
        "--pause-duration", "0", "--step-analysis", _template(tmp_path / "smoke.yaml", auth_endpoint.url),
    )  # fmt: skip
    assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.COMPLETED, timeout=90)
    assert st.analysis is not None
    run = {r.name: r for r in st.analysis.runs}["step1-smoke"]
    assert run.phase == MetricPhase.SUCCESSFUL and run.metrics[0].counts.successful == 2
    assert auth_endpoint.authorized >= 2 and auth_endpoint.refused == 0

    wid = workflow_id_for(kit.namespace, "nginx")
    history = await kit.ctx.client.get_workflow_handle(wid).fetch_history()
    text = _decoded(history.to_json_dict())
    # What the history holds: the header with the arg left in it, and the Secret's name and key.
    assert "Bearer {{args.token}}" in text
    assert '"secrets":{"token":{"name":"metrics","key":"token"}}' in text.replace(" ", "")
    assert TOKEN not in text and base64.b64encode(TOKEN.encode()).decode() not in text


def _decoded(obj: Any) -> str:
    """Every string of the history, and every payload (base64 JSON) decoded, in one text."""
    out: list[str] = []

    def walk(o: Any) -> None:
        if isinstance(o, dict):
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
        elif isinstance(o, str):
            out.append(o)
            try:
                out.append(base64.b64decode(o, validate=True).decode("utf-8"))
            except ValueError:
                pass

    walk(obj)
    return "\n".join(out)
