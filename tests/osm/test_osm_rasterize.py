"""Rasterizing OSM vectors onto real UTM patch grids: alignment, options, filters, stores."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from osm_testdata import POS0, SAMPLE_OSM
from pyproj import Transformer
from shapely.geometry import LineString, box

from asgm.config import OSM_LAYERS
from asgm.grid import patch_grid
from asgm.osm import OsmRasterizeError, local_xml
from asgm.osm import fetch as F
from asgm.osm import queries as Q
from asgm.osm.rasterize import RasterizeOptions, parse_filters, patch_grid_of, rasterize_grids, rasterize_store

HW, WW, BU, LU, AE = range(5)
CUR68 = (-67.087665, 6.193454)  # a study curated negative in UTM 19N, far from every sample feature


def block(r0: int, r1: int, c0: int, c1: int, n: int = 48) -> np.ndarray:
    m = np.zeros((n, n), dtype=np.uint8)
    m[r0 : r1 + 1, c0 : c1 + 1] = 1
    return m


@pytest.fixture
def sample_vectors(osm_env) -> gpd.GeoDataFrame:
    return local_xml.fetch_xml(SAMPLE_OSM).features


def one(vectors, grid, **kw) -> np.ndarray:
    return next(rasterize_grids(vectors, [grid], RasterizeOptions(**kw)))


def test_features_land_on_the_right_pixels_of_a_study_patch(sample_vectors):
    grid = patch_grid(*POS0, 48)
    assert grid.epsg == 32620
    m = one(sample_vectors, grid)
    assert m.shape == (5, 48, 48) and m.dtype == np.uint8 and set(np.unique(m)) <= {0, 1}
    # the road through the study point covers the centre pixel and runs unbroken across the patch
    assert m[HW, 24, 24] == 1
    per_col = m[HW].sum(axis=0)
    assert per_col.min() >= 1 and per_col.max() <= 3
    # the river along the centre of column 0 fills column 0 and spills at most onto column 1
    assert m[WW, :, 0].all() and m[WW, :, 2:].sum() == 0
    # an 8 m building inside pixel (10, 34) and a building node at the centre of pixel (40, 40)
    assert m[BU, 10, 34] == 1 and m[BU, 40, 40] == 1
    on = set(zip(*np.nonzero(m[BU]), strict=True))
    assert on - {(10, 34)} <= {(r, c) for r in (39, 40, 41) for c in (39, 40, 41)}
    # landuse polygons cover exactly their pixel blocks (edges 2 m inside the blocks)
    assert np.array_equal(m[LU], block(30, 37, 4, 11) | block(30, 37, 30, 37))
    # the aerodrome 5 km away is not in this patch
    assert m[AE].sum() == 0


def test_river_on_the_edge_and_road_on_the_centre_of_a_256_px_patch(sample_vectors):
    grid = patch_grid(*POS0, 256)
    m = one(sample_vectors, grid)
    assert m[HW, 128, 128] == 1
    # the river is 240 m west of the point: column 128 - 24 = 104, over the 1.2 km it spans (rows 68..188)
    assert m[WW, 69:188, 104].all()
    cols = np.nonzero(m[WW].any(axis=0))[0]
    assert set(cols) <= {103, 104, 105}
    rows = np.nonzero(m[WW].any(axis=1))[0]
    assert 66 <= rows.min() <= 69 and 187 <= rows.max() <= 190


def test_exclude_and_include_filters_act_per_key(sample_vectors):
    grid = patch_grid(*POS0, 48)
    full = one(sample_vectors, grid)
    no_quarry = one(sample_vectors, grid, exclude=parse_filters(["landuse=quarry"]))
    assert np.array_equal(no_quarry[LU], block(30, 37, 30, 37))
    assert np.array_equal(np.delete(no_quarry, LU, 0), np.delete(full, LU, 0))
    only_quarry = one(sample_vectors, grid, include={"landuse": ("quarry",)})
    assert np.array_equal(only_quarry[LU], block(30, 37, 4, 11))
    assert parse_filters(["landuse=quarry,industrial", "landuse=military"]) == {
        "landuse": ("industrial", "military", "quarry")
    }
    for bad in ("landuse", "landuse=", "amenity=bar"):
        with pytest.raises(OsmRasterizeError):
            parse_filters([bad])


def test_study_rule_no_buffer_pixel_centres(sample_vectors):
    grid = patch_grid(*POS0, 48)
    m = one(sample_vectors, grid, buffer_m=0, all_touched=False)
    assert m[HW, 24, 24] == 1
    # the 8 m building holds the centre of pixel (10, 34); the unbuffered node is exactly its pixel
    assert set(zip(*np.nonzero(m[BU]), strict=True)) == {(10, 34), (40, 40)}
    assert m[HW].sum() < one(sample_vectors, grid)[HW].sum()


def test_layer_subset_keeps_the_fixed_order(sample_vectors):
    grid = patch_grid(*POS0, 48)
    opts = RasterizeOptions(layers=("waterway", "highway"))
    assert opts.layers == ("highway", "waterway")
    m = next(rasterize_grids(sample_vectors, [grid], opts))
    full = one(sample_vectors, grid)
    assert np.array_equal(m, full[[HW, WW]])
    with pytest.raises(OsmRasterizeError, match="unknown OSM layer"):
        RasterizeOptions(layers=("amenity",))
    with pytest.raises(OsmRasterizeError, match="buffer"):
        RasterizeOptions(buffer_m=-1)


def test_two_utm_zones_and_empty_areas(sample_vectors):
    grids = [patch_grid(*CUR68, 48), patch_grid(*POS0, 48)]
    assert {g.epsg for g in grids} == {32619, 32620}
    far, near = list(rasterize_grids(sample_vectors, grids))
    assert far.shape == (5, 48, 48) and far.sum() == 0
    assert np.array_equal(near, one(sample_vectors, grids[1]))
    empty = F.empty_vectors()
    assert next(rasterize_grids(empty, [grids[1]])).sum() == 0


def test_rasterize_store_from_a_fetch_cache(osm_env, overpass, make_store):
    store = make_store(
        "study",
        [
            {"sample_id": "pos-0000", "label": 1, "lon": POS0[0], "lat": POS0[1]},
            {"sample_id": "cur-0068", "label": 0, "lon": CUR68[0], "lat": CUR68[1], "set": "curated"},
        ],
    )
    with pytest.raises(OsmRasterizeError, match="asgm osm fetch --store study"):
        rasterize_store(store)
    fetched = F.fetch(Q.store_query(store), overpass_url=overpass.url, backoff_s=0)
    info = rasterize_store(store, options=RasterizeOptions(exclude={"landuse": ("quarry",)}))
    masks, layers = store.read_osm("pos-0000")
    assert layers == OSM_LAYERS
    assert masks[HW, 24, 24] == 1 and masks[WW, :, 0].all()
    assert np.array_equal(masks[LU], block(30, 37, 30, 37))
    far, _ = store.read_osm("cur-0068")
    assert far.sum() == 0
    # the masks sit on the patch's own grid
    with rasterio.open(store.patch_path("pos-0000")) as a, rasterio.open(store.osm_path("pos-0000")) as b:
        assert a.crs == b.crs and a.transform == b.transform and a.shape == b.shape
    recorded = store.osm_info()
    assert recorded == json.loads(json.dumps(info, default=str))
    assert recorded["layers"] == list(OSM_LAYERS) and recorded["buffer_m"] == 5.0 and recorded["all_touched"] is True
    assert recorded["filters"] == {"exclude": {"landuse": ["quarry"]}, "include": {}}
    assert recorded["snapshot_date"] == "2021-12-31T00:00:00Z"
    assert recorded["source_cache"] == str(fetched.path)
    assert recorded["patches"] == 2 and recorded["patches_with_any"] == 1


def test_rasterize_synthetic_store_uses_its_own_vectors(osm_env):
    from asgm.sources import synthetic

    store = synthetic.build_store("synthetic", 3, 3, 0, 48, 5)
    vec_path = store.root / "osm_vectors.parquet"
    assert vec_path.is_file()
    info = rasterize_store(store)
    assert info["source_cache"] == str(vec_path)
    vectors = F.read_vectors(vec_path)
    # every channel is non-empty exactly where a feature of that key touches the patch
    checked = 0
    for sid in store.sample_ids():
        grid = patch_grid_of(store, sid)
        masks, layers = store.read_osm(sid)
        footprint = gpd.GeoSeries([box(*grid.bounds)], crs=grid.epsg).to_crs(4326).iloc[0]
        for j, key in enumerate(layers):
            sub = vectors[vectors[key].notna()]
            touching = sub.to_crs(grid.epsg).intersects(box(*grid.bounds).buffer(-12)).any()
            if touching:
                checked += 1
                assert masks[j].any(), (sid, key)
            if not sub.intersects(footprint.buffer(0.001)).any():
                assert not masks[j].any(), (sid, key)
    assert checked >= 3  # the scenes do carry OSM features


def test_demo_store_alignment(demo_store):
    """On the real demo pack's grids: a road through each patch's point hits its centre pixel and a
    river drawn along the centre of column 0 lands on column 0."""
    ids = demo_store.sample_ids()[:3]
    index = demo_store.index().set_index("sample_id")
    geoms, hw, ww, grids = [], [], [], []
    for sid in ids:
        grid = patch_grid_of(demo_store, sid)
        n = grid.size
        lon, lat = float(index.loc[sid, "lon"]), float(index.loc[sid, "lat"])
        to_ll = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
        x, y = Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True).transform(lon, lat)
        road = LineString([to_ll.transform(x - 800, y + 200), (lon, lat), to_ll.transform(x + 800, y - 200)])
        x0 = grid.transform.c + 0.5 * grid.transform.a
        river = LineString([to_ll.transform(x0, y + 2000 - k * 250) for k in range(17)])
        geoms += [road, river]
        hw += ["track", None]
        ww += [None, "river"]
        grids.append(grid)
    vectors = gpd.GeoDataFrame({"highway": hw, "waterway": ww}, geometry=geoms, crs="EPSG:4326")
    for grid, m in zip(grids, rasterize_grids(vectors, grids), strict=True):
        n = grid.size
        assert m[HW, n // 2, n // 2] == 1
        assert m[WW, :, 0].all() and m[WW, :, 2:].sum() == 0
