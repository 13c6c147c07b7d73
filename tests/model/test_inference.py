"""Single-patch inference: same inputs as training, zeroed layers, classify, Grad-CAM."""

from __future__ import annotations

import numpy as np
import pytest

from asgm.model import explain, inference, runs
from asgm.model.inputs import DatasetError, PatchSource


def test_prepare_input_matches_training_pipeline(osm_run):
    run_id, st, cfg = osm_run
    sid = "pos-0001"
    x = inference.prepare_input(st.read_patch(sid), st.read_osm(sid), cfg)
    assert x.shape == (48, 48, 14) and x.dtype == np.float32
    assert np.array_equal(x, PatchSource(st, cfg, [sid]).load(0))
    with pytest.raises(DatasetError, match="OSM"):
        inference.prepare_input(st.read_patch(sid), None, cfg)


def test_predict_zero_layers_and_ablation(osm_run):
    run_id, st, cfg = osm_run
    model = runs.load_model(run_id)
    x = inference.prepare_input(st.read_patch("pos-0002"), st.read_osm("pos-0002"), cfg)
    p = inference.predict(model, x, config=cfg)
    assert 0.0 <= p <= 1.0
    zeroed = x.copy()
    zeroed[..., len(cfg.bands)] = 0  # highway is the first OSM channel
    assert inference.predict(model, x, ("highway",), cfg) == pytest.approx(inference.predict(model, zeroed), abs=1e-6)
    abl = inference.layer_ablation(model, x, cfg)
    assert set(abl) == {"none", "highway", "waterway"} and abl["none"] == pytest.approx(p, abs=1e-6)
    with pytest.raises(inference.InferenceError, match="no OSM layer"):
        inference.predict(model, x, ("building",), cfg)


def test_classify_uses_threshold_rule_and_bounded_cache(osm_run):
    run_id, st, cfg = osm_run
    inference.clear_cache()
    out = inference.classify(run_id, st, "neg-0003")
    assert out["decision"] == int(out["prob"] >= out["threshold"]) and out["label"] == 0
    assert out["threshold"] == runs.get_run(run_id).metrics["threshold"]
    assert list(inference._cache) == [run_id] and len(inference._cache) <= inference.MODEL_CACHE_SIZE


def test_gradcam_map(osm_run):
    run_id, st, cfg = osm_run
    x = inference.prepare_input(st.read_patch("pos-0000"), st.read_osm("pos-0000"), cfg)
    cam = explain.gradcam(runs.load_model(run_id), x)
    assert cam.shape == (48, 48) and cam.min() >= 0 and cam.max() <= 1
