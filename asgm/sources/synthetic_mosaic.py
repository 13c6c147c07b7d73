"""A SYNTHETIC 12-band mosaic (GeoTIFF) of a whole area with known mine sites, for region-scan tests and
benchmarks. Not imagery of any real place: every file says ``source=synthetic`` in its tags.

It uses the land-cover classes and spectra of ``asgm.sources.synthetic``: forest with savanna patches,
meandering rivers (some sediment-laden), roads with villages, bare fields and sandbars as look-alikes,
and mine sites (bare-soil pits and turbid ponds strung along a river, joined by a track) whose
footprints are written next to the mosaic as ``<name>.mines.geojson``. The mosaic is written block by
block, so a 50 x 50 km area never sits in memory at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from affine import Affine
from pyproj import Transformer
from rasterio.features import rasterize
from rasterio.windows import Window
from shapely import STRtree
from shapely.geometry import LineString, Point, Polygon
from shapely.ops import unary_union

from asgm import atomic
from asgm.config import S2_BANDS
from asgm.grid import RESOLUTION_M, utm_epsg
from asgm.sources.synthetic import CLASSES, _along, _blob, _meander, cover_dn

#: Written into every mosaic's tags and description.
SYNTHETIC_NOTE = "SYNTHETIC mosaic (not real imagery): generated 12-band reflectances with known mine sites."
BLOCK = 512


@dataclass
class Mosaic:
    """A written synthetic mosaic: its file, grid, and the mine sites drawn in it (EPSG:4326)."""

    path: Path
    epsg: int
    transform: Affine
    size: int
    mines: gpd.GeoDataFrame  # site, area_ha, geometry (EPSG:4326)

    @property
    def mines_path(self) -> Path:
        return mines_path(self.path)


def mines_path(path: Path) -> Path:
    """Where the mine footprints of mosaic ``path`` are written."""
    return Path(path).with_suffix(".mines.geojson")


def _mine_site(rng: np.random.Generator, river: LineString) -> tuple[list[tuple[object, str]], Polygon]:
    """Pits and ponds along ``river`` near a random point, plus a track; returns shapes and the footprint."""
    d0 = rng.uniform(0.1, 0.9) * river.length
    shapes: list[tuple[object, str]] = []
    dug: list[Polygon] = []
    for _ in range(rng.integers(3, 8)):
        p = river.interpolate(np.clip(d0 + rng.uniform(-200, 200), 0, river.length))
        x, y = p.x + rng.normal(0, 30), p.y + rng.normal(0, 30)
        pit = _blob(rng, x, y, rng.uniform(30, 90))
        shapes.append((pit, "bare_soil"))
        dug.append(pit)
        if rng.random() < 0.8:
            pond = _blob(rng, x + rng.normal(0, 40), y + rng.normal(0, 40), rng.uniform(20, 60))
            shapes.append((pond, "turbid_pond"))
            dug.append(pond)
    c = river.interpolate(d0)
    ang = rng.uniform(0, 2 * np.pi)
    length = rng.uniform(300, 600)
    shapes.append(
        (LineString([(c.x, c.y), (c.x + length * np.cos(ang), c.y + length * np.sin(ang))]).buffer(4), "road")
    )
    return shapes, unary_union(dug)


def _layout(
    rng: np.random.Generator, size_m: float, x0: float, y0: float, n_mines: int
) -> tuple[list[tuple[object, str]], list[Polygon]]:
    """Every shape of the mosaic in paint order (later ones paint over earlier ones) and the mine footprints."""
    cx, cy = x0 + size_m / 2, y0 - size_m / 2
    km2 = (size_m / 1000) ** 2
    shapes: list[tuple[object, str]] = []
    for _ in range(max(1, int(km2 / 20))):  # savanna patches
        shapes.append(
            (_blob(rng, rng.uniform(x0, x0 + size_m), rng.uniform(y0 - size_m, y0), rng.uniform(300, 1500)), "savanna")
        )
    rivers = []
    for _ in range(max(2, round(size_m / 4000))):
        river = _meander(rng, size_m, cx + rng.uniform(-0.3, 0.3) * size_m, cy + rng.uniform(-0.3, 0.3) * size_m)
        rivers.append((river, "sediment_river" if rng.random() < 0.7 else "clear_water"))
        shapes.append((river.buffer(rng.uniform(12, 40) / 2), rivers[-1][1]))
    for _ in range(max(1, int(km2 / 2))):  # bare fields: rectangular look-alikes
        x, y = rng.uniform(x0, x0 + size_m), rng.uniform(y0 - size_m, y0)
        a, b = rng.uniform(50, 150, 2)
        shapes.append((Polygon([(x - a, y - b), (x + a, y - b), (x + a, y + b), (x - a, y + b)]), "field"))
    for _ in range(max(1, int(km2 / 10))):  # roads, some with a village
        road = _meander(rng, size_m * 0.3, rng.uniform(x0, x0 + size_m), rng.uniform(y0 - size_m, y0))
        shapes.append((road.buffer(5), "road"))
        if rng.random() < 0.5:
            for _ in range(rng.integers(3, 12)):
                x, y = _along(rng, road, 25)
                shapes.append((Point(x, y).buffer(rng.uniform(5, 12), cap_style=3), "building"))
    for river, _ in rivers:  # sandbars: bright and bare along the river, but no ponds
        for _ in range(max(1, int(river.length / 1500))):
            x, y = _along(rng, river, 5)
            shapes.append((_blob(rng, x, y, rng.uniform(20, 50)), "sandbar"))
    sediment = [r for r, kind in rivers if kind == "sediment_river"] or [rivers[0][0]]
    inner = Polygon(
        [
            (x0 + 300, y0 - 300),
            (x0 + size_m - 300, y0 - 300),
            (x0 + size_m - 300, y0 - size_m + 300),
            (x0 + 300, y0 - size_m + 300),
        ]
    )
    mines: list[Polygon] = []
    tries = 0
    while len(mines) < n_mines and tries < 200 * max(1, n_mines):
        tries += 1
        site_shapes, footprint = _mine_site(rng, sediment[int(rng.integers(len(sediment)))])
        # Keep sites apart and inside the mosaic, so each known mine is one separate target.
        if not inner.contains(footprint) or any(footprint.distance(m) < 1000 for m in mines):
            continue
        shapes += site_shapes
        mines.append(footprint)
    return shapes, mines


def write_mosaic(
    path: str | Path,
    lon: float,
    lat: float,
    size_px: int = 1024,
    n_mines: int = 4,
    seed: int = 0,
    year: int = 2021,
    masked_boxes: Sequence[tuple[float, float, float, float]] = (),
) -> Mosaic:
    """Write a seeded SYNTHETIC ``size_px`` x ``size_px`` mosaic (10 m UTM, study band order, uint16 DN,
    0 = no data) centred on (lon, lat), with ``n_mines`` mine sites; returns it with the mine footprints.

    ``masked_boxes`` are (x0, y0, x1, y1) fractions of the mosaic set to no data (as cloud-masked pixels)."""
    if size_px < 48:
        raise ValueError(f"a mosaic needs at least 48 px per side, got {size_px}")
    path = Path(path)
    rng = np.random.default_rng(seed)
    epsg = utm_epsg(lon, lat)
    cx, cy = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True).transform(lon, lat)
    size_m = size_px * RESOLUTION_M
    x0 = float(np.floor((cx - size_m / 2) / RESOLUTION_M) * RESOLUTION_M)
    y0 = float(np.ceil((cy + size_m / 2) / RESOLUTION_M) * RESOLUTION_M)
    transform = Affine(RESOLUTION_M, 0.0, x0, 0.0, -RESOLUTION_M, y0)
    shapes, mines = _layout(rng, size_m, x0, y0, n_mines)
    gain = float(rng.normal(1.0, 0.04))
    geoms = [g for g, _ in shapes]
    values = [CLASSES.index(c) for _, c in shapes]
    tree = STRtree(geoms)
    background = CLASSES.index("forest")
    profile = {
        "driver": "GTiff",
        "width": size_px,
        "height": size_px,
        "count": len(S2_BANDS),
        "dtype": "uint16",
        "crs": f"EPSG:{epsg}",
        "transform": transform,
        "nodata": 0,
        "tiled": True,
        "blockxsize": BLOCK,
        "blockysize": BLOCK,
        "BIGTIFF": "IF_SAFER",
    }
    with atomic.atomic_path(path, suffix=".tif") as tmp, rasterio.open(tmp, "w", **profile) as dst:
        for i, band in enumerate(S2_BANDS, start=1):
            dst.set_band_description(i, band)
        dst.update_tags(
            source="synthetic",
            product_level="synthetic",
            synthetic="true",
            description=SYNTHETIC_NOTE,
            date_start=f"{year}-01-01",
            date_end=f"{year + 1}-01-01",
            seed=str(seed),
        )
        for r0 in range(0, size_px, BLOCK):
            for c0 in range(0, size_px, BLOCK):
                h, w = min(BLOCK, size_px - r0), min(BLOCK, size_px - c0)
                bt = transform @ Affine.translation(c0, r0)
                bx0, by0 = bt.c, bt.f
                hits = sorted(
                    tree.query(
                        Polygon([(bx0, by0), (bx0 + w * 10, by0), (bx0 + w * 10, by0 - h * 10), (bx0, by0 - h * 10)])
                    ).tolist()
                )
                cover = np.full((h, w), background, dtype=np.uint8)
                if hits:
                    cover = rasterize(
                        [(geoms[k], values[k]) for k in hits],
                        out_shape=(h, w),
                        transform=bt,
                        fill=background,
                        dtype="uint8",
                        all_touched=True,
                    )
                dn = cover_dn(cover, gain, np.random.default_rng([seed, r0, c0]))
                for fx0, fy0, fx1, fy1 in masked_boxes:
                    rr = slice(max(0, int(fy0 * size_px) - r0), max(0, int(fy1 * size_px) - r0))
                    cc = slice(max(0, int(fx0 * size_px) - c0), max(0, int(fx1 * size_px) - c0))
                    dn[:, rr, cc] = 0
                dst.write(dn, window=Window(c0, r0, w, h))
    gdf = gpd.GeoDataFrame(
        {"site": [f"mine-{k:03d}" for k in range(len(mines))], "area_ha": [round(m.area / 1e4, 3) for m in mines]},
        geometry=list(mines),
        crs=f"EPSG:{epsg}",
    ).to_crs("EPSG:4326")
    atomic.write_text(mines_path(path), gdf.to_json(drop_id=True))
    return Mosaic(path=path, epsg=epsg, transform=transform, size=size_px, mines=gdf)
