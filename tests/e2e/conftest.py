"""Browser-test fixtures: a real ``streamlit run app.py`` per test environment and a headless Chromium.

The server is started as ``bash -c 'echo $$ > pidfile; exec streamlit run ...'`` so it is stopped by its
own PID; training processes the app launched are stopped by the PIDs recorded in their run folders.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

import pytest
from browser_support import (  # noqa: F401 (re-exported: the browser tests import them from here)
    CHROMIUM,
    CHROMIUM_ARGS,
    ISOLATED_MARKER_JS,
    app_server,
    click_marker,
    click_patch_zoomed,
    free_port,
    map_frame,
    wait_for_result,
)
from ui_env import UiEnv, shared_ui_env

REPO = Path(__file__).resolve().parents[2]

ARTIFACTS = REPO / "test-artifacts"


def stop_training_processes(models: Path) -> None:
    """Stop training processes the app launched under ``models`` (by the PID each run recorded)."""
    for status in models.glob("*/status.json"):
        try:
            s = json.loads(status.read_text())
        except (OSError, ValueError):
            continue
        if s.get("status") in ("queued", "running") and s.get("pid"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(s["pid"]), signal.SIGTERM)


@pytest.fixture(scope="session")
def ui_env(tmp_path_factory, demo_root) -> UiEnv:
    return shared_ui_env(tmp_path_factory, demo_root)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def new_page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.failed_requests = failed  # type: ignore[attr-defined]
    yield page
    ctx.close()


def shot(page, name: str) -> Path:
    """Save a full-page screenshot to test-artifacts/ (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.wait_for_timeout(800)  # let charts and the map finish drawing
    page.screenshot(path=str(path), full_page=True)
    return path
