"""Build a small STAC API on a ``LocalServer``: Sentinel-2 L2A-like items whose assets are COGs.

Pixel values are designed so a test can predict every output pixel independently of the code under
test: ``blue`` holds 2000 + the 10 m column index, ``green`` 2000 + the 10 m row index, ``rededge1``
2000 + the 20 m column index, ``coastal`` 2000 + the 60 m row index (all scene-independent), and every
other band a constant that depends on band and scene. SCL comes from a per-scene function.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from localhttp import LocalServer, Response
from pyproj import Transformer
from rasterio.io import MemoryFile
from rasterio.shutil import copy as rio_copy
from rasterio.warp import transform_bounds

from asgm.sources.stac import ASSET_KEYS

# asset key -> native resolution (m), as in Sentinel-2
RESOLUTION = {
    "coastal": 60,
    "blue": 10,
    "green": 10,
    "red": 10,
    "rededge1": 20,
    "rededge2": 20,
    "rededge3": 20,
    "nir": 10,
    "nir08": 20,
    "nir09": 60,
    "swir16": 20,
    "swir22": 20,
    "scl": 20,
}
ENCODED = {"blue": ("col", 10), "green": ("row", 10), "rededge1": ("col", 20), "coastal": ("row", 60)}
COLLECTION = "sentinel-2-c1-l2a"


@dataclass
class Scene:
    """One acquisition: date, DN offset convention, and its SCL as a function of projected (x, y)."""

    date: str
    shift: int = 0  # added to the constant bands (so scenes differ)
    offset: float = -0.1  # raster:bands offset; the DN are adjusted so reflectance does not depend on it
    scl: Callable[[np.ndarray, np.ndarray], np.ndarray] = field(default=lambda x, y: np.full(x.shape, 4))
    cloud_cover: float = 10.0
    epsg: int | None = None  # default: the zone of the area


def constant_dn(band_index: int, shift: int) -> int:
    """DN of a non-encoded band, for offset -0.1 (stored DN = this - 1000)."""
    return 1500 + 50 * band_index + shift


@dataclass
class Area:
    """A square scene footprint in one UTM zone, aligned to 60 m like Sentinel-2 tiles."""

    epsg: int
    x0: float
    y0: float  # top-left corner
    extent: float

    def index(self, x: np.ndarray, y: np.ndarray, res: float) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) of the ``res`` pixel holding projected (x, y) — the oracle of nearest sampling."""
        return np.floor((self.y0 - y) / res).astype(int), np.floor((x - self.x0) / res).astype(int)


def area_around(lonlats: list[tuple[float, float]], epsg: int, margin: float = 1500.0) -> Area:
    tr = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)
    xs, ys = zip(*(tr.transform(lon, lat) for lon, lat in lonlats), strict=False)
    x0 = math.floor((min(xs) - margin) / 60) * 60
    y0 = math.ceil((max(ys) + margin) / 60) * 60
    extent = math.ceil((max(max(xs) - min(xs), max(ys) - min(ys)) + 2 * margin) / 60) * 60
    return Area(epsg, x0, y0, extent)


def _cog_bytes(arr: np.ndarray, epsg: int, transform: Affine, tmp: Path) -> bytes:
    with MemoryFile() as mem:
        with mem.open(
            driver="GTiff",
            width=arr.shape[1],
            height=arr.shape[0],
            count=1,
            dtype="uint16",
            crs=f"EPSG:{epsg}",
            transform=transform,
            nodata=0,
        ) as dst:
            dst.write(arr.astype(np.uint16), 1)
        with mem.open() as src:
            rio_copy(src, str(tmp), driver="COG", blocksize=128)
    data = tmp.read_bytes()
    tmp.unlink()
    return data


def scene_arrays(area: Area, scene: Scene) -> dict[str, np.ndarray]:
    """Every asset's DN array for one scene."""
    out = {}
    band_index = {key: i for i, key in enumerate(ASSET_KEYS.values())}
    for key, res in RESOLUTION.items():
        n = int(area.extent // res)
        rows, cols = np.mgrid[0:n, 0:n]
        if key == "scl":
            x = area.x0 + (cols + 0.5) * res
            y = area.y0 - (rows + 0.5) * res
            out[key] = np.asarray(scene.scl(x, y)).astype(np.uint16)
            continue
        if key in ENCODED:
            kind, _ = ENCODED[key]
            dn = 2000 + (cols if kind == "col" else rows)
        else:
            dn = np.full((n, n), constant_dn(band_index[key], scene.shift))
        # offset 0 (old baselines): lower the DN so the reflectance is the same as with offset -0.1
        out[key] = dn - (1000 if scene.offset == 0.0 else 0)
    return out


class StacApi:
    """Items + COGs served by a LocalServer, with a minimal STAC API (landing page and /search)."""

    def __init__(self, server: LocalServer, tmp: Path):
        self.server = server
        self.tmp = tmp
        self.items: list[dict[str, Any]] = []
        self.drop_search = False
        server.route("GET", "/?", self._landing)
        server.route("*", "/search", self._search)

    @property
    def url(self) -> str:
        return self.server.url

    def add_scene(self, area: Area, scene: Scene, item_id: str) -> dict[str, Any]:
        epsg = scene.epsg or area.epsg
        assets = {}
        for key, arr in scene_arrays(area, scene).items():
            res = RESOLUTION[key]
            path = f"/cogs/{item_id}/{key}.tif"
            self.server.files[path] = _cog_bytes(
                arr, epsg, Affine(res, 0, area.x0, 0, -res, area.y0), self.tmp / f"{item_id}-{key}.tif"
            )
            raster = {"nodata": 0, "data_type": "uint16", "spatial_resolution": res}
            if key != "scl":
                raster.update(scale=0.0001, offset=scene.offset)
            assets[key] = {
                "href": self.url + path,
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "roles": ["data"],
                "raster:bands": [raster],
            }
        w, s, e, n = transform_bounds(
            f"EPSG:{epsg}", "EPSG:4326", area.x0, area.y0 - area.extent, area.x0 + area.extent, area.y0
        )
        item = {
            "type": "Feature",
            "stac_version": "1.0.0",
            "id": item_id,
            "collection": COLLECTION,
            "stac_extensions": [
                "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
                "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            ],
            "bbox": [w, s, e, n],
            "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
            "properties": {
                "datetime": f"{scene.date}T14:30:00Z",
                "eo:cloud_cover": scene.cloud_cover,
                "proj:epsg": epsg,
            },
            "links": [],
            "assets": assets,
        }
        self.items.append(item)
        return item

    def _landing(self, req: Any) -> Response:
        base = self.url
        return Response.of_json(
            {
                "type": "Catalog",
                "id": "test-earth-search",
                "stac_version": "1.0.0",
                "description": "test STAC API",
                "conformsTo": [
                    "https://api.stacspec.org/v1.0.0/core",
                    "https://api.stacspec.org/v1.0.0/item-search",
                    "https://api.stacspec.org/v1.0.0/collections",
                ],
                "links": [
                    {"rel": "self", "href": base + "/", "type": "application/json"},
                    {"rel": "root", "href": base + "/", "type": "application/json"},
                    {"rel": "search", "href": base + "/search", "type": "application/geo+json", "method": "GET"},
                    {"rel": "search", "href": base + "/search", "type": "application/geo+json", "method": "POST"},
                    # As Earth Search's landing page: one child link per collection.
                    {"rel": "child", "href": f"{base}/collections/{COLLECTION}", "type": "application/json"},
                ],
            }
        )

    def _search(self, req: Any) -> Response | None:
        if self.drop_search:
            return Response(503, b'{"code": "ServiceUnavailable"}')
        if req.method == "POST":
            p = req.json() or {}
        else:
            p = {k: v[0] for k, v in req.query.items()}
            if "bbox" in p:
                p["bbox"] = [float(v) for v in p["bbox"].split(",")]
            if "collections" in p:
                p["collections"] = p["collections"].split(",")
        bbox = p.get("bbox")
        cols = p.get("collections")
        t0, t1 = (p.get("datetime") or "../..").split("/")

        def when(s: str) -> datetime:
            return datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(UTC)

        hits = []
        for it in self.items:
            if cols and it["collection"] not in cols:
                continue
            if bbox:
                w, s, e, n = it["bbox"]
                if bbox[0] > e or bbox[2] < w or bbox[1] > n or bbox[3] < s:
                    continue
            dt = when(it["properties"]["datetime"])
            if t0 not in ("..", "") and dt < when(t0) or t1 not in ("..", "") and dt > when(t1):
                continue
            hits.append(it)
        return Response.of_json({"type": "FeatureCollection", "features": hits, "links": []})


def read_store_patch(store_root: Path, sample_id: str) -> tuple[np.ndarray, Any, dict[str, str]]:
    with rasterio.open(store_root / "patches" / f"{sample_id}.tif") as src:
        return src.read(), src.transform, src.tags()
