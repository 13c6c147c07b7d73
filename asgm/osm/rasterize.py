"""Rasterize OSM vectors onto the exact grid of each patch: one binary uint8 channel per key.

Choices (study bug B11, docs/study-bugs.md), recorded in the store's ``osm.json``:

* Grid: each mask has the CRS, affine transform and shape of its patch's Sentinel-2 GeoTIFF, read
  from the file header, so mask pixel (r, c) is patch pixel (r, c). Vectors are reprojected from
  EPSG:4326 to the patch's UTM zone; nothing is rasterized in degrees.
* Channels: ``asgm.config.OSM_LAYERS`` order (highway, waterway, building, landuse, aeroway), or a
  subset of it kept in that order. Every value of a key is merged into that key's channel.
* Lines and points are buffered by ``buffer_m`` (default 5 m, i.e. a 10 m wide corridor, one
  Sentinel-2 pixel) and burnt with ``all_touched=True`` (default): a road or a river is then an
  unbroken line 1-3 px wide, and a building node is a 1-4 px blob, instead of the study's fragile
  pixel-centre lines and single pixels. Polygons are not buffered. ``buffer_m=0`` and
  ``all_touched=False`` reproduce the study's rule (on the right grid).
* Tag-value filters per key: ``exclude`` drops values (e.g. ``landuse=quarry``, which may be drawn
  over the mines themselves, spec B4); ``include`` keeps only the listed values. A value such as
  ``quarry;industrial`` matches when any of its ``;``-separated parts matches. Filters act per
  channel: a feature tagged landuse=quarry and highway=track still counts for highway.
* No features on a patch -> an all-zero mask, never an error. But a vector file that cannot be OSM
  data for the store (no CRS, NaN or out-of-range lon/lat, no feature with an OSM key, nothing near any
  patch) is refused before anything is written, and a result with no feature on any patch never
  replaces existing masks unless ``force`` is given.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from rasterio.features import rasterize as _burn
from shapely.geometry import box

from asgm.config import OSM_LAYERS
from asgm.data.vector_checks import VectorDataError, check_lonlat
from asgm.grid import PatchGrid
from asgm.osm import OsmError, OsmRasterizeError

if TYPE_CHECKING:
    from asgm.data.store import PatchStore

DEFAULT_BUFFER_M = 5.0
_AREA_TYPES = ("Polygon", "MultiPolygon")


@dataclass(frozen=True)
class RasterizeOptions:
    """How vectors become masks (all recorded in ``osm.json``)."""

    layers: tuple[str, ...] = OSM_LAYERS
    buffer_m: float = DEFAULT_BUFFER_M
    all_touched: bool = True
    exclude: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    include: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [x for x in self.layers if x not in OSM_LAYERS]
        if unknown or not self.layers:
            raise OsmRasterizeError(f"unknown OSM layer(s) {unknown or '(none)'}; choose from {list(OSM_LAYERS)}")
        object.__setattr__(self, "layers", tuple(x for x in OSM_LAYERS if x in self.layers))
        if not (self.buffer_m >= 0 and np.isfinite(self.buffer_m)):
            raise OsmRasterizeError(f"buffer width must be >= 0 metres, got {self.buffer_m}")
        for name in ("exclude", "include"):
            filt = getattr(self, name)
            bad = [k for k in filt if k not in OSM_LAYERS]
            if bad:
                raise OsmRasterizeError(f"{name} filter on unknown key(s) {bad}; keys are {list(OSM_LAYERS)}")
            object.__setattr__(self, name, {k: tuple(sorted(set(v))) for k, v in sorted(filt.items())})

    def record(self) -> dict[str, Any]:
        d = asdict(self)
        d["layers"] = list(self.layers)
        d["filters"] = {
            "exclude": {k: list(v) for k, v in self.exclude.items()},
            "include": {k: list(v) for k, v in self.include.items()},
        }
        del d["exclude"], d["include"]
        return d


def parse_filters(specs: Sequence[str] | None) -> dict[str, tuple[str, ...]]:
    """``["landuse=quarry,industrial", "landuse=military"]`` -> ``{"landuse": ("industrial", "military", "quarry")}``."""  # noqa: E501
    out: dict[str, set[str]] = {}
    for spec in specs or ():
        key, sep, values = spec.partition("=")
        key = key.strip()
        vals = {v.strip() for v in values.split(",") if v.strip()}
        if not sep or not key or not vals:
            raise OsmRasterizeError(f"bad tag filter {spec!r}; write KEY=VALUE[,VALUE...], e.g. landuse=quarry")
        if key not in OSM_LAYERS:
            raise OsmRasterizeError(f"tag filter {spec!r}: key {key!r} is not one of {list(OSM_LAYERS)}")
        out.setdefault(key, set()).update(vals)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def _matches(values: np.ndarray, wanted: set[str]) -> np.ndarray:
    return np.array([v is not None and any(p.strip() in wanted for p in str(v).split(";")) for v in values], dtype=bool)


def layer_flags(vectors: gpd.GeoDataFrame, options: RasterizeOptions) -> np.ndarray:
    """(features, layers) bool: does feature i count for layer j, after the tag-value filters."""
    flags = np.zeros((len(vectors), len(options.layers)), dtype=bool)
    for j, key in enumerate(options.layers):
        if key not in vectors.columns:
            continue
        series = vectors[key]
        ok = np.array(series.notna() & (series.astype(str) != ""), dtype=bool)  # a writable copy
        col = np.asarray(np.where(ok, series.astype(str).to_numpy(dtype=object), None))
        if key in options.exclude:
            ok &= ~_matches(col, set(options.exclude[key]))
        if key in options.include:
            ok &= _matches(col, set(options.include[key]))
        flags[:, j] = ok
    return flags


@dataclass
class ProjectedVectors:
    """Vectors of one CRS, ready to rasterize: geometries, per-layer flags and a spatial index."""

    epsg: int
    geoms: np.ndarray
    flags: np.ndarray
    is_area: np.ndarray
    tree: shapely.STRtree
    rows: np.ndarray  # positions of these features in the input frame


def project_vectors(
    vectors: gpd.GeoDataFrame, options: RasterizeOptions, epsg: int, within_4326: shapely.Geometry | None = None
) -> ProjectedVectors:
    """Keep features that count for some layer (and touch ``within_4326``), reproject to ``epsg``."""
    flags = layer_flags(vectors, options)
    keep = flags.any(axis=1) & vectors.geometry.notna().to_numpy() & ~vectors.geometry.is_empty.to_numpy()
    if within_4326 is not None and keep.any():
        hit = np.zeros(len(vectors), dtype=bool)
        hit[vectors.sindex.query(within_4326, predicate="intersects")] = True
        keep &= hit
    sub = vectors.geometry[keep]
    geoms = sub.to_crs(epsg).to_numpy() if len(sub) else np.array([], dtype=object)
    return ProjectedVectors(
        epsg=epsg,
        geoms=geoms,
        flags=flags[keep],
        is_area=np.isin(shapely.get_type_id(geoms), [3, 6]) if len(geoms) else np.array([], dtype=bool),
        tree=shapely.STRtree(geoms),
        rows=np.flatnonzero(keep),
    )


def rasterize_grid(pv: ProjectedVectors, grid: PatchGrid, options: RasterizeOptions) -> np.ndarray:
    """(layers, N, N) uint8 masks of ``pv`` on ``grid`` (same CRS required)."""
    if grid.epsg != pv.epsg:
        raise OsmRasterizeError(f"vectors projected to EPSG:{pv.epsg} but the patch grid is EPSG:{grid.epsg}")
    n = grid.size
    masks = np.zeros((len(options.layers), n, n), dtype=np.uint8)
    if len(pv.geoms) == 0:
        return masks
    west, south, east, north = grid.bounds
    # Clip a little beyond the patch so buffered ends and all_touched edges behave as in a bigger map.
    m = options.buffer_m + abs(grid.transform.a)
    rect = (west - m, south - m, east + m, north + m)
    idx = pv.tree.query(box(*rect))
    if len(idx) == 0:
        return masks
    idx.sort()
    geoms = shapely.clip_by_rect(pv.geoms[idx], *rect)
    if options.buffer_m > 0:
        thin = ~pv.is_area[idx]
        if thin.any():
            geoms[thin] = shapely.buffer(geoms[thin], options.buffer_m, quad_segs=4)
    # Trim to the patch itself, so nothing reaches past it into the neighbouring panel (below).
    geoms = shapely.clip_by_rect(geoms, west, south, east, north)
    alive = ~shapely.is_empty(geoms)
    flags = pv.flags[idx] & alive[:, None]
    layers = [j for j in range(len(options.layers)) if flags[:, j].any()]
    if not layers:
        return masks
    # One rasterize call per patch instead of one per layer (the fixed cost of a call dominates):
    # layer k is shifted east into its own panel of a (n, k * (n + gap)) canvas, with a gap of
    # empty columns so all_touched at a panel's edge cannot spill into the next one.
    gap = 2
    step = (n + gap) * grid.transform.a
    shapes = []
    for k, j in enumerate(layers):
        part = geoms[flags[:, j]]
        shapes.extend(shapely.transform(part, lambda c, dx=k * step: c + (dx, 0.0)) if k else part)
    canvas = _burn(
        shapes,
        out_shape=(n, len(layers) * (n + gap)),
        transform=grid.transform,
        fill=0,
        default_value=1,
        all_touched=options.all_touched,
        dtype=np.uint8,
    )
    for k, j in enumerate(layers):
        masks[j] = canvas[:, k * (n + gap) : k * (n + gap) + n]
    return masks


def rasterize_grids(
    vectors: gpd.GeoDataFrame, grids: Sequence[PatchGrid], options: RasterizeOptions | None = None
) -> Iterator[np.ndarray]:
    """Masks for each grid, in order. Vectors are reprojected once per UTM zone, keeping only the
    features near the grids of that zone."""
    options = options or RasterizeOptions()
    if vectors.crs is None:
        raise OsmRasterizeError("the OSM vectors have no CRS; they must be EPSG:4326 (lon/lat)")
    vectors = vectors.to_crs("EPSG:4326") if vectors.crs.to_epsg() != 4326 else vectors
    vectors = vectors.reset_index(drop=True)
    by_epsg: dict[int, ProjectedVectors] = {}
    for epsg in sorted({g.epsg for g in grids}):
        zone = [g for g in grids if g.epsg == epsg]
        footprints = gpd.GeoSeries(
            [box(*_padded(g.bounds, options.buffer_m + 2 * abs(g.transform.a))) for g in zone], crs=epsg
        ).to_crs("EPSG:4326")
        by_epsg[epsg] = project_vectors(vectors, options, epsg, within_4326=footprints.union_all())
    for g in grids:
        yield rasterize_grid(by_epsg[g.epsg], g, options)


def _padded(b: tuple[float, float, float, float], m: float) -> tuple[float, float, float, float]:
    return b[0] - m, b[1] - m, b[2] + m, b[3] + m


# -- patch stores --------------------------------------------------------------------------------
def patch_grid_of(store: PatchStore, sample_id: str) -> PatchGrid:
    """The exact grid (CRS, affine, shape) of a patch, read from its GeoTIFF header."""
    path = store.patch_path(sample_id)
    try:
        with rasterio.open(path) as src:
            if src.width != src.height:
                raise OsmRasterizeError(f"{path}: patch is {src.width}x{src.height}, expected a square patch")
            return PatchGrid(epsg=src.crs.to_epsg(), transform=src.transform, size=src.width)
    except rasterio.errors.RasterioIOError as exc:
        raise OsmRasterizeError(
            f"cannot read the grid of patch {sample_id!r} ({path}): {exc}; rebuild the store"
        ) from exc


def _sidecar(path: Path) -> dict[str, Any]:
    for cand in (path.with_suffix(".json"), path.parent / "features.json"):
        if cand.is_file():
            try:
                return json.loads(cand.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                return {}
    return {}


def resolve_vectors(
    store: PatchStore, vectors: str | Path | gpd.GeoDataFrame | None = None
) -> tuple[gpd.GeoDataFrame, str, dict[str, Any]]:
    """(vectors, where they came from, their sidecar) for a store: the given file/frame; else the
    synthetic store's own ``osm_vectors.parquet``; else the newest fetch cache for the store."""
    from asgm.osm.fetch import read_vectors
    from asgm.osm.nearby import store_vectors_path

    if isinstance(vectors, gpd.GeoDataFrame):
        return vectors, "(in memory)", {}
    if vectors is not None:
        path = Path(vectors)
    else:
        found = store_vectors_path(store)
        if found is None and store.meta.source == "synthetic":
            raise OsmRasterizeError(
                f"synthetic store {store.name!r} has no osm_vectors.parquet; rebuild it with `asgm synthetic build`"
            )
        if found is None:
            raise OsmRasterizeError(
                f"no OSM vectors for store {store.name!r}: run `asgm osm fetch --store {store.name}` first, "
                "or pass --vectors FILE (GeoParquet/GeoPackage/GeoJSON with the OSM key columns)"
            )
        path = found
    try:
        return read_vectors(path), str(path), _sidecar(path)
    except OsmError as exc:
        raise OsmRasterizeError(str(exc)) from exc


def check_vectors(
    gdf: gpd.GeoDataFrame, grids: Sequence[PatchGrid], options: RasterizeOptions, source: str, force: bool = False
) -> None:
    """Refuse vectors that cannot be OSM data for these patches: no CRS, NaN or out-of-range lon/lat
    (always); and, unless ``force``, no features, no feature with a value for the OSM keys, or no
    feature anywhere near the patches (wrong file or wrong store)."""
    try:
        check_lonlat(gdf, f"OSM vectors {source}")
    except VectorDataError as exc:
        raise OsmRasterizeError(str(exc)) from None
    if force:
        return
    again = "check the file (or pass --force to write empty masks anyway)"
    if len(gdf) == 0:
        raise OsmRasterizeError(f"OSM vectors {source} hold no features; {again}")
    keyed = np.zeros(len(gdf), dtype=bool)
    for key in options.layers:
        if key in gdf.columns:
            keyed |= (gdf[key].notna() & (gdf[key].astype(str) != "")).to_numpy()
    if not keyed.any():
        raise OsmRasterizeError(
            f"no feature of OSM vectors {source} has a value for the keys {list(options.layers)} (columns: "
            f"{[c for c in gdf.columns if c != gdf.geometry.name]}); they are not OSM vectors in the expected schema; "
            f"{again}"
        )
    footprints = [
        gpd.GeoSeries([box(*g.bounds) for g in grids if g.epsg == epsg], crs=epsg).to_crs("EPSG:4326")
        for epsg in sorted({g.epsg for g in grids})
    ]
    area = shapely.union_all([f.union_all() for f in footprints]).buffer(0.01)  # ~1 km of slack
    if not gdf.sindex.query(area, predicate="intersects").size:
        w, s, e, n = gdf.total_bounds
        aw, as_, ae, an = area.bounds
        raise OsmRasterizeError(
            f"OSM vectors {source} (lon {w:.3f}..{e:.3f}, lat {s:.3f}..{n:.3f}) do not reach any patch of the store "
            f"(lon {aw:.3f}..{ae:.3f}, lat {as_:.3f}..{an:.3f}): wrong file or wrong store; {again}"
        )


def rasterize_store(
    store: PatchStore,
    vectors: str | Path | gpd.GeoDataFrame | None = None,
    options: RasterizeOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Rasterize OSM vectors onto every patch of ``store`` (``store.write_osm``) and record how in
    ``osm.json`` (``store.write_osm_info``). Returns that record plus counts.

    The vectors are checked first (``check_vectors``). Without ``force``, a result with no feature on
    any patch is not written over existing masks: empty masks are held back until a patch with a
    feature appears, so a refused run leaves every file as it was."""
    options = options or RasterizeOptions()
    gdf, source, side = resolve_vectors(store, vectors)
    ids = store.sample_ids()
    if not ids:
        raise OsmRasterizeError(f"patch store {store.name!r} has no patches to rasterize onto")
    grids = [patch_grid_of(store, sid) for sid in ids]
    check_vectors(gdf, grids, options, source, force=force)
    has_masks = store.osm_info() is not None or any((store.root / "osm").glob("*.tif"))
    held: list[str] = []  # all-empty results not written yet (they are all zeros: nothing to keep)
    with_any = 0
    per_layer = np.zeros(len(options.layers), dtype=int)
    for i, (sid, masks) in enumerate(zip(ids, rasterize_grids(gdf, grids, options), strict=True)):
        present = masks.reshape(len(options.layers), -1).any(axis=1)
        if not present.any() and not with_any and has_masks and not force:
            held.append(sid)
        else:
            for h in held:
                store.write_osm(h, np.zeros_like(masks), options.layers)
            held.clear()
            store.write_osm(sid, masks, options.layers)
        per_layer += present
        with_any += bool(present.any())
        if progress:
            progress(i + 1, len(ids))
    if held:
        raise OsmRasterizeError(
            f"OSM vectors {source} put no feature on any of the {len(ids)} patches of store {store.name!r}; its "
            "existing OSM masks were left as they were. Pass --force to replace them with empty masks"
        )
    info = {
        **options.record(),
        "snapshot_date": side.get("snapshot_date"),
        "source_cache": source,
        "source_query": side.get("query"),
        "source_fetched_at": side.get("fetched_at"),
        "runway_points": side.get("runway_points"),
        "grid": "each patch's own GeoTIFF grid (CRS, affine transform, shape)",
        "dtype": "uint8 (0/1)",
        "patches": len(ids),
        "patches_with_any": with_any,
        "patches_per_layer": {k: int(v) for k, v in zip(options.layers, per_layer, strict=True)},
        "features": int(len(gdf)),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "credit": "© OpenStreetMap contributors (ODbL)",
    }
    store.write_osm_info(info)
    return info
