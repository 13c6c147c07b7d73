"""The recipe beyond the study: calibration, set balancing, jitter, TTA, one inference path, `asgm predict`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from _engine import toy_store, use_folders

from asgm.config import S2_BANDS, ExperimentConfig
from asgm.model import calibration, explain, inference, runs
from asgm.training.recipe import set_weights


def test_temperature_recovers_an_overconfident_scale():
    rng = np.random.default_rng(0)
    z_true = rng.normal(0, 2, 20000)
    y = (rng.random(len(z_true)) < calibration.sigmoid(z_true)).astype(int)
    t = calibration.fit_temperature(y, 3.0 * z_true)  # logits 3x too confident
    assert t == pytest.approx(3.0, rel=0.08)
    over, fixed = calibration.sigmoid(3.0 * z_true), calibration.sigmoid(3.0 * z_true / t)
    assert calibration.ece(y, fixed) < 0.02 < calibration.ece(y, over)
    assert calibration.fit_temperature(np.ones(5), np.arange(5.0)) == 1.0  # one class: nothing to fit


def test_precision_at_recall_and_reliability():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.3, 0.6, 0.5, 0.2, 0.1, 0.1, 0.05])
    # recall >= 0.9 needs all 4 positives: threshold 0.3 keeps 4 positives + 2 negatives
    assert calibration.precision_at_recall(y, p, 0.9) == pytest.approx(4 / 6)
    r = calibration.reliability(y, p, bins=10)
    assert sum(r["count"]) == 10 and all(0 <= f <= 1 for f in r["frac_pos"])


def test_set_weights_balance_sets_within_each_class():
    labels = np.array([1] * 100 + [1] * 4 + [0] * 50 + [0] * 50)
    sets = np.array(["big"] * 100 + ["small"] * 4 + ["a"] * 50 + ["b"] * 50)
    w = set_weights(labels, sets)
    assert w[labels == 1].sum() == pytest.approx(len(w) / 2, rel=1e-5)
    assert w[labels == 0].sum() == pytest.approx(len(w) / 2, rel=1e-5)
    assert w[104] == pytest.approx(w[154])  # equal sets, equal weights
    assert w[100] / w[0] == pytest.approx(np.sqrt(100 / 4), rel=1e-5)  # 1/sqrt(n), not 1/n


def test_balance_by_confuser_groups_a_class_spread_over_sets():
    from asgm.training.recipe import balance_groups

    # negatives: riverbanks in two sets (10 + 10), 20 mixed in one set without a class; positives in two sets
    labels = np.array([0] * 40 + [1] * 30)
    sets = np.array(["rivA"] * 10 + ["rivB"] * 10 + ["mixed"] * 20 + ["p1"] * 10 + ["p2"] * 20)
    conf = np.array(["riverbank"] * 20 + [""] * 20 + ["riverbank"] * 10 + [""] * 20, dtype=object)
    groups = balance_groups(labels, sets, conf)
    assert set(groups[:20]) == {"confuser:riverbank"} and set(groups[20:40]) == {"mixed"}
    assert list(groups[40:]) == list(sets[40:])  # positives keep their sets, whatever the column says
    w = set_weights(labels, groups)
    # two negative groups of 20: equal weights; by set the two riverbank sets (10 each) would weigh more
    assert w[0] == pytest.approx(w[25]) and set_weights(labels, sets)[0] > set_weights(labels, sets)[25]
    assert np.array_equal(balance_groups(labels, sets, None), sets)


def test_balance_by_confuser_trains_on_a_store_that_records_them_only(tmp_path, monkeypatch):
    from dataclasses import replace

    from asgm.training.train import train

    use_folders(monkeypatch, tmp_path)
    st = toy_store(tmp_path / "stores", n_pos=10, n_neg=14)
    cfg = ExperimentConfig(
        store=str(st.root),
        bands=S2_BANDS,
        epochs=1,
        batch_size=8,
        architecture="detector",
        balance_sets=True,
        balance_by="confuser",
    )
    with pytest.raises(runs.RunError, match="records no confuser classes"):
        train(cfg, n_boot=0)
    st.write_patches(replace(st.read_patch(f"neg-{k:04d}"), confuser="riverbank") for k in range(5))
    assert (st.index().confuser == "riverbank").sum() == 5
    run_id = train(cfg, n_boot=0)
    info = runs.get_run(run_id)
    assert info.status == "completed" and info.config.balance_by == "confuser"


def test_hard_negative_mining_up_weights_the_training_negatives_a_first_pass_calls_mining(tmp_path, monkeypatch):
    import pandas as pd
    from _engine import toy_parent

    from asgm.training.recipe import hard_negative_weights
    from asgm.training.train import train

    use_folders(monkeypatch, tmp_path)
    first = toy_parent(tmp_path)
    cfg = ExperimentConfig(
        store="toy", bands=S2_BANDS, epochs=1, batch_size=8, hard_negatives_from=first, hard_negative_weight=4.0
    )
    run_id = train(cfg, n_boot=0)
    mined = json.loads(runs.RunFolder.of(run_id).file("counts.json").read_text())["hard_negatives"]
    split = pd.read_csv(runs.RunFolder.of(run_id).file("split.csv"), dtype={"sample_id": str})
    train_neg = split[(split["split"] == "train") & (split["label"] == 0)]["sample_id"]
    assert mined["from_run"] == first and mined["negatives_scored"] == len(train_neg) and mined["weight"] == 4.0
    called = inference.predict_store(first, "toy", sample_ids=list(train_neg))
    assert mined["hard"] == int((called["decision"] == 1).sum())

    # a first pass that calls every chip mining (threshold 0): every training negative, and only those, weighs 4x
    folder = runs.RunFolder.of(first)
    metrics = json.loads(folder.file("metrics.json").read_text())
    folder.file("metrics.json").write_text(json.dumps(metrics | {"threshold": 0.0}))
    ids = ["pos-0000", "neg-0000", "neg-0001", "pos-0001"]
    w, info = hard_negative_weights(cfg, ids, np.array([1, 0, 0, 1]), np.array([1.0, 0.5, 2.0, 1.0]))
    assert list(w) == [1.0, 2.0, 8.0, 1.0] and info["hard"] == 2 and info["negatives_scored"] == 2

    with pytest.raises(runs.RunError, match="hard negatives from run 'no-such-run'"):
        train(cfg.model_copy(update={"hard_negatives_from": "no-such-run"}), n_boot=0)


def test_jitter_changes_brightness_but_not_osm_channels():
    import keras

    from asgm.training.recipe import jitter

    x = np.full((64, 8, 8, 4), 0.1, np.float32)
    x[..., 3] = 1.0  # an OSM mask channel
    y = np.asarray(jitter(x, keras.random.SeedGenerator(1), n_bands=3))
    assert y.shape == x.shape and (y >= 0).all() and (y <= 1).all()
    assert np.array_equal(y[..., 3], x[..., 3])
    means = y[..., :3].mean(axis=(1, 2, 3))
    assert means.std() > 0.005 and 0.07 < means.mean() < 0.14


def _d4_views(x):
    """The 8 symmetries of the square via rot90 and a flip (independent of inference.D4)."""
    return [np.rot90(v, k, axes=(1, 2)) for v in (x, x[:, :, ::-1]) for k in range(4)]


def test_tta_averages_logits_over_the_eight_symmetries():
    from asgm.model.cnn import build_detector

    model = build_detector(16, 3, seed=0)
    x = np.random.default_rng(0).random((5, 16, 16, 3)).astype(np.float32)
    cfg = ExperimentConfig(patch_size=48, tta=True)
    manual = np.mean(
        [calibration.logit(np.asarray(model(np.ascontiguousarray(v), training=False)).ravel()) for v in _d4_views(x)],
        axis=0,
    )
    assert np.allclose(inference.recipe_logits(model, x, cfg), manual, atol=1e-4)
    plain = calibration.logit(np.asarray(model(x, training=False)).ravel())
    assert np.allclose(inference.recipe_logits(model, x, cfg.model_copy(update={"tta": False})), plain, atol=1e-5)
    p = inference.recipe_probabilities(model, x, cfg, temperature=2.0)
    assert np.allclose(p, calibration.sigmoid(manual / 2.0), atol=1e-4)


def test_old_configs_still_load_and_default_to_the_study():
    old = {"name": "a", "store": "demo", "epochs": 3}
    cfg = ExperimentConfig.model_validate(old)
    assert cfg.architecture == "study" and not (cfg.jitter or cfg.balance_sets or cfg.tta or cfg.calibrate)
    assert cfg.split_seed_used == cfg.seed == 7
    assert ExperimentConfig(split_seed=3).split_seed_used == 3


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipe")
    mp = pytest.MonkeyPatch()
    use_folders(mp, root)
    st = toy_store(root / "stores", n_pos=16, n_neg=20)
    cfg = ExperimentConfig(
        store=str(st.root),
        bands=S2_BANDS,
        epochs=2,
        batch_size=8,
        architecture="detector",
        learning_rate=1e-3,
        jitter=True,
        balance_sets=True,
        tta=True,
        calibrate=True,
    )
    from asgm.training.train import train

    run_id = train(cfg, n_boot=50)
    yield run_id, st
    mp.undo()


def test_full_recipe_run_records_calibration_and_posthoc_ablation(recipe_run):
    run_id, _ = recipe_run
    info = runs.get_run(run_id)
    m = info.metrics
    assert info.status == "completed" and info.config.architecture == "detector"
    assert m["temperature"] > 0 and m["recipe"]["tta"] is True
    assert set(m["posthoc"]) == {"no_tta", "no_calibration"}
    for key in ("ece", "precision_at_recall_0.9", "reliability"):
        assert key in m
    # calibration is monotone: same ranking, so the same PR-AUC with or without it
    assert m["posthoc"]["no_calibration"]["pr_auc"] == pytest.approx(m["pr_auc"], abs=1e-9)


def test_training_scores_and_predict_store_go_through_the_same_path(recipe_run):
    run_id, st = recipe_run
    preds = runs.predictions(run_id)
    inference.clear_cache()
    out = inference.predict_store(run_id, st, sample_ids=list(preds["sample_id"]), batch_size=5)
    merged = preds.merge(out, on="sample_id")
    assert len(merged) == len(preds)
    assert np.allclose(merged["prob"], merged["probability"], atol=1e-5)
    assert (merged["pred"] == merged["decision"]).all()
    # and the single-patch path (the app's click) agrees too
    sid = preds["sample_id"].iloc[0]
    one = inference.classify(run_id, st, sid)
    assert one["prob"] == pytest.approx(float(merged.loc[merged.sample_id == sid, "probability"].iloc[0]), abs=1e-5)


def test_predict_cli_writes_csv_and_json_summary(recipe_run, tmp_path, capsys):
    from asgm.cli import main

    run_id, st = recipe_run
    out = tmp_path / "preds.csv"
    assert main(["predict", "--run", run_id, "--store", str(st.root), "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    df = pd.read_csv(out)
    assert list(df.columns[:3]) == ["sample_id", "probability", "decision"] and len(df) == len(st) == report["patches"]
    assert ((df.probability >= report["threshold"]).astype(int) == df.decision).all()
    assert report["predicted_mining"] == int(df.decision.sum()) and "against_labels" in report
    assert main(["predict", "--run", run_id, "--store", str(st.root), "--out", str(out)]) == 1
    assert "exists; pass --force" in capsys.readouterr().err
    assert main(["predict", "--run", "no-such-run", "--store", str(st.root), "--out", str(tmp_path / "b.csv")]) == 1
    assert "no run 'no-such-run'" in capsys.readouterr().err


def test_predict_cli_spatial_prior_on_the_store_points(recipe_run, tmp_path, capsys):
    from asgm.cli import main

    run_id, st = recipe_run
    base = [
        "predict",
        "--run",
        run_id,
        "--store",
        str(st.root),
        "--json",
        "--spatial-prior",
        "--t-main",
        "0.3",
        "--t-iso",
        "0.6",
    ]
    # points ~5 km apart: within 1 m every candidate is isolated and needs t_iso ...
    assert main([*base, "--out", str(tmp_path / "a.csv"), "--prior-radius-m", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    df = pd.read_csv(tmp_path / "a.csv")
    assert (df.decision == (df.probability >= 0.6).astype(int)).all() and (df.isolated == (df.probability >= 0.3)).all()
    sp = report["spatial_prior"]
    assert sp["t_main"] == 0.3 and sp["radius_m"] == 1 and sp["candidates"] == int((df.probability >= 0.3).sum())
    assert sp["dropped_isolated"] == int(((df.probability >= 0.3) & (df.probability < 0.6)).sum())
    assert report["predicted_mining"] == int(df.decision.sum()) and "against_labels_spatial_prior" in report
    # ... while counting among the nearest candidates within 1,000 km none is (the store spans tens of km), so
    # t_main decides
    assert (
        main([*base, "--out", str(tmp_path / "b.csv"), "--prior-radius-m", "1000000", "--prior-among", "candidates"])
        == 0
    )
    capsys.readouterr()
    df = pd.read_csv(tmp_path / "b.csv")
    candidates = df.probability >= 0.3
    assert (df.decision == candidates.astype(int)).all() or candidates.sum() == 1
    assert main([*base, "--out", str(tmp_path / "c.csv"), "--t-iso", "0.1"]) == 1
    assert "t_main <= t_iso" in capsys.readouterr().err


def test_gradcam_works_on_the_detector(recipe_run):
    run_id, st = recipe_run
    info = runs.get_run(run_id)
    x = inference.prepare_input(st.read_patch("pos-0001"), None, info.config)
    cam = explain.gradcam(runs.load_model(run_id), x)
    assert cam.shape == (48, 48) and np.isfinite(cam).all() and 0.0 <= cam.min() <= cam.max() <= 1.0
