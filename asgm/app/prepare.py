"""First start: the background job (``asgm.jobs.runner``, kind 'prepare') that builds the demo patch store when
missing, launches the small default training run only when no trained run exists (a committed
``models/DEFAULT`` counts), and fetches OSM for the demo store when Overpass answers.

``python -m asgm.app.prepare`` is the job's command.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import streamlit as st

from asgm import atomic
from asgm.app.loaders import list_runs_safe
from asgm.config import ExperimentConfig, data_dir
from asgm.data.store import PatchStore, list_stores
from asgm.errors import AsgmError, one_line

DEFAULT_EPOCHS = 8


def default_config() -> ExperimentConfig:
    """The small first-start model: demo pack, 48 px, RGB, curated negatives, a few epochs."""
    return ExperimentConfig(name="default (demo, 48 px, RGB)", store="demo", epochs=DEFAULT_EPOCHS)


PREPARE_KEY = "prepare the demo"
#: OSM snapshot of the demo store: the chips are 2019 composites.
DEMO_OSM_DATE = "2019-12-31"
#: Seconds the first-start check of Overpass may take (offline, nothing hangs on it).
OVERPASS_PROBE_S = 10.0


def _prepare_job() -> Any:
    from asgm.jobs import runner as jobs

    found = [j for j in jobs.list_jobs() if j.kind == "prepare"]
    return found[0] if found else None


def prepare_state() -> dict[str, Any]:
    """State of the background "prepare the demo" job (``asgm.jobs.runner``): {state: idle|running|done|failed,
    message, job_id}."""
    job = _prepare_job()
    if job is None:
        return {"state": "idle"}
    if job.active:
        return {"state": "running", "message": job.progress.get("message") or "starting", "job_id": job.job_id}
    if job.status == "completed":
        return {"state": "done", "message": job.progress.get("message") or "", "job_id": job.job_id}
    return {"state": "failed", "message": (job.error or job.status) + ". Click 'Prepare the demo' to try again.",
            "job_id": job.job_id}


def start_prepare() -> dict[str, Any]:
    """Start the background job (no-op while one runs). Never blocks the Streamlit script thread."""
    from asgm.jobs import runner as jobs

    try:
        jobs.launch(["-m", "asgm.app.prepare"], kind="prepare", title="prepare the demo", key=PREPARE_KEY)
    except jobs.JobError:
        pass  # one is running already (maybe started by another session)
    return prepare_state()


def _demo_osm_file() -> Path:
    return data_dir() / "app" / "demo_osm.json"


def demo_osm_note() -> dict[str, Any]:
    """What the first start did about OSM for the demo store: {ok, message} ({} before it tried)."""
    try:
        return json.loads(_demo_osm_file().read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


#: The RGB + OSM model trained after the demo store's OSM masks, so the OSM toggles work on real patches.
OSM_MODEL_NAME = "default RGB + OSM (demo, OSM 2019-12-31)"
#: Fewer demo patches than this (a cut-down store) are too few to train on: OSM is fetched, nothing trained.
MIN_PATCHES_TO_TRAIN = 100


def demo_osm_steps(n_patches: int) -> list[list[str]]:
    """The first-start OSM job's commands: fetch the demo store's OSM snapshot, rasterize it, and (for a
    store of at least ``MIN_PATCHES_TO_TRAIN`` patches) train the small RGB + OSM default model on it."""
    from asgm.jobs import runner as jobs

    steps = [jobs.asgm_command("osm", "fetch", "--store", "demo", "--date", DEMO_OSM_DATE, "--retries", "2",
                               "--backoff", "5", "--timeout", "120"),
             jobs.asgm_command("osm", "rasterize", "--store", "demo")]
    if n_patches >= MIN_PATCHES_TO_TRAIN:
        steps.append(jobs.asgm_command("train", "--store", "demo", "--osm", "all", "--epochs", str(DEFAULT_EPOCHS),
                                       "--name", OSM_MODEL_NAME))
    return steps


def _start_demo_osm() -> str:
    """Launch the OSM fetch + rasterize job for the demo store when Overpass answers within
    ``OVERPASS_PROBE_S``; otherwise record that OSM needs the network. Returns what happened."""
    import requests

    from asgm.jobs import runner as jobs
    from asgm.osm.fetch import resolve_overpass_url

    url = resolve_overpass_url()
    try:
        requests.get(f"{url}/status", timeout=OVERPASS_PROBE_S).raise_for_status()
    except requests.RequestException as exc:
        msg = (f"OSM context needs the network: Overpass ({url}) did not answer ({type(exc).__name__}), so the demo "
               f"store has no OSM masks. Offline, the synthetic store shows the mechanism (`asgm synthetic build`).")
        atomic.write_json(_demo_osm_file(), {"ok": False, "message": msg, "updated": time.time()})
        return msg
    steps = demo_osm_steps(len(PatchStore.open("demo")))
    title = f"OSM for demo ({DEMO_OSM_DATE}) + rasterize" + (" + train RGB + OSM" if len(steps) > 2 else "")
    try:
        job = jobs.launch(steps[0], then=steps[1:], kind="osm", title=title)
    except jobs.JobError as exc:
        return str(exc)
    msg = f"fetching OSM ({DEMO_OSM_DATE}) for the demo store in job {job.job_id}" + (
        f", then training {OSM_MODEL_NAME!r}: pick it in the sidebar to toggle OSM layers on real patches"
        if len(steps) > 2 else "")
    atomic.write_json(_demo_osm_file(), {"ok": True, "message": msg, "job_id": job.job_id, "updated": time.time()})
    return msg


def needs_prepare() -> list[str]:
    """What is missing for click-to-classify: the demo store and/or any trained or training run."""
    missing = []
    if "demo" not in list_stores():
        missing.append("demo patch store")
    runs = list_runs_safe()
    if not any(r.status in ("completed", "running", "queued") for r in runs):
        missing.append("a trained model")
    return missing


def auto_prepare() -> None:
    """On first start (nothing trained), prepare in the background once per data folder; turned off with
    ``ASGM_APP_AUTOPREPARE=0`` (tests, or a deployment that ships its own runs)."""
    if os.environ.get("ASGM_APP_AUTOPREPARE", "1") == "0" or st.session_state.get("_auto_prepare_checked"):
        return
    st.session_state["_auto_prepare_checked"] = True
    if prepare_state().get("state") in ("running", "failed", "done"):
        return  # started before (maybe by another session); a failure waits for the user's click
    if should_auto_prepare():
        start_prepare()


def should_auto_prepare() -> bool:
    """Whether a first start has work for the preparation job: something missing for click-to-classify, or
    a demo store (e.g. built with `asgm demo build` before the first start) whose OSM was never attempted."""
    if needs_prepare():
        return True
    if demo_osm_note():
        return False  # tried before: fetched, or recorded that OSM needs the network
    try:
        return PatchStore.open("demo").osm_info() is None
    except AsgmError:
        return False  # a damaged demo store is reported on Home; nothing to fetch OSM for


def _prepare_main() -> int:
    """Body of the background job: build the demo store if missing, launch the default run unless a trained
    one exists (``models/DEFAULT`` or any completed run), and start OSM for the demo store when online."""
    from asgm.jobs.runner import report_progress
    from asgm.model import runs

    try:
        if "demo" not in list_stores():
            report_progress(message="building the demo patch store (real Sentinel-2 chips)")
            from asgm.sources import demo

            demo.build(progress=False)
        existing = [r for r in runs.list_runs() if r.status in ("completed", "running", "queued")]
        if existing:
            done = f"a model exists already ({runs.default_run_id() or existing[0].run_id})"
        else:
            report_progress(message="launching the default model's training")
            done = f"default model training launched as run {runs.launch(default_config())}"
        if PatchStore.open("demo").osm_info() is None:
            report_progress(message="checking whether OpenStreetMap (Overpass) can be reached")
            done += "; " + _start_demo_osm()
        report_progress(message=done)
        return 0
    except Exception as exc:  # the job runner records this last line as the job's error
        print(f"prepare the demo: {one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(_prepare_main())
