"""Take the README's screenshots in a real browser: ``python docs/screenshots.py`` (a checkout set up as the
README says; Debian's Chromium at /usr/bin/chromium; works offline from the data mirror or the download
cache).

It prepares a private work folder (``--work``, default a temporary one) with the real demo pack and the
shipped default model, plus a SYNTHETIC 12-band store with OSM layers and a SYNTHETIC mosaic (so the OSM
toggles and a region scan can be shown without a network; the app labels them synthetic), starts
``streamlit run app.py`` on it and saves one PNG per view under ``docs/img/`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))  # the browser helpers the browser tests use
from browser_support import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    ISOLATED_MARKER_JS,
    app_server,
    click_marker,
    map_frame,
    wait_for_result,
)

VIEWPORT = {"width": 1400, "height": 900}
SCAN_BBOX = "-61.815,6.385,-61.785,6.415"  # inside the synthetic mosaic's default footprint


def asgm(env: dict[str, str], *args: str) -> dict:
    """Run ``python -m asgm ARGS --json`` in ``env``; its JSON report."""
    proc = subprocess.run(
        [sys.executable, "-m", "asgm", *args, "--json"], cwd=REPO, env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"asgm {' '.join(args)} failed: {proc.stderr.strip()[-800:]}")
    return json.loads(proc.stdout or "{}")


def prepare(work: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The work folder's environment and the run ids it holds (default, synthetic OSM, synthetic bands)."""
    env = {
        **os.environ,
        "ASGM_DATA_DIR": str(work / "data"),
        "ASGM_MODELS_DIR": str(work / "models"),
        "ASGM_APP_AUTOPREPARE": "0",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    models = work / "models"
    models.mkdir(parents=True, exist_ok=True)
    default = (REPO / "models" / "DEFAULT").read_text().strip()
    if not (models / default).exists():
        shutil.copytree(REPO / "models" / default, models / default)
        shutil.copy(REPO / "models" / "DEFAULT", models / "DEFAULT")
    if not (work / "data" / "stores" / "demo").exists():
        asgm(env, "demo", "build")
    runs: dict[str, str] = {"default": default}
    marker = work / "runs.json"
    if marker.exists():
        return env, {**runs, **json.loads(marker.read_text())}
    asgm(env, "synthetic", "build", "--positives", "24", "--negatives", "24", "--overwrite")
    asgm(env, "osm", "rasterize", "--store", "synthetic")
    runs["osm"] = asgm(
        env, "train", "--store", "synthetic", "--osm", "all", "--epochs", "6", "--name", "synthetic, all OSM layers"
    )["run_id"]
    runs["bands"] = asgm(env, "train", "--store", "synthetic", "--epochs", "6", "--name", "synthetic, bands only")[
        "run_id"
    ]
    mosaic = work / "mosaic.tif"
    asgm(env, "synthetic", "mosaic", "--out", str(mosaic), "--year", "2022")
    asgm(
        env,
        "scan",
        "run",
        f"--aoi={SCAN_BBOX}",
        "--year",
        "2022",
        "--run",
        runs["bands"],
        "--source",
        str(mosaic),
        "--out",
        str(work / "data" / "scans" / "synthetic-2022"),
        "--scheduler",
        "none",
    )
    marker.write_text(json.dumps({k: v for k, v in runs.items() if k != "default"}))
    return env, runs


def shoot(url: str, runs: dict[str, str], out: Path) -> list[Path]:
    """Visit each view and save its screenshot; returns the files written."""
    from playwright.sync_api import sync_playwright

    written: list[Path] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.set_default_timeout(300_000)

        page.goto(f"{url}/Map?run={runs['default']}")
        frame = map_frame(page, timeout_ms=300_000)  # the first visit loads the model and scores every patch
        marker = frame.evaluate(ISOLATED_MARKER_JS)
        click_marker(page, frame, marker)
        wait_for_result(page, marker["sid"], timeout_ms=120_000)
        page.wait_for_timeout(1500)  # the patch overlay and the basemap finish drawing
        written.append(_save(page, out / "map.png"))

        page.goto(f"{url}/Patch_viewer?store=synthetic&sample=syn-pos-0003&run={runs['osm']}")
        page.get_by_text("Probability of mining").first.wait_for()
        page.wait_for_timeout(1500)
        written.append(_save(page, out / "patch_viewer.png"))

        page.goto(f"{url}/Scan")
        page.get_by_role("tab", name="Results").click()
        page.get_by_text("SYNTHETIC imagery (not a real place)").first.wait_for()
        page.wait_for_timeout(2500)
        page.locator("iframe").first.scroll_into_view_if_needed()  # the detections map (the page scrolls inside)
        page.wait_for_timeout(1500)
        written.append(_save(page, out / "scan.png"))

        page.goto(f"{url}/Places")
        page.wait_for_selector("iframe", timeout=300_000)  # the choropleth of the territories
        page.get_by_text("Download").first.wait_for()
        page.wait_for_timeout(3000)
        page.locator("iframe").first.scroll_into_view_if_needed()  # the choropleth and the chart beside it
        page.wait_for_timeout(1500)
        written.append(_save(page, out / "places.png"))
        browser.close()
    return written


def _save(page, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "img", help="folder of the PNGs (default docs/img)")
    ap.add_argument(
        "--work", type=Path, default=None, help="work folder to prepare and keep (default: a temporary one)"
    )
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    work = args.work or Path(tempfile.mkdtemp(prefix="asgm-screenshots-"))
    env, runs = prepare(work)
    with app_server({k: env[k] for k in ("ASGM_DATA_DIR", "ASGM_MODELS_DIR", "ASGM_APP_AUTOPREPARE")}, work) as url:
        for path in shoot(url, runs, args.out):
            print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)


if __name__ == "__main__":
    main()
