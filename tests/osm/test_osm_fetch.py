"""OSM fetch through osmnx: a local OSM XML file, and a local Overpass stand-in over real HTTP."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from osm_testdata import POS0, SAMPLE_OSM

from asgm.config import OSM_LAYERS
from asgm.osm import OsmFetchError, OverpassError, local_xml
from asgm.osm import fetch as F
from asgm.osm import queries as Q

EXPECTED_IDS = {
    ("node", 2001),
    ("way", 1001),
    ("way", 1002),
    ("way", 1003),
    ("way", 1004),
    ("way", 1005),
    ("way", 1006),
}
#: A bbox around pos-0000 that holds every feature of bolivar_sample.osm.
SAMPLE_BBOX = (POS0[0] - 0.02, POS0[1] - 0.02, POS0[0] + 0.06, POS0[1] + 0.02)


def _ids(gdf: gpd.GeoDataFrame) -> set[tuple[str, int]]:
    return set(zip(gdf["element"], gdf["id"].astype(int), strict=True))


def test_xml_fetch_schema_snapshot_and_cache(osm_env):
    res = local_xml.fetch_xml(SAMPLE_OSM)
    g = res.features
    assert not res.cached
    assert list(g.columns) == ["element", "id", *OSM_LAYERS, "source", "geometry"]
    assert g.crs.to_epsg() == 4326
    assert _ids(g) == EXPECTED_IDS
    row = g[(g.element == "way") & (g.id == 1004)].iloc[0]
    assert row["landuse"] == "quarry" and pd.isna(row["highway"]) and row.geometry.geom_type == "Polygon"
    assert g.loc[(g.element == "way") & (g.id == 1001), "highway"].item() == "track"
    # the sidecar records query, keys, fetch time and the file's snapshot date (<meta osm_base>)
    side = json.loads((res.path.parent / "features.json").read_text())
    assert side["snapshot_date"] == "2021-06-01T00:00:00Z"
    assert side["keys"] == list(OSM_LAYERS) and side["query"]["kind"] == "xml" and side["fetched_at"]
    assert side["counts"] == {"highway": 1, "waterway": 1, "building": 2, "landuse": 2, "aeroway": 1}
    assert res.path.is_relative_to(osm_env / "osm")
    # a re-run reads the cache (same file, not rewritten)
    mtime = res.path.stat().st_mtime_ns
    again = local_xml.fetch_xml(SAMPLE_OSM)
    assert again.cached and again.path == res.path and res.path.stat().st_mtime_ns == mtime
    assert _ids(again.features) == EXPECTED_IDS
    # asking for fewer keys is a different cache entry holding only those keys' features
    only = local_xml.fetch_xml(SAMPLE_OSM, keys=["waterway"])
    assert not only.cached and _ids(only.features) == {("way", 1002)}


def test_xml_bad_file_is_a_clear_error(osm_env, tmp_path):
    bad = tmp_path / "bad.osm"
    bad.write_text("<osm><node id='1' lat='7'", encoding="utf-8")
    with pytest.raises(OsmFetchError, match="not valid OSM XML"):
        local_xml.fetch_xml(bad)
    with pytest.raises(OsmFetchError, match="not found"):
        local_xml.fetch_xml(tmp_path / "missing.osm")


def test_overpass_bbox_current_snapshot(osm_env, overpass):
    q = Q.bbox_query(*SAMPLE_BBOX, cell_deg=0.25)
    res = F.fetch(q, overpass_url=overpass.url, runway=False, backoff_s=0)
    assert _ids(res.features) == EXPECTED_IDS
    assert len(overpass.queries) == len(q.parts) >= 1
    assert overpass.status_hits >= 1  # a free query slot was checked first (/status), as the real server asks
    assert "[date:" not in overpass.queries[0]
    for key in OSM_LAYERS:
        assert f"['{key}']" in overpass.queries[0]
    # without a date the snapshot date is the server's data timestamp
    assert res.meta["snapshot_date"] == overpass.osm_base
    assert res.meta["overpass_url"] == overpass.url
    # the same query again: served from the cache, no request
    n = len(overpass.queries)
    again = F.fetch(q, overpass_url=overpass.url, runway=False)
    assert again.cached and len(overpass.queries) == n
    # --refresh asks again
    F.fetch(q, overpass_url=overpass.url, runway=False, refresh=True)
    assert len(overpass.queries) == 2 * n


def test_store_query_defaults_to_the_imagery_end_date(osm_env, overpass, make_store):
    store = make_store(
        "dated", [{"sample_id": "pos-0000", "label": 1, "lon": POS0[0], "lat": POS0[1]}], date_end="2021-12-31"
    )
    res = F.fetch(Q.store_query(store), overpass_url=overpass.url, backoff_s=0)
    assert len(overpass.queries) == 1
    assert '[date:"2021-12-31T00:00:00Z"]' in overpass.queries[0]
    assert res.meta["snapshot_date"] == "2021-12-31T00:00:00Z"
    assert res.meta["snapshot"]["requested_date"] == "2021-12-31T00:00:00Z"
    assert res.meta["query"]["store"] == "dated"
    # a dated snapshot leaves out the undated runway points by default
    assert res.meta["runway_points"]["included"] is False
    # features near the patch are there; the aerodrome 5 km away is outside the padded footprint
    assert ("way", 1001) in _ids(res.features) and ("way", 1006) not in _ids(res.features)
    assert F.find_store_cache("dated") == res.path
    # an explicit date overrides the store's
    F.fetch(Q.store_query(store), overpass_url=overpass.url, date="2019-06-30")
    assert '[date:"2019-06-30T00:00:00Z"]' in overpass.queries[-1]


def test_store_query_batches_scattered_and_clustered_patches(osm_env, make_store):
    rows = [
        {"sample_id": "pos-0000", "label": 1, "lon": POS0[0], "lat": POS0[1]},
        {"sample_id": "pos-0001", "label": 1, "lon": POS0[0] + 0.01, "lat": POS0[1] + 0.002},  # same 0.1° cell
        {"sample_id": "cur-0068", "label": 0, "lon": -67.087665, "lat": 6.193454},  # far west, UTM 19N
    ]
    q = Q.store_query(make_store("batches", rows, size=48))
    assert len(q.parts) == 2
    for r in rows:
        assert any(p.contains(gpd.points_from_xy([r["lon"]], [r["lat"]])[0]) for p in q.parts)


def test_overpass_errors_are_retried_then_reported(osm_env, overpass):
    q = Q.bbox_query(*SAMPLE_BBOX)
    # two overloads then success: retried transparently
    overpass.failures = [
        (503, "<p>Dispatcher_Client::request_read_and_idx::timeout</p>"),
        (429, "<p>Too Many Requests</p>"),
    ]
    res = F.fetch(q, overpass_url=overpass.url, runway=False, retries=3, backoff_s=0.01)
    assert _ids(res.features) == EXPECTED_IDS and len(overpass.queries) == 3

    # always failing: retries + 1 attempts, then a clear error; nothing cached
    overpass.queries.clear()
    overpass.fail_always = (504, "<p>Gateway Timeout</p>")
    with pytest.raises(OverpassError) as err:
        F.fetch(q, overpass_url=overpass.url, runway=False, refresh=True, retries=2, backoff_s=0.01)
    msg = str(err.value)
    assert len(overpass.queries) == 3
    assert "failed 3 time(s)" in msg and "504" in msg and overpass.url in msg and "resume" in msg


def test_overpass_timeout_remark_is_not_cached_as_empty(osm_env, overpass):
    """Overpass reports a query timeout as HTTP 200 with a remark and no elements."""
    remark = json.dumps(
        {
            "version": 0.6,
            "osm3s": {"timestamp_osm_base": "x"},
            "elements": [],
            "remark": 'runtime error: Query timed out in "query" at line 1 after 181 seconds.',
        }
    )
    overpass.failures = [(200, remark)]
    res = F.fetch(Q.bbox_query(*SAMPLE_BBOX), overpass_url=overpass.url, runway=False, retries=1, backoff_s=0)
    assert len(overpass.queries) == 2 and _ids(res.features) == EXPECTED_IDS


def test_overpass_bad_request_is_not_retried(osm_env, overpass):
    overpass.fail_always = (400, '<p><strong style="color:#FF0000">Error</strong>: line 1: parse error: bad date</p>')
    with pytest.raises(OverpassError, match="rejected the query.*parse error: bad date"):
        F.fetch(Q.bbox_query(*SAMPLE_BBOX), overpass_url=overpass.url, runway=False, retries=3, backoff_s=0)
    assert len(overpass.queries) == 1


def test_client_timeout_is_retried_then_reported(osm_env, overpass):
    overpass.delay_s = 1.5
    with pytest.raises(OverpassError, match="Timeout"):
        F.fetch(
            Q.bbox_query(*SAMPLE_BBOX), overpass_url=overpass.url, runway=False, retries=1, backoff_s=0, timeout_s=0.3
        )
    assert len(overpass.queries) == 2


def test_waits_for_a_query_slot_and_fails_fast_on_a_dead_server(osm_env, overpass):
    import socket
    import time

    overpass.slot_line = "Slot available after: 2025-04-01T06:00:02Z, in 2 seconds."
    t0 = time.perf_counter()
    F.fetch(Q.bbox_query(*SAMPLE_BBOX), overpass_url=overpass.url, runway=False)
    assert time.perf_counter() - t0 >= 2.0 and overpass.status_hits == 1
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/api"
    t0 = time.perf_counter()
    with pytest.raises(OverpassError, match="failed 2 time.*ConnectionError"):
        F.fetch(Q.bbox_query(*SAMPLE_BBOX), overpass_url=dead, runway=False, refresh=True, retries=1, backoff_s=0.1)
    assert time.perf_counter() - t0 < 10


def test_interrupted_fetch_resumes(osm_env, overpass):
    # 4 parts (0.02° cells over the sample bbox); the server dies after 2 answers
    q = Q.bbox_query(*SAMPLE_BBOX, cell_deg=0.02)
    total = len(q.parts)
    assert total >= 4
    overpass.fail_after = 2
    with pytest.raises(OverpassError, match=f"part 3/{total}"):
        F.fetch(q, overpass_url=overpass.url, runway=False, retries=1, backoff_s=0)
    assert len(overpass.queries) == 2 + 2  # two good, then one failing part tried twice
    # the server is back: only the missing parts are asked for
    overpass.fail_after = None
    overpass.queries.clear()
    seen = []
    res = F.fetch(
        q,
        overpass_url=overpass.url,
        runway=False,
        backoff_s=0,
        progress=lambda done, n, disk: seen.append((done, disk)),
    )
    assert len(overpass.queries) == total - 2
    assert [d for _, d in seen] == [True, True] + [False] * (total - 2)
    assert _ids(res.features) == EXPECTED_IDS  # merged, each feature once despite crossing cells
    assert res.requests == total - 2


def test_empty_area_gives_empty_vectors(osm_env, overpass):
    res = F.fetch(Q.bbox_query(-64.2, 7.3, -64.1, 7.4), overpass_url=overpass.url, runway=False)
    assert len(overpass.queries) == 1 and len(res.features) == 0
    assert list(res.features.columns) == ["element", "id", *OSM_LAYERS, "source", "geometry"]
    assert res.meta["counts"] == dict.fromkeys(OSM_LAYERS, 0)
    # and it round-trips through the cache
    assert len(F.read_vectors(res.path)) == 0


def test_runway_points_are_an_aeroway_source_clipped_to_the_area(osm_env, overpass, mirror):
    from asgm import registry

    pts = gpd.read_file(registry.get("runway_points"))
    bbox = (-63.0, 6.0, -62.5, 6.5)
    inside = pts.cx[bbox[0] : bbox[2], bbox[1] : bbox[3]]
    assert len(inside) >= 1
    res = F.fetch(Q.bbox_query(*bbox), overpass_url=overpass.url, date="current", backoff_s=0)
    rw = res.features[res.features["element"] == F.RUNWAY_ELEMENT]
    assert sorted(rw["id"].astype(int)) == sorted(inside["id"].astype(int))
    assert (rw["aeroway"] == "runway").all() and rw[["highway", "waterway", "building", "landuse"]].isna().all().all()
    assert res.meta["runway_points"] == {"included": True, "added": len(inside)}
    assert np.allclose(sorted(rw.geometry.x), sorted(inside.geometry.x))


def test_bad_dates_and_keys_are_clear_errors(osm_env):
    q = Q.bbox_query(*SAMPLE_BBOX)
    with pytest.raises(OsmFetchError, match="before 2012-09-12"):
        F.fetch(q, date="2010-01-01")
    with pytest.raises(OsmFetchError, match="YYYY-MM-DD"):
        F.fetch(q, date="31/12/2021")
    with pytest.raises(OsmFetchError, match="future"):
        F.fetch(q, date="2999-01-01")
    with pytest.raises(OsmFetchError, match="unknown OSM key"):
        F.fetch(q, keys=["amenity"])
    with pytest.raises(OsmFetchError, match="invalid bounding box"):
        Q.bbox_query(10, 5, 9, 6)
