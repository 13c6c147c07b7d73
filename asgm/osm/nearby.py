"""The cached OSM features around a point of a store (the Map page's live Fig. 1/Fig. 2 views).

Reads files only, never the network: the store's own vectors (a synthetic store's ``osm_vectors.parquet``)
or the newest fetch cache made for the store (``asgm osm fetch --store``), see ``store_vectors_path``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pandas as pd
from shapely.geometry import box

from asgm.config import OSM_LAYERS
from asgm.data.store import PatchStore
from asgm.osm import OsmError

#: Default half-width of the box drawn around a clicked patch (a 48-px patch is 480 m wide).
DEFAULT_RADIUS_M = 2000.0
_M_PER_DEG = 111_320.0  # metres per degree of latitude (and of longitude at the equator)


class NoOsmCacheError(OsmError):
    """The store has no cached OSM vectors to draw."""


def store_vectors_path(store: PatchStore) -> Path | None:
    """The OSM vector file of ``store``: a synthetic store's own ``osm_vectors.parquet``, else the newest
    complete fetch cache for its footprints; None when there is none."""
    from asgm.osm.fetch import find_store_cache

    if store.meta.source == "synthetic":
        own = Path(store.root) / "osm_vectors.parquet"
        return own if own.is_file() else None
    return find_store_cache(store.name)


def no_cache_message(store_name: str) -> str:
    """What to do when a store has no OSM cache."""
    return (
        f"Store `{store_name}` has no cached OSM features: fetch them with `asgm osm fetch --store {store_name}` "
        "(needs the network), then they are drawn here."
    )


def bbox_around(lon: float, lat: float, radius_m: float = DEFAULT_RADIUS_M) -> tuple[float, float, float, float]:
    """(west, south, east, north) of the square of half-width ``radius_m`` centred on (lon, lat). Degrees per
    metre on the sphere: at Bolívar's latitudes the error is under 0.5 %, well below a pixel of the map."""
    if not (-180 <= lon <= 180 and -90 < lat < 90) or not radius_m > 0:
        raise OsmError(
            f"cannot draw OSM around lon {lon}, lat {lat} with radius {radius_m} m: "
            "lon must be in [-180, 180], lat in (-90, 90) and the radius positive"
        )
    dlat = radius_m / _M_PER_DEG
    dlon = radius_m / (_M_PER_DEG * math.cos(math.radians(lat)))
    return lon - dlon, lat - dlat, lon + dlon, lat + dlat


def clip_per_key(
    vectors: gpd.GeoDataFrame, bbox: tuple[float, float, float, float], keys: tuple[str, ...] = tuple(OSM_LAYERS)
) -> gpd.GeoDataFrame:
    """The features of ``vectors`` (vector schema, EPSG:4326) clipped to ``bbox``, one row per (feature, key)
    it carries: columns ``key``, ``value``, ``geometry``, rows ordered by ``keys``. A feature tagged with two
    keys (a building on landuse) is drawn once per key, as each key is its own mask in the study."""
    west, south, east, north = bbox
    near = vectors.cx[west:east, south:north]
    if len(near):
        near = near.assign(geometry=near.geometry.intersection(box(west, south, east, north)))
        near = near[~near.geometry.is_empty & near.geometry.notna()]
    frames = []
    for k in keys:
        if k not in near.columns:
            continue
        tagged = near[near[k].notna()]
        if len(tagged):
            frames.append(
                gpd.GeoDataFrame(
                    {"key": k, "value": tagged[k].astype(str).to_numpy()},
                    geometry=tagged.geometry.to_numpy(),
                    crs="EPSG:4326",
                )
            )
    if not frames:
        return gpd.GeoDataFrame(
            {"key": pd.Series(dtype=str), "value": pd.Series(dtype=str)}, geometry=[], crs="EPSG:4326"
        )
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs="EPSG:4326")


def features_around(
    store: PatchStore,
    lon: float,
    lat: float,
    radius_m: float = DEFAULT_RADIUS_M,
    read: Callable[[Path], gpd.GeoDataFrame] | None = None,
) -> gpd.GeoDataFrame:
    """The store's cached OSM features within ``radius_m`` (a square) of (lon, lat), clipped, one row per key
    (see ``clip_per_key``). ``read`` reads the vector file (default ``asgm.osm.fetch.read_vectors``; the app
    passes a cached one). Raises ``NoOsmCacheError`` when the store has no OSM cache."""
    from asgm.osm.fetch import read_vectors

    path = store_vectors_path(store)
    if path is None:
        raise NoOsmCacheError(no_cache_message(store.name))
    bbox = bbox_around(lon, lat, radius_m)
    return clip_per_key((read or read_vectors)(path), bbox)
