"""Detections to count: Amazon Mining Watch's yearly layers, the project's scan outputs, or a polygon file.

Whatever the source, ``Detections.gdf`` holds one row per detection polygon **new in its period** (EPSG:4326,
valid), its ``period`` label and ``mined_ha`` (AMW's SAM2-refined mined area inside the polygon; NaN where the
source has none, e.g. scans, whose detected footprint is the polygon itself). AMW's layers are new-per-period
already; scans are snapshots, so a scan series becomes "new" by taking away what earlier years detected.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from asgm import registry
from asgm.places import periods as P
from asgm.places.vectors import PlaceInputError, clean_polygons, file_sha256, read_polygons

#: Columns holding a detection's mined area (ha), first match wins (case-insensitive).
MINED_COLUMNS = ("Mined area (ha)", "mined_ha", "mined_area_ha")
#: Columns holding a detection's period (a year, a quarter label or AMW's code such as 202502).
PERIOD_COLUMNS = ("period", "year")
SYNTHETIC_NOTE = "SYNTHETIC imagery (not a real place)"


@dataclass
class Detections:
    """Detection polygons new in each period, and what the table can say about them."""

    gdf: gpd.GeoDataFrame
    description: str
    has_mined: bool
    credits: str
    synthetic: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def periods(self) -> list[str]:
        return P.ordered(self.gdf["period"])


@dataclass(frozen=True)
class DetectionSource:
    """Where detections come from: ``amw``, ``scans`` (a scan folder or a folder of scans) or ``file``
    (a path, or an upload as ``(name, bytes)``). ``key()`` is cheap (hashes, no parsing): the cache key."""

    kind: str
    path: Path | None = None
    upload: tuple[str, bytes] | None = None

    @property
    def description(self) -> str:
        if self.kind == "amw":
            return "Amazon Mining Watch yearly detections (2018-2025Q3)"
        if self.kind == "scans":
            return f"scans in {self.path}"
        return f"detections file {self.upload[0] if self.upload else self.path}"

    def key(self) -> str:
        h = hashlib.sha256(self.kind.encode())
        if self.kind == "amw":
            for period in registry.AMW_PERIODS:
                h.update(registry.FILES[registry.amw_layer_key(period)].sha256.encode())
        elif self.kind == "scans":
            for folder in scan_folders(self.path):
                h.update(file_sha256(folder / "scan.json").encode())
                h.update(file_sha256(folder / "detections.geojson").encode())
        elif self.upload is not None:
            h.update(hashlib.sha256(self.upload[1]).digest())
        else:
            h.update(file_sha256(_existing(self.path)).encode())
        return h.hexdigest()

    def load(self) -> Detections:
        """The detections; AMW's layers are read once per process (a table per boundary set reuses them)."""
        if self.kind == "amw":
            if "amw" not in _LOADED:
                _LOADED["amw"] = amw_detections()
            return _LOADED["amw"]
        if self.kind == "scans":
            assert self.path is not None
            return scan_detections(self.path)
        return file_detections(self.upload if self.upload is not None else _existing(self.path))


#: AMW's layers once read in this process (their content is pinned by sha256, so they never go stale).
_LOADED: dict[str, Detections] = {}


def _existing(path: Path | None) -> Path:
    if path is None or not path.is_file():
        raise PlaceInputError(f"detections file {path} does not exist")
    return path


def detection_source(value: str) -> DetectionSource:
    """``amw``, a scan folder (or a folder of scan folders), or a polygon file."""
    if value.strip().lower() == "amw":
        return DetectionSource("amw")
    path = Path(value).expanduser()
    if path.is_dir():
        scan_folders(path)  # refuse a folder with no scan now
        return DetectionSource("scans", path)
    if path.is_file():
        return DetectionSource("file", path)
    raise PlaceInputError(f"--detections {value}: not 'amw', a scan folder or a polygon file")


def amw_detections() -> Detections:
    """AMW's nine published layers (2018 = everything detected up to 2018, then new per year / quarter)."""
    frames = []
    for code in registry.AMW_PERIODS:
        g = gpd.read_file(registry.get(registry.amw_layer_key(code)), columns=["Mined area (ha)"])
        frames.append(
            gpd.GeoDataFrame(
                {
                    "period": P.label(code),
                    "mined_ha": g["Mined area (ha)"].astype(float),
                    # the feature's row in its pinned layer file: with the layer, a stable id for reviews
                    "layer": registry.amw_layer_key(code),
                    "feature": np.arange(len(g), dtype=np.int32),
                },
                geometry=g.geometry.to_numpy(),
                crs=g.crs,
            )
        )
    gdf = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs="EPSG:4326")
    cleaned = clean_polygons(gdf, "AMW's detection layers")
    return Detections(
        cleaned.gdf,
        DetectionSource("amw").description,
        True,
        "Detections: Earth Genome, Amazon Mining Watch, CC BY 4.0",
        notes=cleaned.notes,
    )


def scan_folders(path: Path | None) -> list[Path]:
    """Finished scan folders: ``path`` itself or its sub-folders (sorted); refuses a folder holding none."""
    if path is None or not path.is_dir():
        raise PlaceInputError(f"{path} is not a folder")
    candidates = (
        [path]
        if (path / "scan.json").is_file()
        else sorted(
            p
            for p in path.iterdir()
            if p.is_dir() and not p.name.startswith(("_", ".")) and (p / "scan.json").is_file()
        )
    )
    finished = [p for p in candidates if (p / "detections.geojson").is_file() and (p / "summary.json").is_file()]
    if not finished:
        raise PlaceInputError(
            f"{path} holds no finished scan (scan.json, detections.geojson and summary.json, as "
            "`asgm scan run --out` writes); run or finish a scan into it first"
        )
    return finished


def scan_detections(path: Path) -> Detections:
    """The detections of one or several finished scans, by scan year. A year's new footprint is what its
    scans detect outside every earlier year's detections (scans are snapshots, not "new" layers)."""
    by_year: dict[int, list[tuple[str, object]]] = {}
    synthetic = False
    for folder in scan_folders(path):
        try:
            manifest = json.loads((folder / "scan.json").read_text(encoding="utf-8"))
            year = int(manifest["identity"]["year"])
        except (OSError, ValueError, KeyError, TypeError):
            raise PlaceInputError(f"{folder}/scan.json is damaged (no identity.year); run the scan again") from None
        synthetic |= bool(manifest.get("synthetic"))
        polys = read_polygons(folder / "detections.geojson", "the scan detections") if _has_features(folder) else None
        found = [] if polys is None else list(polys.gdf.geometry)
        by_year.setdefault(year, []).extend((folder.name, g) for g in found)
    rows_period: list[str] = []
    rows_geom: list[object] = []
    rows_scan: list[str] = []
    seen = shapely.Polygon()
    for year in sorted(by_year):
        geoms = np.asarray([g for _, g in by_year[year]], dtype=object)
        if len(geoms):
            new = shapely.difference(geoms, seen) if not seen.is_empty else geoms
            keep = ~shapely.is_empty(new)
            rows_geom.extend(new[keep])
            rows_period.extend([str(year)] * int(keep.sum()))
            rows_scan.extend(name for (name, _), k in zip(by_year[year], keep, strict=True) if k)
            seen = shapely.union_all([seen, *geoms])
    gdf = gpd.GeoDataFrame(
        # scan: the folder a detection comes from (the Map opens its windows in the Patch viewer)
        {"period": rows_period, "mined_ha": np.full(len(rows_period), np.nan), "scan": rows_scan},
        geometry=gpd.GeoSeries(rows_geom, crs="EPSG:4326"),
        crs="EPSG:4326",
    )
    notes = ["scans give the detected footprint only (no mined-area refinement): the mined-area columns are empty"]
    if len(by_year) > 1:
        notes.append("each scan year's new footprint is what it detects outside every earlier year's detections")
    if synthetic:
        notes.insert(0, f"{SYNTHETIC_NOTE}: these detections come from a synthetic scan")
    years = sorted(by_year)
    return Detections(
        gdf,
        f"scans in {path} ({', '.join(map(str, years))})",
        False,
        "Detections: this project's scans of Copernicus Sentinel-2 data" if not synthetic else SYNTHETIC_NOTE,
        synthetic,
        notes,
    )


def _has_features(folder: Path) -> bool:
    try:
        return bool(json.loads((folder / "detections.geojson").read_text(encoding="utf-8")).get("features"))
    except (OSError, ValueError):
        raise PlaceInputError(f"{folder}/detections.geojson is damaged; run the scan again") from None


def _column(gdf: gpd.GeoDataFrame, names: tuple[str, ...]) -> str | None:
    lower = {str(c).lower(): str(c) for c in gdf.columns if c != gdf.geometry.name}
    return next((lower[n.lower()] for n in names if n.lower() in lower), None)


def file_detections(source: Path | tuple[str, bytes]) -> Detections:
    """Polygons of a file; ``period``/``year`` column for periods (else one period ``all``), a mined-area
    column if present (else the footprint only, said in notes)."""
    polys = read_polygons(source, "the detections file")
    gdf, notes = polys.gdf, list(polys.notes)
    pcol, mcol = _column(gdf, PERIOD_COLUMNS), _column(gdf, MINED_COLUMNS)
    if pcol is not None:
        try:
            period = [P.label(v) for v in gdf[pcol]]
        except P.PeriodError as exc:
            raise PlaceInputError(f"{polys.name}: column {pcol!r} holds a value that is not a period ({exc})") from None
    else:
        period = [P.ALL] * len(gdf)
        notes.append(f"{polys.name} has no period or year column: all detections count as one period '{P.ALL}'")
    if mcol is not None:
        mined = pd.to_numeric(gdf[mcol], errors="coerce").to_numpy(dtype=float)
        if np.isnan(mined).any():
            raise PlaceInputError(
                f"{polys.name}: column {mcol!r} has {int(np.isnan(mined).sum())} missing or "
                "non-numeric value(s); fill them or remove the column to count footprints only"
            )
    else:
        mined = np.full(len(gdf), np.nan)
        notes.append(
            f"{polys.name} has no mined-area column ({' / '.join(MINED_COLUMNS)}): the table gives the "
            "detected footprint area of its polygons only"
        )
    out = gpd.GeoDataFrame({"period": period, "mined_ha": mined}, geometry=gdf.geometry.to_numpy(), crs="EPSG:4326")
    return Detections(
        out,
        f"detections file {polys.name.split(' ', 3)[-1]}",
        mcol is not None,
        "as credited by the file's provider",
        notes=notes,
    )
