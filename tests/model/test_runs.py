"""The run store: listing, errors with a way out, dead processes, launch/cancel in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest
from _engine import toy_store
from _engine import wait_until as _wait

from asgm.config import REFLECTANCE, S2_BANDS, ExperimentConfig
from asgm.model import run_jobs, runs
from asgm.model.runs import RunFolder, create_run
from asgm.training.train import train


def test_unknown_run_id_is_a_clear_error(data_env):
    with pytest.raises(runs.RunNotFound, match="no run 'nope'.*asgm train"):
        runs.get_run("nope")
    with pytest.raises(runs.RunNotFound):
        runs.predictions("nope")


def test_completed_run_and_corrupt_model(data_env):
    st = toy_store(data_env / "stores", n_pos=10, n_neg=12)
    cfg = ExperimentConfig(store=str(st.root), bands=S2_BANDS, epochs=1, batch_size=8)
    run_id = train(cfg, n_boot=50)
    info = runs.get_run(run_id)
    # The run records the encoding of its training store's pixels (a reflectance store here).
    assert info.status == "completed" and info.config == cfg.model_copy(update={"encoding": REFLECTANCE})
    assert '"name": "reflectance"' in (info.path / "config.json").read_text() and info.metrics["threshold"] > 0
    model = runs.load_model(run_id)
    assert model.count_params() == 116_577
    preds = runs.predictions(run_id)
    assert list(preds.columns) == ["sample_id", "label", "prob", "pred", "split", "cluster", "lon", "lat"]
    (info.path / "model.keras").write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(runs.RunError, match="corrupt.*retrain"):
        runs.load_model(run_id)
    (info.path / "model.keras").unlink()
    with pytest.raises(runs.RunError, match="no model file"):
        runs.load_model(run_id)


def test_list_runs_survives_corrupt_folders_and_sorts_newest_first(data_env):
    cfg = ExperimentConfig(epochs=1)
    old = create_run(cfg, "20200101-old")
    old.set_status("queued", created="2020-01-01T00:00:00+00:00")
    new = create_run(cfg, "20250101-new")
    new.set_status("queued", created="2025-01-01T00:00:00+00:00")
    bad = data_env / "models" / "broken"
    bad.mkdir(parents=True)
    (bad / "config.json").write_text("{not json")
    listed = runs.list_runs()
    ids = [r.run_id for r in listed]
    assert ids.index("20250101-new") < ids.index("20200101-old")
    broken = next(r for r in listed if r.run_id == "broken")
    assert broken.status == "corrupt" and "config.json" in broken.error


def test_dead_process_is_reported_failed(data_env):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    folder = create_run(ExperimentConfig(epochs=1), "dead-run")
    folder.set_status("running", pid=proc.pid)
    info = runs.get_run("dead-run")
    assert info.status == "failed" and "died" in info.error


def test_launch_refuses_duplicates_and_honours_cancel(data_env):
    st = toy_store(data_env / "stores", n_pos=10, n_neg=12)
    cfg = ExperimentConfig(store=str(st.root), bands=S2_BANDS, epochs=500, batch_size=4)
    run_id = run_jobs.launch(cfg)
    assert runs.get_run(run_id).status in ("queued", "running")
    with pytest.raises(runs.RunError, match="already"):
        run_jobs.launch(cfg.model_copy(update={"name": "same thing, other label"}))
    _wait(lambda: (runs.get_run(run_id).progress or {}).get("epoch", 0) >= 1)
    run_jobs.request_cancel(run_id)
    info = _wait(lambda: (lambda i: i if i.status not in ("queued", "running") else None)(runs.get_run(run_id)))
    assert info.status == "cancelled", (info.status, info.error, (info.path / "log.txt").read_text()[-2000:])
    pid = RunFolder.of(run_id).read_json("status.json")["pid"]
    _wait(lambda: not runs.pid_alive(pid))
    with pytest.raises(runs.RunError, match="only queued or running"):
        run_jobs.request_cancel(run_id)


def test_runs_cli_lists_json(data_env, capsys):
    import json

    from asgm.cli import main

    create_run(ExperimentConfig(epochs=1), "cli-run")
    assert main(["runs", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in rows] == ["cli-run"] and rows[0]["status"] == "queued"
    assert main(["evaluate", "missing-run", "--json"]) == 1
    assert "no run 'missing-run'" in capsys.readouterr().err
    assert pd.DataFrame(rows).shape[0] == 1 and os.environ["ASGM_MODELS_DIR"].endswith("models")
