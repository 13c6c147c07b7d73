"""Driving the app in a real browser: a ``streamlit run`` on a free port, Debian's Chromium, and the map's
marker clicks. Shared by the browser tests (tests/e2e) and the README's screenshots (docs/screenshots.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def app_server(env: dict[str, str], workdir: Path, script: Path | None = None) -> Iterator[str]:
    """Run the app (or ``script``) on a free port with ``env`` added to the environment; yields its base URL."""
    port = free_port()
    pidfile = workdir / f"streamlit-{port}.pid"
    log = open(workdir / f"streamlit-{port}.log", "wb")
    cmd = (
        f"echo $$ > {pidfile}; exec {sys.executable} -m streamlit run {script or 'app.py'} --server.headless true "
        f"--server.address 127.0.0.1 --server.port {port}"
    )
    proc = subprocess.Popen(
        ["bash", "-c", cmd], cwd=REPO, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(
                    f"streamlit did not start: {(workdir / f'streamlit-{port}.log').read_text()[-2000:]}"
                )
            time.sleep(0.2)
        yield url
    finally:
        pid = int(pidfile.read_text()) if pidfile.exists() else proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(pid, signal.SIGKILL)
            proc.wait()
        log.close()


def map_frame(page, timeout_ms: int = 180_000):
    """The st_folium iframe's frame, once Leaflet has built the map. The wait is long because a fresh server's
    first Map render imports the geospatial stack, which takes over a minute when the tests run in parallel on
    a loaded machine; it is a wait, not a timing."""
    page.wait_for_selector("iframe[title*='st_folium'], iframe", timeout=timeout_ms)
    frame = page.locator("iframe").first.element_handle().content_frame()
    frame.wait_for_function(
        "() => window.map_div !== undefined && Object.keys(map_div._layers).length > 10", timeout=timeout_ms
    )
    return frame


#: JS: the marker with a patch (radius 5) farthest from any other marker, so a click cannot hit another
#: (each marker carries its sample id in ``options.sid``; its tooltip also shows the probability).
ISOLATED_MARKER_JS = """() => {
  const pts = [];
  map_div.eachLayer(l => { if (l.options && l.options.sid && l.getLatLng) {
      const p = map_div.latLngToContainerPoint(l.getLatLng());
      pts.push({sid: l.options.sid, x: p.x, y: p.y, patch: l.options.radius === 5}); } });
  const size = map_div.getSize();
  let best = null, bestD = -1;
  for (const a of pts) {
    if (!a.patch || a.x < 20 || a.y < 20 || a.x > size.x - 20 || a.y > size.y - 20) continue;
    let d = Infinity;
    for (const b of pts) { if (b !== a) d = Math.min(d, Math.hypot(a.x - b.x, a.y - b.y)); }
    if (d > bestD) { bestD = d; best = a; }
  }
  return best && {...best, clearance: bestD};
}"""


def isolated_marker(page, timeout_s: float = 60.0) -> tuple:
    """``(frame, marker)``: the map's frame and its most isolated patch marker (``ISOLATED_MARKER_JS``), waited
    for. Right after a page redraws itself (a job ended), the map may still be the old one or have no size yet:
    the frame is looked up again until its markers are drawn."""
    from playwright.sync_api import Error as PlaywrightError

    deadline = time.monotonic() + timeout_s
    while True:
        frame = map_frame(page)
        try:
            marker = frame.evaluate(ISOLATED_MARKER_JS)
        except PlaywrightError:  # the old frame went away with the redraw
            marker = None
        if marker or time.monotonic() > deadline:
            return frame, marker
        time.sleep(0.5)


def click_marker(page, frame, marker: dict) -> None:
    """Click the map canvas where the marker is drawn (canvas rendering: there is no DOM node per marker)."""
    page.locator("iframe").first.scroll_into_view_if_needed()
    box = page.locator("iframe").first.bounding_box()
    page.mouse.click(box["x"] + marker["x"], box["y"] + marker["y"])


def click_patch_zoomed(page, frame, sid: str, zoom: int) -> None:
    """Zoom the map onto the marker of ``sid`` (its footprint drawn large), then click the map's centre."""
    frame.evaluate(
        """([sid, zoom]) => { map_div.eachLayer(l => { if (l.options && l.options.sid === sid) {
                                            map_div.setView(l.getLatLng(), zoom, {animate: false}); } }); }""",
        [sid, zoom],
    )
    page.locator("iframe").first.scroll_into_view_if_needed()
    box = page.locator("iframe").first.bounding_box()
    size = frame.evaluate("() => { const s = map_div.getSize(); return {x: s.x, y: s.y}; }")
    page.mouse.click(box["x"] + size["x"] / 2, box["y"] + size["y"] / 2)


def wait_for_result(page, sid: str, timeout_ms: int = 60_000) -> None:
    """Wait until the Map page shows the (fresh, not stale) classification of ``sid``."""
    # textContent, not innerText: innerText forces a layout on every poll and slows the page it measures.
    page.wait_for_function(
        """(sid) => Array.from(document.querySelectorAll('[data-testid="stCaptionContainer"]'))
              .some(e => e.textContent.startsWith('classified ' + sid + ' in')
                         && !e.closest('[data-stale="true"]'))""",
        arg=sid,
        timeout=timeout_ms,
        polling=20,
    )


#: The Leaflet map object inside an st_folium frame, found by its shape (folium names it map_<hash>).
LEAFLET = "Object.values(window).find(v => v && typeof v.eachLayer === 'function' && v._layers)"


def click_period_detection(page, period: str, settle_ms: int = 500) -> None:
    """Zoom the Map's period layer onto its first detection of ``period`` (e.g. ``"2024"``) and click its centre
    with the mouse, as a user would."""
    frame = next(f for f in page.frames if f.evaluate("() => !!window.asgmPeriodLayer"))
    iframe = frame.frame_element()
    iframe.scroll_into_view_if_needed()  # a click outside the viewport reaches nothing
    xy = frame.evaluate(
        f"""(period) => {{ const m = {LEAFLET}; let c = null; m.eachLayer(l => {{
        if (!c && l.feature && l.feature.properties && l.feature.properties.period === period && l.getBounds) {{
            m.fitBounds(l.getBounds(), {{animate: false, maxZoom: 14}});
            const p = m.latLngToContainerPoint(l.getBounds().getCenter()); c = {{x: p.x, y: p.y}}; }} }});
        return c; }}""",
        period,
    )
    if xy is None:
        raise AssertionError(f"the period layer has no detection of {period}")
    page.wait_for_timeout(settle_ms)
    box = iframe.bounding_box()
    page.mouse.click(box["x"] + xy["x"], box["y"] + xy["y"])
