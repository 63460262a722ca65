"""A minimal Chrome DevTools Protocol driver for headless Debian chromium (no Selenium, no Playwright).

Why CDP and not `--screenshot --virtual-time-budget`: the Temporal UI's detail page long-polls, so
virtual time never advances and chromium hangs (temporal-sdk.md section 3).  Over CDP we navigate,
poll the rendered text with a deadline, click with real mouse events (a JS `.click()` does not open
the UI's Svelte menus) and capture a PNG.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",  # chromium picks a free port and writes it to DevToolsActivePort
    "--window-size=1400,1000",
]


class Chromium:
    """One headless chromium process with its own fresh profile."""

    def __init__(self, profile_dir: Path) -> None:
        self.profile_dir = profile_dir
        self.log = (profile_dir.parent / "chromium.log").open("wb")
        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile_dir}", "about:blank"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.port = self._wait_port(timeout=60)

    def _wait_port(self, timeout: float) -> int:
        marker = self.profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}; see {self.log.name}")
            if marker.exists():
                first = marker.read_text().splitlines()[:1]
                if first and first[0].isdigit():
                    return int(first[0])
            time.sleep(0.05)
        raise TimeoutError("chromium did not open its DevTools port")

    def page_ws_url(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=10) as resp:
            targets = json.load(resp)
        page = next(t for t in targets if t.get("type") == "page")
        return str(page["webSocketDebuggerUrl"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Page:
    """A CDP session on one page target."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self.ids)
        await self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:  # events are interleaved with replies; skip them
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), timeout=30))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg.get("result", {}))

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    async def text(self) -> str:
        """The page's text plus that of its same-origin iframes (the UI renders markdown in them)."""
        return str(
            await self.evaluate(
                "(() => { let t = document.body ? document.body.innerText : '';"
                " for (const f of document.querySelectorAll('iframe')) {"
                "   try { t += '\\n' + f.contentDocument.body.innerText; } catch (e) {} }"
                " return t; })()"
            )
            or ""
        )

    async def navigate(self, url: str) -> None:
        await self.send("Page.navigate", url=url)

    async def wait_text(self, *needles: str, timeout: float = 45) -> str:
        """Poll the rendered text until every needle is present; return that text."""
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = await self.text()
            if all(n in text for n in needles):
                return text
            await asyncio.sleep(0.25)
        missing = [n for n in needles if n not in text]
        raise AssertionError(f"page never showed {missing!r}; it showed:\n{text[:3000]}")

    async def center_of(self, js_element: str) -> tuple[float, float] | None:
        """Centre of the element a JS expression yields (None if absent or not laid out)."""
        rect = await self.evaluate(
            f"(() => {{ const e = {js_element}; if (!e) return null; e.scrollIntoView({{block: 'center'}});"
            " const r = e.getBoundingClientRect(); if (!r.width || !r.height) return null;"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        return (float(rect[0]), float(rect[1])) if rect else None

    async def click_at(self, x: float, y: float) -> None:
        await self.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        for kind in ("mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    async def click(self, js_element: str, what: str, timeout: float = 30) -> None:
        """Wait for the element to be laid out, then click its centre with real mouse events."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            center = await self.center_of(js_element)
            if center:
                await self.click_at(*center)
                return
            await asyncio.sleep(0.25)
        raise AssertionError(f"{what} never appeared on the page")

    async def screenshot(self, path: Path) -> None:
        data = await self.send("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(data["data"]))


def visible(selector: str) -> str:
    """JS expression: the first element matching `selector` that is laid out (has a size)."""
    return (
        f"[...document.querySelectorAll({json.dumps(selector)})]"
        ".find(e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; })"
    )


def by_text(selector: str, text: str) -> str:
    """JS expression: the last element matching `selector` whose visible text is exactly `text`."""
    return (
        f"[...document.querySelectorAll({json.dumps(selector)})]"
        f".filter(e => e.innerText && e.innerText.trim() === {json.dumps(text)}).pop()"
    )


async def open_page(chromium: Chromium) -> tuple[ClientConnection, Page]:
    ws = await connect(chromium.page_ws_url(), max_size=64 * 1024 * 1024)
    page = Page(ws)
    await page.send("Page.enable")
    await page.send("Runtime.enable")
    return ws, page
