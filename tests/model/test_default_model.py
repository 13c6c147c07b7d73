"""The shipped default detector (models/detector-default) loads and reproduces its own predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from asgm.model import inference, runs

MODELS = Path(__file__).resolve().parents[2] / "models"


@pytest.fixture
def shipped(monkeypatch):
    monkeypatch.setenv("ASGM_MODELS_DIR", str(MODELS))
    inference.clear_cache()
    yield runs.get_run("detector-default")
    inference.clear_cache()


def test_default_run_is_complete_and_documented(shipped):
    assert shipped.status == "completed"
    cfg, m = shipped.config, shipped.metrics
    assert cfg.architecture == "detector" and cfg.store == "amazon2" and cfg.calibrate and not cfg.tta
    assert cfg.holdout is None and cfg.split_eps_m == 3000.0
    for key in ("threshold", "temperature", "f1", "ece", "precision_at_recall_0.9", "parts"):
        assert key in m
    # An ensemble of three members, one run: their own figures are kept beside the ensemble's.
    assert len(m["ensemble"]["members"]) >= 3 and (shipped.path / "model.keras").is_file()
    assert sum(p.stat().st_size for p in shipped.path.iterdir()) < 10e6  # issue 21: at most 10 MB
    card = (shipped.path / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert f"{m['threshold']:.3f}" in card and "Must not be used" in card


def test_default_model_reproduces_its_predictions_on_real_demo_chips(shipped, demo_store):
    preds = runs.predictions("detector-default")
    mine = preds[preds.sample_id.isin(set(demo_store.sample_ids()))]  # the demo chips are part of the amazon store
    assert len(mine) > 50
    out = inference.predict_store("detector-default", demo_store, sample_ids=list(mine.sample_id))
    merged = mine.merge(out, on="sample_id")
    assert np.allclose(merged["prob"], merged["probability"], atol=1e-4)
    assert (merged["pred"] == merged["decision"]).all()


def test_models_default_is_committed_and_a_newer_run_never_replaces_it(tmp_path, monkeypatch):
    """The documented rule: ``models/DEFAULT`` names the shipped run, and a newer completed run (say a
    1-epoch test run) does not become the default; only a missing or stale DEFAULT falls back, saying so."""
    import shutil
    import subprocess

    tracked = subprocess.run(
        ["git", "ls-files", "models/DEFAULT"], cwd=MODELS.parent, capture_output=True, text=True
    ).stdout.split()
    assert tracked == ["models/DEFAULT"]
    assert (MODELS / "DEFAULT").read_text().strip() == "detector-default"
    root = tmp_path / "models"
    shutil.copytree(MODELS / "detector-default", root / "detector-default")
    shutil.copy(MODELS / "DEFAULT", root / "DEFAULT")
    newer = root / "test-1-epoch"
    shutil.copytree(MODELS / "detector-default", newer)
    status = json.loads((newer / "status.json").read_text())
    (newer / "status.json").write_text(
        json.dumps({**status, "run_id": newer.name, "created": "2099-01-01T00:00:00+00:00"})
    )
    monkeypatch.setenv("ASGM_MODELS_DIR", str(root))
    assert runs.list_runs()[0].run_id == "test-1-epoch"
    run_id, why = runs.default_choice()
    assert run_id == "detector-default" and "DEFAULT" in why
    (root / "DEFAULT").write_text("gone-run\n")
    run_id, why = runs.default_choice()
    assert run_id == "test-1-epoch" and "gone-run" in why and "newest" in why
