"""Part 2 of the Amazon training pack, built from the mirror with the CLI: counts per set (data README), the
+8 chip offset of ``ACAexpanded_amazon_positives2025-08``, excluded rows left out, ids, cloud thresholds,
confuser classes, georeferencing."""

import numpy as np
import pytest

from asgm import registry
from asgm.data import points
from asgm.data.store import PatchStore
from asgm.sources import amazon, demo
from asgm.sources.gallery import gallery_chips

#: The data README's "chips to use (A + F)" per part-2 set.
README_CHIPS = {
    "v2.4_amazon_positives": (209, 0),
    "ACAexpanded_amazon_positives2025-08": (132, 0),
    "v2.1.1_bolivar_negatives": (56, 15),
    "v2.4_amazonas_negatives": (133, 17),
    "amazonas_2020_thresh_0.5_2_negatives": (61, 12),
    "v2.6_amazon_thresh_0.8_negatives": (147, 29),
    "v2.6_amazon_negatives": (72, 13),
    "v2.6_amazon_negatives_v2": (19, 2),
    "v3.4_2023_negatives": (59, 8),
    "v3.5_2023_negatives": (52, 5),
    "v0.xx-SSL4EO-2023combined-negatives": (479, 87),
    "v0.4-6SSL4EO-MLP_bolivia_2023_negatives": (130, 23),
    "riverbank_negatives_v2025-08": (161, 33),
    "v4.0-CNN-2025_acre_negatives": (719, 90),
    "v0.X-SSL4EO-2025Q4-negatives": (720, 118),
    "v0.X-SSL4EO-2025Q2cumulative-negatives": (0, 217),
}
#: The one point listed twice in its file (rows 405 and 406, same coordinates, both A): one chip kept.
DUPLICATES = {"v0.xx-SSL4EO-2023combined-negatives": 1}


@pytest.fixture(scope="module")
def built(tmp_path_factory, mirror):
    """``asgm demo build --pack amazon2 --json`` run once: (report, store)."""
    from _engine import cli_json
    from _shared import once_per_run

    root, report = once_per_run(
        tmp_path_factory, "amazon2-pack", lambda root: cli_json(["demo", "build", "--pack", "amazon2", "--json"], root)
    )
    return report, PatchStore.open("amazon2", root=root / "stores")


def test_counts_per_set_match_the_readme(built):
    report, store = built
    idx = store.index()
    part2 = idx[idx.set.isin([s.name for s in amazon.SETS2])]
    assert set(part2.set) == set(README_CHIPS)
    for name, (a, f) in README_CHIPS.items():
        rows = part2[part2.set == name]
        got = ((rows.clear_threshold == 0.75).sum(), (rows.clear_threshold == 0.05).sum())
        assert got == (a - DUPLICATES.get(name, 0), f), name
    # README: 341 positive and 3,477 negative chips beyond the packs above (one duplicate point kept once)
    assert (part2.label == 1).sum() == 341 and (part2.label == 0).sum() == 3477 - 1
    # the amazon store's chips come along with their ids: 3,401 of them
    assert len(idx) == 3401 + 341 + 3476 and idx.sample_id.is_unique
    assert report["name"] == "amazon2" and report["patches"] == len(idx)
    assert report["excluded_rows"] == {
        "v2.4_amazon_positives": 1,
        "v2.1.1_bolivar_negatives": 3,
        "v2.6_amazon_thresh_0.8_negatives": 1,
        "riverbank_negatives_v2025-08": 3,
    }
    assert any("CC BY 4.0" in c for c in report["credits"])


def test_years_confusers_and_the_demo_sets(built):
    _, store = built
    idx = store.index()
    years = idx.groupby("set").year.unique().to_dict()
    assert list(years["v2.4_amazon_positives"]) == [2019] and list(years["ACAexpanded_amazon_positives2025-08"]) == [
        2024
    ]
    assert list(years["v4.0-CNN-2025_acre_negatives"]) == [2025] and list(years["v3.5_2023_negatives"]) == [2023]
    conf = idx.groupby("set").confuser.unique().to_dict()
    assert list(conf["riverbank_negatives_v2025-08"]) == ["riverbank"]
    assert list(conf["v0.X-SSL4EO-2025Q2cumulative-negatives"]) == ["cloud"]
    assert list(conf["industrial_negatives2025-08"]) == ["industrial"]
    assert set(idx[idx.label == 1].confuser) == {""}
    assert (idx.set.isin(demo.SETS)).sum() == 491
    assert store.read_patch("am2-rivn-0000").confuser == "riverbank"


@pytest.mark.parametrize("name,rows", [(s.name, s.excluded) for s in amazon.SETS2 if s.excluded])
def test_excluded_rows_are_not_in_the_store(built, name, rows):
    _, store = built
    s = next(x for x in amazon.SETS2 if x.name == name)
    ids = set(store.index().sample_id)
    for row in rows:
        assert f"{s.prefix}-{row:04d}" not in ids
    # the rows around them are (when their code has a chip): the skip is by row, not a shifted mapping
    for row in {r + d for r in rows for d in (-1, 1) if 0 <= r + d < s.n_points} - set(rows):
        has_chip = s.codes is None or s.codes[row] in s.galleries
        assert (f"{s.prefix}-{row:04d}" in ids) == has_chip


def test_readme_codes_of_excluded_rows():
    # the README gives each excluded row with its code: 1 (A), 2 (F), 7 (A); 212 (A); 30 (T), 32 (A), 33 (A)
    by = {s.name: s for s in amazon.SETS2}
    assert [by["v2.1.1_bolivar_negatives"].codes[i] for i in (1, 2, 7)] == ["A", "F", "A"]
    assert by["v2.6_amazon_thresh_0.8_negatives"].codes[212] == "A"
    assert [by["riverbank_negatives_v2025-08"].codes[i] for i in (30, 32, 33)] == ["T", "A", "A"]


def test_aca_positive_i_is_chip_i_plus_8(built):
    _, store = built
    s = next(x for x in amazon.SETS2 if x.name == "ACAexpanded_amazon_positives2025-08")
    gallery = gallery_chips(registry.amazon_key(s.name, "A"), 140)
    for i in (0, 1, 57, 131):
        dn = store.read_patch(f"{s.prefix}-{i:04d}").data
        assert np.array_equal(dn, gallery[i + 8])
        assert not np.array_equal(dn, gallery[i])


def test_code_letters_match_gallery_chip_counts():
    from asgm.sources.gallery import CHIP, load_gallery

    for s in amazon.SETS2:
        if s.codes is None:
            continue
        assert len(s.codes) == s.n_points
        for code in s.galleries:
            g = load_gallery(registry.amazon_key(s.name, code))
            cells = [
                g[r : r + CHIP, c : c + CHIP] for r in range(0, g.shape[0], CHIP) for c in range(0, g.shape[1], CHIP)
            ]
            assert sum(cell.max() > 0 for cell in cells) == s.codes.count(code), (s.name, code)


def test_ids_keep_file_positions_and_chips_sit_on_their_point_grid(built):
    from asgm.grid import utm_epsg

    _, store = built
    idx = store.index().set_index("sample_id")
    s = next(x for x in amazon.SETS2 if x.name == "v2.4_amazon_positives")
    pts = points.read_points_file(registry.get(registry.amazon_key(s.name)), s.prefix, 1, s.name)
    for i in (0, 98, 100, 209):
        sid = f"{s.prefix}-{i:04d}"
        assert np.isclose(idx.loc[sid, "lon"], pts.lon[i]) and np.isclose(idx.loc[sid, "lat"], pts.lat[i])
        p = store.read_patch(sid)
        assert p.grid.epsg == utm_epsg(p.lon, p.lat) and p.data.shape == (3, 48, 48)
        # the point is the centre of its chip (to within half a 10 m pixel)
        x, y = p.grid.transform @ (24, 24)
        from pyproj import Transformer

        px, py = Transformer.from_crs(4326, p.grid.epsg, always_xy=True).transform(p.lon, p.lat)
        assert abs(px - x) <= 10 and abs(py - y) <= 10
