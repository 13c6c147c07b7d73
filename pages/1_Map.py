"""Map: every point of the selected store coloured by the selected run's probability; a click answers in the
browser (popup) and the side panel (where the patch can be marked mining / not mining / unsure), and draws the
patch in place; reviewed labels as a layer coloured by label. The map stack (leafmap, folium) is imported
here only, so the first page stays fast."""

from __future__ import annotations

import copy
import time

import numpy as np
import streamlit as st
from streamlit_folium import st_folium  # imported at script run so tests can monkeypatch it

from asgm.app import assets, loaders, page, review
from asgm.data.store import list_stores
from asgm.errors import AsgmError
from asgm.maps import images, leaflet
from asgm.maps import overlays as maps_overlays
from asgm.maps import points as map_data
from asgm.osm import nearby
from asgm.review import items as review_items
from asgm.sources import configured_source

page.page_setup("Map")
st.title("Map")
review.reviewer_box()

run_id = page.selected_run_id()
run = page.selected_run(run_id)

stores = list_stores()
if not stores:
    st.warning("No patch store yet, so nothing can be classified. Go to **Home** and click **Prepare the demo** "
               "(or run `asgm demo build`). The study's points are still shown.")
default_store = run.config.store if run and run.config.store in stores else ("demo" if "demo" in stores else None)
store_name = (st.sidebar.selectbox("Patch store", stores, index=stores.index(default_store) if default_store else 0,
                                  format_func=loaders.store_label) if stores else None)
synthetic = False
if store_name:
    try:
        synthetic = loaders.open_store(store_name).meta.synthetic
        if synthetic:
            st.warning(f"Store `{store_name}` holds **synthetic** patches (not real imagery).")
    except AsgmError as exc:
        page.show_error(exc, "Rebuild the store (`asgm demo build` for the demo) or pick another one.")
        store_name = None

# -- data ---------------------------------------------------------------------------------------------
index = pred = probs = None
try:
    loaders.study_points()
except AsgmError as exc:
    st.warning(f"The study's points are unavailable: {exc}")
if store_name:
    try:
        index = loaders.store_index(store_name)
    except AsgmError as exc:
        page.show_error(exc, "Rebuild the store.")
if run_id:
    try:
        pred = loaders.predictions(run_id)
    except AsgmError as exc:
        st.warning(f"No predictions for run {run_id}: {exc}")
can_classify = bool(run and store_name and index is not None) and page.run_can_classify(run_id, run.config, store_name)
if can_classify:
    try:
        with st.spinner(f"Probabilities of run {run_id} for every patch of `{store_name}` (one batched pass)…"):
            probs = loaders.store_probabilities(run_id, store_name)
    except AsgmError as exc:
        page.show_error(exc, "Retrain the run on the Train page, or pick another run in the sidebar.")
points = loaders.map_points(store_name, run_id)
patch_ids = set(index["sample_id"]) if index is not None else set()  # once per run, not per click
if probs is not None:
    points = points.merge(probs[["sample_id", "prob"]].rename(columns={"prob": "map_prob"}), on="sample_id", how="left")
else:
    points = points.assign(map_prob=np.nan)
threshold = float(probs.attrs["threshold"]) if probs is not None else None

# -- filters ------------------------------------------------------------------------------------------
with st.sidebar:
    st.markdown("**Filters**")
    all_sets = sorted(points["set"].dropna().unique())
    sets = st.multiselect("Set", all_sets, default=all_sets)
    label_names = {1: "mining (1)", 0: "not mining (0)"}
    labels = st.multiselect("True label", [1, 0], default=[1, 0], format_func=label_names.get)
    predicted = errors_only = splits = None
    if pred is not None:
        all_splits = ["val", "test", "other"]
        splits = st.multiselect("Split (selected run)", all_splits, default=all_splits,
                                help="val/test: the run's validation and test points; other: training points, "
                                     "and points the run never saw.")
        predicted = st.multiselect("Predicted class", [1, 0], default=[1, 0], format_func=label_names.get,
                                   help="Only points in the selected run's predictions (its val/test splits) have one.")
        errors_only = st.toggle("Errors only (FP/FN)", value=False)
    modes = [m for m in leaflet.COLOUR_MODES if (m != "probability" or probs is not None) and (m != "outcome" or pred is not None)]
    colour_by = st.radio("Colour", modes, horizontal=True,
                         format_func={"probability": "probability", "label": "true label", "outcome": "run outcome"}.get)
    swipe = st.toggle("Swipe true / false colour on the clicked patch", value=True,
                      help="Needs bands B12, B8 and B4 (the demo pack is RGB only).")
    has_osm = bool(store_name) and loaders.has_osm_vectors(store_name)
    show_osm = st.toggle("OSM features around the clicked patch", value=has_osm, disabled=not has_osm,
                         help="The store's cached OSM vectors (roads, waterways, buildings, landuse, airstrips), "
                              "one colour per key as on the patch overlays; read from disk, never fetched here.")
    osm_km = st.select_slider("OSM radius (km)", [1, 2, 5], value=2, disabled=not show_osm)
    if store_name and not has_osm:
        st.caption(nearby.no_cache_message(store_name))
    show_labels = st.toggle("Reviewed labels", value=True, key="map_labels",
                            help="Every reviewed item as a ring: red mining, blue not mining, grey unsure.")
    st.caption("Basemaps and reference layers: the layer control on the map (top right). Draw a rectangle or "
               "polygon (left toolbar) to set the area of interest of the region scan.")

pred_filter = predicted if pred is not None and set(predicted or []) != {0, 1} else None
split_filter = splits if splits is not None and set(splits) != {"val", "test", "other"} else None
shown = map_data.filter_points(points, sets=sets, labels=labels, predicted=pred_filter, errors_only=bool(errors_only),
                          splits=split_filter)
n_patch = int(shown["has_patch"].sum())
st.caption(f"{len(shown):,} of {len(points):,} points shown · {n_patch:,} with a patch in `{store_name}` (filled dots; "
           "rings have none)" + (f" · coloured by run {run_id}'s probability, computed for all patches at once"
                                 if colour_by == "probability" else "")
           + (" · **synthetic** store" if synthetic else ""))

REFERENCE = {"eg_mining_polygons_2020": ("Earth Genome 2020 mining polygons", "#e6ab02", True, 0.5),
             "runway_points": ("Runway points (OSM)", "#444444", False, 0.7),
             "caroni_holdout": ("Caroní holdout", "#1b9e77", True, 0.05)}


@st.cache_resource(max_entries=6, show_spinner="Building the map…")
def _map(key: tuple, _shown, colour_by: str, store_name: str | None, threshold: float | None):
    """The map, built once per filter combination (key). Each rerun draws a copy of it: streamlit-folium adds
    the clicked patch to the map it is given, and the cached one is shared by sessions."""
    layers = []
    for k, (name, colour, on, fill) in REFERENCE.items():
        try:
            layers.append((assets.reference_layer_url(k), name, colour, on, fill))
        except (AsgmError, OSError) as exc:  # a missing reference file must not hide the points
            st.warning(f"Reference layer {name} unavailable: {exc}")
    return leaflet.build_map(_shown, colour_by=colour_by, store_name=store_name, threshold=threshold,
                             js=assets.LEAFLET_JS, css=assets.LEAFLET_CSS, reference_layers=layers,
                             fetch_hints=leaflet.fetch_hints(configured_source()))


key = (store_name, run_id, tuple(sets), tuple(labels), tuple(pred_filter or ()), tuple(split_filter or ()),
       bool(errors_only), colour_by, threshold, loaders.store_version(store_name) if store_name else 0)
try:
    fmap = _map(key, shown, colour_by, store_name, threshold)
except AsgmError as exc:  # leaflet.MapAssetError: a plugin file is missing
    page.show_error(exc, "Reinstall the project (`pip install -r requirements.txt`) and restore static/plugins.")
    st.stop()

RETURNED = ["last_object_clicked_tooltip", "last_object_clicked", "last_clicked", "all_drawings"]


def _take_click(out: dict | None) -> str | None:
    """Apply what changed in the map's returned value since it was last seen: a marker click selects its
    sample, a click beside the markers selects the patch within 300 m or explains, a drawing sets the AOI.
    Returns a message for a click on an empty place, else None."""
    out = out or {}
    now = {k: out.get(k) for k in RETURNED}
    before = st.session_state.get("_map_last", {})
    if now == before:
        return st.session_state.get("_map_place_msg")
    st.session_state["_map_last"] = now
    st.session_state["_map_place_msg"] = None
    if now["all_drawings"] != before.get("all_drawings") and now["all_drawings"] is not None:
        feats = now["all_drawings"] or []
        st.session_state["aoi"] = {"type": "FeatureCollection", "features": feats} if feats else None
    tip = now["last_object_clicked_tooltip"]
    if tip and (tip != before.get("last_object_clicked_tooltip") or now["last_object_clicked"] != before.get("last_object_clicked")):
        st.session_state["map_sid"] = str(tip).split()[0]  # the tooltip reads "<sample_id> · p 0.873"
    elif now["last_clicked"] and now["last_clicked"] != before.get("last_clicked"):
        lon, lat = float(now["last_clicked"]["lng"]), float(now["last_clicked"]["lat"])
        st.session_state["map_sid"], st.session_state["_map_place_msg"] = map_data.clicked_patch(points, lon, lat)
    return st.session_state["_map_place_msg"]


def _overlay(sid: str | None):
    """The clicked patch, drawn on its footprint (None when it has no patch or cannot be read)."""
    if not sid or sid not in patch_ids:
        return None
    try:
        patch = loaders.read_patch(store_name, sid)
        return maps_overlays.patch_overlay(patch, loaders.read_osm(store_name, sid), split=swipe)
    except (AsgmError, OSError):  # the panel shows the reason; the map still works
        return None


def _click_centre(sid: str | None) -> tuple[float, float] | None:
    """(lon, lat) of the clicked patch, else of the last clicked place, else None."""
    row = points[points["sample_id"] == sid] if sid else points.iloc[:0]
    if len(row):
        return float(row.iloc[0]["lon"]), float(row.iloc[0]["lat"])
    place = st.session_state.get("_map_last", {}).get("last_clicked")
    return (float(place["lng"]), float(place["lat"])) if place else None


def _osm_layer(sid: str | None):
    """The store's cached OSM features around the click, as a map layer with its legend (None when off, nothing
    is clicked, or the cache cannot be read: the panel says why)."""
    st.session_state["_osm_note"] = None
    centre = _click_centre(sid) if show_osm and store_name else None
    if not centre:
        return None
    try:
        feats = loaders.osm_around(store_name, *centre, osm_km * 1000.0)
    except AsgmError as exc:
        st.session_state["_osm_note"] = ("warning", f"OSM features unavailable: {exc}")
        return None
    counts = feats["key"].value_counts()
    summary = ", ".join(f"{k} {int(counts[k])}" for k in counts.index) or "none"
    st.session_state["_osm_note"] = ("caption", f"OSM features within {osm_km} km drawn on the map (legend bottom "
                                                f"left): {summary}. © OpenStreetMap contributors")
    return maps_overlays.osm_features_layer(feats, osm_km * 1000.0)


def _osm_note(clicked: bool) -> None:
    """What the OSM layer drew for this click, or why it drew nothing."""
    note = st.session_state.get("_osm_note")
    if note:
        (st.warning if note[0] == "warning" else st.caption)(note[1])
    elif clicked and store_name and not has_osm:
        st.info(nearby.no_cache_message(store_name))


def _panel(sid: str | None, place_msg: str | None) -> None:
    if place_msg:
        st.warning(place_msg)
    if not sid:
        _osm_note(bool(place_msg))
        if not place_msg:
            st.info("Click a point: its probability pops up on the map at once, and its patch is drawn in place; "
                    "details show here.")
        return
    row = points[points["sample_id"] == sid]
    has_patch = sid in patch_ids
    st.subheader(sid)
    if not row.empty:
        r = row.iloc[0]
        st.caption(f"set `{r['set']}` · true label **{int(r['label'])}** · lon {r['lon']:.4f}, lat {r['lat']:.4f}"
                   + (f" · split `{r['split']}`" if isinstance(r.get("split"), str) else ""))
    _osm_note(True)
    if not has_patch:
        st.warning(map_data.no_patch_message(sid, store_name or "(none)", str(row.iloc[0]["set"]) if not row.empty else None))
        return
    shown_prob = None
    if run is None:
        st.info("No trained run to classify with yet: the default model trains in the background (see **Home**).")
    elif probs is not None or can_classify:
        try:
            t0 = time.perf_counter()
            res = _result(sid)
            shown_prob = float(res["prob"])
            ms = (time.perf_counter() - t0) * 1000
            word = "mining" if res["decision"] else "not mining"
            truth = "mining" if res["label"] else "not mining"
            ok = res["decision"] == res["label"]
            st.metric("Probability of mining", f"{res['prob']:.3f}",
                      help=f"Decision threshold of run {run_id}: {res['threshold']:.3f}")
            st.markdown(f"Decision at threshold {res['threshold']:.3f}: **{word}** · true label: **{truth}** "
                        + (":green[(correct)]" if ok else ":red[(" + ("false positive" if res["decision"] else "false negative") + ")]"))
            st.caption(f"classified {sid} in {ms:.0f} ms" + (" (from the run's batched pass over the store)"
                                                              if res.get("batched") else ""))
        except AsgmError as exc:
            page.show_error(exc, "Retrain the run on the Train page, or pick another run in the sidebar.")
    try:
        patch = loaders.read_patch(store_name, sid)
        osm = loaders.read_osm(store_name, sid)
        img = images.true_colour(patch.data, patch.bands)
        if img is not None:
            if osm is not None:
                img = images.overlay_osm(img, osm[0], osm[1], osm[1])
            st.image(images.to_png(images.mark_centre(img)), width=200, caption="True colour (B4-B3-B2)"
                     + (" with OSM overlays" if osm is not None else " — no OSM masks in this store")
                     + "; also drawn on the map on its footprint")
            if osm is not None:
                st.markdown(images.legend_html(osm[1]), unsafe_allow_html=True)
        if swipe and images.false_colour(patch.data, patch.bands) is None:
            st.caption("Swipe view: this store has no B12/B8 bands for false colour.")
    except AsgmError as exc:
        page.show_error(exc, f"Rebuild store `{store_name}`.")
    st.markdown("**Review**")
    try:
        review.mark_panel(review_items.store_item(loaders.open_store(store_name), sid), key="map", run_id=run_id, probability=shown_prob)
    except AsgmError as exc:
        page.show_error(exc, f"Rebuild store `{store_name}`.")
    page.patch_viewer_link(store_name, sid)


def _result(sid: str) -> dict:
    """The clicked patch's probability: from the batched table when there is one (the number the popup
    shows), else one forward pass."""
    if probs is not None:
        hit = probs[probs["sample_id"] == sid]
        if len(hit) and not np.isnan(hit.iloc[0]["prob"]):
            r = hit.iloc[0]
            return {"prob": float(r["prob"]), "threshold": threshold, "decision": int(r["decision"]),
                    "label": int(r["label"]), "sample_id": sid, "batched": True}
        if len(hit) and hit.iloc[0]["error"]:
            raise RuntimeError(hit.iloc[0]["error"])
    return loaders.classify(run_id, store_name, sid)


def _aoi_summary() -> None:
    aoi = st.session_state.get("aoi")
    if not aoi:
        return
    from pyproj import Geod
    from shapely.geometry import shape

    geod = Geod(ellps="WGS84")
    km2 = sum(abs(geod.geometry_area_perimeter(shape(f["geometry"]))[0]) for f in aoi["features"]) / 1e6
    st.caption(f"Area of interest: {len(aoi['features'])} shape(s), {km2:,.1f} km² — kept for the region scan "
               "(delete it with the bin in the draw toolbar).")
    page.scan_page_link()


def _groups(sid: str | None) -> list | None:
    """What the click adds to the map: the patch on its footprint and the OSM features around it."""
    groups = [g for g in (_overlay(sid), _osm_layer(sid)) if g is not None]
    rows = review.current_rows() if show_labels else []
    if rows:
        groups.append(maps_overlays.labels_layer(rows))
    return groups or None


@st.fragment
def _map_and_panel() -> None:
    """The map and the clicked point's panel. A fragment: a click reruns only this part. The click is read
    from session state first (streamlit-folium's change callback puts it there before the rerun), so the
    clicked patch is drawn on the map in this same run."""
    place_msg = _take_click(st.session_state.get("map"))
    left, right = st.columns([3, 2])
    with left:
        # render=False: st_folium still renders the map's script (all it sends); the whole HTML page it
        # would render too is thrown away (~25-45 ms a click here).
        out = st_folium(copy.deepcopy(fmap), key="map", height=600, use_container_width=True,
                        returned_objects=RETURNED, feature_group_to_add=_groups(st.session_state.get("map_sid")),
                        pixelated=True, render=False)
    place_msg = _take_click(out)  # AppTest (no change callback) or a value the callback did not see
    with right:
        _panel(st.session_state.get("map_sid"), place_msg)
        _aoi_summary()
        with st.expander("Download labels"):
            review.downloads("map")


_map_and_panel()
