"""Labelled points: load and validate the study's point sets, give each a stable ``sample_id``.

Sample ids are the set prefix and the point's position in its upstream file (``pos-0007`` is the
8th point of the positives file), so they never depend on download or listing order (bug B1).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from shapely.geometry import Point

from asgm import registry
from asgm.config import read_text
from asgm.errors import AsgmError

#: set name -> (registry key, sample_id prefix, label)
STUDY_SETS: dict[str, tuple[str, str, int]] = {
    "positives": ("study_positives", "pos", 1),
    "curated": ("study_curated_negatives", "cur", 0),
    "random": ("study_random_negatives", "rnd", 0),
}
#: The demo's Earth Genome point sets (the chips of the demo pack), fetchable like the study's.
EARTH_GENOME_SETS: dict[str, tuple[str, str, int]] = {
    "eg-positives": ("eg_positives", "egp", 1),
    "eg-negatives": ("eg_negatives", "egn", 0),
}
POINT_SETS: dict[str, tuple[str, str, int]] = {**STUDY_SETS, **EARTH_GENOME_SETS}
LABEL_COLUMN = "label"
EARTH_RADIUS_M = 6_371_008.8


class PointsError(AsgmError, ValueError):
    """Bad point input; the message names the file and what is wrong."""


def read_points_file(
    path: str | Path, prefix: str, label: int, set_name: str, allow_duplicates: bool = False
) -> gpd.GeoDataFrame:
    """Read and validate a GeoJSON file of points into (sample_id, label, set, lon, lat, geometry).

    Duplicate points are an error unless ``allow_duplicates`` (for upstream files whose row order
    matters, e.g. one chip per row); they then keep their own ids, in file order."""
    path = Path(path)
    if not path.is_file():
        raise PointsError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise PointsError(f"{path}: the file is empty; expected a GeoJSON FeatureCollection of Points")
    try:
        raw = json.loads(read_text(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PointsError(f"{path}: not valid GeoJSON ({exc}); expected a FeatureCollection of Points") from exc
    if not isinstance(raw, dict) or raw.get("type") != "FeatureCollection" or not isinstance(raw.get("features"), list):
        raise PointsError(f"{path}: expected a GeoJSON FeatureCollection with a 'features' list")
    crs_name = ((raw.get("crs") or {}).get("properties") or {}).get("name", "")
    if crs_name and not any(s in crs_name.upper() for s in ("CRS84", "4326")):
        raise PointsError(f"{path}: CRS {crs_name!r} is not WGS 84 lon/lat; reproject to EPSG:4326 (lon, lat) first")
    if not raw["features"]:
        raise PointsError(f"{path}: the FeatureCollection has no features")
    lons, lats = [], []
    for i, feat in enumerate(raw["features"]):
        geom = (feat or {}).get("geometry") or {}
        if geom.get("type") != "Point":
            raise PointsError(f"{path}: feature {i} is a {geom.get('type') or 'missing geometry'}, expected a Point")
        lon, lat = _lonlat(path, f"feature {i}", geom.get("coordinates") or [])
        lons.append(lon)
        lats.append(lat)
    df = pd.DataFrame({"lon": lons, "lat": lats})
    if not allow_duplicates:
        _no_duplicates(path, df)
    return _with_ids(df, prefix, label, set_name)


def _lonlat(path: Path, where: str, coords: Sequence[object]) -> tuple[float, float]:
    """One validated (lon, lat) pair."""
    try:
        lon, lat = float(coords[0]), float(coords[1])  # type: ignore[arg-type]
    except (IndexError, TypeError, ValueError):
        raise PointsError(f"{path}: {where} has malformed coordinates {list(coords)!r}") from None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90) or not (np.isfinite(lon) and np.isfinite(lat)):
        raise PointsError(
            f"{path}: {where} has coordinates out of range (lon={lon}, lat={lat}); "
            "expected lon in [-180, 180], lat in [-90, 90] — are lon and lat swapped or projected?"
        )
    return lon, lat


def _no_duplicates(path: Path, df: pd.DataFrame) -> None:
    dup = df[["lon", "lat"]].duplicated(keep=False)
    if dup.any():
        first = df.loc[dup, ["lon", "lat"]].head(3).to_dict("records")
        raise PointsError(f"{path}: {int(dup.sum())} duplicate points, e.g. {first}; remove the duplicates")


def _with_ids(df: pd.DataFrame, prefix: str, label: int | Sequence[int], set_name: str) -> gpd.GeoDataFrame:
    width = max(4, len(str(len(df) - 1)))
    df = df[["lon", "lat"]].copy()
    df.insert(0, "sample_id", [f"{prefix}-{i:0{width}d}" for i in range(len(df))])
    df.insert(1, "label", int(label) if isinstance(label, (int, np.integer)) else [int(v) for v in label])
    df.insert(2, "set", set_name)
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df.lon, df.lat), crs="EPSG:4326")


def load_points(sets: Sequence[str] = ("positives", "curated", "random")) -> gpd.GeoDataFrame:
    """The study's labelled points for the named sets (fetched via the registry)."""
    frames = []
    for name in sets:
        if name not in POINT_SETS:
            raise PointsError(f"unknown point set {name!r}; choose from {list(POINT_SETS)}")
        key, prefix, label = POINT_SETS[name]
        frames.append(read_points_file(registry.get(key), prefix, label, name))
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs="EPSG:4326")


def read_labelled_points(
    path: str | Path, label_column: str = LABEL_COLUMN, label: int | None = None, set_name: str | None = None
) -> gpd.GeoDataFrame:
    """Read a user's point file: a GeoJSON FeatureCollection of Points, or a CSV with ``lon`` and ``lat``
    columns, validated like the study's files. Labels (1 = mining, 0 = not) come from ``label_column``,
    or ``label`` for every point when the file has none. Sample ids are ``<file stem>-<position>``."""
    path = Path(path)
    stem = re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-") or "points"
    set_name = set_name or stem
    if path.suffix.lower() == ".csv":
        df = _read_csv(path)
        _no_duplicates(path, df)
        props = df
    else:
        gdf = read_points_file(path, stem, 0, set_name)  # geometry, range and duplicate checks
        raw = json.loads(read_text(path))
        props = pd.DataFrame([(f or {}).get("properties") or {} for f in raw["features"]])
        df = pd.DataFrame({"lon": gdf["lon"], "lat": gdf["lat"]})
    if label_column in props.columns:
        labels = []
        for i, v in enumerate(props[label_column].tolist()):
            try:
                value = int(float(v))
                ok = value in (0, 1) and float(v) == value
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise PointsError(
                    f"{path}: point {i} has {label_column}={v!r}; labels must be 1 (mining) or 0 (not mining)"
                )
            labels.append(value)
        return _with_ids(df, stem, labels, set_name)
    if label is None:
        raise PointsError(
            f"{path}: no {label_column!r} column; add one (1 = mining, 0 = not mining) or choose one "
            f"label for every point"
        )
    if label not in (0, 1):
        raise PointsError(f"label {label!r} must be 1 (mining) or 0 (not mining)")
    return _with_ids(df, stem, label, set_name)


def _read_csv(path: Path) -> pd.DataFrame:
    """A CSV's lon/lat columns (validated) and its other columns."""
    if not path.is_file():
        raise PointsError(f"{path}: file not found")
    try:
        df = pd.read_csv(io.StringIO(read_text(path)))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise PointsError(
            f"{path}: not a readable CSV ({str(exc).splitlines()[0]}); expected columns lon, lat and {LABEL_COLUMN}"
        ) from None
    cols = {c.lower().strip(): c for c in df.columns}
    missing = [c for c in ("lon", "lat") if c not in cols]
    if missing:
        raise PointsError(
            f"{path}: no {' or '.join(missing)} column (columns: {list(df.columns)}); expected lon, lat "
            f"in WGS 84 degrees and {LABEL_COLUMN}"
        )
    if df.empty:
        raise PointsError(f"{path}: the CSV has no rows")
    df = df.rename(columns={cols["lon"]: "lon", cols["lat"]: "lat"})
    coords = [
        _lonlat(path, f"row {i}", (lon, lat)) for i, (lon, lat) in enumerate(zip(df["lon"], df["lat"], strict=True))
    ]
    df["lon"], df["lat"] = [c[0] for c in coords], [c[1] for c in coords]
    return df


def write_points_file(points: pd.DataFrame, path: str | Path) -> Path:
    """Write points (lon, lat, label) as a GeoJSON FeatureCollection that ``read_labelled_points`` reads
    back with the same sample ids (atomically: a failed write leaves nothing)."""
    from asgm import atomic

    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [float(r.lon), float(r.lat)]},
            "properties": {LABEL_COLUMN: int(r.label)},
        }
        for r in points.itertuples()
    ]
    atomic.write_text(path, json.dumps({"type": "FeatureCollection", "features": features}) + "\n")
    return Path(path)


def summary(points: gpd.GeoDataFrame) -> dict[str, object]:
    """Counts per set and label plus the extent."""
    return {
        "total": int(len(points)),
        "by_set": {str(k): int(v) for k, v in points["set"].value_counts().items()},
        "by_label": {str(k): int(v) for k, v in points["label"].value_counts().sort_index().items()},
        "bounds": [float(x) for x in points.total_bounds] if len(points) else [],
    }


def haversine_m(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> np.ndarray:
    """Great-circle distance in metres (broadcasting)."""
    lon1, lat1, lon2, lat2 = map(np.radians, (lon1, lat1, lon2, lat2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def nearest_index_m(lonlat: np.ndarray, ref_lonlat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of, and great-circle distance in metres to, the nearest reference point of each (lon, lat) row."""
    from sklearn.neighbors import BallTree

    tree = BallTree(np.radians(np.asarray(ref_lonlat, dtype=float)[:, ::-1]), metric="haversine")
    dist, idx = tree.query(np.radians(np.asarray(lonlat, dtype=float)[:, ::-1]), k=1)
    return idx[:, 0], dist[:, 0] * EARTH_RADIUS_M


def nearest_distance_m(lonlat: np.ndarray, ref_lonlat: np.ndarray) -> np.ndarray:
    """Distance in true metres from each (lon, lat) row to its nearest reference point."""
    return nearest_index_m(lonlat, ref_lonlat)[1]


def random_negatives(
    boundary: gpd.GeoDataFrame,
    positives: gpd.GeoDataFrame,
    n: int | None = None,
    spacing_m: float = 2560.0,
    min_distance_m: float = 2560.0,
    seed: int = 42,
    prefix: str = "gen",
) -> gpd.GeoDataFrame:
    """The study's random negatives, done right: a ``spacing_m`` grid (true metres, UTM) inside the
    boundary, at least ``min_distance_m`` (great-circle) from every positive, ``n`` = 5 x positives
    drawn with a seeded generator. Returned with sample ids in draw order."""
    if boundary.empty:
        raise PointsError("the boundary is empty; cannot place random negatives")
    n = 5 * len(positives) if n is None else n
    utm = boundary.to_crs("EPSG:4326").estimate_utm_crs()
    minx, miny, maxx, maxy = boundary.to_crs(utm).total_bounds
    xs, ys = np.meshgrid(np.arange(minx, maxx, spacing_m), np.arange(miny, maxy, spacing_m))
    grid = gpd.GeoSeries(gpd.points_from_xy(xs.ravel(), ys.ravel()), crs=utm).to_crs("EPSG:4326")
    # Test containment in the boundary's own CRS: its edges are straight in lon/lat, not in UTM.
    grid = grid[grid.within(boundary.to_crs("EPSG:4326").union_all())]
    cand = np.column_stack([grid.x.to_numpy(), grid.y.to_numpy()])
    pos = np.column_stack([positives.geometry.x.to_numpy(), positives.geometry.y.to_numpy()])
    if len(pos):
        cand = cand[nearest_distance_m(cand, pos) >= min_distance_m]
    if len(cand) < n:
        raise PointsError(f"only {len(cand)} grid points qualify, fewer than the {n} requested")
    pick = np.random.default_rng(seed).choice(len(cand), size=n, replace=False)
    chosen = cand[np.sort(pick)]
    df = pd.DataFrame(
        {
            "sample_id": [f"{prefix}-{i:04d}" for i in range(n)],
            "label": 0,
            "set": "random",
            "lon": chosen[:, 0],
            "lat": chosen[:, 1],
        }
    )
    return gpd.GeoDataFrame(df, geometry=[Point(xy) for xy in chosen], crs="EPSG:4326")


def save_random_negatives(gdf: gpd.GeoDataFrame, seed: int, path: str | Path | None = None) -> Path:
    """Record the exact list of drawn negatives as GeoJSON (atomically), by default under
    ``data/points/random_seed<SEED>.geojson``; returns the path."""
    from asgm import atomic
    from asgm.config import data_dir

    out = Path(path) if path else data_dir() / "points" / f"random_seed{seed}.geojson"
    with atomic.atomic_path(out, suffix=".geojson") as tmp:
        gdf.to_file(tmp, driver="GeoJSON")
    return out


def placement_note(points: pd.DataFrame) -> tuple[str, str | None]:
    """(the points' extent as one line, a warning or None) for a user's upload: points on no country (the
    ocean, or far from any land Sentinel-2 images) are named, with a hint when swapping lon and lat would put
    them on land (a file written lat, lon)."""
    from asgm.data.regions import country_codes

    lon, lat = points["lon"].to_numpy(float), points["lat"].to_numpy(float)
    extent = (
        f"extent lon {lon.min():.4f} … {lon.max():.4f}, lat {lat.min():.4f} … {lat.max():.4f} ({len(points)} point(s))"
    )
    off = country_codes(lon, lat) == ""
    if not off.any():
        return extent, None
    warning = (
        f"{int(off.sum())} of {len(points)} point(s) lie on no country (in the ocean or far from any land, "
        f"so from any imagery), e.g. lon {lon[off][0]:.4f}, lat {lat[off][0]:.4f}"
    )
    swapped_ok = np.all(np.abs(lon[off]) <= 90) and (country_codes(lat[off], lon[off]) != "").all()
    if swapped_ok:
        warning += (
            "; with lon and lat swapped they fall on land: the file probably lists lat before lon — "
            "check its columns or coordinate order"
        )
    return extent, warning
