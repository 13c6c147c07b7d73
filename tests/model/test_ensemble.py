"""An ensemble as one run: members' logits averaged, calibrated as one, through the one inference path
(predict, click, Grad-CAM, scans' forward function), built by ``asgm ensemble`` from tiny 1-epoch members."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from _engine import toy_store, use_folders

from asgm.config import S2_BANDS, ExperimentConfig
from asgm.model import calibration, explain, inference, run_jobs, runs
from asgm.model.inputs import PatchSource
from asgm.training import ensemble


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    """A toy store and four 1-epoch runs on the same split: three detectors (seeds 1-3), one study CNN."""
    from asgm.training.train import train

    root = tmp_path_factory.mktemp("ensemble")
    mp = pytest.MonkeyPatch()
    use_folders(mp, root)
    st = toy_store(root / "stores", n_pos=14, n_neg=18)
    base = ExperimentConfig(
        store=str(st.root),
        bands=S2_BANDS,
        epochs=1,
        batch_size=8,
        architecture="detector",
        learning_rate=1e-3,
        calibrate=True,
        split_seed=5,
    )
    ids = [train(base.model_copy(update={"seed": s, "name": f"m{s}"}), n_boot=20) for s in (1, 2, 3)]
    ids.append(train(base.model_copy(update={"seed": 4, "architecture": "study", "name": "study"}), n_boot=20))
    other_split = train(base.model_copy(update={"seed": 6, "split_seed": 9}), n_boot=20)
    yield {"store": st, "ids": ids, "other_split": other_split, "root": root}
    mp.undo()


@pytest.fixture(scope="module")
def ens(members):
    import contextlib
    import io

    from asgm.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert (
            main(
                [
                    "ensemble",
                    "--members",
                    *members["ids"][:3],
                    members["ids"][3],
                    "--name",
                    "four",
                    "--n-boot",
                    "20",
                    "--json",
                ]
            )
            == 0
        )
    return json.loads(out.getvalue())


def _member_logits(members, sample_ids, ids):
    st = members["store"]
    out = []
    for run_id in ids:
        info = runs.get_run(run_id)
        src = PatchSource(st, info.config, sample_ids, cache_limit_mb=0)
        out.append(inference.source_logits(runs.load_model(run_id), src, info.config))
    return np.array(out)


def test_the_ensemble_is_one_completed_run_with_its_members_beside_it(members, ens):
    info = runs.get_run(ens["run_id"])
    assert info.status == "completed" and info.config.members == tuple(members["ids"])
    m = info.metrics
    assert m["temperature"] > 0 and 0 <= m["threshold"] <= 1 and "f1_ci_cluster" in m
    assert [r["run_id"] for r in m["ensemble"]["members"]] == members["ids"]
    assert m["recipe"]["architecture"] == "ensemble of 4 (detector, detector, detector, study)"
    assert ens["member_metrics"][0]["f1"] == runs.get_run(members["ids"][0]).metrics["f1"]
    # the members' shared split, byte for byte
    assert (info.path / "split.csv").read_text() != "" and runs.predictions(ens["run_id"]).split.isin(
        ["val", "test"]
    ).all()
    assert ens["run_id"] in [r.run_id for r in runs.list_runs()]


def test_its_logit_is_the_mean_of_the_members_and_predict_calibrates_it_once(members, ens):
    st = members["store"]
    sids = st.sample_ids()
    z = _member_logits(members, sids, members["ids"])
    info = runs.get_run(ens["run_id"])
    src = PatchSource(st, info.config, sids, cache_limit_mb=0)
    z_ens = inference.source_logits(runs.load_model(ens["run_id"]), src, info.config)
    assert np.allclose(z_ens, z.mean(axis=0), atol=1e-4)
    inference.clear_cache()
    df = inference.predict_store(ens["run_id"], st)
    t = info.metrics["temperature"]
    assert np.allclose(df["probability"], calibration.sigmoid(z.mean(axis=0) / t), atol=1e-4)
    assert (df["decision"] == (df["probability"] >= info.metrics["threshold"]).astype(int)).all()
    # the click path and the run's own scoring agree with it
    one = inference.classify(ens["run_id"], st, sids[3])
    assert one["prob"] == pytest.approx(float(df.probability.iloc[3]), abs=1e-5)
    preds = runs.predictions(ens["run_id"]).merge(df, on="sample_id")
    assert np.allclose(preds["prob"], preds["probability"], atol=1e-5)


def test_gradcam_of_the_mean_and_of_each_member(members, ens):
    st = members["store"]
    info = runs.get_run(ens["run_id"])
    x = inference.prepare_input(st.read_patch(st.sample_ids()[0]), None, info.config)
    model = runs.load_model(ens["run_id"])
    cam = explain.gradcam(model, x)
    assert cam.shape == (48, 48) and np.isfinite(cam).all() and 0.0 <= cam.min() <= cam.max() <= 1.0
    for k in (0, 3):  # a detector and the study CNN: each member's map is its own run's map
        alone = explain.gradcam(runs.load_model(members["ids"][k]), x)
        assert np.allclose(explain.gradcam(model, x, member=k), alone, atol=1e-5)
    with pytest.raises(inference.InferenceError, match="members 0..3"):
        explain.gradcam(model, x, member=4)


def test_scans_forward_function_and_a_fresh_process_load_it(members, ens):
    from asgm.scan.tiles import ModelSpec, forward_fn

    info = runs.get_run(ens["run_id"])
    st = members["store"]
    sids = st.sample_ids()[:6]
    x = PatchSource(st, info.config, sids, cache_limit_mb=0).load_batch(np.arange(6))
    spec = ModelSpec.from_file(info.path / "model.keras", info.config, inference.run_temperature(info.metrics))
    expected = inference.predict_store(ens["run_id"], st, sample_ids=sids)["probability"].to_numpy()
    assert np.allclose(forward_fn(spec)(x), expected, atol=1e-5)
    # a new process (a Dask worker, the app) loads it in Keras safe mode with nothing imported beforehand
    code = (
        "import sys; from asgm.model.runs import load_keras_model; "
        "m = load_keras_model(sys.argv[1]); print(m.name, len(m.layers))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(info.path / "model.keras")],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert done.stdout.split() == ["asgm_ensemble", "6"]


def test_members_that_cannot_be_one_model_are_refused(members):
    ids = members["ids"]
    before = {r.run_id for r in runs.list_runs()}
    with pytest.raises(ensemble.EnsembleError, match="at least 3"):
        ensemble.build(ids[:2])
    with pytest.raises(ensemble.EnsembleError, match="listed twice"):
        ensemble.build([ids[0], ids[0], ids[1]])
    with pytest.raises(ensemble.EnsembleError, match="different spatial splits"):
        ensemble.build([ids[0], ids[1], members["other_split"]])
    with pytest.raises(runs.RunNotFound):
        ensemble.build([ids[0], ids[1], "no-such-run"])
    assert {r.run_id for r in runs.list_runs()} == before  # nothing was made


def test_evaluate_recomputes_it_as_one_run_and_keeps_its_members(members, ens):
    from asgm.training.scoring import evaluate_run

    before = runs.get_run(ens["run_id"]).metrics
    after = evaluate_run(ens["run_id"], n_boot=20)
    assert after["f1"] == pytest.approx(before["f1"]) and after["threshold"] == pytest.approx(before["threshold"])
    assert after["ensemble"] == before["ensemble"] and after["recipe"]["architecture"].startswith("ensemble of 4")


def test_an_ensemble_config_is_not_trained(members, ens):
    from asgm.training.train import train

    config = runs.get_run(ens["run_id"]).config
    with pytest.raises(runs.RunError, match="built, not trained"):
        train(config)
    with pytest.raises(runs.RunError, match="asgm ensemble"):
        run_jobs.launch(config)
