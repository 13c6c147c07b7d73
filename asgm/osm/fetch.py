"""Fetch OSM features for the study's five keys with osmnx (Overpass), cached as GeoParquet.

A query is split into *parts* (grid cells of an area, or batches of nearby patch footprints); each
part is one Overpass request and is saved as soon as it arrives, so an interrupted fetch resumes
where it stopped. When every part is in, they are merged into ``features.parquet`` with a JSON
sidecar ``features.json`` (query, keys, fetch time, OSM snapshot date, counts). Layout::

    data/osm/<cache_id>/features.parquet    merged vectors (schema: see ``asgm.osm``)
    data/osm/<cache_id>/features.json       sidecar
    data/osm/<cache_id>/parts/00000.parquet one file (+ .json) per finished Overpass request

Snapshot dates (study bug B4, docs/study-bugs.md): ``date`` asks Overpass for the state of OSM at that instant
(``[date:"..."]`` in the query header via ``osmnx.settings.overpass_settings``); for a patch store it
defaults to the end of the store's imagery period. Without a date the snapshot date recorded is the
server's ``timestamp_osm_base``.

The Overpass transport (retries, response checks, query slots) is ``asgm.osm.overpass``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from asgm import atomic
from asgm.config import OSM_LAYERS, data_dir
from asgm.osm import OsmFetchError
from asgm.osm.overpass import fetch_features
from asgm.osm.queries import FetchQuery, slug

#: Public Overpass endpoint osmnx uses by default; ``ASGM_OVERPASS_URL`` or ``overpass_url=`` overrides.
DEFAULT_OVERPASS_URL = "https://overpass-api.de/api"
#: Overpass keeps history ("attic" data) from the ODbL licence change on; earlier dates are refused.
ATTIC_START = datetime(2012, 9, 12, 6, 55, tzinfo=UTC)
#: Rows added from Earth Genome's runway points carry this ``element`` value.
RUNWAY_ELEMENT = "runway_point"
CREDIT = "© OpenStreetMap contributors (ODbL)"

ProgressFn = Callable[[int, int, bool], None]  # (parts done, parts total, this part came from disk)


# -- vector schema ------------------------------------------------------------------------------
def resolve_overpass_url(url: str | None = None) -> str:
    """The Overpass API base URL: ``url``, else ``$ASGM_OVERPASS_URL``, else the public instance."""
    import os

    return (url or os.environ.get("ASGM_OVERPASS_URL") or DEFAULT_OVERPASS_URL).rstrip("/")


def empty_vectors(keys: Sequence[str] = OSM_LAYERS) -> gpd.GeoDataFrame:
    """An empty GeoDataFrame in the vector schema."""
    cols: dict[str, Any] = {"element": pd.Series([], dtype=object), "id": pd.Series([], dtype="int64")}
    cols.update({k: pd.Series([], dtype=object) for k in keys})
    cols["source"] = pd.Series([], dtype=object)
    return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs="EPSG:4326"), crs="EPSG:4326")


def normalize_features(
    gdf: gpd.GeoDataFrame, keys: Sequence[str] = OSM_LAYERS, source: str = "osm"
) -> gpd.GeoDataFrame:
    """Reduce an osmnx ``features_from_*`` result to the vector schema.

    Keeps ``element``/``id`` (from the index or columns), one column per key (tag value as str or
    None; missing keys become all-null), ``source`` and ``geometry`` in EPSG:4326.
    """
    if gdf is None or len(gdf) == 0:
        return empty_vectors(keys)
    df = gdf.reset_index() if {"element", "id"} & set(gdf.index.names or []) else gdf.copy()
    if df.crs is None:
        raise OsmFetchError("the OSM features have no CRS; expected EPSG:4326 (lon/lat)")
    df = df.to_crs("EPSG:4326")
    out = pd.DataFrame(
        {
            "element": df["element"].astype(str) if "element" in df else "unknown",
            "id": pd.to_numeric(df["id"], errors="coerce").fillna(-1).astype("int64")
            if "id" in df
            else np.arange(len(df)),
        }
    )
    for k in keys:
        if k in df:
            values = df[k]
            out[k] = [None if (v is None or (isinstance(v, float) and math.isnan(v))) else str(v) for v in values]
        else:
            out[k] = pd.Series([None] * len(df), dtype=object)
    out["source"] = df["source"].astype(str).to_numpy() if "source" in df else source
    result = gpd.GeoDataFrame(out, geometry=df.geometry.to_numpy(), crs="EPSG:4326")
    result = result[result.geometry.notna() & ~result.geometry.is_empty]
    return result.reset_index(drop=True)


def write_parquet(gdf: gpd.GeoDataFrame, path: Path) -> None:
    with atomic.atomic_path(path, suffix=".parquet") as tmp:
        gdf.to_parquet(tmp, index=False)


def read_vectors(path: str | Path) -> gpd.GeoDataFrame:
    """Read a vector file (GeoParquet, GeoPackage or GeoJSON) in the vector schema, in EPSG:4326.

    Key columns that are missing are added as all-null, so files with only some keys are accepted.
    """
    path = Path(path)
    if not path.is_file():
        raise OsmFetchError(
            f"OSM vector file {path} not found; fetch it with `asgm osm fetch` or pass an existing file"
        )
    try:
        if path.suffix.lower() in (".parquet", ".geoparquet"):
            gdf = gpd.read_parquet(path)
        else:
            gdf = gpd.read_file(path)
    except Exception as exc:  # pyarrow / pyogrio raise many types for a damaged file
        # A cached download can be fetched again; the user's own file can only be fixed or exported again.
        cached = path.resolve().is_relative_to(osm_dir().resolve())
        advice = (
            "delete it and fetch again (`asgm osm fetch ... --refresh`)"
            if cached
            else "check that it is a GeoParquet, GeoPackage or GeoJSON file, or export it again"
        )
        raise OsmFetchError(f"could not read OSM vectors from {path} ({type(exc).__name__}: {exc}); {advice}") from exc
    if gdf.crs is None:
        raise OsmFetchError(f"{path}: the OSM vectors have no CRS; write them in EPSG:4326 (lon/lat)")
    for k in OSM_LAYERS:
        if k not in gdf.columns:
            gdf[k] = None
    return gdf.to_crs("EPSG:4326") if gdf.crs.to_epsg() != 4326 else gdf


# -- dates ----------------------------------------------------------------------------------
def normalize_date(value: str | None) -> str | None:
    """``YYYY-MM-DD`` or ISO 8601 -> Overpass's ``YYYY-MM-DDTHH:MM:SSZ`` (UTC); None stays None."""
    if value is None or value == "":
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise OsmFetchError(f"invalid snapshot date {value!r}; use YYYY-MM-DD (e.g. 2021-12-31)") from None
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    if dt < ATTIC_START:
        raise OsmFetchError(
            f"snapshot date {value} is before {ATTIC_START:%Y-%m-%d}, the start of Overpass's history; "
            "choose a later date or fetch the current state (--date current)"
        )
    if dt > datetime.now(UTC):
        raise OsmFetchError(f"snapshot date {value} is in the future; use a past date or --date current")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- runway points -----------------------------------------------------------------------------
def runway_points(area: BaseGeometry, keys: Sequence[str] = OSM_LAYERS) -> gpd.GeoDataFrame:
    """Earth Genome's OSM runway points (registry ``runway_points``) inside ``area``, as aeroway=runway rows."""
    from asgm import registry

    pts = gpd.read_file(registry.get("runway_points")).to_crs("EPSG:4326")
    pts = pts[pts.geometry.intersects(area)] if not area.is_empty else pts.iloc[:0]
    if pts.empty:
        return empty_vectors(keys)
    rows = gpd.GeoDataFrame(
        {"element": RUNWAY_ELEMENT, "id": pts["id"].astype("int64").to_numpy() if "id" in pts else np.arange(len(pts))},
        geometry=pts.geometry.to_numpy(),
        crs="EPSG:4326",
    )
    for k in keys:
        rows[k] = "runway" if k == "aeroway" else None
    rows["source"] = "eg_runway_points"
    return normalize_features(rows, keys)


def merge_runways(features: gpd.GeoDataFrame, runways: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Add runway points, dropping those whose OSM way is already present with an aeroway tag."""
    if runways.empty:
        return features
    if "aeroway" in features and len(features):
        have = set(features.loc[(features["element"] == "way") & features["aeroway"].notna(), "id"])
        runways = runways[~runways["id"].isin(have)]
    return gpd.GeoDataFrame(pd.concat([features, runways], ignore_index=True), crs="EPSG:4326")


# -- the cache ---------------------------------------------------------------------------------
@dataclass
class FetchResult:
    """A fetched (or cache-read) set of OSM vectors."""

    path: Path
    meta: dict[str, Any]
    features: gpd.GeoDataFrame
    cached: bool
    requests: int = 0

    def report(self) -> dict[str, Any]:
        """JSON-able summary for the CLI."""
        return {"path": str(self.path), "cached": self.cached, "requests": self.requests, **self.meta}


def osm_dir() -> Path:
    """Folder holding the OSM vector caches."""
    return data_dir() / "osm"


def list_caches() -> list[dict[str, Any]]:
    """Sidecars of every complete cache, newest first."""
    out = []
    for side in osm_dir().glob("*/features.json"):
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, OSError):
            continue
        if (side.parent / "features.parquet").is_file():
            out.append({**meta, "path": str(side.parent / "features.parquet")})
    return sorted(out, key=lambda m: m.get("fetched_at", ""), reverse=True)


def find_store_cache(store_name: str) -> Path | None:
    """The newest complete cache fetched for the footprints of store ``store_name``, if any."""
    for meta in list_caches():
        q = meta.get("query") or {}
        if q.get("kind") == "store" and q.get("store") == store_name:
            return Path(meta["path"])
    return None


def cache_area(meta: dict[str, Any]) -> BaseGeometry | None:
    """The lon/lat area a complete cache (a ``list_caches`` entry) was fetched for: the union of its parts'
    bounds, else a bbox query's box; None when unknown (an OSM XML file)."""
    boxes = []
    for pj in sorted((Path(meta["path"]).parent / "parts").glob("*.json")):
        try:
            boxes.append(box(*json.loads(pj.read_text(encoding="utf-8"))["bounds"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    if boxes:
        return shapely.union_all(boxes)
    q = meta.get("query") or {}
    bbox = q.get("bbox") if q.get("kind") == "bbox" else None
    return box(*bbox) if isinstance(bbox, list) and len(bbox) == 4 else None


def find_cache_covering(area: BaseGeometry) -> Path | None:
    """The newest complete cache whose fetched area covers ``area`` (lon/lat), if any."""
    for meta in list_caches():
        fetched = cache_area(meta)
        if fetched is not None and fetched.covers(area):
            return Path(meta["path"])
    return None


def cache_id(kind: str, label: str, identity: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{kind}-{slug(label)}-{digest}"


def key_counts(gdf: gpd.GeoDataFrame, keys: Sequence[str]) -> dict[str, int]:
    return {k: int(gdf[k].notna().sum()) if k in gdf else 0 for k in keys}


def validate_keys(keys: Sequence[str]) -> tuple[str, ...]:
    unknown = [k for k in keys if k not in OSM_LAYERS]
    if unknown or not keys:
        raise OsmFetchError(f"unknown OSM key(s) {unknown or '(none given)'}; choose from {list(OSM_LAYERS)}")
    return tuple(k for k in OSM_LAYERS if k in keys)


def fetch(
    query: FetchQuery,
    *,
    keys: Sequence[str] = OSM_LAYERS,
    date: str | None = "auto",
    runway: bool | None = None,
    refresh: bool = False,
    retries: int = 4,
    backoff_s: float = 5.0,
    timeout_s: float = 180,
    overpass_url: str | None = None,
    progress: ProgressFn | None = None,
) -> FetchResult:
    """Fetch ``keys`` for ``query`` from Overpass through osmnx, part by part, with a resumable cache.

    ``date``: ``"auto"`` (the store's imagery end date for store queries, else current), ``None`` or
    ``"current"`` (today's OSM), or a date. ``runway``: add Earth Genome's runway points (default:
    only for current snapshots, because the points file is itself undated and recent).
    """
    keys = validate_keys(keys)
    if date == "auto":
        date = query.default_date
    date = normalize_date(None if date == "current" else date)
    runway = (date is None) if runway is None else runway
    url = resolve_overpass_url(overpass_url)
    if not query.parts:
        raise OsmFetchError(f"the {query.kind} query {query.label!r} covers no area; check the bounds or file")
    identity = {
        "kind": query.kind,
        "parts": [p.wkb_hex for p in query.parts],
        "keys": keys,
        "date": date,
        "runway": runway,
    }
    folder = osm_dir() / cache_id(query.kind, query.label, identity)
    out, side, parts_dir = folder / "features.parquet", folder / "features.json", folder / "parts"
    if out.is_file() and side.is_file() and not refresh:
        meta = json.loads(side.read_text(encoding="utf-8"))
        if progress:
            progress(len(query.parts), len(query.parts), True)
        return FetchResult(out, meta, read_vectors(out), cached=True)
    if refresh and parts_dir.exists():
        for f in parts_dir.iterdir():
            f.unlink()
    atomic.write_json(
        folder / "query.json",
        {
            "query": query.description,
            "keys": list(keys),
            "date": date,
            "runway_points": runway,
            "parts": len(query.parts),
        },
    )
    tags = {k: True for k in keys}
    frames, bases, n_requests = [], [], 0
    total = len(query.parts)
    for i, part in enumerate(query.parts):
        pq, pj = parts_dir / f"{i:05d}.parquet", parts_dir / f"{i:05d}.json"
        from_disk = pq.is_file() and pj.is_file()
        if from_disk:
            frames.append(gpd.read_parquet(pq))
            bases.append(json.loads(pj.read_text(encoding="utf-8")).get("osm_base"))
        else:
            raw, base = fetch_features(
                part,
                tags,
                url=url,
                timeout_s=timeout_s,
                date=date,
                retries=retries,
                backoff_s=backoff_s,
                where=f"part {i + 1}/{total} of {query.label}",
            )
            n_requests += 1
            gdf = normalize_features(raw, keys)
            write_parquet(gdf, pq)  # parquet first, then its .json: a part counts only with both
            atomic.write_json(
                pj,
                {
                    "part": i,
                    "features": len(gdf),
                    "osm_base": base,
                    "bounds": list(part.bounds),
                    "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
                },
            )
            frames.append(gdf)
            bases.append(base)
        if progress:
            progress(i + 1, total, from_disk)
    features = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else None
    features = empty_vectors(keys) if features is None else gpd.GeoDataFrame(features, crs="EPSG:4326")
    # Parts overlap where a feature crosses a cell or batch boundary: keep each element once.
    features = features.drop_duplicates(subset=["element", "id"]).sort_values(["element", "id"]).reset_index(drop=True)
    n_runways = 0
    if runway:
        rw = runway_points(query.area, keys) if "aeroway" in keys else empty_vectors(keys)
        before = len(features)
        features = merge_runways(features, rw)
        n_runways = len(features) - before
    write_parquet(features, out)
    known = sorted(b for b in bases if b)
    meta = {
        "query": query.description,
        "keys": list(keys),
        "source": "overpass",
        "overpass_url": url,
        "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "snapshot_date": date or (known[-1] if known else None),
        "snapshot": {
            "requested_date": date,
            "osm_base_min": known[0] if known else None,
            "osm_base_max": known[-1] if known else None,
        },
        "parts": total,
    }
    meta = write_cache_meta(side, meta, folder, features, keys, runway, n_runways)
    return FetchResult(out, meta, features, cached=False, requests=n_requests)


def osmnx_version() -> str:
    try:
        import osmnx

        return str(osmnx.__version__)
    except ImportError:  # pragma: no cover - osmnx is a hard requirement of fetching
        return "unknown"


def write_cache_meta(
    side: Path,
    meta: dict[str, Any],
    folder: Path,
    features: gpd.GeoDataFrame,
    keys: Sequence[str],
    runway: bool,
    n_runways: int,
) -> dict[str, Any]:
    """Complete a cache entry's sidecar with what every entry records (feature counts, runway points, osmnx
    version, credit, cache id), whatever its source (Overpass here, a local OSM XML file in ``local_xml``), and
    write it atomically; returns it."""
    meta = {
        **meta,
        "features": int(len(features)),
        "counts": key_counts(features, keys),
        "runway_points": {"included": bool(runway), "added": int(n_runways)},
        "osmnx_version": osmnx_version(),
        "credit": CREDIT,
        "cache_id": folder.name,
    }
    atomic.write_json(side, meta)
    return meta
