"""The Amazon training pack, built from the mirror: counts, ids, years, DN encoding, georeferencing."""

import numpy as np
import pytest

from asgm import registry
from asgm.data import points
from asgm.sources import amazon, demo


@pytest.fixture(scope="module")
def built(tmp_path_factory, mirror):
    """``asgm demo build --pack amazon --json`` run once (the build takes a minute): (report, store)."""
    from _engine import cli_json
    from _shared import once_per_run

    from asgm.data.store import PatchStore

    root, report = once_per_run(
        tmp_path_factory, "amazon-pack", lambda root: cli_json(["demo", "build", "--pack", "amazon", "--json"], root)
    )
    return report, PatchStore.open("amazon", root=root / "stores")


@pytest.fixture(scope="module")
def amazon_store(built):
    return built[1]


def test_pack_counts_sets_and_years(amazon_store):
    idx = amazon_store.index()
    pack = idx[~idx.set.isin(demo.SETS)]
    # data README: 1,461 positive and 1,450 negative chips (A + F); one positive file lists one point twice
    assert (pack.label == 1).sum() == 1461 - 1
    assert (pack.label == 0).sum() == 1450
    assert len(idx) == 491 + 1460 + 1450 and idx.sample_id.is_unique
    assert set(pack.set) == {s.name for s in amazon.SETS}
    years = pack.groupby("set").year.unique().to_dict()
    assert list(years["v4.18_2025old_core_positives"]) == [2025]
    assert list(years["dredge_mining_positives2025-08"]) == [2024]
    assert list(years["full_amazon_v9_negatives"]) == [2019] and list(years["v3.1_2023_negatives"]) == [2023]
    assert (idx[idx.set.isin(demo.SETS)].year == 2019).all()
    assert amazon_store.meta.source == "amazon" and any("CC BY 4.0" in c for c in amazon_store.meta.credits)


def test_code_letters_match_gallery_chip_counts():
    # the data README's check: #A (#F) letters == non-black chips of the clear0.75 (clear0.05) gallery
    from asgm.sources.gallery import CHIP, load_gallery

    for s in amazon.SETS:
        if s.codes is None:
            continue
        assert len(s.codes) == s.n_points
        for code in "AF":
            g = load_gallery(registry.amazon_key(s.name, code))
            cells = [
                g[r : r + CHIP, c : c + CHIP] for r in range(0, g.shape[0], CHIP) for c in range(0, g.shape[1], CHIP)
            ]
            assert sum(cell.max() > 0 for cell in cells) == s.codes.count(code), (s.name, code)


def test_sample_ids_stable_by_file_position(amazon_store):
    idx = amazon_store.index().set_index("sample_id")
    s = next(x for x in amazon.SETS if x.name == "industrial_negatives2025-08")
    pts = points.read_points_file(registry.get(registry.amazon_key(s.name)), s.prefix, 0, s.name)
    # point i keeps id am-ind-<i> whatever its code; T and Z points have no chip
    for i, code in enumerate(s.codes[:40]):
        sid = f"am-ind-{i:04d}"
        assert (sid in idx.index) == (code in "AF")
        if code in "AF":
            assert np.isclose(idx.loc[sid, "lon"], pts.lon[i]) and np.isclose(idx.loc[sid, "lat"], pts.lat[i])


def test_same_dn_encoding_as_demo(amazon_store):
    for p in map(amazon_store.read_patch, amazon_store.sample_ids()[::97]):
        assert p.data.shape == (3, 48, 48) and p.bands == ("B4", "B3", "B2")
        assert p.data.max() <= 3000 and p.data.max() > 0
        # DN = value / 255 * 3000: every DN is one of the 256 display levels
        levels = np.rint(np.arange(256) / 255 * 3000)
        assert np.isin(p.data, levels).all()
        assert p.grid.epsg == points_utm(p.lon, p.lat)


def points_utm(lon, lat):
    from asgm.grid import utm_epsg

    return utm_epsg(lon, lat)


def _best_shift(store, a_id, b_id, search=4):
    """(predicted, best) pixel shift (row, col) of chip b against chip a: predicted from the two grids,
    best = the shift within ``search`` px of it that maximises the correlation of the overlap."""
    a, b = store.read_patch(a_id), store.read_patch(b_id)
    col = round((b.grid.transform.c - a.grid.transform.c) / 10)
    row = round((a.grid.transform.f - b.grid.transform.f) / 10)
    ra, rb = a.data.astype(float).mean(0), b.data.astype(float).mean(0)

    def corr(r, c):
        h, w = 48 - abs(r), 48 - abs(c)
        sa = ra[max(r, 0) : max(r, 0) + h, max(c, 0) : max(c, 0) + w]
        sb = rb[max(-r, 0) : max(-r, 0) + h, max(-c, 0) : max(-c, 0) + w]
        return np.corrcoef(sa.ravel(), sb.ravel())[0, 1]

    cands = [(row + dr, col + dc) for dr in range(-search, search + 1) for dc in range(-search, search + 1)]
    return (row, col), max(cands, key=lambda rc: corr(*rc))


@pytest.mark.parametrize(
    "set_name",
    ["v4.18_2025old_core_positives", "v3.3_2023_positives", "industrial_negatives2025-08", "full_amazon_v9_negatives"],
)
def test_close_pairs_overlap_at_the_shift_their_grids_predict(amazon_store, set_name):
    s = next(x for x in amazon.SETS if x.name == set_name)
    idx = amazon_store.index()
    part = idx[idx.set == set_name].reset_index(drop=True)
    # the gallery of each chip: its cloud code (negatives), from the id's file position
    code = [s.codes[int(sid.rsplit("-", 1)[1])] if s.codes else "A" for sid in part.sample_id]
    xy = part[["lon", "lat"]].to_numpy()
    pairs = []
    for i in range(len(part)):
        d = points.haversine_m(xy[i, 0], xy[i, 1], xy[:, 0], xy[:, 1])
        pairs += [(i, j) for j in np.flatnonzero((d > 50) & (d < 300)) if j > i and code[i] == code[j]]
    assert pairs, f"no close pair in {set_name}"
    for i, j in pairs[:4]:
        predicted, best = _best_shift(amazon_store, part.sample_id[i], part.sample_id[j])
        assert max(abs(predicted[0] - best[0]), abs(predicted[1] - best[1])) <= 1, (part.sample_id[i], predicted, best)


def test_cli_builds_the_amazon_pack(built):
    report = built[0]
    assert report["name"] == "amazon" and report["patches"] == 3401
    assert report["by_label"] == {"0": 282 + 1450, "1": 209 + 1460}
