import numpy as np
import pytest
from shapely.geometry import box

from asgm.config import OSM_LAYERS, S2_BANDS
from asgm.sources import synthetic


@pytest.mark.parametrize("size", [48, 256])
def test_shapes_bands_and_labelled_synthetic(size):
    s = synthetic.make_scene("syn-pos-0000", 1, -62.0, 6.5, size=size, seed=1)
    assert s.patch.data.shape == (12, size, size) and s.patch.data.dtype == np.uint16
    assert s.patch.bands == S2_BANDS and s.patch.source == "synthetic" and s.patch.product_level == "synthetic"
    assert 0 < s.patch.data.min() and s.patch.data.max() <= 10000


def test_deterministic():
    a = synthetic.make_scene("a", 1, -62.0, 6.5, seed=3)
    b = synthetic.make_scene("a", 1, -62.0, 6.5, seed=3)
    c = synthetic.make_scene("a", 1, -62.0, 6.5, seed=4)
    assert np.array_equal(a.patch.data, b.patch.data) and a.osm.equals(b.osm)
    assert not np.array_equal(a.patch.data, c.patch.data)


def test_osm_vectors_lie_in_patch_and_use_the_keys():
    for seed in range(10):
        s = synthetic.make_scene("x", seed % 2, -62.0, 6.5, seed=seed, size=48)
        assert list(s.osm.columns[:5]) == list(OSM_LAYERS) and s.osm.crs.to_epsg() == 4326
        w, so, e, n = s.patch.grid.bounds
        footprint = box(w, so, e, n)
        for geom in s.osm.to_crs(s.patch.grid.crs).geometry:
            assert geom.intersects(footprint)
        keyed = s.osm[list(OSM_LAYERS)].notna().sum(axis=1)
        assert (keyed >= 1).all()


def test_mining_scenes_differ_as_the_study_describes():
    bare, pond = synthetic.CLASSES.index("bare_soil"), synthetic.CLASSES.index("turbid_pond")
    pos = [synthetic.make_scene("p", 1, -62.0, 6.5, seed=s).cover for s in range(20)]
    neg = [synthetic.make_scene("n", 0, -62.0, 6.5, seed=s, hard_negative=True).cover for s in range(20)]
    assert np.mean([(c == bare).mean() + (c == pond).mean() for c in pos]) > 0.03
    assert np.mean([(c == pond).mean() for c in neg]) == 0
    # hard negatives carry bright look-alikes (sandbars, bare fields)
    look = [synthetic.CLASSES.index("sandbar"), synthetic.CLASSES.index("field")]
    assert np.mean([np.isin(c, look).mean() for c in neg]) > 0.01


def test_build_store(tmp_path):
    import geopandas as gpd

    store = synthetic.build_store("syn", n_pos=3, n_neg=6, n_random=2, root=tmp_path, seed=9)
    idx = store.index()
    assert store.meta.synthetic and (idx.source == "synthetic").all()
    assert idx.set.value_counts().to_dict() == {"curated": 6, "positives": 3, "random": 2}
    vec = gpd.read_parquet(store.root / "osm_vectors.parquet")
    assert set(vec.sample_id) <= set(idx.sample_id)
