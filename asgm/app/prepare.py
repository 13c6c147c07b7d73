"""First start in the app: the state of the background 'prepare the demo' job (``asgm demo prepare``, see
``asgm.training.first_start``), its launch, and the automatic launch on a first visit."""

from __future__ import annotations

import os
from typing import Any

import streamlit as st

from asgm.app.loaders import list_runs_safe
from asgm.data.store import PatchStore, list_stores
from asgm.errors import AsgmError
from asgm.training.first_start import demo_osm_note

PREPARE_KEY = "prepare the demo"


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
    return {
        "state": "failed",
        "message": (job.error or job.status) + ". Click 'Prepare the demo' to try again.",
        "job_id": job.job_id,
    }


def start_prepare() -> dict[str, Any]:
    """Start the background job (no-op while one runs). Never blocks the Streamlit script thread."""
    from asgm.jobs import commands
    from asgm.jobs import runner as jobs

    try:
        jobs.launch(commands.prepare_demo(), kind="prepare", title="prepare the demo", key=PREPARE_KEY)
    except jobs.JobError:
        pass  # one is running already (maybe started by another session)
    return prepare_state()


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
