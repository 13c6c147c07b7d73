"""A real (tiny) training run leaves a complete run folder; cancel and crash are recorded."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from _engine import toy_store

from asgm.config import REFLECTANCE, S2_BANDS, ExperimentConfig
from asgm.data.store import PatchStoreError
from asgm.model.inputs import DatasetError
from asgm.model.runs import RunFolder, create_run
from asgm.training.train import train

METRIC_KEYS = {
    "threshold",
    "f1",
    "f1_ci_patch",
    "f1_ci_cluster",
    "precision",
    "recall",
    "pr_auc",
    "pr_auc_ci",
    "fp",
    "fn",
    "tp",
    "tn",
    "confusion",
    "pr_curve",
    "best_epoch",
    "counts",
}


def _cfg(store, **kw):
    return ExperimentConfig(**{"store": str(store.root), "bands": S2_BANDS, "epochs": 2, "batch_size": 8, **kw})


def test_two_epoch_run_leaves_a_complete_run_folder(data_env):
    st = toy_store(data_env / "stores", n_pos=14, n_neg=16)
    run_id = train(_cfg(st, class_weight=True), n_boot=100)
    f = RunFolder.of(run_id)
    for name in (
        "config.json",
        "status.json",
        "progress.json",
        "history.json",
        "split.csv",
        "predictions.csv",
        "metrics.json",
        "model.keras",
    ):
        assert f.file(name).is_file(), name
    assert not list(f.root.glob(".tmp-*"))  # atomic writes left nothing behind
    status = f.read_json("status.json")
    assert status["status"] == "completed" and status["error"] is None
    recorded = ExperimentConfig.model_validate_json(f.file("config.json").read_text())
    assert recorded == _cfg(st, class_weight=True).model_copy(update={"encoding": REFLECTANCE})
    m = f.read_json("metrics.json")
    assert METRIC_KEYS <= set(m)
    assert m["best_epoch"] in (1, 2) and m["batch_size"] == 8
    assert (
        m["tp"] + m["fp"] + m["fn"] + m["tn"]
        == m["counts"]["splits"]["test"]["pos"] + m["counts"]["splits"]["test"]["neg"]
    )
    assert m["class_weights"]["1"] > m["class_weights"]["0"]  # fewer positives -> larger weight
    assert [h["epoch"] for h in f.read_json("history.json")] == [1, 2]
    prog = f.read_json("progress.json")
    assert prog["epoch"] == 2 and prog["eta_s"] == 0 and "val_pr_auc" in prog
    split = pd.read_csv(f.file("split.csv"), dtype={"sample_id": str})
    preds = pd.read_csv(f.file("predictions.csv"), dtype={"sample_id": str})
    assert set(preds["sample_id"]) == set(split.loc[split["split"].isin(["val", "test"]), "sample_id"])
    test = preds[preds["split"] == "test"]
    assert ((test["prob"] >= m["threshold"]).astype(int) == test["pred"]).all()
    assert test["pred"].sum() == m["tp"] + m["fp"]


def test_leave_one_country_out_run_records_countries_and_tests_only_that_country(data_env):
    # A 1° grid across the Venezuela-Brazil border at Santa Elena de Uairén / Pacaraima.
    st = toy_store(data_env / "stores", n_pos=16, n_neg=16, origin=(-61.6, 4.0))
    run_id = train(_cfg(st, holdout="venezuela", epochs=1), n_boot=50)
    split = pd.read_csv(RunFolder.of(run_id).file("split.csv"), dtype={"sample_id": str}, keep_default_na=False)
    assert set(split["country"]) == {"VEN", "BRA"}
    assert (split.loc[split["split"] == "test", "country"] == "VEN").all()
    assert (split.loc[split["country"] == "VEN", "split"] == "test").all()
    assert set(split.loc[split["country"] == "BRA", "split"]) <= {"train", "val", "buffer"}


def test_cancel_request_is_recorded(data_env):
    st = toy_store(data_env / "stores", n_pos=8, n_neg=8)
    folder = create_run(_cfg(st, epochs=50))
    folder.file("cancel").write_text("now")
    run_id = train(_cfg(st, epochs=50), run_id=folder.run_id)
    status = RunFolder.of(run_id).read_json("status.json")
    assert status["status"] == "cancelled"
    assert not RunFolder.of(run_id).model_path.exists()


def test_crash_is_recorded_with_the_error(data_env):
    cfg = ExperimentConfig(store="no-such-store", epochs=1)
    with pytest.raises(PatchStoreError):
        train(cfg, run_id="crash-1")
    status = json.loads((data_env / "models" / "crash-1" / "status.json").read_text())
    assert status["status"] == "failed" and "no-such-store" in status["error"]
    assert "Traceback" in (data_env / "models" / "crash-1" / "error.txt").read_text()


def test_unreadable_patches_fail_before_fit_in_one_line(data_env):
    st = toy_store(data_env / "stores", n_pos=8, n_neg=8)
    for tif in (st.root / "patches").glob("*.tif"):
        tif.write_bytes(b"not a tiff")
    with pytest.raises(DatasetError, match="16 of 16 patches cannot be used"):
        train(_cfg(st), run_id="crash-2")
    status = RunFolder.of("crash-2").read_json("status.json")
    assert status["status"] == "failed" and "unreadable GeoTIFF" in status["error"]
    assert "\n" not in status["error"] and "Traceback" in RunFolder.of("crash-2").file("error.txt").read_text()
