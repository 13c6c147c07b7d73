"""The Map's period slider: which series it steps through (Amazon Mining Watch's yearly layers, or the user's own
scans of several years), the view ("cumulative up to" / "new in") and period picked in the sidebar, the layer
drawn (files the browser fetches, coloured by period), and a click on a detection: its period and area, the scan
windows and store patch that cover it, opened in the Patch viewer, and for an AMW detection the review buttons.
The facts come from ``asgm.places.series`` and ``asgm.scan.results``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import streamlit as st

from asgm.app import assets, page, review
from asgm.errors import AsgmError

AMW, SCANS = "Amazon Mining Watch", "Your scans"
#: Session keys: the layer on/off, the series, the view; the period slider's key is ``map_<kind>_period``.
ON, SOURCE, VIEW = "map_amw", "map_period_source", "map_amw_view"
#: The last click on a detection (lon, lat) and what it hit.
HIT = "_map_period_hit"


@dataclass(frozen=True)
class PeriodChoice:
    """What the sidebar picked: the series, the view and the period."""

    series: Any  # asgm.places.series.Series
    view: str
    period: str

    @property
    def periods(self) -> list[str]:
        from asgm.places.series import view_periods

        return view_periods(self.series.periods, self.view, self.period)

    @property
    def key(self) -> tuple:
        """A cache key for the map drawing this choice (the scans' hashes: a finished scan changes it)."""
        return (self.series.kind, self.series.source.key(), self.view, self.period)

    @property
    def title(self) -> str:
        return f"{self.series.title}, {'cumulative up to' if self.view == 'cumulative' else 'new in'} {self.period}"


def scan_series() -> Any:
    """The user's finished scans (``<data>/scans``) as a series, or None."""
    from asgm.places.series import scan_series as core
    from asgm.scan.request import scans_dir

    return core(scans_dir())


def sidebar() -> PeriodChoice | None:
    """The sidebar's "Mining over time" block; the choice when the layer is on, else None."""
    from asgm.places.series import amw_series

    st.markdown("**Mining over time**")
    series = {AMW: amw_series()}
    scans = scan_series()
    if scans is not None:
        series[SCANS + (" (SYNTHETIC)" if scans.synthetic else "")] = scans
    on = st.toggle(
        "Detections by period",
        value=False,
        key=ON,
        help="Earth Genome's Amazon Mining Watch (mining detected across the Amazon, 2018 to 2025 Q3) or your own "
        "scans of several years (`asgm scan run`, one year each), coloured by period; click a polygon for its "
        "period and areas, and where a scan or the patch store covers it, a link to the Patch viewer.",
    )
    label = st.radio("Detections", list(series), key=SOURCE, disabled=not on) if len(series) > 1 else AMW
    chosen = series[label if label in series else AMW]
    view = st.radio(
        "Show",
        ["cumulative", "new"],
        horizontal=True,
        disabled=not on,
        key=VIEW,
        format_func={"cumulative": "cumulative up to", "new": "new in"}.get,
    )
    periods = list(chosen.periods)
    slider_key = f"map_{chosen.kind}_period"
    if st.session_state.get(slider_key) not in periods:
        st.session_state.pop(slider_key, None)  # a scan removed since: back to the latest year
    if len(periods) > 1:
        period = st.select_slider("Period", periods, value=periods[-1], disabled=not on, key=slider_key)
    else:
        period = periods[0]
        st.caption(f"Period: {period} (scan more years for a series)")
    if chosen.kind == "scans" and on:
        st.caption(
            "Your scans: detected footprint only (no mined-area refinement); a year's new footprint is what its "
            "scans detect outside every earlier year's detections."
        )
    return PeriodChoice(chosen, str(view), str(period)) if on else None


def layers(choice: PeriodChoice) -> list[Any]:
    """The period layer of ``choice`` and its legend (one colour per period, the same in every view)."""
    from asgm.maps import vector_layers
    from asgm.places.series import colour_index

    palette = vector_layers.PERIOD_COLOURS
    colours = {p: palette[colour_index(choice.series.periods, p, len(palette))] for p in choice.periods}
    urls = [layer_url(choice.series, p) for p in choice.periods]
    what = "AMW detection" if choice.series.kind == "amw" else choice.series.title.replace("Your scans'", "Scan")
    return [
        vector_layers.period_layer(urls, choice.title, colours, what=what, credit=choice.series.credit),
        vector_layers.period_legend(colours, f"{choice.title} ({choice.series.credit})"),
    ]


def layer_url(series: Any, period: str) -> str:
    """URL of the static GeoJSON of ``series``' detections new in ``period`` (written once)."""
    if series.kind == "amw":
        return assets.amw_period_layer_url(period)
    return _scan_layer_url(series.source.key(), series, period)


@st.cache_resource(max_entries=16, show_spinner="Preparing your scans' detections of that year…")
def _scan_layer_url(key: str, _series: Any, period: str) -> str:
    # key (the scans' hash) is in the file name: a scan finished again writes a new file
    from asgm import atomic
    from asgm.places.export import display_geojson

    target = assets.VENDOR_DIR / "layers" / f"scans_{period}_{key[:12]}.geojson"
    if not target.is_file():
        atomic.write_text(target, display_geojson(_detections(key, _series), period))
        os.chmod(target, 0o644)
    return f"{assets.STATIC_URL}/layers/{target.name}"


@st.cache_resource(max_entries=2, show_spinner="Reading your scans' detections…")
def _detections(key: str, _series: Any) -> Any:
    return _series.source.load()


@st.cache_resource(max_entries=2, show_spinner="Indexing the detections for clicks…")
def _finder(key: str, _series: Any) -> Any:
    from asgm.places.series import DetectionFinder

    det = assets.amw_detections() if _series.kind == "amw" else _detections(key, _series)
    return DetectionFinder(det)


def take_click(choice: PeriodChoice | None, last_clicked: dict | None) -> Any:
    """The detection of the drawn periods at the map's last click (``{"lat", "lng"}``), or None; remembered per
    click so a rerun does not search again."""
    if choice is None or not last_clicked:
        return None
    lon, lat = float(last_clicked["lng"]), float(last_clicked["lat"])
    memo = (choice.key, lon, lat)
    cached = st.session_state.get(HIT)
    if cached and cached[0] == memo:
        return cached[1]
    hit = _finder(choice.series.source.key(), choice.series).at(lon, lat, choice.periods)
    st.session_state[HIT] = (memo, (hit, lon, lat) if hit else None)
    return st.session_state[HIT][1]


def panel(found: Any, store_name: str | None, index: Any) -> None:
    """The clicked detection beside the map: period, areas, and the Patch viewer links of the scan windows and the
    store patch covering it (or why there is none)."""
    from asgm.places.series import store_patch_at
    from asgm.scan.results import windows_covering

    hit, lon, lat = found
    st.markdown(f"**Detection, period {hit.period}**" + (f" · scan `{hit.scan}`" if hit.scan else ""))
    st.caption(
        (f"mined area {hit.mined_ha:,.2f} ha · " if hit.mined_ha is not None else "")
        + f"detected footprint {hit.footprint_ha:,.1f} ha · clicked at lon {lon:.5f}, lat {lat:.5f}"
    )
    windows = sorted(windows_covering(lon, lat), key=lambda w: w[0] != hit.scan)  # the detection's own scan first
    for name, i, j in windows:
        page.scan_window_link(name, f"{i},{j}", f"Open scan `{name}`'s window {i},{j} in the patch viewer →")
    sid = store_patch_at(index, lon, lat) if store_name and index is not None else None
    if sid and store_name:
        page.patch_viewer_link(store_name, sid)
        st.caption(f"patch `{sid}` of store `{store_name}` covers this place")
    if not windows and not sid:
        st.caption(
            f"No scan window and no patch of store `{store_name or '(none)'}` covers this place: scan the area "
            "(draw it on the map, then the Region scan page) to look at it in the Patch viewer."
        )
    if hit.layer is not None and hit.feature is not None and hit.inside is not None:
        _review_amw(hit)


def _review_amw(hit: Any) -> None:
    """Mark an AMW detection mining / not mining / unsure: the item is the feature of its pinned layer file, at a
    point inside it, with the layer's year (the imagery ``asgm labels train --fetch`` would cut for it)."""
    from asgm.review import items

    st.markdown("**Review this detection**")
    try:
        lon, lat = hit.inside
        item = items.resolve("amw", hit.layer, str(hit.feature), lon, lat, year=int(hit.period[:4]))
    except AsgmError as exc:
        page.show_error(exc, "Pick the detection again.")
        return
    review.mark_panel(item, key="map_amw")
