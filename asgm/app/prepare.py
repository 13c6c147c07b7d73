"""First start: the background job that builds the demo patch store when missing and launches the small
default training run (``asgm.runs.launch``), so click-to-classify works without the CLI.

``python -m asgm.app.prepare`` runs the job; its state is ``data/app/prepare.json`` (written atomically).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import streamlit as st

from asgm import atomic
from asgm.app.loaders import list_runs_safe
from asgm.config import PROJECT_ROOT, ExperimentConfig, data_dir
from asgm.store import list_stores

DEFAULT_EPOCHS = 8


def default_config() -> ExperimentConfig:
    """The small first-start model: demo pack, 48 px, RGB, curated negatives, a few epochs."""
    return ExperimentConfig(name="default (demo, 48 px, RGB)", store="demo", epochs=DEFAULT_EPOCHS)


def _prepare_file() -> Path:
    return data_dir() / "app" / "prepare.json"


def prepare_state() -> dict[str, Any]:
    """State of the background "prepare the demo" job: {state: idle|running|done|failed, message, pid, run_id}."""
    try:
        s = json.loads(_prepare_file().read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {"state": "idle"}
    from asgm.runs import pid_alive

    if s.get("state") == "running" and not pid_alive(s.get("pid")):
        s = {**s, "state": "failed", "message": (s.get("message") or "") +
             " — the preparation process stopped unexpectedly. Click 'Prepare the demo' to try again."}
    return s


def _write_prepare(**state: Any) -> None:
    atomic.write_json(_prepare_file(), {"updated": time.time(), **state})


def start_prepare() -> dict[str, Any]:
    """Start the background job (no-op while one runs). Never blocks the Streamlit script thread."""
    s = prepare_state()
    if s.get("state") == "running":
        return s
    log = data_dir() / "app" / "prepare.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "asgm.app.prepare"], stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, cwd=str(PROJECT_ROOT))
    _write_prepare(state="running", pid=proc.pid, message="starting")
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
    if needs_prepare():
        start_prepare()


def _prepare_main() -> int:
    """Body of the background job: build the demo store if missing, then launch the default run."""
    pid = os.getpid()
    try:
        if "demo" not in list_stores():
            _write_prepare(state="running", pid=pid, message="building the demo patch store (real Sentinel-2 chips)")
            from asgm.sources import demo

            demo.build(progress=False)
        from asgm import runs

        existing = [r for r in runs.list_runs() if r.status in ("completed", "running", "queued")]
        if existing:
            _write_prepare(state="done", pid=pid, message="a model exists already", run_id=existing[0].run_id)
            return 0
        _write_prepare(state="running", pid=pid, message="launching the default model's training")
        run_id = runs.launch(default_config())
        _write_prepare(state="done", pid=pid, message="default model training launched", run_id=run_id)
        return 0
    except Exception as exc:  # reported to the page through the state file
        _write_prepare(state="failed", pid=pid, message=f"{type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(_prepare_main())
