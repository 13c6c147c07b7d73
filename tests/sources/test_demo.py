import numpy as np

from asgm.data import points
from asgm.sources import demo


def test_demo_pack_counts_and_sets(demo_store):
    idx = demo_store.index()
    assert (idx.label == 1).sum() == 209
    assert (idx.label == 0).sum() == 248 + 34 == 282
    assert demo_store.meta.bands == ("B4", "B3", "B2") and demo_store.meta.source == "demo"
    assert idx.sample_id.is_unique


def test_demo_study_curated_negatives_present(demo_store, mirror):
    idx = demo_store.index()
    curated = points.load_points(["curated"])
    in_demo = idx[idx.set == "curated"]
    assert set(in_demo.sample_id) <= set(curated.sample_id)
    # the 248 clear (code A) chips include 239 study curated negatives, as the data README records
    a_ids = {sid for sid, code in zip(_eg_negative_ids(demo_store), demo.NEGATIVE_CODES, strict=True) if code == "A"}
    assert len(a_ids & set(in_demo.sample_id)) == 239
    # ids and coordinates agree with the study file
    merged = in_demo.merge(curated[["sample_id", "lon", "lat"]], on="sample_id", suffixes=("", "_study"))
    assert np.allclose(merged.lon, merged.lon_study, atol=1e-9) and np.allclose(merged.lat, merged.lat_study, atol=1e-9)


def _eg_negative_ids(store):
    """Demo sample ids of Earth Genome's 332 negatives in file order (None where no chip)."""
    items = {(round(r.lon, 9), round(r.lat, 9)): r.sample_id for r in store.index().itertuples() if r.label == 0}
    from asgm import registry
    from asgm.data.points import read_points_file

    neg = read_points_file(registry.get("eg_negatives"), "egn", 0, "x")
    return [items.get((round(r.lon, 9), round(r.lat, 9))) for r in neg.itertuples()]


def test_no_black_chips_and_real_reflectance(demo_store):
    for p in map(demo_store.read_patch, demo_store.sample_ids()[::7]):
        assert p.data.shape == (3, 48, 48)
        assert p.masked_fraction < 1.0 and p.data.max() > 0
        assert p.data.max() <= 3000  # inverse of the /3000 display stretch
    idx = demo_store.index()
    assert (idx.masked_fraction < 1.0).all()


def test_chip_placement_matches_neighbouring_points(demo_store):
    # Two positives under 300 m apart: their chips overlap, shifted by the pixel offset their coordinates predict.
    idx = demo_store.index()
    pos = idx[idx.label == 1].reset_index(drop=True)
    xy = pos[["lon", "lat"]].to_numpy()
    best = None
    for i in range(len(pos)):
        others = np.delete(np.arange(len(pos)), i)
        j_idx, dist = points.nearest_index_m(xy[i : i + 1], xy[others])
        if 50 < dist[0] < 300:  # 31 such positive pairs exist (data README)
            best = (i, others[j_idx[0]])
            break
    assert best is not None
    a, b = (demo_store.read_patch(pos.sample_id[k]) for k in best)
    # predicted offset of b relative to a in pixels, from the two grids
    col = round((b.grid.transform.c - a.grid.transform.c) / 10)
    row = round((a.grid.transform.f - b.grid.transform.f) / 10)
    ra, rb = a.data.astype(float).mean(0), b.data.astype(float).mean(0)
    h = 48 - max(abs(row), abs(col))
    sa = ra[max(row, 0) : max(row, 0) + h, max(col, 0) : max(col, 0) + h]
    sb = rb[max(-row, 0) : max(-row, 0) + h, max(-col, 0) : max(-col, 0) + h]
    same = np.corrcoef(sa.ravel(), sb.ravel())[0, 1]
    shifted = np.corrcoef(ra[:h, :h].ravel(), rb[:h, :h].ravel())[0, 1] if (row, col) != (0, 0) else -1
    assert same > 0.8 and same > shifted


def test_demo_cli_offline(data_env, mirror, capsys):
    import json

    from asgm.cli import main

    assert main(["demo", "build", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["patches"] == 491 and report["by_label"] == {"0": 282, "1": 209}
    assert any("CC BY 4.0" in c for c in report["credits"])
