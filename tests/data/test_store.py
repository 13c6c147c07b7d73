import numpy as np
import pytest
import rasterio
from pyproj import Transformer

from asgm.data.store import Patch, PatchStore, PatchStoreError, StoreMeta, list_stores, masked_fraction
from asgm.grid import centre_lonlat, patch_grid, utm_epsg


def _meta(name="t", bands=("B4", "B3", "B2"), size=48):
    return StoreMeta(name=name, source="test", bands=bands, size=size, product_level="L1C")


def _patch(sid="pos-0001", lon=-61.9, lat=6.8, size=48, label=1, bands=("B4", "B3", "B2"), seed=0):
    data = np.random.default_rng(seed).integers(100, 3000, size=(len(bands), size, size)).astype(np.uint16)
    return Patch(sid, label, "positives", lon, lat, patch_grid(lon, lat, size), data, bands, source="test")


def test_utm_zone():
    assert utm_epsg(-62.0, 6.5) == 32620 and utm_epsg(-64.5, 6.5) == 32620 and utm_epsg(-66.5, 6.5) == 32619
    assert utm_epsg(-62.0, -6.5) == 32720
    with pytest.raises(ValueError, match="out of range"):
        utm_epsg(200, 6)


@pytest.mark.parametrize("size", [48, 256, 5])
def test_round_trip_georeferencing(tmp_path, size):
    store = PatchStore.create(_meta(size=size), root=tmp_path)
    p = _patch(size=size)
    store.write_patch(p)
    q = store.read_patch("pos-0001")
    assert np.array_equal(p.data, q.data) and q.bands == p.bands and q.label == 1
    path = store.patch_path("pos-0001")
    with rasterio.open(path) as src:  # what a GIS user opens
        assert src.crs.to_epsg() == utm_epsg(p.lon, p.lat)
        assert src.res == (10.0, 10.0) and src.width == src.height == size
        assert src.descriptions == p.bands
        x, y = src.xy(size // 2, size // 2)  # centre of the centre pixel
    px, py = Transformer.from_crs("EPSG:4326", src.crs, always_xy=True).transform(p.lon, p.lat)
    assert abs(x - px) < 5 and abs(y - py) < 5
    assert np.hypot(x - px, y - py) < 1e-6  # exact by construction
    lon, lat = centre_lonlat(q.grid)
    assert abs(lon - p.lon) < 1e-9 and abs(lat - p.lat) < 1e-9


def test_index_columns_and_listing(tmp_path):
    store = PatchStore.create(_meta(), root=tmp_path)
    store.write_patches([_patch("pos-0002", seed=1), _patch("pos-0001", lon=-62.5, seed=2)])
    idx = PatchStore.open("t", root=tmp_path).index()
    assert idx.sample_id.tolist() == ["pos-0001", "pos-0002"]
    for col in [
        "sample_id",
        "label",
        "set",
        "lon",
        "lat",
        "epsg",
        "source",
        "bands",
        "date_start",
        "date_end",
        "masked_fraction",
    ]:
        assert col in idx.columns
    assert list_stores(tmp_path) == ["t"]
    # replacing a patch keeps one row
    store.write_patch(_patch("pos-0001", lon=-62.5, seed=3))
    assert len(store.index()) == 2


def test_masked_fraction_rule():
    data = np.full((3, 10, 10), 500, dtype=np.uint16)
    data[:, :2, :] = 0  # 20 % fully masked rows
    data[0, 2, :] = 25  # mean (25+0+0)/3 < 10? no: band 0 = 25, others 500 -> mean 341, not masked
    assert masked_fraction(data) == pytest.approx(0.2)
    data[:, 3, :] = [[9], [9], [9]]
    assert masked_fraction(data) == pytest.approx(0.3)


def test_all_masked_patch_is_stored_and_reported(tmp_path):
    store = PatchStore.create(_meta(), root=tmp_path)
    p = _patch()
    p.data[:] = 0
    store.write_patch(p)
    assert store.index().masked_fraction.iloc[0] == 1.0


def test_missing_and_corrupt_patch_files(tmp_path):
    store = PatchStore.create(_meta(), root=tmp_path)
    store.write_patches([_patch("pos-0001"), _patch("pos-0002", seed=4)])
    store.patch_path("pos-0001").unlink()
    with pytest.raises(PatchStoreError, match="missing"):
        store.read_patch("pos-0001")
    store.patch_path("pos-0002").write_bytes(b"not a tiff")
    with pytest.raises(PatchStoreError, match="corrupt"):
        store.read_patch("pos-0002")
    with pytest.raises(PatchStoreError, match="no patch"):
        store.read_patch("pos-9999")


def test_bad_writes_and_names(tmp_path):
    store = PatchStore.create(_meta(), root=tmp_path)
    p = _patch()
    p.data = p.data[:2]
    with pytest.raises(PatchStoreError, match="bands"):
        store.write_patch(p)
    with pytest.raises(PatchStoreError, match="invalid store name"):
        PatchStore.create(_meta(name="../x"), root=tmp_path)
    with pytest.raises(PatchStoreError, match="already exists"):
        PatchStore.create(_meta(), root=tmp_path)
    with pytest.raises(PatchStoreError, match="no patch store"):
        PatchStore.open("absent", root=tmp_path)
    assert not list(tmp_path.rglob(".tmp-*"))  # nothing half-written


def test_osm_masks_share_the_patch_grid(tmp_path):
    store = PatchStore.create(_meta(), root=tmp_path)
    store.write_patch(_patch())
    masks = np.zeros((2, 48, 48), dtype=np.uint8)
    masks[0, 24, :] = 1
    store.write_osm("pos-0001", masks, ["highway", "waterway"])
    got, layers = store.read_osm("pos-0001")
    assert layers == ("highway", "waterway") and np.array_equal(got, masks)
    with rasterio.open(store.osm_path("pos-0001")) as a, rasterio.open(store.patch_path("pos-0001")) as b:
        assert a.transform == b.transform and a.crs == b.crs
    with pytest.raises(PatchStoreError, match="shape"):
        store.write_osm("pos-0001", masks[:, :10], ["highway", "waterway"])


def _mixed_store(tmp_path):
    from dataclasses import replace

    store = PatchStore.create(_meta(), root=tmp_path)
    store.write_patches(
        [
            _patch("pos-0001", seed=1),
            _patch("pos-0002", seed=2),
            replace(_patch("neg-0001", label=0, seed=3), set="curated_negatives"),
        ]
    )
    return store


def test_summary_counts_come_from_store_json_without_reading_the_index(tmp_path):
    import json

    _mixed_store(tmp_path)
    meta = json.loads((tmp_path / "t" / "store.json").read_text())
    assert (meta["patches"], meta["by_label"], meta["by_set"]) == (
        3,
        {"0": 1, "1": 2},
        {"curated_negatives": 1, "positives": 2},
    )
    store = PatchStore.open("t", root=tmp_path)
    s = store.summary()
    assert store._index is None  # the index was never parsed
    assert (s["patches"], s["by_label"], s["by_set"]) == (3, {"0": 1, "1": 2}, {"curated_negatives": 1, "positives": 2})


def test_summary_falls_back_to_the_index_for_old_or_changed_stores(tmp_path):
    import json

    _mixed_store(tmp_path)
    meta_file, index_file = tmp_path / "t" / "store.json", tmp_path / "t" / "index.csv"
    expected = {"patches": 3, "by_label": {"0": 1, "1": 2}, "by_set": {"curated_negatives": 1, "positives": 2}}

    # A store written before the counts were recorded: counted from its index.
    meta = json.loads(meta_file.read_text())
    old = {k: v for k, v in meta.items() if k not in ("by_label", "by_set")}
    meta_file.write_text(json.dumps(old))
    store = PatchStore.open("t", root=tmp_path)
    s = store.summary()
    assert store._index is not None and {k: s[k] for k in expected} == expected

    # Recorded counts that disagree with the recorded patch count are not trusted.
    meta_file.write_text(json.dumps({**meta, "by_label": {"0": 5, "1": 2}}))
    s = PatchStore.open("t", root=tmp_path).summary()
    assert {k: s[k] for k in expected} == expected

    # An index edited since (a row added by hand): its own counts, not the stale recorded ones.
    meta_file.write_text(json.dumps(meta))
    lines = index_file.read_text().splitlines(keepends=True)
    index_file.write_text("".join(lines) + lines[1].replace("neg-0001", "neg-0002"))
    s = PatchStore.open("t", root=tmp_path).summary()
    assert (s["patches"], s["by_label"], s["by_set"]) == (4, {"0": 2, "1": 2}, {"curated_negatives": 2, "positives": 2})

    # A cut index is reported, as before, rather than summarised from store.json.
    index_file.write_text("".join(lines[:-1]))
    with pytest.raises(PatchStoreError, match="truncated"):
        PatchStore.open("t", root=tmp_path).summary()
