"""Coverage per class and key over all patches of the class, and tag-value frequencies."""

from __future__ import annotations

import geopandas as gpd
import pytest
from shapely.geometry import LineString, Point, box

from asgm.config import OSM_LAYERS
from asgm.osm import OsmError
from asgm.osm.coverage import coverage_report, coverage_table, tag_values_table
from asgm.osm.rasterize import RasterizeOptions, rasterize_store

# 5 mining and 7 non-mining patches, 0.05° (~5.5 km) apart along a line in UTM 20N
POS = [(-62.0 + 0.05 * i, 6.5) for i in range(5)]
NEG = [(-62.0 + 0.05 * i, 6.7) for i in range(7)]


def _line(lon, lat):
    return LineString([(lon - 0.003, lat - 0.001), (lon + 0.003, lat + 0.001)])


def _square(lon, lat, d=0.0005):
    return box(lon - d, lat - d, lon + d, lat + d)


@pytest.fixture
def known_store(make_store, tmp_path):
    rows = [
        {"sample_id": f"pos-{i:04d}", "label": 1, "set": "positives", "lon": lo, "lat": la}
        for i, (lo, la) in enumerate(POS)
    ]
    rows += [
        {"sample_id": f"neg-{i:04d}", "label": 0, "set": "random" if i < 4 else "curated", "lon": lo, "lat": la}
        for i, (lo, la) in enumerate(NEG)
    ]
    store = make_store("known", rows)
    feats = [  # (key, value, geometry): waterway in pos 0-2, highway in pos 0, quarry in pos 1 and 3,
        ("waterway", "river", _line(*POS[0])),
        ("waterway", "river", _line(*POS[1])),
        ("waterway", "stream", _line(*POS[2])),
        ("highway", "track", _line(*POS[0])),
        ("landuse", "quarry", _square(*POS[1])),
        ("landuse", "quarry", _square(*POS[3])),
        # buildings in neg 0 and 1 (two in neg 0), residential landuse in neg 0; nothing in neg 2-6
        ("building", "yes", Point(*NEG[0])),
        ("building", "house", Point(NEG[0][0] + 0.0005, NEG[0][1])),
        ("building", "yes", Point(*NEG[1])),
        ("landuse", "residential", _square(*NEG[0])),
    ]
    cols = {k: [v if k == key else None for key, v, _ in feats] for k in OSM_LAYERS}
    gdf = gpd.GeoDataFrame(
        {"element": "way", "id": range(len(feats)), **cols}, geometry=[g for *_, g in feats], crs=4326
    )
    path = tmp_path / "known.parquet"
    gdf.to_parquet(path)
    return store, path


def _shares(table):
    return {(r.group, r.key): (r.patches_with, r.patches_total) for r in table.itertuples()}


def test_coverage_denominators_are_all_patches_of_the_class(known_store):
    store, path = known_store
    with pytest.raises(OsmError, match="asgm osm rasterize --store known"):
        coverage_table(store)
    rasterize_store(store, vectors=path)
    t = coverage_table(store)
    assert list(t.columns) == ["group", "key", "patches_with", "patches_total", "share"]
    s = _shares(t)
    assert s[("mining", "any")] == (4, 5) and s[("non-mining", "any")] == (2, 7)
    assert s[("mining", "waterway")] == (3, 5) and s[("mining", "highway")] == (1, 5)
    assert (
        s[("mining", "landuse")] == (2, 5)
        and s[("mining", "building")] == (0, 5)
        and s[("mining", "aeroway")] == (0, 5)
    )
    assert s[("non-mining", "building")] == (2, 7) and s[("non-mining", "landuse")] == (1, 7)
    assert s[("non-mining", "waterway")] == (0, 7)
    row = t[(t.group == "mining") & (t.key == "waterway")].iloc[0]
    assert row.share == pytest.approx(3 / 5)  # not 3/4 (the study's "of patches with any OSM")
    by_set = _shares(coverage_table(store, by="set"))
    assert by_set[("random", "any")] == (2, 4) and by_set[("curated", "any")] == (0, 3)
    assert by_set[("positives", "any")] == (4, 5)


def test_filters_change_presence_but_tag_values_show_what_was_left_out(known_store):
    store, path = known_store
    rasterize_store(store, vectors=path, options=RasterizeOptions(exclude={"landuse": ("quarry",)}))
    s = _shares(coverage_table(store))
    assert s[("mining", "landuse")] == (0, 5) and s[("mining", "any")] == (3, 5)  # pos 3 had only a quarry
    tv = tag_values_table(store)
    q = tv[(tv.group == "mining") & (tv.key == "landuse") & (tv.value == "quarry")].iloc[0]
    assert (q.patches, q.patches_total, q.features, bool(q.excluded)) == (2, 5, 2, True)
    assert q.share == pytest.approx(0.4)
    b = tv[(tv.group == "non-mining") & (tv.key == "building")].set_index("value")
    assert b.loc["yes", "patches"] == 2 and b.loc["yes", "features"] == 2 and b.loc["house", "patches"] == 1
    assert not b["excluded"].any()
    w = tv[(tv.group == "mining") & (tv.key == "waterway")].set_index("value")
    assert dict(w["patches"]) == {"river": 2, "stream": 1}


def test_coverage_report_is_json_ready(known_store):
    import json

    store, path = known_store
    rasterize_store(store, vectors=path)
    r = json.loads(json.dumps(coverage_report(store)))
    assert r["denominator"] == "all patches of the group"
    assert r["groups"]["mining"]["patches"] == 5
    assert r["groups"]["mining"]["keys"]["any"] == {"patches_with": 4, "share": 0.8}
    assert r["groups"]["non-mining"]["keys"]["building"]["patches_with"] == 2
    assert r["groups"]["mining"]["tag_values"]["waterway"][0] == {
        "value": "river",
        "patches": 2,
        "share": 0.4,
        "features": 2,
        "excluded": False,
    }
    assert r["osm"]["layers"] == list(OSM_LAYERS)
