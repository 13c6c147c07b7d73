"""The first start (``asgm demo prepare``, the app's 'Prepare the demo' job): build the demo patch store when
missing, launch the small default training run only when no trained run exists (a committed
``models/DEFAULT`` counts), and fetch OSM for the demo store when Overpass answers — then rasterize it and
train an RGB + OSM model on it, so the OSM toggles work on real patches."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asgm import atomic
from asgm.config import ExperimentConfig, data_dir
from asgm.data.store import PatchStore, list_stores
from asgm.jobs import commands

DEFAULT_EPOCHS = 8
#: OSM snapshot of the demo store: the chips are 2019 composites.
DEMO_OSM_DATE = "2019-12-31"
#: Seconds the first-start check of Overpass may take (offline, nothing hangs on it).
OVERPASS_PROBE_S = 10.0
#: The RGB + OSM model trained after the demo store's OSM masks, so the OSM toggles work on real patches.
OSM_MODEL_NAME = "default RGB + OSM (demo, OSM 2019-12-31)"
#: Fewer demo patches than this (a cut-down store) are too few to train on: OSM is fetched, nothing trained.
MIN_PATCHES_TO_TRAIN = 100


def default_config() -> ExperimentConfig:
    """The small first-start model: demo pack, 48 px, RGB, curated negatives, a few epochs."""
    return ExperimentConfig(name="default (demo, 48 px, RGB)", store="demo", epochs=DEFAULT_EPOCHS)


def _demo_osm_file() -> Path:
    return data_dir() / "app" / "demo_osm.json"


def demo_osm_note() -> dict[str, Any]:
    """What the first start did about OSM for the demo store: {ok, message} ({} before it tried)."""
    try:
        return json.loads(_demo_osm_file().read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def demo_osm_steps(n_patches: int) -> list[list[str]]:
    """The first-start OSM job's commands: fetch the demo store's OSM snapshot, rasterize it, and (for a
    store of at least ``MIN_PATCHES_TO_TRAIN`` patches) train the small RGB + OSM default model on it."""
    steps = [
        commands.osm_fetch("demo", DEMO_OSM_DATE, retries=2, backoff_s=5, timeout_s=120),
        commands.osm_rasterize("demo"),
    ]
    if n_patches >= MIN_PATCHES_TO_TRAIN:
        steps.append(commands.train_store("demo", "all", DEFAULT_EPOCHS, OSM_MODEL_NAME))
    return steps


def start_demo_osm() -> str:
    """Launch the OSM fetch + rasterize job for the demo store when Overpass answers within
    ``OVERPASS_PROBE_S``; otherwise record that OSM needs the network. Returns what happened."""
    import requests

    from asgm.jobs import runner as jobs
    from asgm.osm.fetch import resolve_overpass_url

    url = resolve_overpass_url()
    try:
        requests.get(f"{url}/status", timeout=OVERPASS_PROBE_S).raise_for_status()
    except requests.RequestException as exc:
        msg = (
            f"OSM context needs the network: Overpass ({url}) did not answer ({type(exc).__name__}), so the demo "
            f"store has no OSM masks. Offline, the synthetic store shows the mechanism (`asgm synthetic build`)."
        )
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
        if len(steps) > 2
        else ""
    )
    atomic.write_json(_demo_osm_file(), {"ok": True, "message": msg, "job_id": job.job_id, "updated": time.time()})
    return msg


def prepare_demo(report: Callable[[str], None] = lambda message: None) -> str:
    """Build the demo store if missing, launch the default run unless a trained one exists (``models/DEFAULT``
    or any completed run), and start OSM for the demo store when online; ``report`` hears each step.
    Returns what was done."""
    from asgm.model import run_jobs, runs

    if "demo" not in list_stores():
        report("building the demo patch store (real Sentinel-2 chips)")
        from asgm.sources import demo

        demo.build(progress=False)
    existing = [r for r in runs.list_runs() if r.status in ("completed", "running", "queued")]
    if existing:
        done = f"a model exists already ({runs.default_run_id() or existing[0].run_id})"
    else:
        report("launching the default model's training")
        done = f"default model training launched as run {run_jobs.launch(default_config())}"
    if PatchStore.open("demo").osm_info() is None:
        report("checking whether OpenStreetMap (Overpass) can be reached")
        done += "; " + start_demo_osm()
    report(done)
    return done
