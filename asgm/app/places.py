"""The Places page's cached glue: the table of detections x boundaries once per input hash, boundaries and the
choropleth once per choice, an upload's columns. The numbers come from ``asgm.places``."""

from __future__ import annotations

from typing import Any

import streamlit as st

from asgm.app import assets
from asgm.places import boundaries as B
from asgm.places import detections as D
from asgm.places import stats as S

#: The boundary sets offered, by label.
BOUNDARY_SETS = {
    "Indigenous territories (AMW, 237 with mining)": "territories",
    "Countries (Amazon part) and the whole basin": "countries",
    "Amazon basin": "basin",
}
UPLOAD = "Upload a boundary file"
DETECTIONS_UPLOAD = "Upload a detections file (polygons)"
#: Outlines drawn on the map are simplified to about this tolerance (metres): the table uses the full polygons.
DISPLAY_SIMPLIFY_M = 500.0


def scan_source() -> tuple[str, D.DetectionSource] | None:
    """The project's finished scans (``<data>/scans``) as one detection series by scan year, with its label (the
    years; SYNTHETIC when a scan is), or None when there are none."""
    from asgm.places.series import scan_series
    from asgm.scan.request import scans_dir

    series = scan_series(scans_dir())
    if series is None:
        return None
    label = f"Your scans ({', '.join(series.periods)}): detected footprint" + (
        " · SYNTHETIC" if series.synthetic else ""
    )
    return label, series.source


def upload_columns(name: str, data: bytes) -> list[str]:
    """The attribute columns of an uploaded polygon file (raises ``PlaceInputError`` for a bad file)."""
    return _columns(name, data)


@st.cache_data(max_entries=4, show_spinner="Reading the file…")
def _columns(name: str, data: bytes) -> list[str]:
    from asgm.places.vectors import read_polygons

    gdf = read_polygons((name, data), "the boundary file").gdf
    return [str(c) for c in gdf.columns if c != gdf.geometry.name]


def stats(dsrc: D.DetectionSource, bsrc: B.BoundarySource) -> S.PlaceStats:
    """``place_stats`` (disk-cached by input sha256), kept in memory per pair of inputs."""
    return _stats(dsrc.key(), bsrc.key(), dsrc, bsrc)


@st.cache_resource(max_entries=6, show_spinner="Counting the detections in each place…")
def _stats(dkey: str, bkey: str, _dsrc: D.DetectionSource, _bsrc: B.BoundarySource) -> S.PlaceStats:
    # dkey/bkey (the sources' hashes) are the cache key: Streamlit does not hash underscore arguments.
    return S.place_stats(_dsrc, _bsrc)


@st.cache_resource(max_entries=4, show_spinner="Reading the boundaries…")
def boundaries(bkey: str, _bsrc: B.BoundarySource) -> B.Boundaries:
    """The boundaries of ``_bsrc`` (``bkey`` = its hash)."""
    return _bsrc.load()


@st.cache_resource(max_entries=6, show_spinner="Drawing the map…")
def places_map(key: tuple, _places: Any, value: str, title: str, selected: str | None, credit: str) -> Any:
    """The choropleth, built once per (inputs, periods, measure, selection); the page draws a copy."""
    from asgm.maps import leaflet

    return leaflet.places_map(
        _places, value, title, js=assets.LEAFLET_JS, css=assets.LEAFLET_CSS, selected=selected, credit=credit
    )


@st.cache_data(max_entries=6, show_spinner=False)
def kml(key: tuple, _gdf: Any, _stats: S.PlaceStats) -> bytes:
    """The KML download, made once per (inputs, periods)."""
    from asgm.places import export

    return export.kml_bytes(_gdf, _stats)
