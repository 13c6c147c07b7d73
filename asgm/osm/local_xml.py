"""OSM features from a local OSM XML file (an export, e.g. Overpass with ``out meta``): read with osmnx, checked
(root element, node coordinates), optionally clipped and joined by Earth Genome's runway points, and cached like an
Overpass fetch (``asgm.osm.fetch``), keyed by the file's sha256. For machines without Overpass access.
"""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import shapely
from shapely.geometry import box, mapping
from shapely.geometry.base import BaseGeometry

from asgm.config import OSM_LAYERS
from asgm.osm import OsmFetchError
from asgm.osm.fetch import (
    FetchResult,
    cache_id,
    merge_runways,
    normalize_features,
    osm_dir,
    read_vectors,
    runway_points,
    validate_keys,
    write_cache_meta,
    write_parquet,
)


def _xml_snapshot(path: Path) -> str | None:
    """The data date of an OSM XML file: ``<meta osm_base=...>`` (Overpass output), else the newest
    element ``timestamp`` attribute, else None."""
    newest = base = None
    try:
        for n, (_, elem) in enumerate(ET.iterparse(path, events=("start",))):
            if n == 0 and elem.tag != "osm":  # e.g. an HTML error page saved instead of the extract
                raise OsmFetchError(
                    f"{path} is not OSM XML: its root element is <{elem.tag}>, not <osm>; export the data again"
                )
            if elem.tag == "node":
                _check_node(path, elem)
            if elem.tag == "meta" and elem.get("osm_base"):
                base = base or elem.get("osm_base")
            ts = elem.get("timestamp")
            if ts and (newest is None or ts > newest):
                newest = ts
    except ET.ParseError as exc:
        raise OsmFetchError(
            f"{path} is not valid OSM XML ({exc}); export it again (e.g. from Overpass with out meta)"
        ) from exc
    return base or newest


def _check_node(path: Path, elem: ET.Element) -> None:
    """The ±90/±180 check ``--polygon`` and ``--vectors`` make, for one ``<node>`` of an OSM XML file."""
    try:
        lat, lon = float(elem.get("lat", "nan")), float(elem.get("lon", "nan"))
    except ValueError:
        lat = lon = float("nan")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise OsmFetchError(
            f"{path}: node {elem.get('id')} is at lat {elem.get('lat')} / lon {elem.get('lon')}, "
            "beyond ±90/±180 (or not a number); the file is damaged: export the data again"
        )


def fetch_xml(
    path: str | Path,
    *,
    keys: Sequence[str] = OSM_LAYERS,
    area: BaseGeometry | None = None,
    runway: bool = False,
    refresh: bool = False,
) -> FetchResult:
    """Features of a local OSM XML file (``osmnx.features_from_xml``), optionally clipped to ``area``,
    cached like an Overpass fetch (keyed by the file's sha256)."""
    import osmnx as ox
    from osmnx._errors import InsufficientResponseError

    path = Path(path)
    keys = validate_keys(keys)
    if not path.is_file():
        raise OsmFetchError(f"OSM XML file {path} not found")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    identity = {
        "kind": "xml",
        "sha256": sha,
        "keys": keys,
        "area": area.wkb_hex if area is not None else None,
        "runway": runway,
    }
    folder = osm_dir() / cache_id("xml", path.stem, identity)
    out, side = folder / "features.parquet", folder / "features.json"
    if out.is_file() and side.is_file() and not refresh:
        return FetchResult(out, json.loads(side.read_text(encoding="utf-8")), read_vectors(out), cached=True)
    snapshot = _xml_snapshot(path)
    try:
        raw = ox.features_from_xml(path, tags={k: True for k in keys}, polygon=area)
    except InsufficientResponseError:
        raw = None
    except (ET.ParseError, KeyError, ValueError) as exc:
        raise OsmFetchError(f"could not read OSM XML {path} ({type(exc).__name__}: {exc})") from exc
    features = normalize_features(raw, keys)
    n_runways = 0
    if runway and "aeroway" in keys:
        clip = area if area is not None else (box(*features.total_bounds) if len(features) else shapely.Polygon())
        before = len(features)
        features = merge_runways(features, runway_points(clip, keys))
        n_runways = len(features) - before
    write_parquet(features, out)
    meta = {
        "query": {"kind": "xml", "file": str(path), "sha256": sha, "area": mapping(area) if area is not None else None},
        "keys": list(keys),
        "source": "osm_xml",
        "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "snapshot_date": snapshot,
        "snapshot": {"requested_date": None, "file_date": snapshot},
        "parts": 1,
    }
    meta = write_cache_meta(side, meta, folder, features, keys, runway, n_runways)
    return FetchResult(out, meta, features, cached=False)
