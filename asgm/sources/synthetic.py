"""Synthetic 12-band scenes with their OpenStreetMap vectors, for tests, benchmarks and offline use.

Everything written here is marked ``source=synthetic`` / ``product_level=synthetic``: it is not
imagery of any real place. A scene is a land-cover map drawn from vector shapes (rivers, tracks,
roads, buildings, fields, mining pits and ponds) with plausible Level-1C reflectances per class, and
the OSM features that a mapper might have drawn of it (incomplete, as OSM is in the Amazon).

Mining scenes differ from non-mining ones the way the study describes: bare soil/tailings and turbid
ponds strung along a river, with tracks (and sometimes an airstrip). Hard negatives carry look-alikes:
sandbars on sediment-laden rivers and bare fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import Transformer
from rasterio.features import rasterize
from shapely.geometry import LineString, Point, Polygon, box
from shapely.ops import transform as shp_transform
from tqdm import tqdm

from asgm import atomic
from asgm.config import OSM_LAYERS, REFLECTANCE, S2_BANDS
from asgm.data.store import Patch, PatchStore, PatchStoreError, StoreMeta
from asgm.errors import AsgmError
from asgm.grid import PatchGrid, patch_grid

#: Typical Level-1C reflectance x 10000 per class, bands in ``S2_BANDS`` order
#: (B1, B2, B3, B4, B5, B6, B7, B8A, B8, B9, B11, B12).
SPECTRA: dict[str, tuple[int, ...]] = {
    "forest": (1250, 950, 800, 550, 1000, 2300, 2800, 3000, 2900, 900, 1500, 650),
    "savanna": (1350, 1100, 1050, 1100, 1500, 2200, 2500, 2700, 2600, 900, 2700, 1700),
    "bare_soil": (1500, 1500, 1800, 2300, 2500, 2700, 2850, 3000, 2900, 1000, 3500, 2800),
    "turbid_pond": (1450, 1300, 1450, 1500, 1350, 1000, 950, 850, 900, 400, 450, 300),
    "clear_water": (1350, 1050, 850, 550, 450, 350, 330, 280, 300, 150, 120, 90),
    "sediment_river": (1400, 1200, 1250, 1150, 1000, 800, 750, 650, 700, 300, 300, 200),
    "sandbar": (1500, 1500, 1750, 2100, 2300, 2400, 2500, 2600, 2550, 900, 3000, 2300),
    "road": (1450, 1350, 1500, 1750, 1900, 2100, 2200, 2300, 2250, 850, 2900, 2300),
    "building": (1600, 1700, 1850, 2000, 2100, 2250, 2350, 2450, 2400, 900, 2600, 2200),
    "field": (1400, 1250, 1450, 1800, 2100, 2400, 2600, 2800, 2700, 950, 3100, 2400),
}
CLASSES = list(SPECTRA)


@dataclass
class Scene:
    """A synthetic patch with its land-cover map and the OSM features mapped on it."""

    patch: Patch
    cover: np.ndarray  # (H, W) index into CLASSES
    osm: gpd.GeoDataFrame  # EPSG:4326, columns OSM_LAYERS + geometry + sample_id


def _meander(rng: np.random.Generator, size_m: float, cx: float, cy: float) -> LineString:
    """A sinuous line crossing the patch (river or track), in projected metres."""
    angle = rng.uniform(0, np.pi)
    t = np.linspace(-0.75, 0.75, 40) * size_m
    amp, freq, phase = rng.uniform(0.03, 0.12) * size_m, rng.uniform(1, 3), rng.uniform(0, 2 * np.pi)
    off = rng.uniform(-0.25, 0.25) * size_m
    wiggle = amp * np.sin(freq * 2 * np.pi * t / size_m + phase) + off
    xs = cx + t * np.cos(angle) - wiggle * np.sin(angle)
    ys = cy + t * np.sin(angle) + wiggle * np.cos(angle)
    return LineString(np.column_stack([xs, ys]))


def _blob(rng: np.random.Generator, x: float, y: float, r: float) -> Polygon:
    """An irregular polygon (pit, pond, field) of radius about ``r`` metres."""
    ang = np.sort(rng.uniform(0, 2 * np.pi, 9))
    rad = r * rng.uniform(0.6, 1.3, 9)
    return Polygon(np.column_stack([x + rad * np.cos(ang), y + rad * np.sin(ang)])).buffer(0)


def _along(rng: np.random.Generator, line: LineString, jitter: float) -> tuple[float, float]:
    p = line.interpolate(rng.uniform(0.05, 0.95), normalized=True)
    return p.x + rng.normal(0, jitter), p.y + rng.normal(0, jitter)


def cover_dn(cover: np.ndarray, gain: float, rng: np.random.Generator) -> np.ndarray:
    """(bands, H, W) uint16 DN of a land-cover map: class spectra x ``gain`` plus 4 % per-pixel noise."""
    spectra = np.array([SPECTRA[c] for c in CLASSES], dtype=np.float32)  # (classes, bands)
    data = spectra[cover].transpose(2, 0, 1)  # (bands, H, W)
    noise = rng.normal(0, 0.04, size=data.shape) * data
    return np.clip(data * gain + noise, 1, 10000).astype(np.uint16)


def make_scene(
    sample_id: str,
    label: int,
    lon: float,
    lat: float,
    size: int = 48,
    seed: int = 0,
    hard_negative: bool = False,
    set_name: str | None = None,
    osm_completeness: float = 0.7,
) -> Scene:
    """One seeded synthetic scene: a 12-band patch (DN) centred on (lon, lat) plus its OSM vectors."""
    rng = np.random.default_rng(seed)
    grid: PatchGrid = patch_grid(lon, lat, size)
    w, s, e, n = grid.bounds
    size_m, cx, cy = e - w, (w + e) / 2, (s + n) / 2
    shapes: list[tuple[object, str]] = []  # (geometry, class), later ones paint over earlier ones
    osm: list[dict] = []

    def mapped(geom: Any, **tags: Any) -> None:
        if rng.random() < osm_completeness:
            osm.append({"geometry": geom, **tags})

    background = "forest" if rng.random() < 0.7 else "savanna"
    river = _meander(rng, size_m, cx, cy) if (label == 1 or rng.random() < 0.6) else None
    if river is not None:
        width = rng.uniform(12, 40)
        water = "sediment_river" if (label == 1 or hard_negative or rng.random() < 0.4) else "clear_water"
        shapes.append((river.buffer(width / 2), water))
        mapped(river, waterway="river" if width > 25 else "stream")
    if label == 1:
        # Mining: pits of bare soil and turbid ponds strung along the river, joined by tracks.
        for _ in range(rng.integers(3, 8)):
            x, y = _along(rng, river, size_m * 0.06)
            shapes.append((_blob(rng, x, y, rng.uniform(0.03, 0.1) * size_m), "bare_soil"))
            if rng.random() < 0.7:
                x2, y2 = x + rng.normal(0, size_m * 0.04), y + rng.normal(0, size_m * 0.04)
                shapes.append((_blob(rng, x2, y2, rng.uniform(0.02, 0.06) * size_m), "turbid_pond"))
            if rng.random() < 0.15:
                mapped(_blob(rng, x, y, 0.05 * size_m), landuse="quarry")
        for _ in range(rng.integers(1, 3)):
            track = _meander(rng, size_m, cx, cy)
            shapes.append((track.buffer(4), "road"))
            mapped(track, highway="track")
        if rng.random() < 0.25:
            strip = LineString(
                [
                    (cx - 0.3 * size_m, cy + rng.uniform(-0.3, 0.3) * size_m),
                    (cx + 0.3 * size_m, cy + rng.uniform(-0.3, 0.3) * size_m),
                ]
            )
            shapes.append((strip.buffer(12), "bare_soil"))
            mapped(strip, aeroway="runway")
    else:
        if hard_negative and river is not None:
            for _ in range(rng.integers(1, 4)):  # sandbars: bright, bare, along the river - but no ponds
                x, y = _along(rng, river, 5)
                shapes.append((_blob(rng, x, y, rng.uniform(0.02, 0.05) * size_m), "sandbar"))
        if hard_negative or rng.random() < 0.3:
            for _ in range(rng.integers(1, 4)):  # bare fields, rectangular
                x, y = cx + rng.uniform(-0.35, 0.35) * size_m, cy + rng.uniform(-0.35, 0.35) * size_m
                a, b = rng.uniform(0.05, 0.15, 2) * size_m
                field = Polygon([(x - a, y - b), (x + a, y - b), (x + a, y + b), (x - a, y + b)])
                shapes.append((field, "field"))
                mapped(field, landuse="farmland")
        if rng.random() < 0.5:  # a road, maybe with a village
            road = _meander(rng, size_m, cx, cy)
            shapes.append((road.buffer(5), "road"))
            mapped(road, highway=str(rng.choice(["primary", "secondary", "unclassified", "residential"])))
            if rng.random() < 0.5:
                for _ in range(rng.integers(3, 12)):
                    x, y = _along(rng, road, 25)
                    house = Point(x, y).buffer(rng.uniform(5, 12), cap_style=3)
                    shapes.append((house, "building"))
                    mapped(house, building="yes")
                mapped(Point(cx, cy).buffer(0.2 * size_m), landuse="residential")

    cover = np.full((size, size), CLASSES.index(background), dtype=np.uint8)
    for geom, cls in shapes:
        burned = rasterize(
            [(geom, 1)], out_shape=(size, size), transform=grid.transform, fill=0, dtype="uint8", all_touched=True
        )
        cover[burned == 1] = CLASSES.index(cls)

    gain = rng.normal(1.0, 0.04)  # per-scene illumination
    dn = cover_dn(cover, gain, rng)

    # Keep only the part of each mapped feature that lies in the patch, as a per-patch OSM clip would.
    footprint = box(w, s, e, n)
    to_ll = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform
    rows = [
        {k: f.get(k) for k in OSM_LAYERS} | {"geometry": shp_transform(to_ll, clipped), "sample_id": sample_id}
        for f in osm
        if not (clipped := f["geometry"].intersection(footprint)).is_empty
    ]
    gdf = gpd.GeoDataFrame(rows, columns=[*OSM_LAYERS, "sample_id", "geometry"], geometry="geometry", crs="EPSG:4326")
    set_name = set_name or ("positives" if label == 1 else "curated")
    patch = Patch(
        sample_id=sample_id,
        label=label,
        set=set_name,
        lon=lon,
        lat=lat,
        grid=grid,
        data=dn,
        bands=S2_BANDS,
        source="synthetic",
        date_start="2021-01-01",
        date_end="2022-01-01",
        product_level="synthetic",
    )
    return Scene(patch=patch, cover=cover, osm=gdf)


def refuse_overwrite(name: str, root: Any, overwrite: bool) -> None:
    """``PatchStoreError`` when store ``name`` exists and ``overwrite`` is not given, or holds real data."""
    from asgm.config import stores_dir

    folder = Path(root or stores_dir()) / name
    if not (folder / "store.json").exists() and not (folder / "index.csv").exists():
        return
    try:
        synthetic = PatchStore.open(str(folder)).meta.synthetic
    except AsgmError:
        synthetic = False
    if not synthetic:
        raise PatchStoreError(
            f"store {name!r} at {folder} holds real (non-synthetic) patches; synthetic data never "
            "replaces them: pick another --name"
        )
    if not overwrite:
        raise PatchStoreError(f"synthetic store {name!r} already exists at {folder}; pass --overwrite to rebuild it")


def build_store(
    name: str = "synthetic",
    n_pos: int = 20,
    n_neg: int = 40,
    n_random: int = 0,
    size: int = 48,
    seed: int = 0,
    root: Path | None = None,
    progress: bool = False,
    bbox: tuple[float, float, float, float] = (-64.0, 5.5, -61.0, 8.0),
    overwrite: bool = False,
) -> PatchStore:
    """Write a seeded synthetic store: ``n_pos`` mining scenes, ``n_neg`` curated-style negatives (a
    third of them hard negatives) and ``n_random`` random-style negatives, with their OSM vectors in
    ``<store>/osm_vectors.parquet``. An existing store is refused unless ``overwrite``, and a store that
    is not synthetic (real imagery) is never overwritten."""
    refuse_overwrite(name, root, overwrite)
    rng = np.random.default_rng(seed)
    meta = StoreMeta(
        name=name,
        source="synthetic",
        bands=S2_BANDS,
        size=size,
        product_level="synthetic",
        date_start="2021-01-01",
        date_end="2022-01-01",
        synthetic=True,
        description="SYNTHETIC scenes (not real imagery): generated 12-band reflectances with OSM-like vectors.",
        extra={"seed": seed, "n_pos": n_pos, "n_neg": n_neg, "n_random": n_random},
        encoding=REFLECTANCE.model_dump(),
    )
    store = PatchStore.create(meta, root=root, overwrite=True)
    specs = (
        [("syn-pos", 1, "positives", False)] * n_pos
        + [("syn-neg", 0, "curated", i % 3 == 0) for i in range(n_neg)]
        + [("syn-rnd", 0, "random", False)] * n_random
    )
    lons = rng.uniform(bbox[0], bbox[2], len(specs))
    lats = rng.uniform(bbox[1], bbox[3], len(specs))
    seeds = rng.integers(0, 2**31, len(specs))
    counters: dict[str, int] = {}
    scenes, vectors = [], []
    for (prefix, label, set_name, hard), lon, lat, s in tqdm(
        list(zip(specs, lons, lats, seeds, strict=True)), desc="synthetic scenes", disable=not progress
    ):
        k = counters[prefix] = counters.get(prefix, -1) + 1
        scene = make_scene(f"{prefix}-{k:04d}", label, float(lon), float(lat), size, int(s), hard, set_name)
        scenes.append(scene.patch)
        vectors.append(scene.osm)
    store.write_patches(scenes)
    osm = (
        pd.concat(vectors, ignore_index=True)
        if vectors
        else gpd.GeoDataFrame(columns=[*OSM_LAYERS, "sample_id", "geometry"])
    )
    with atomic.atomic_path(store.root / "osm_vectors.parquet") as tmp:  # never a half-written file
        gpd.GeoDataFrame(osm, geometry="geometry", crs="EPSG:4326").to_parquet(tmp)
    return store
