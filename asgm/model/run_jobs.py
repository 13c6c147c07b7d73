"""A training run as a background job: refuse a duplicate, launch, cancel.

A launched run trains in its own process (``asgm train --run-id ID --config FILE``, built by
``asgm.jobs.commands``) as a job of ``asgm.jobs.runner`` (the one job runner), so the app stays responsive and a
crash there cannot take the app down. Its folder is the run store's (``asgm.model.runs``).
"""

from __future__ import annotations

import shutil
from typing import Any

from asgm import atomic
from asgm.config import ExperimentConfig, models_dir
from asgm.model.runs import RunError, RunFolder, RunInfo, create_run, get_run, list_runs, new_run_id, now
from asgm.model.store_fit import with_store_encoding


def _same_config(a: ExperimentConfig, b: ExperimentConfig) -> bool:
    # The free-text name does not change what is trained.
    return a.model_dump(exclude={"name"}) == b.model_dump(exclude={"name"})


def refuse_duplicate(config: ExperimentConfig) -> None:
    """``RunError`` while a run with an identical config is queued or running (foreground or detached).
    Both sides are compared with their input encoding resolved, as runs record it."""
    config = with_store_encoding(config)
    for r in list_runs():
        if r.status in ("queued", "running") and r.config is not None and _same_config(r.config, config):
            raise RunError(
                f"run {r.run_id} with the same config is already {r.status}; wait for it or cancel it "
                f"(`asgm runs cancel {r.run_id}`)"
            )


def launch(config: ExperimentConfig, run_id: str | None = None, max_active: int | None = None) -> str:
    """Start training ``config`` in a detached process (a job of ``asgm.jobs.runner``) and return its run id at once.

    Refuses (``RunError``) while a run with an identical config is queued or running, when the store cannot
    train the config (``asgm.model.store_fit.store_problems``: it would only fail in the background), and when
    ``max_active`` jobs run already (``asgm.jobs.runner.JobError``; no run folder is left behind)."""
    from asgm.data.store import PatchStore
    from asgm.model.store_fit import store_problems

    if config.members:
        raise RunError("an ensemble's config is built from its member runs, not trained: use `asgm ensemble`")
    store = PatchStore.open(config.store)
    config = with_store_encoding(config)  # recorded in the run's config.json: the encoding it trains on
    refuse_duplicate(config)
    store.index()  # a cut, emptied or deleted index is refused here, not in the background job's log
    problems = store_problems(store, config)
    if problems:
        raise RunError("cannot train this config: " + "; ".join(problems) + ".")
    folder = create_run(config, run_id or new_run_id(config), status="queued")
    try:
        job = launch_job(folder, config, max_active=max_active)
    except Exception:
        shutil.rmtree(folder.root, ignore_errors=True)  # refused or failed to start: no run happened
        raise
    folder.set_status("queued", pid=job.pid, launched=now(), job_id=job.job_id)
    return folder.run_id


def launch_job(folder: RunFolder, config: ExperimentConfig, max_active: int | None = None) -> Any:
    """Train the run in ``folder`` (``asgm train``) as a background job."""
    from asgm.jobs import commands

    label = config.name or config.store
    return run_as_job(
        folder,
        commands.train(folder.run_id, folder.file("config.json")),
        title=f"train {folder.run_id} ({label}, {config.epochs} epochs)",
        key="train " + config.model_copy(update={"name": ""}).to_json(),
        max_active=max_active,
    )


def run_as_job(folder: RunFolder, argv: list[str], title: str, key: str, max_active: int | None = None) -> Any:
    """Run ``argv`` (from ``asgm.jobs.commands``), which trains the run in ``folder``, as a background job of
    ``asgm.jobs.runner``: its log, progress and cancel files are the run folder's, so the run store and the job
    list agree."""
    from asgm.jobs import runner as jobs

    return jobs.launch(
        argv,
        kind="train",
        title=title,
        key=key,
        max_active=max_active,
        log=folder.file("log.txt"),
        progress_file=folder.file("progress.json"),
        cancel_file=folder.file("cancel"),
        extra={"run_id": folder.run_id},
        env={"ASGM_MODELS_DIR": str(models_dir())},
    )


def request_cancel(run_id: str) -> RunInfo:
    """Ask a queued or running run to stop (it checks after every batch); returns its info."""
    info = get_run(run_id)
    if info.status not in ("queued", "running"):
        raise RunError(f"run {run_id!r} is {info.status}; only queued or running runs can be cancelled")
    folder = RunFolder.of(run_id)
    atomic.write_text(folder.file("cancel"), now() + "\n")
    return info
