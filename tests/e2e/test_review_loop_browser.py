"""Browser test of the whole review loop (issue 23), offline, in its own file so it runs beside the other review
browser tests: scan a SYNTHETIC mosaic, mark five false detections "not mining" with the keyboard, train with
the labels, scan again."""

from __future__ import annotations

import json
import time

import pytest
from conftest import app_server
from review_scenario import folders, mosaic
from ui_env import env_vars

pytestmark = pytest.mark.e2e


LOOP_EPOCHS = 40  # the parent's and the retrained run's epochs: under a second each on the small store


def _store_without_bare_fields(name: str, n_pos: int = 120, n_neg: int = 180, seed: int = 3):
    """A SYNTHETIC store whose negatives never show a bare field or a sandbar: a model trained on it has never seen
    the mosaic's bright look-alikes as "not mining", so it calls some of them mining (the false detections a
    reviewer then marks)."""
    import numpy as np

    from asgm.config import REFLECTANCE, S2_BANDS
    from asgm.data.store import PatchStore, StoreMeta
    from asgm.sources import synthetic

    rng = np.random.default_rng(seed)
    meta = StoreMeta(
        name=name,
        source="synthetic",
        bands=S2_BANDS,
        size=48,
        product_level="synthetic",
        date_start="2021-01-01",
        date_end="2022-01-01",
        synthetic=True,
        description="SYNTHETIC scenes without bare fields among the negatives (tests).",
        encoding=REFLECTANCE.model_dump(),
    )
    store = PatchStore.create(meta)
    field = synthetic.CLASSES.index("field")
    patches, k = [], 0
    while len(patches) < n_pos + n_neg:
        label = 1 if len(patches) < n_pos else 0
        lon, lat = float(rng.uniform(-64.0, -62.5)), float(rng.uniform(7.0, 8.0))  # far from the mosaic
        prefix = "pos" if label else "neg"
        scene = synthetic.make_scene(f"{prefix}-{k:04d}", label, lon, lat, 48, int(rng.integers(2**31)))
        k += 1
        if label == 0 and (scene.cover == field).any():
            continue
        patches.append(scene.patch)
    store.write_patches(patches)
    return store


def _loop_parent() -> str:
    """The parent run: the study's CNN with the default detector's set balancing and cosine schedule, trained
    briefly on the store without bare fields. The study's CNN, because the BatchNorm of the detector net does not
    settle on 300 SYNTHETIC patches: its validation probabilities sank to ~0.01 (the threshold with them), and
    which bare fields it then called mining changed with the CPU the test ran on. Set balancing is what makes
    four reviews count: the ``reviewed`` set weighs as a set, not as four patches among 200 (the default recipe).
    ``split_eps_m`` is 450 m so the five reviewed windows (picked 480 m or more apart: no shared pixel) are not
    all joined to the held-out newest one by the 3 km leak rule, which is for places: these five share one
    5 km mosaic. The store's patches lie 70 km and more from the mosaic, so no review is near a test patch."""
    from asgm.config import S2_BANDS, ExperimentConfig
    from asgm.training.train import train

    _store_without_bare_fields("nofields")
    config = ExperimentConfig(
        name="parent without bare fields (tests)",
        store="nofields",
        bands=S2_BANDS,
        architecture="study",
        epochs=LOOP_EPOCHS,
        batch_size=16,
        learning_rate=3e-4,
        lr_schedule="cosine",
        balance_sets=True,
        split_eps_m=450.0,
        seed=7,
    )
    return train(config, n_boot=20)


def _scan(name: str, mosaic, aoi, run_id: str):
    from asgm.scan import driver
    from asgm.scan import results as scan_results

    driver.scan(aoi, 2022, run_id, scan_results.scans_dir() / name, driver.ScanOptions(source=str(mosaic.path)))
    return scan_results.open_scan(name)


def _false_detections(s, mines, clearance_m: float = 300.0, apart_m: float = 480.0) -> list[str]:
    """Detected windows (by probability, highest first) whose footprint stays ``clearance_m`` away from every known
    mine (the mine's track reaches out of its footprint), each ``apart_m`` or more from the ones before it (a
    window's width: no two share a pixel)."""
    import numpy as np
    from shapely.geometry import box as sbox

    from asgm.data.points import nearest_distance_m
    from asgm.grid import centre_lonlat
    from asgm.scan import results as scan_results

    cells = np.load(s.folder / "cells.npz")
    prob, detected = cells["prob"], cells["detected"]
    utm = mines.to_crs(f"EPSG:{s.grid.epsg}").geometry.buffer(clearance_m)
    out: list[str] = []
    taken: list[tuple[float, float]] = []
    for i, j in sorted(zip(*np.nonzero(detected), strict=True), key=lambda ij: -prob[ij]):
        grid = scan_results.window_grid(s, int(i), int(j))
        centre = tuple(float(v) for v in centre_lonlat(grid))
        if utm.intersects(sbox(*grid.bounds)).any():
            continue
        if taken and nearest_distance_m(np.array([centre]), np.array(taken))[0] < apart_m:
            continue
        out.append(f"{i},{j}")
        taken.append(centre)
    return out


def _assert_mines_found(s, mines, who: str) -> None:
    det = s.detections.to_crs(f"EPSG:{s.grid.epsg}")
    for site, geom in zip(mines["site"], mines.to_crs(f"EPSG:{s.grid.epsg}").geometry, strict=True):
        assert det.intersects(geom).any(), f"{who} does not detect the known mine {site}"


def test_the_review_loop_scan_mark_train_rescan(tmp_path, new_page):
    """Done-when of issue 23, in Chromium against a real ``streamlit run`` on the SYNTHETIC demo mosaic: a scan by a
    parent model that never saw a bare field as a negative finds the known mines and some false detections; five
    of those are marked "not mining" in the Patch viewer with the key n; "Train with my labels" is clicked on the
    Train page and runs as the one background job; then the mosaic is scanned again with the new run (its own
    validation-tuned threshold). Every marked window scores lower than before, at least four of the five (the
    held-out one among them) fall below the new threshold, and every known mine is still detected.

    The two scans are run through the core (``asgm.scan.driver.scan``, what the Region scan page's job runs) so
    the test measures the loop, not the scan form; the page-launched training job is waited for through its run
    folder. Of the five marks the newest is held out by review time and never trained on (the 20 % rule), so it
    falling below the threshold is learned from the other four."""
    import numpy as np

    from asgm.data.labels import LabelStore
    from asgm.model import runs

    page = new_page
    t0 = time.monotonic()
    env = folders(tmp_path)
    with env_vars(env):
        parent = _loop_parent()
        m, aoi = mosaic(tmp_path, size_px=500, n_mines=3, seed=2)
        before = _scan("before", m, aoi, parent)
        _assert_mines_found(before, m.mines, "the parent")
        false = _false_detections(before, m.mines)
        assert len(false) >= 5, f"the parent made only {len(false)} false detection(s): {false}"
        marked = false[:5]
        p_before = before.summary["thresholds"]["high"]
    setup_s = time.monotonic() - t0
    with app_server(env, tmp_path) as url:
        for window in marked:
            page.goto(f"{url}/Patch_viewer?scan=before&window={window}")
            page.get_by_text(f"window {window}", exact=False).first.wait_for()
            page.get_by_role("button", name="Not mining (n)").wait_for()
            page.wait_for_timeout(600)  # the shortcut component's script attaches after the buttons render
            page.get_by_role("heading", name="Patch viewer").click()
            page.keyboard.press("n")
            with env_vars(env):
                deadline = time.monotonic() + 60
                while (rec := LabelStore().get(f"scan:before:{window}")) is None:
                    assert time.monotonic() < deadline, f"key n did not mark window {window}"
                    time.sleep(0.3)
            assert rec["label"] == "not_mining" and rec["run_id"] == parent
        page.goto(f"{url}/Train")
        page.get_by_text("5 reviewed item(s) can join the training data", exact=False).wait_for(timeout=120_000)
        page.get_by_role("button", name="Train with my labels").click()
        started = page.get_by_text("Training with your labels started as run", exact=False)
        started.wait_for(timeout=60_000)
        new_run = started.inner_text().split("started as run")[1].split()[0].strip("*")
        with env_vars(env):
            deadline = time.monotonic() + 300
            while (info := runs.get_run(new_run)).status in ("queued", "running"):
                assert time.monotonic() < deadline, "train with my labels did not finish in 5 minutes"
                time.sleep(1.0)
            assert info.status == "completed", info.error
            assert runs.RunFolder.of(new_run).file(runs.REVIEWED_MARKER).is_file()
            review = runs.RunFolder.of(new_run).file("review.json")  # written after training completes the run
            while not review.is_file():
                assert time.monotonic() < deadline, "train with my labels wrote no before/after report"
                time.sleep(0.5)
            counts = json.loads(review.read_text())["counts"]
            # 20 % of five: the newest mark is held out by review time, the other four train.
            assert (counts["reviewed"], counts["trained"], counts["held_out"]) == (5, 4, 1), counts
            assert counts["held_out_by_distance"] == counts["dropped_near_test"] == 0, counts
    with env_vars(env):
        after = _scan("after", m, aoi, new_run)
        prob = np.load(after.folder / "cells.npz")["prob"]
        high = after.summary["thresholds"]["high"]
        scores = {w: float(prob[tuple(int(v) for v in w.split(","))]) for w in marked}
        p0 = np.load(before.folder / "cells.npz")["prob"]
        was = {w: float(p0[tuple(int(v) for v in w.split(","))]) for w in marked}
        print(f"setup {setup_s:.0f} s, total {time.monotonic() - t0:.0f} s; thresholds {p_before} -> {high}")
        print(f"marked windows before {was} after {scores}")
        assert all(scores[w] < was[w] for w in marked), f"a marked window did not score lower: {was} -> {scores}"
        assert scores[marked[-1]] < high, f"the held-out mark {marked[-1]} is not below {high}: {scores}"
        # Measured on an AMD EPYC (seeded, the same every run): the five marked windows go from 0.75-0.98 to 0.46,
        # all below the new run's own threshold (0.71); the parent's threshold was 0.50. Seeds 5 and 8 pass too
        # (seed 6's fourth and fifth false detections are weak ones, 0.39, joined by the hysteresis rule).
        below = [w for w in marked if scores[w] < high]
        assert len(below) >= 4, f"only {below} of the marked windows are below {high}: {scores}"
        _assert_mines_found(after, m.mines, "the run trained with the labels")
