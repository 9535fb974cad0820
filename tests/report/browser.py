"""Open a report in headless Chromium and record what it did: requests, console errors,
uncaught exceptions, the charts drawn, a screenshot.

Chromium is started here with the flags the issue names and a fresh profile, and
Playwright attaches to it over the DevTools protocol, so what runs is Debian's browser as
an analyst would start it, not a browser Playwright downloads.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class Visit:
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    charts: list[dict[str, Any]] = field(default_factory=list)
    seconds_to_draw: float = 0.0
    title: str = ""
    state: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium with a fresh profile, as a Playwright Browser."""
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    if exe is None:
        raise RuntimeError("Chromium not found (apt-get install chromium)")
    profile = Path(tempfile.mkdtemp(prefix="narratives-chromium-"))
    proc = subprocess.Popen(
        [exe, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with sync_playwright() as pw:
            browser = pw.chromium.connect_over_cdp(f"http://127.0.0.1:{port}")
            try:
                yield browser
            finally:
                browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


def visit(
    browser: Any, report: Path, screenshot: Path | None = None, timeout_s: float = 60
) -> Visit:
    """Open ``report`` in a new page, wait until every chart has drawn, and record."""
    out = Visit()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.on("request", lambda r: out.requests.append(r.url))
    page.on("console", lambda m: m.type == "error" and out.console_errors.append(m.text))
    page.on("pageerror", lambda e: out.page_errors.append(str(e)))
    start = time.monotonic()
    page.goto(report.resolve().as_uri(), wait_until="load")
    page.wait_for_function(
        "document.body.dataset.drawn !== undefined", timeout=timeout_s * 1000, polling=100
    )
    out.seconds_to_draw = time.monotonic() - start
    out.charts = page.evaluate(
        """() => Array.from(document.querySelectorAll('div.chart')).map(d => {
            const svg = d.querySelector('svg.main-svg');
            const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
            return {cls: d.className, width: box.width, height: box.height,
                    marks: d.querySelectorAll(
                        'path.point, g.trace path, path.js-line, g.hm image').length};
        })"""
    )
    out.title = page.title()
    out.state = page.evaluate(
        """() => ({charts: document.body.dataset.charts, drawn: document.body.dataset.drawn,
                   failed: document.body.dataset.failed,
                   pwned: window.__pwned === undefined ? null : String(window.__pwned),
                   text: document.body.textContent,
                   scripts: document.scripts.length,
                   chart_titles: Array.from(document.querySelectorAll('.gtitle'))
                       .map(e => e.textContent),
                   images: document.images.length,
                   links: Array.from(document.links).map(a => a.getAttribute('href'))})"""
    )
    if screenshot is not None:
        page.screenshot(path=str(screenshot), full_page=False)
    context.close()
    return out
