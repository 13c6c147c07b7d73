"""Local map assets served by Streamlit from ``static/`` (next to app.py): Leaflet and jQuery copied from
the xstatic packages, and compact copies of the upstream reference layers. Offline, the CDN copies folium
asks for never load, so the maps would stay blank.

Streamlit's static file serving (``server.enableStaticServing``) serves only the ``static/`` folder next to
the main script, under ``/app/static/``; that is why the folder sits at the top level.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import streamlit as st

from asgm import atomic
from asgm.config import PROJECT_ROOT

#: Where Streamlit serves ``static/`` from (next to app.py) and the URL prefix it uses.
STATIC_DIR = PROJECT_ROOT / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
STATIC_URL = "/app/static/vendor"
LEAFLET_JS = [("leaflet", f"{STATIC_URL}/leaflet/leaflet.js"), ("jquery", f"{STATIC_URL}/jquery/jquery.min.js")]
LEAFLET_CSS = [("leaflet_css", f"{STATIC_URL}/leaflet/leaflet.css")]


def ensure_static_assets(vendor_dir: Path = VENDOR_DIR) -> Path:
    """Copy Leaflet and jQuery from the xstatic packages into ``static/vendor/`` (idempotent: files that
    are already there with the same size are left alone). Offline, the CDN copies folium asks for never
    load, so the map would stay blank."""
    import xstatic.pkg.jquery as xjq
    import xstatic.pkg.leaflet as xll

    wanted = {
        Path(xll.BASE_DIR) / "leaflet.js": vendor_dir / "leaflet" / "leaflet.js",
        Path(xll.BASE_DIR) / "leaflet.css": vendor_dir / "leaflet" / "leaflet.css",
        Path(xjq.BASE_DIR) / "jquery.min.js": vendor_dir / "jquery" / "jquery.min.js",
    }
    for img in (Path(xll.BASE_DIR) / "images").glob("*.png"):
        wanted[img] = vendor_dir / "leaflet" / "images" / img.name
    for src, dst in wanted.items():
        if dst.exists() and dst.stat().st_size == src.stat().st_size:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        with atomic.atomic_path(dst) as tmp:  # a concurrent session never reads half a file
            shutil.copyfile(src, tmp)
            os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; the server may run as another user
    return vendor_dir


REFERENCE_LAYERS = ("eg_mining_polygons_2020", "runway_points", "caroni_holdout")


@st.cache_resource(show_spinner="Preparing reference layers…")
def reference_layer_url(key: str) -> str:
    """URL of a compact copy of an upstream reference layer (mining polygons, runway points, Caroní
    holdout) under ``static/vendor/layers/``, written once; the browser fetches it, Python never re-sends it."""
    import geopandas as gpd

    from asgm import registry
    from asgm.maps.images import reference_geojson

    if key not in REFERENCE_LAYERS:
        raise ValueError(f"unknown reference layer {key!r}; choose from {REFERENCE_LAYERS}")
    gdf = gpd.read_file(registry.get(key))
    if key == "runway_points":  # 2,409 points across the Amazon: keep those around Bolívar
        gdf = gdf.cx[-68.0:-59.5, 3.5:9.0]
    target = VENDOR_DIR / "layers" / f"{key}.geojson"
    atomic.write_text(target, reference_geojson(gdf))
    os.chmod(target, 0o644)
    return f"{STATIC_URL}/layers/{key}.geojson"


@st.cache_resource(max_entries=1, show_spinner="Reading Amazon Mining Watch's detection layers…")
def amw_detections() -> Any:
    """AMW's detections, the one copy of this process: the one ``asgm.places`` counts with (a second copy of the
    45,011 polygons for the map's layer files and clicks would double their memory)."""
    from asgm.places.detections import DetectionSource

    return DetectionSource("amw").load()


@st.cache_resource(max_entries=12, show_spinner="Preparing the detections of that period…")
def amw_period_layer_url(period: str) -> str:
    """URL of a compact GeoJSON of AMW's detections new in ``period`` under ``static/vendor/layers/``, written
    once (its name carries the layer's sha256, so a file left by an earlier server is reused). The browser
    fetches it; the polygons never pass through a rerun."""
    from asgm import registry
    from asgm.places import periods as P
    from asgm.places.export import display_geojson

    code = next((c for c in registry.AMW_PERIODS if P.label(c) == period), None)
    if code is None:
        raise ValueError(f"unknown AMW period {period!r}")
    target = VENDOR_DIR / "layers" / f"amw_{period}_{registry.FILES[registry.amw_layer_key(code)].sha256[:12]}.geojson"
    if not target.is_file():
        atomic.write_text(target, display_geojson(amw_detections(), period))
        os.chmod(target, 0o644)
    return f"{STATIC_URL}/layers/{target.name}"
