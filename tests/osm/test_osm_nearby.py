"""asgm.osm.nearby: a store's cached OSM features around a point, clipped, one row per key; files only."""

from __future__ import annotations

import json
import socket

import geopandas as gpd
import pytest
from pyproj import Geod
from shapely.geometry import LineString, Point, box

from asgm.config import OSM_LAYERS
from asgm.errors import AsgmError
from asgm.osm import OsmError
from asgm.osm.nearby import NoOsmCacheError, bbox_around, features_around, store_vectors_path

LON, LAT = -61.5, 6.2


def _row(geom, **tags):
    return {"element": "way", "id": len(tags), **{k: tags.get(k) for k in OSM_LAYERS}, "geometry": geom}


def _write_store_cache(osm_env, store_name: str) -> gpd.GeoDataFrame:
    """A tiny cache as `asgm osm fetch --store` lays it out: data/osm/<id>/features.parquet + features.json."""
    gdf = gpd.GeoDataFrame(
        [
            _row(LineString([(LON - 0.2, LAT), (LON + 0.2, LAT)]), highway="track"),  # 44 km long, crosses the box
            _row(box(LON + 0.001, LAT + 0.001, LON + 0.002, LAT + 0.002), building="yes", landuse="residential"),
            _row(Point(LON - 0.005, LAT + 0.003), aeroway="aerodrome"),
            _row(LineString([(LON + 0.3, LAT + 0.3), (LON + 0.31, LAT + 0.3)]), waterway="river"),  # ~45 km away
        ],
        crs="EPSG:4326",
    )
    folder = osm_env / "osm" / f"store-{store_name}-abc"
    folder.mkdir(parents=True)
    gdf.to_parquet(folder / "features.parquet")
    (folder / "features.json").write_text(
        json.dumps({"query": {"kind": "store", "store": store_name}, "fetched_at": "2026-01-01T00:00:00"})
    )
    return gdf


def test_features_of_a_fetched_cache_are_clipped_per_key(make_store, osm_env):
    store = make_store("real", [{"sample_id": "p1", "label": 1, "lon": LON, "lat": LAT}])
    with pytest.raises(NoOsmCacheError, match="asgm osm fetch --store real") as err:
        features_around(store, LON, LAT)
    assert isinstance(err.value, AsgmError)
    _write_store_cache(osm_env, "real")
    assert store_vectors_path(store) == osm_env / "osm" / "store-real-abc" / "features.parquet"
    got = features_around(store, LON, LAT, radius_m=2000)
    assert got.crs.to_epsg() == 4326 and list(got.columns) == ["key", "value", "geometry"]
    assert got.groupby("key").size().to_dict() == {"highway": 1, "building": 1, "landuse": 1, "aeroway": 1}
    w, s, e, n = bbox_around(LON, LAT, 2000)
    assert all(box(w, s, e, n).buffer(1e-9).contains(g) for g in got.geometry)
    road = got[got["key"] == "highway"].geometry.iloc[0]  # clipped to the box: 4 km, not 44 km
    length = Geod(ellps="WGS84").geometry_length(road)
    assert length == pytest.approx(4000, rel=0.01)
    assert got.set_index("key").loc["landuse", "value"] == "residential"
    assert len(features_around(store, LON + 0.3, LAT + 0.3, radius_m=2000).query("key == 'waterway'")) == 1


def test_the_box_is_the_radius_on_the_ground():
    w, s, e, n = bbox_around(LON, LAT, 2000)
    geod = Geod(ellps="WGS84")
    assert geod.inv(w, LAT, e, LAT)[2] == pytest.approx(4000, rel=0.01)
    assert geod.inv(LON, s, LON, n)[2] == pytest.approx(4000, rel=0.01)
    for bad in [(200, 0, 1000), (0, 95, 1000), (0, 0, 0)]:
        with pytest.raises(OsmError, match="cannot draw OSM"):
            bbox_around(*bad)


def test_a_synthetic_store_uses_its_own_vectors_without_the_network(synthetic_store_factory, monkeypatch):
    store = synthetic_store_factory(n_pos=3, n_neg=3)
    vectors = gpd.read_parquet(store.root / "osm_vectors.parquet")

    def no_network(*args, **kwargs):
        raise AssertionError("features_around opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    row = store.index().iloc[0]
    near = features_around(store, float(row["lon"]), float(row["lat"]), radius_m=1000)
    mine = vectors[vectors["sample_id"] == row["sample_id"]]
    expected = {k: int(mine[k].notna().sum()) for k in OSM_LAYERS if mine[k].notna().any()}
    assert near.groupby("key").size().to_dict() == expected  # scenes lie far apart: only this patch's features
    everything = features_around(store, -62.5, 6.75, radius_m=400_000)  # the whole synthetic bbox
    assert len(everything) == sum(int(vectors[k].notna().sum()) for k in OSM_LAYERS)
