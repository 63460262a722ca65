"""A rollout paused at step 1, as people see it: the Temporal Web UI and the terminal live view.

- Web UI: headless Debian chromium driven over the DevTools protocol (cdp_driver.py) loads the
  workflow page; the summary and current details must be readable and `approve` offered under
  "Send a Signal". Screenshots go to the test's tmp_path.
- Terminal: `rollout status nginx -w` with stdout piped (not a TTY) prints plain, uncoloured frames
  of the header and the revision tree.
"""

from __future__ import annotations

import asyncio
import os
import re
import selectors
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from devstack import Proc
from tests.helpers.cdp_driver import Chromium, by_text, open_page, visible
from tests.helpers.devstack import REPO, DevRun, free_ports, stop_leftovers
from tests.helpers.ui_stack import CHROMIUM, WORKFLOW_ID, WORKFLOW_PATH, PausedRollout, wait_paused_at_step_1


@pytest.fixture
def chromium_path() -> Path:
    """Debian's chromium must be installed (`.ci/run` does `apt-get install -y chromium`)."""
    assert CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK), (
        f"{CHROMIUM} is missing: install it with `apt-get install -y chromium` (what .ci/run does)"
    )
    return CHROMIUM


@pytest.fixture(scope="module")
def paused_rollout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PausedRollout]:
    t, u, k = free_ports(3)
    stack = DevRun(state_dir=tmp_path_factory.mktemp("ui") / "stack", temporal_port=t, ui_port=u, kube_port=k)
    seen: dict[str, Proc] = {}
    try:
        up = stack.up()
        seen.update(stack.procs())
        assert up.returncode == 0, up.stderr + up.stdout
        rollout = PausedRollout(stack=stack, status={})
        apply = rollout.cli("kubectl", "apply", "-f", str(REPO / "examples/nginx.yaml"))
        assert apply.returncode == 0, apply.stderr
        ready = rollout.cli("kubectl", "rollout", "status", "deployment/nginx", "--timeout=120s")
        assert ready.returncode == 0, ready.stderr
        start = rollout.cli(
            "rollout", "start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,50%,100%"
        )
        assert start.returncode == 0, start.stderr + start.stdout
        rollout.status = wait_paused_at_step_1(rollout)
        yield rollout
    finally:
        seen.update(stack.procs())
        stack.run("down", timeout=60)
        stop_leftovers(seen)


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


async def test_ui_shows_paused_rollout_and_offers_approve(
    paused_rollout: PausedRollout, chromium_path: Path, tmp_path: Path
) -> None:
    ui_port = paused_rollout.stack.ui_port
    client = await Client.connect(f"127.0.0.1:{paused_rollout.stack.temporal_port}")
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
            base = f"http://127.0.0.1:{ui_port}/namespaces/default/workflows/{WORKFLOW_PATH}/{desc.run_id}"
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


def _first_frame(proc: subprocess.Popen[bytes], pods: int, timeout: float = 60) -> str:
    """Read the watch output until one whole frame (header + tree with `pods` pod rows) is in."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = data.decode("utf-8", errors="replace")
        frame = text[text.find("Name:") :] if "Name:" in text else ""
        rows = frame.splitlines()
        if sum(1 for r in rows if "  Pod  " in r) >= pods and frame.endswith("\n"):
            return frame
        if sel.select(timeout=0.5):
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            data += chunk
    raise AssertionError(
        f"no complete frame from `rollout status -w`:\n{data.decode(errors='replace')[-3000:]}"
    )


def test_live_view_of_paused_rollout_is_plain_when_piped(paused_rollout: PausedRollout) -> None:
    status = paused_rollout.status
    canary, stable = status["canaryRevision"], status["stableRevision"]
    proc = subprocess.Popen(
        [str(REPO / ".venv/bin/rollout"), "status", "nginx", "-w"],
        env=paused_rollout.stack.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        frame = _first_frame(proc, pods=10)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "\x1b[" not in frame, "non-TTY output must carry no ANSI escapes"
    lines = frame.splitlines()
    for expected in (
        "Name:            nginx",
        "Namespace:       default",
        "Status:          ॥ Paused",
        "Message:         Rollout is in step(1/3), and you need manually confirm to enter the next step",
        "  Step:          1/3 (StepPaused)",
        "Images:          nginx:1.26 (stable)",
        "                 nginx:1.27 (canary)",
        "  Desired:       10",
        "  Current:       10",
        "  Updated:       1",
        "  Ready:         10",
        f"Temporal UI:     http://127.0.0.1:{paused_rollout.stack.ui_port}/namespaces/default/workflows/{WORKFLOW_PATH}",
    ):
        assert expected in lines, f"missing line {expected!r} in:\n{frame}"

    tree = lines[next(i for i, line in enumerate(lines) if line.startswith("NAME")) + 1 :]
    assert tree[0].split() == ["⟳", "nginx", "Rollout", "॥", "Paused"]
    canary_rs = next(i for i, line in enumerate(tree) if f"⧉ nginx-{canary} " in line)
    stable_rs = next(i for i, line in enumerate(tree) if f"⧉ nginx-{stable} " in line)
    assert canary_rs < stable_rs, "the newest revision (canary) comes first"
    assert tree[canary_rs].split()[-1] == "canary,replicas:1,ready:1"
    assert tree[stable_rs].split()[-1] == "stable,replicas:9,ready:9"
    canary_pods = [line for line in tree if f"□ nginx-{canary}-" in line]
    stable_pods = [line for line in tree if f"□ nginx-{stable}-" in line]
    assert len(canary_pods) == 1 and len(stable_pods) == 9
    for pod in canary_pods + stable_pods:
        parts = pod.split()
        assert parts[-5:-2] == ["Pod", "✔", "Running"] and parts[-1] == "ready:1/1", pod
