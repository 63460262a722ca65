"""The Temporal Web UI tells a paused rollout's story: checked in headless Debian chromium over CDP."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from cdp_driver import Chromium, by_text, open_page, visible
from temporalio.client import Client

from cli.dev_testing import REPO, DevRun

WORKFLOW_ID = "rollout-default-nginx"


def _markdown_line(markdown: str) -> str:
    """The first line of a markdown text as it reads once rendered (markers dropped, spaces collapsed)."""
    for line in markdown.splitlines():
        plain = re.sub(r"^\s*(#+|>|[-*+]\s)\s*", "", line)  # heading, quote or bullet marker
        plain = re.sub(r"\*\*|__|`", "", plain)  # bold and code markers
        plain = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", plain)  # [text](link) -> text
        if plain.strip():
            return " ".join(plain.split())
    return ""


def _squash(text: str) -> str:
    """Collapse whitespace; the UI's markdown renderer typesets "1/3" with a fraction slash."""
    return " ".join(text.replace("\u2044", "/").split())


def _cli(run: DevRun, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / ".venv/bin" / args[0]), *args[1:]],
        env=run.env(),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


async def _wait_paused_at_step_1(client: Client) -> dict[str, Any]:
    handle = client.get_workflow_handle(WORKFLOW_ID)
    deadline = time.monotonic() + 120
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            status = await handle.query("status")
        except Exception:  # not started yet / no worker answer yet
            status = {}
        if status.get("phase") == "Paused" and status.get("currentStepIndex") == 1:
            return status
        await asyncio.sleep(0.3)
    raise AssertionError(f"rollout never paused at step 1; last status {status}")


async def test_ui_shows_paused_rollout_and_offers_approve(
    ui_stack: DevRun, chromium_path: Path, tmp_path: Path
) -> None:
    apply = _cli(ui_stack, "kubectl", "apply", "-f", str(REPO / "examples/nginx.yaml"))
    assert apply.returncode == 0, apply.stderr
    ready = _cli(ui_stack, "kubectl", "rollout", "status", "deployment/nginx", "--timeout=120s")
    assert ready.returncode == 0, ready.stderr
    start = _cli(
        ui_stack, "rollout", "start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,50%,100%"
    )
    assert start.returncode == 0, start.stderr + start.stdout

    client = await Client.connect(f"127.0.0.1:{ui_stack.temporal_port}")
    await _wait_paused_at_step_1(client)
    handle = client.get_workflow_handle(WORKFLOW_ID)
    desc = await handle.describe()
    summary = await desc.static_summary() or ""
    metadata = await handle.query("__temporal_workflow_metadata")
    details = getattr(metadata, "current_details", "") or ""
    assert "nginx:1.27" in summary, summary
    assert details, "the workflow sets no current details"
    summary_line, details_line = _markdown_line(summary), _markdown_line(details)

    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    browser = Chromium(profile)
    try:
        ws, page = await open_page(browser)
        try:
            base = f"http://127.0.0.1:{ui_stack.ui_port}/namespaces/default/workflows/{WORKFLOW_ID}/{desc.run_id}"
            await page.navigate(f"{base}/user-metadata")
            await page.wait_text(WORKFLOW_ID, "Summary", "Current Details", "More Actions")
            deadline = time.monotonic() + 45
            text = ""
            while time.monotonic() < deadline:  # the markdown frames load after the page itself
                text = _squash(await page.text())
                if summary_line in text and details_line in text:
                    break
                await asyncio.sleep(0.25)
            shot = tmp_path / "temporal-ui-paused-rollout.png"
            await page.screenshot(shot)
            assert summary_line in text, f"summary {summary_line!r} not on the page:\n{text[:2000]}"
            assert details_line in text, f"current details {details_line!r} not on the page:\n{text[:2000]}"
            assert shot.stat().st_size > 10_000  # a real rendering, not a blank page

            await page.click(by_text("button", "More Actions"), "the More Actions button")
            await page.click(
                by_text("button, [role=menuitem], li", "Send a Signal"), "the Send a Signal item"
            )
            await page.click(visible("[data-testid=signal-select-button]"), "the signal name dropdown")
            options: list[str] = []
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and "approve" not in options:
                options = (
                    await page.evaluate(
                        "[...document.querySelectorAll('[role=option]')]"
                        ".filter(e => e.getBoundingClientRect().height > 0).map(e => e.innerText.trim())"
                    )
                    or []
                )
                await asyncio.sleep(0.25)
            await page.screenshot(tmp_path / "temporal-ui-send-a-signal.png")
            assert "approve" in options, f"Send a Signal offers {options}"
            assert "undo" in options, f"Send a Signal offers {options}"
        finally:
            await ws.close()
    finally:
        browser.stop()
