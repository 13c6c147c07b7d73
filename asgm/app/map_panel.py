"""The Map page's click handling and side panel: what a click selects, what it draws on the map (the patch
on its footprint, the OSM features around it) and the panel beside the map. The page builds one ``MapView``
of what it loaded and passes it to these functions; the session keys they share are defined here once."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from asgm.app import loaders, page, review
from asgm.errors import AsgmError
from asgm.maps import images
from asgm.maps import overlays as maps_overlays
from asgm.maps import points as map_data
from asgm.maps.point_layer import MARK_PREFIX
from asgm.model.inference import InferenceError
from asgm.model.inputs import DatasetError
from asgm.osm import nearby
from asgm.review import items as review_items

#: What streamlit-folium returns to the page: a marker's tooltip and position, a click beside the markers,
#: the drawn shapes.
RETURNED = [
    "last_object_clicked_tooltip",
    "last_object_clicked",
    "last_clicked",
    "all_drawings",
    "last_object_clicked_popup",  # a mark given in a point's popup (``point_layer.MARK_PREFIX``)
]

# Session keys: the map widget's value, the selected sample, the last value seen, the message for a click on an
# empty place, what the OSM layer drew, the drawn area of interest (read by the Region scan page).
MAP_KEY = "map"
SELECTED = "map_sid"
LAST_SEEN = "_map_last"
PLACE_MESSAGE = "_map_place_msg"
OSM_NOTE = "_osm_note"
AOI = "aoi"


@dataclass
class MapView:
    """What the Map page loaded and what its sidebar chose, as the click handlers need it."""

    points: pd.DataFrame
    patch_ids: set[str]
    store_name: str | None
    run_id: str | None
    run: Any
    probs: pd.DataFrame | None
    threshold: float | None
    can_classify: bool
    swipe: bool
    show_osm: bool
    has_osm: bool
    osm_km: float
    show_labels: bool = True


def take_click(view: MapView, out: dict | None) -> str | None:
    """Apply what changed in the map's returned value since it was last seen: a marker click selects its
    sample, a click beside the markers selects the patch within 300 m or explains, a drawing sets the AOI.
    A mark given in a point's popup is written (``popup_mark``). Returns a message for a click on an empty place,
    else None."""
    out = out or {}
    now = {k: out.get(k) for k in RETURNED}
    before = st.session_state.get(LAST_SEEN, {})
    if now == before:
        return st.session_state.get(PLACE_MESSAGE)
    st.session_state[LAST_SEEN] = now
    st.session_state[PLACE_MESSAGE] = None
    if now["all_drawings"] != before.get("all_drawings") and now["all_drawings"] is not None:
        feats = now["all_drawings"] or []
        st.session_state[AOI] = {"type": "FeatureCollection", "features": feats} if feats else None
    popup = now["last_object_clicked_popup"]
    if (
        isinstance(popup, str)
        and popup.startswith(MARK_PREFIX + "|")
        and popup != before.get("last_object_clicked_popup")
    ):
        popup_mark(view, popup)
        return None
    tip = now["last_object_clicked_tooltip"]
    if tip and (
        tip != before.get("last_object_clicked_tooltip")
        or now["last_object_clicked"] != before.get("last_object_clicked")
    ):
        st.session_state[SELECTED] = str(tip).split()[0]  # the tooltip reads "<sample_id> · p 0.873"
    elif now["last_clicked"] and now["last_clicked"] != before.get("last_clicked"):
        lon, lat = float(now["last_clicked"]["lng"]), float(now["last_clicked"]["lat"])
        st.session_state[SELECTED], st.session_state[PLACE_MESSAGE] = map_data.clicked_patch(view.points, lon, lat)
    return st.session_state[PLACE_MESSAGE]


def popup_mark(view: MapView, message: str) -> None:
    """Write the mark a point's popup sent (``"asgm-mark|<sample_id>|<label>|<time>"``) as the side panel would:
    the same item, run, shown probability and ``review.record_mark``; the panel then shows that point and what
    happened."""
    parts = message.split("|")
    msg_key = review.panel_message_key("map")
    if len(parts) != 4 or not view.store_name:
        st.session_state[msg_key] = ("error", "The popup's mark could not be read; mark the point in the side panel.")
        return
    sid, label = parts[1], parts[2]
    st.session_state[SELECTED] = sid
    try:
        item = review_items.store_item(loaders.open_store(view.store_name), sid)
    except AsgmError as exc:
        st.session_state[msg_key] = ("error", str(exc))
        return
    review.record_mark(
        item,
        label,
        note=review.panel_note("map", item),
        run_id=view.run_id,
        probability=_batched_prob(view, sid),
        msg_key=msg_key,
    )


def _batched_prob(view: MapView, sid: str) -> float | None:
    """The probability the popup showed: the run's batched one (None when there is none)."""
    if view.probs is None:
        return None
    hit = view.probs[view.probs["sample_id"] == sid]
    return None if hit.empty or np.isnan(hit.iloc[0]["prob"]) else float(hit.iloc[0]["prob"])


def selected() -> str | None:
    """The sample the last click selected."""
    return st.session_state.get(SELECTED)


def groups(view: MapView, sid: str | None) -> list | None:
    """What the click adds to the map: the patch on its footprint and the OSM features around it."""
    found = [g for g in (_overlay(view, sid), _osm_layer(view, sid)) if g is not None]
    rows = review.current_rows() if view.show_labels else []
    if rows:
        found.append(maps_overlays.labels_layer(rows))
    return found or None


def _overlay(view: MapView, sid: str | None) -> Any:
    """The clicked patch, drawn on its footprint (None when it has no patch or cannot be read)."""
    if not sid or sid not in view.patch_ids or not view.store_name:
        return None
    try:
        patch = loaders.read_patch(view.store_name, sid)
        return maps_overlays.patch_overlay(patch, loaders.read_osm(view.store_name, sid), split=view.swipe)
    except (AsgmError, OSError):  # the panel shows the reason; the map still works
        return None


def _click_centre(view: MapView, sid: str | None) -> tuple[float, float] | None:
    """(lon, lat) of the clicked patch, else of the last clicked place, else None."""
    row = view.points[view.points["sample_id"] == sid] if sid else view.points.iloc[:0]
    if len(row):
        return float(row.iloc[0]["lon"]), float(row.iloc[0]["lat"])
    place = st.session_state.get(LAST_SEEN, {}).get("last_clicked")
    return (float(place["lng"]), float(place["lat"])) if place else None


def _osm_layer(view: MapView, sid: str | None) -> Any:
    """The store's cached OSM features around the click, as a map layer with its legend (None when off, nothing
    is clicked, or the cache cannot be read: the panel says why)."""
    st.session_state[OSM_NOTE] = None
    centre = _click_centre(view, sid) if view.show_osm and view.store_name else None
    if not centre or not view.store_name:
        return None
    try:
        feats = loaders.osm_around(view.store_name, *centre, view.osm_km * 1000.0)
    except AsgmError as exc:
        st.session_state[OSM_NOTE] = ("warning", f"OSM features unavailable: {exc}")
        return None
    counts = feats["key"].value_counts()
    summary = ", ".join(f"{k} {int(counts[k])}" for k in counts.index) or "none"
    st.session_state[OSM_NOTE] = (
        "caption",
        f"OSM features within {view.osm_km:g} km drawn on the map (legend "
        f"bottom left): {summary}. © OpenStreetMap contributors",
    )
    return maps_overlays.osm_features_layer(feats, view.osm_km * 1000.0)


def _osm_note(view: MapView, clicked: bool) -> None:
    """What the OSM layer drew for this click, or why it drew nothing."""
    note = st.session_state.get(OSM_NOTE)
    if note:
        (st.warning if note[0] == "warning" else st.caption)(note[1])
    elif clicked and view.store_name and not view.has_osm:
        st.info(nearby.no_cache_message(view.store_name))


def panel(view: MapView, sid: str | None, place_msg: str | None) -> None:
    """The side panel: the clicked point's set and label, its probability and decision, its patch with OSM
    overlays, marking it mining / not mining / unsure, a link to the Patch viewer; or what to do when nothing
    (or an empty place) was clicked."""
    if place_msg:
        st.warning(place_msg)
    if not sid:
        _osm_note(view, bool(place_msg))
        if not place_msg:
            st.info(
                "Click a point: its probability pops up on the map at once, and its patch is drawn in place; "
                "details show here."
            )
        return
    row = view.points[view.points["sample_id"] == sid]
    st.subheader(sid)
    if not row.empty:
        r = row.iloc[0]
        st.caption(
            f"set `{r['set']}` · true label **{int(r['label'])}** · lon {r['lon']:.4f}, lat {r['lat']:.4f}"
            + (f" · split `{r['split']}`" if isinstance(r.get("split"), str) else "")
        )
    _osm_note(view, True)
    if sid not in view.patch_ids or not view.store_name:
        st.warning(
            map_data.no_patch_message(
                sid, view.store_name or "(none)", str(row.iloc[0]["set"]) if not row.empty else None
            )
        )
        return
    shown_prob = None
    if view.run is None:
        st.info("No trained run to classify with yet: the default model trains in the background (see **Home**).")
    elif view.probs is not None or view.can_classify:
        shown_prob = _decision(view, sid)
    _patch_picture(view, view.store_name, sid)
    st.markdown("**Review**")
    try:
        review.mark_panel(
            review_items.store_item(loaders.open_store(view.store_name), sid),
            key="map",
            run_id=view.run_id,
            probability=shown_prob,
        )
    except AsgmError as exc:
        page.show_error(exc, f"Rebuild store `{view.store_name}`.")
    page.patch_viewer_link(view.store_name, sid)


def _decision(view: MapView, sid: str) -> float | None:
    """The probability and decision of the clicked patch; returns the probability shown (None on an error)."""
    try:
        t0 = time.perf_counter()
        res = result(view, sid)
        ms = (time.perf_counter() - t0) * 1000
    except AsgmError as exc:
        page.show_error(exc, page.classify_way_out(exc, view.store_name or ""))
        return None
    word = "mining" if res["decision"] else "not mining"
    truth = "mining" if res["label"] else "not mining"
    ok = res["decision"] == res["label"]
    st.metric(
        "Probability of mining",
        f"{res['prob']:.3f}",
        help=f"Decision threshold of run {view.run_id}: {res['threshold']:.3f}",
    )
    st.markdown(
        f"Decision at threshold {res['threshold']:.3f}: **{word}** · true label: **{truth}** "
        + (":green[(correct)]" if ok else ":red[(" + ("false positive" if res["decision"] else "false negative") + ")]")
    )
    st.caption(
        f"classified {sid} in {ms:.0f} ms"
        + (" (from the run's batched pass over the store)" if res.get("batched") else "")
    )
    return float(res["prob"])


def _patch_picture(view: MapView, store_name: str, sid: str) -> None:
    try:
        patch = loaders.read_patch(store_name, sid)
        osm = loaders.read_osm(store_name, sid)
    except AsgmError as exc:
        page.show_error(
            exc, f"Rebuild store `{store_name}`, or check it with `asgm patches check --store {store_name}`."
        )
        return
    img = images.true_colour(patch.data, patch.bands)
    if img is not None:
        if osm is not None:
            img = images.overlay_osm(img, osm[0], osm[1], osm[1])
        st.image(
            images.to_png(images.mark_centre(img)),
            width=200,
            caption="True colour (B4-B3-B2)"
            + (" with OSM overlays" if osm is not None else " — no OSM masks in this store")
            + "; also drawn on the map on its footprint",
        )
        if osm is not None:
            st.markdown(images.legend_html(osm[1]), unsafe_allow_html=True)
    if view.swipe and images.false_colour(patch.data, patch.bands) is None:
        st.caption("Swipe view: this store has no B12/B8 bands for false colour.")


def result(view: MapView, sid: str) -> dict:
    """The clicked patch's probability: from the batched table when there is one (the number the popup
    shows), else one forward pass."""
    if view.probs is not None:
        hit = view.probs[view.probs["sample_id"] == sid]
        if len(hit) and not np.isnan(hit.iloc[0]["prob"]):
            r = hit.iloc[0]
            return {
                "prob": float(r["prob"]),
                "threshold": view.threshold,
                "decision": int(r["decision"]),
                "label": int(r["label"]),
                "sample_id": sid,
                "batched": True,
            }
        if len(hit) and hit.iloc[0]["error"]:  # the batched pass could not read this patch: the patch is bad
            raise DatasetError(str(hit.iloc[0]["error"]))
    if not view.run_id or not view.store_name:
        raise InferenceError("no run or store selected: pick both in the sidebar")
    return loaders.classify(view.run_id, view.store_name, sid)


def aoi_summary() -> None:
    """The drawn area of interest in km², with a link to scan it."""
    aoi = st.session_state.get(AOI)
    if not aoi:
        return
    from pyproj import Geod
    from shapely.geometry import shape

    geod = Geod(ellps="WGS84")
    km2 = sum(abs(geod.geometry_area_perimeter(shape(f["geometry"]))[0]) for f in aoi["features"]) / 1e6
    st.caption(
        f"Area of interest: {len(aoi['features'])} shape(s), {km2:,.1f} km² — kept for the region scan "
        "(delete it with the bin in the draw toolbar)."
    )
    page.scan_page_link()
