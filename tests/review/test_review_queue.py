"""The review queue and item resolution (asgm.review.queue, asgm.review.items): most uncertain or most confident
first, done / left counts from the label store, items checked against their store or SYNTHETIC scan."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rasterio
from _engine import toy_store, use_folders
from rasterio.warp import transform_bounds
from scan_support import detector_run
from shapely.geometry import box

from asgm.data.labels import LabelsError, LabelStore
from asgm.review import items, queue
from asgm.scan import driver
from asgm.scan import results as scan_results
from asgm.sources.synthetic_mosaic import write_mosaic


def _frame(probs: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame({"item_id": list(probs), "prob": list(probs.values())})


def test_uncertain_first_and_confident_first(tmp_path):
    probs = {"a": 0.95, "b": 0.52, "c": 0.10, "d": 0.40, "e": float("nan"), "f": 0.58}
    labels = LabelStore(tmp_path / "l.gpkg")
    q = queue.build("store", "toy", _frame(probs), 0.5, "uncertain", labels=labels)
    assert list(q.items["item_id"]) == ["b", "f", "d", "c", "a", "e"]  # |p - 0.5| ascending, unscored last
    q = queue.build("store", "toy", _frame(probs), 0.5, "confident", labels=labels)
    assert list(q.items["item_id"]) == ["a", "f", "b", "d", "c", "e"]
    q = queue.build("store", "toy", _frame(probs), 0.3, "uncertain", labels=labels)
    assert q.items["item_id"].iloc[0] == "d"  # the threshold decides, not 0.5
    with pytest.raises(LabelsError, match="queue order 'random'"):
        queue.build("store", "toy", _frame(probs), 0.5, "random", labels=labels)


def test_store_queue_counts_done_and_left_and_skips_reviewed(data_env):
    store = toy_store(data_env / "data" / "stores", n_pos=4, n_neg=6)
    ids = sorted(store.index()["sample_id"])
    probs = _frame({sid: 0.5 + (k - 5) / 20 for k, sid in enumerate(ids)})
    probs.attrs["threshold"] = 0.5
    labels = LabelStore()
    q = queue.store_queue("toy", "run-x", labels=labels, probabilities=probs.rename(columns={"item_id": "sample_id"}))
    assert (q.total, q.done, q.left) == (10, 0, 10)
    first = q.next_item()
    assert first == ids[5]  # p = 0.5 exactly
    items.mark(items.store_item("toy", first), "not_mining", run_id="run-x", probability=q.probability(first))
    items.mark(items.store_item("toy", ids[0]), "unsure")
    q = queue.store_queue("toy", "run-x", labels=labels, probabilities=probs.rename(columns={"item_id": "sample_id"}))
    assert (q.done, q.left) == (2, 8)
    assert first not in q.pending() and ids[0] not in q.pending()
    assert q.next_item() != first and q.next_item(skip=(q.next_item(),)) == q.pending()[1]
    summary = q.summary(head=3)
    assert summary["done"] == 2 and summary["left"] == 8 and len(summary["next"]) == 3
    rec = labels.get(f"store:toy:{first}")
    assert rec is not None and rec["probability"] == pytest.approx(0.5) and rec["run_id"] == "run-x"
    row = store.index().set_index("sample_id").loc[first]
    assert rec["lon"] == pytest.approx(row["lon"]) and rec["lat"] == pytest.approx(row["lat"])


def test_unknown_store_items_are_refused(data_env):
    toy_store(data_env / "data" / "stores", n_pos=2, n_neg=2)
    with pytest.raises(items.UnknownItemError, match="no patch 'pos-9999' in store 'toy'"):
        items.store_item("toy", "pos-9999")
    with pytest.raises(LabelsError, match="no patch store 'nope'"):
        items.store_item("nope", "pos-0000")
    with pytest.raises(LabelsError, match="needs its lon and lat"):
        items.resolve("amw", "amw-2023", "17")
    assert items.resolve("amw", "amw-2023", "17", -70.0, -12.0).key == "amw:amw-2023:17"


@pytest.fixture(scope="module")
def scan_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("review-scan")
    with pytest.MonkeyPatch.context() as mp:
        use_folders(mp, root)
        run_id = detector_run()
        m = write_mosaic(root / "m.tif", -61.8, 6.4, size_px=400, n_mines=2, seed=1, year=2022)
        with rasterio.open(m.path) as src:
            aoi = box(*transform_bounds(src.crs, "EPSG:4326", *src.bounds)).buffer(-0.002)
        options = driver.ScanOptions(source=str(m.path), tile_windows=8)
        driver.scan(aoi, 2022, run_id, scan_results.scans_dir() / "madre", options)
    return root


def test_scan_queue_orders_windows_and_marks_resolve_to_their_centre(scan_world, monkeypatch, tmp_path):
    use_folders(monkeypatch, scan_world)
    labels = LabelStore(tmp_path / "l.gpkg")
    q = queue.scan_queue("madre", "confident", labels=labels)
    s = scan_results.open_scan("madre")
    prob = scan_results.window_probabilities(s)
    assert q.total == int(np.isfinite(prob).sum()) and q.done == 0
    top = q.next_item()
    i, j = scan_results.parse_window(top)
    assert prob[i, j] == pytest.approx(np.nanmax(prob))
    assert q.threshold == pytest.approx(s.thresholds["high"]) and q.run_id == s.identity["run_id"]
    item = items.scan_item("madre", top)
    patch = scan_results.window_patch(s, i, j)
    assert (item.lon, item.lat) == pytest.approx((patch.lon, patch.lat)) and item.year == 2022
    items.mark(item, "mining", probability=q.probability(top), labels=labels)
    q2 = queue.scan_queue("madre", "confident", labels=labels)
    assert q2.done == 1 and q2.next_item() != top
    uq = queue.scan_queue("madre", "uncertain", labels=labels)
    first = uq.items.iloc[0]
    assert abs(first["prob"] - uq.threshold) == pytest.approx(np.nanmin(np.abs(prob - uq.threshold)))
    with pytest.raises(items.UnknownItemError, match="outside scan"):
        items.scan_item("madre", "999,999")
    with pytest.raises(items.UnknownItemError, match="no scan named"):
        items.scan_item("nothing", "0,0")
