"""The shipped default detector (models/detector-default) loads and reproduces its own predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asgm.model import inference, runs

MODELS = Path(__file__).resolve().parent.parent / "models"


@pytest.fixture
def shipped(monkeypatch):
    monkeypatch.setenv("ASGM_MODELS_DIR", str(MODELS))
    inference.clear_cache()
    yield runs.get_run("detector-default")
    inference.clear_cache()


def test_default_run_is_complete_and_documented(shipped):
    assert shipped.status == "completed"
    cfg, m = shipped.config, shipped.metrics
    assert cfg.architecture == "detector" and cfg.store == "amazon" and cfg.calibrate and not cfg.tta
    assert cfg.holdout is None and cfg.split_eps_m == 3000.0
    for key in ("threshold", "temperature", "f1", "ece", "precision_at_recall_0.9", "parts"):
        assert key in m
    assert sum(p.stat().st_size for p in shipped.path.iterdir()) < 5e6  # a few MB at most


def test_default_model_reproduces_its_predictions_on_real_demo_chips(shipped, demo_store):
    preds = runs.predictions("detector-default")
    mine = preds[preds.sample_id.isin(set(demo_store.sample_ids()))]  # the demo chips are part of the amazon store
    assert len(mine) > 50
    out = inference.predict_store("detector-default", demo_store, sample_ids=list(mine.sample_id))
    merged = mine.merge(out, on="sample_id")
    assert np.allclose(merged["prob"], merged["probability"], atol=1e-4)
    assert (merged["pred"] == merged["decision"]).all()
