"""One input encoding from training to every prediction (issue 20).

The rule (``asgm.model.inputs.encode_bands``) is checked on every uint16 DN; stores and runs record their
encoding (old ones get it from their source / training store); and on the real Sentinel-2 scene of
dlr-eoc/ukis-csmask the shipped default model (trained on display-stretched 8-bit chips) gives the same
probabilities for the raw reflectance windows as for the same windows pre-encoded as its gallery chips were,
through ``predict_store``, the scan and the patch classifier, while a run trained on reflectance is left as
it was."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import real_scene
from _engine import use_folders

from asgm.config import DISPLAY_RGB_8BIT, REFLECTANCE, ExperimentConfig, InputEncoding
from asgm.data.store import DN_SCALE, StoreMeta
from asgm.model import inference, runs
from asgm.model.inputs import PatchSource, encode_bands, prepare_input
from asgm.model.store_fit import encoding_note, store_encoding, with_store_encoding

MODELS = Path(__file__).resolve().parents[2] / "models"
TOL = 1e-4


# -- the rule ------------------------------------------------------------------------------------------
def test_the_rule_on_every_dn_is_the_gallery_stretch_and_idempotent():
    dn = np.arange(65536, dtype=np.uint16)
    x = encode_bands(dn, DISPLAY_RGB_8BIT)
    # The lookup table (uint16) and the arithmetic path (any other dtype) are the same rule.
    assert np.array_equal(x, encode_bands(dn.astype(np.float64), DISPLAY_RGB_8BIT))
    assert np.array_equal(x, encode_bands(dn.astype(np.int32), DISPLAY_RGB_8BIT))
    # 256 levels, saturated at 0.3, and exactly the DN the gallery packs make of each 8-bit value.
    levels = np.arange(256)
    chip_dn = np.rint(levels / 255.0 * 3000.0)  # the packs' rule, DN = value / 255 x 3000
    assert np.array_equal(np.unique(x), (chip_dn / DN_SCALE).astype(np.float32))
    assert x[3000:].min() == x[65535] == np.float32(0.3)
    # Idempotent: already-encoded pixels (the chips) are unchanged, bit for bit.
    chips = chip_dn.astype(np.uint16)
    assert np.array_equal(encode_bands(chips, DISPLAY_RGB_8BIT), encode_bands(chips, REFLECTANCE))
    assert np.array_equal(encode_bands((x * DN_SCALE).round().astype(np.uint16), DISPLAY_RGB_8BIT), x)


def test_reflectance_is_the_old_rule_bit_for_bit():
    dn = np.arange(65536, dtype=np.uint16)
    old = np.clip(dn.astype(np.float32) / DN_SCALE, 0.0, 1.0)
    assert np.array_equal(encode_bands(dn, REFLECTANCE), old)
    assert np.array_equal(encode_bands(dn, None), old)


def test_gallery_to_dn_is_unchanged():
    from asgm.sources.gallery import to_dn

    chip = np.arange(256, dtype=np.uint8).repeat(9).reshape(48, 48, 1).repeat(3, axis=2)
    old = np.rint(chip.astype(np.float64).transpose(2, 0, 1) / 255.0 * 3000.0).astype(np.uint16)
    assert np.array_equal(to_dn(chip), old)


def test_an_encoding_is_validated():
    with pytest.raises(ValueError, match="needs clip and levels"):
        InputEncoding(name="display_rgb_8bit")
    with pytest.raises(ValueError, match="takes no clip"):
        InputEncoding(clip=0.3)


# -- recorded by stores and runs ---------------------------------------------------------------------
def test_stores_record_their_encoding_and_old_ones_get_it_from_their_source():
    from asgm.sources import demo
    from asgm.sources.common import store_meta

    assert demo.store_meta().encoding == {"name": "display_rgb_8bit", "clip": 0.3, "levels": 256}

    class Fetched:  # the attributes store_meta reads of a STAC / Earth Engine source
        name, size, product_level, start, end, credits = "stac", 48, "L2A", "2021-01-01", "2022-01-01", ()

        def store_extra(self):
            return {}

    assert store_encoding(store_meta(Fetched())) == REFLECTANCE
    old = dict(name="x", bands=("B4", "B3", "B2"), size=48, product_level="L1C")  # no encoding recorded
    assert store_encoding(StoreMeta(source="demo", **old)) == DISPLAY_RGB_8BIT
    assert store_encoding(StoreMeta(source="amazon", **old)) == DISPLAY_RGB_8BIT
    assert store_encoding(StoreMeta(source="stac", **old)) == REFLECTANCE


def test_a_run_without_a_recorded_encoding_gets_its_training_store_s(data_env, demo_store):
    shutil.copytree(demo_store.root, data_env / "data" / "stores" / "demo")
    folder = runs.create_run(ExperimentConfig(store="demo", epochs=1), "old-run")
    raw = json.loads(folder.file("config.json").read_text())
    raw.pop("encoding")  # as written before encodings were recorded
    folder.file("config.json").write_text(json.dumps(raw))
    assert runs.get_run("old-run").config.encoding == DISPLAY_RGB_8BIT
    assert runs.read_run_config(folder).encoding == DISPLAY_RGB_8BIT
    gone = with_store_encoding(ExperimentConfig(store="amazon"), root=data_env / "nowhere")
    assert gone.encoding == DISPLAY_RGB_8BIT  # the Amazon pack, not built here
    assert with_store_encoding(ExperimentConfig(store="stac-48"), root=data_env / "nowhere").encoding == REFLECTANCE


def test_the_shipped_default_model_says_display_rgb_8bit():
    raw = json.loads((MODELS / "detector-default" / "config.json").read_text())
    assert raw["encoding"] == {"name": "display_rgb_8bit", "clip": 0.3, "levels": 256}


# -- the real scene --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def scene(tmp_path_factory, mirror):
    root = tmp_path_factory.mktemp("scene")
    raw = real_scene.scene_dn()
    chip = real_scene.as_gallery_chip(raw)
    assert (raw > 3000).mean() > 0.1 and not np.array_equal(raw, chip)  # clouds well above 0.3
    return {
        "root": root,
        "raw": raw,
        "chip": chip,
        "raw_store": real_scene.write_store(root / "stores", "scene-raw", raw, REFLECTANCE),
        "chip_store": real_scene.write_store(root / "stores", "scene-chip", chip, DISPLAY_RGB_8BIT),
    }


@pytest.fixture
def shipped(monkeypatch, tmp_path):
    use_folders(monkeypatch, tmp_path)
    monkeypatch.setenv("ASGM_MODELS_DIR", str(MODELS))
    inference.clear_cache()
    yield runs.get_run("detector-default")
    inference.clear_cache()


def test_predict_parity_on_the_real_scene(scene, shipped):
    raw = inference.predict_store("detector-default", scene["raw_store"])
    chip = inference.predict_store("detector-default", scene["chip_store"])
    assert len(raw) == 400
    assert np.abs(raw["probability"] - chip["probability"]).max() <= TOL
    assert (raw["decision"] == chip["decision"]).all()
    # Without the encoding (the old rule) the same raw windows give other answers: the fix is what matters.
    model = runs.load_model("detector-default")
    cfg = shipped.config
    old_x = PatchSource(
        scene["raw_store"], cfg.model_copy(update={"encoding": REFLECTANCE}), scene["raw_store"].sample_ids()
    ).load_batch(np.arange(400))
    old = inference.recipe_probabilities(model, old_x, cfg, inference.run_temperature(shipped.metrics))
    assert np.abs(old - raw["probability"].to_numpy()).max() > 0.1


def test_patch_classifier_parity_on_the_real_scene(scene, shipped):
    model = inference.CompiledModel(runs.load_model("detector-default"))
    for sid in scene["raw_store"].sample_ids()[::20]:
        a = inference.classify_patch(model, shipped, scene["raw_store"].read_patch(sid), None)
        b = inference.classify_patch(model, shipped, scene["chip_store"].read_patch(sid), None)
        assert abs(a["prob"] - b["prob"]) <= TOL and a["decision"] == b["decision"]
        # The Patch viewer's input and Grad-CAM are the same input.
        xa = inference.prepare_input(scene["raw_store"].read_patch(sid), None, shipped.config)
        assert np.array_equal(xa, inference.prepare_input(scene["chip_store"].read_patch(sid), None, shipped.config))


def test_training_inputs_are_the_same_encoding(scene, shipped):
    cfg = shipped.config.model_copy(update={"store": "scene-raw"})
    ids = scene["raw_store"].sample_ids()[:32]
    a = PatchSource(scene["raw_store"], cfg, ids).load_batch(np.arange(32), np.arange(32) % 8)
    b = PatchSource(scene["chip_store"], cfg, ids).load_batch(np.arange(32), np.arange(32) % 8)
    assert np.array_equal(a, b)


def test_scan_parity_on_the_real_scene(scene, shipped, tmp_path):
    from asgm.scan import driver

    out = {}
    for kind in ("raw", "chip"):
        mosaic = real_scene.write_mosaic(tmp_path / f"{kind}.tif", scene[kind])
        summary = driver.scan(
            real_scene.mosaic_aoi(),
            2021,
            "detector-default",
            tmp_path / f"scan-{kind}",
            driver.ScanOptions(source=str(mosaic), tile_windows=8),
        )
        assert summary["input_encoding"] == DISPLAY_RGB_8BIT.model_dump()
        with np.load(tmp_path / f"scan-{kind}" / "cells.npz") as z:
            out[kind] = z["prob"]
    scored = np.isfinite(out["raw"])
    assert scored.sum() >= 300 and np.array_equal(scored, np.isfinite(out["chip"]))
    assert np.abs(out["raw"][scored] - out["chip"][scored]).max() <= TOL


def test_a_run_trained_on_reflectance_is_unchanged(scene, shipped, monkeypatch, tmp_path):
    """The same weights recorded as trained on reflectance: inputs are DN / 10000 as before the change."""
    models = tmp_path / "models"
    shutil.copytree(MODELS / "detector-default", models / "refl-run")
    cfg_file = models / "refl-run" / "config.json"
    raw = json.loads(cfg_file.read_text())
    raw.update(encoding=REFLECTANCE.model_dump(), store="scene-raw")
    cfg_file.write_text(json.dumps(raw))
    monkeypatch.setenv("ASGM_MODELS_DIR", str(models))
    inference.clear_cache()
    info = runs.get_run("refl-run")
    store = scene["raw_store"]
    got = inference.predict_store("refl-run", store)
    x_old = np.stack(
        [
            np.clip(store.read_patch(s).data.astype(np.float32) / DN_SCALE, 0, 1).transpose(1, 2, 0)
            for s in store.sample_ids()
        ]
    )
    assert np.array_equal(x_old[0], prepare_input(store.read_patch("w000").data, store.meta.bands, None, info.config))
    want = inference.recipe_probabilities(
        runs.load_model("refl-run"), x_old, info.config, inference.run_temperature(info.metrics)
    )
    assert np.abs(got["probability"].to_numpy() - want).max() <= 1e-6
    inference.clear_cache()


def test_the_app_line_says_which_encoding_and_that_it_was_applied(scene, shipped):
    line = encoding_note(shipped.config, scene["raw_store"])
    assert "display_rgb_8bit" in line and "encoded that way" in line and "\n" not in line
    assert "as they are" in encoding_note(shipped.config, scene["chip_store"])
    refl = shipped.config.model_copy(update={"encoding": REFLECTANCE})
    assert "expects reflectance" in encoding_note(refl, scene["raw_store"])
