"""Map: every point of the selected store coloured by the selected run's probability; a click answers in the
browser (popup) and the side panel (where the patch can be marked mining / not mining / unsure), and draws the
patch in place; reviewed labels as a layer coloured by label. The map stack (leafmap, folium) is imported
here only, so the first page stays fast."""

from __future__ import annotations

import copy

import numpy as np
import streamlit as st
from streamlit_folium import st_folium  # imported at script run so tests can monkeypatch it

from asgm.app import assets, loaders, map_panel, map_periods, page, review
from asgm.data.store import list_stores
from asgm.errors import AsgmError
from asgm.maps import leaflet, point_layer
from asgm.maps import points as map_data
from asgm.osm import nearby
from asgm.sources import configured_source

page.page_setup("Map")
st.title("Map")
review.reviewer_box()

run_id = page.selected_run_id()
run = page.selected_run(run_id)

stores = list_stores()
if not stores:
    page.no_store_warning(", so nothing can be classified (the study's points are still shown)")
default_store = run.config.store if run and run.config.store in stores else ("demo" if "demo" in stores else None)
store_name = (
    st.sidebar.selectbox(
        "Patch store",
        stores,
        index=stores.index(default_store) if default_store else 0,
        format_func=loaders.store_label,
    )
    if stores
    else None
)
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
        splits = st.multiselect(
            "Split (selected run)",
            all_splits,
            default=all_splits,
            help="val/test: the run's validation and test points; other: training points, "
            "and points the run never saw.",
        )
        predicted = st.multiselect(
            "Predicted class",
            [1, 0],
            default=[1, 0],
            format_func=label_names.get,
            help="Only points in the selected run's predictions (its val/test splits) have one.",
        )
        errors_only = st.toggle("Errors only (FP/FN)", value=False)
    modes = [
        m
        for m in point_layer.COLOUR_MODES
        if (m != "probability" or probs is not None) and (m != "outcome" or pred is not None)
    ]
    colour_by = st.radio(
        "Colour",
        modes,
        horizontal=True,
        format_func={"probability": "probability", "label": "true label", "outcome": "run outcome"}.get,
    )
    swipe = st.toggle(
        "Swipe true / false colour on the clicked patch",
        value=True,
        help="Needs bands B12, B8 and B4 (the demo pack is RGB only).",
    )
    has_osm = bool(store_name) and loaders.has_osm_vectors(store_name)
    show_osm = st.toggle(
        "OSM features around the clicked patch",
        value=has_osm,
        disabled=not has_osm,
        help="The store's cached OSM vectors (roads, waterways, buildings, landuse, airstrips), "
        "one colour per key as on the patch overlays; read from disk, never fetched here.",
    )
    osm_km = st.select_slider("OSM radius (km)", [1, 2, 5], value=2, disabled=not show_osm)
    if store_name and not has_osm:
        st.caption(nearby.no_cache_message(store_name))
    period_choice = map_periods.sidebar()
    show_labels = st.toggle(
        "Reviewed labels",
        value=True,
        key="map_labels",
        help="Every reviewed item as a ring: red mining, blue not mining, grey unsure.",
    )
    st.caption(
        "Basemaps and reference layers: the layer control on the map (top right). Draw a rectangle or "
        "polygon (left toolbar) to set the area of interest of the region scan."
    )

pred_filter = predicted if pred is not None and set(predicted or []) != {0, 1} else None
split_filter = splits if splits is not None and set(splits) != {"val", "test", "other"} else None
shown = map_data.filter_points(
    points, sets=sets, labels=labels, predicted=pred_filter, errors_only=bool(errors_only), splits=split_filter
)
n_patch = int(shown["has_patch"].sum())
st.caption(
    f"{len(shown):,} of {len(points):,} points shown · {n_patch:,} with a patch in `{store_name}` (filled dots; "
    "rings have none)"
    + (
        f" · coloured by run {run_id}'s probability, computed for all patches at once"
        if colour_by == "probability"
        else ""
    )
    + (" · **synthetic** store" if synthetic else "")
)

REFERENCE = {
    "eg_mining_polygons_2020": ("Earth Genome 2020 mining polygons", "#e6ab02", True, 0.5),
    "runway_points": ("Runway points (OSM)", "#444444", False, 0.7),
    "caroni_holdout": ("Caroní holdout", "#1b9e77", True, 0.05),
}


@st.cache_resource(max_entries=6, show_spinner="Building the map…")
def _map(
    key: tuple,
    _shown,
    colour_by: str,
    store_name: str | None,
    threshold: float | None,
    _periods: map_periods.PeriodChoice | None = None,
):
    """The map, built once per filter combination (key). Each rerun draws a copy of it: streamlit-folium adds
    the clicked patch to the map it is given, and the cached one is shared by sessions."""
    layers = []
    for k, (name, colour, on, fill) in REFERENCE.items():
        try:
            layers.append((assets.reference_layer_url(k), name, colour, on, fill))
        except (AsgmError, OSError) as exc:  # a missing reference file must not hide the points
            st.warning(f"Reference layer {name} unavailable: {exc}")
    return leaflet.build_map(
        _shown,
        colour_by=colour_by,
        store_name=store_name,
        threshold=threshold,
        js=assets.LEAFLET_JS,
        css=assets.LEAFLET_CSS,
        reference_layers=layers,
        fetch_hints=leaflet.fetch_hints(configured_source()),
        extra_layers=map_periods.layers(_periods) if _periods else (),
    )


key = (
    store_name,
    run_id,
    tuple(sets),
    tuple(labels),
    tuple(pred_filter or ()),
    tuple(split_filter or ()),
    bool(errors_only),
    colour_by,
    threshold,
    loaders.store_version(store_name) if store_name else 0,
    period_choice.key if period_choice else None,
)
try:
    fmap = _map(key, shown, colour_by, store_name, threshold, period_choice)
except AsgmError as exc:  # leaflet.MapAssetError: a plugin file is missing
    page.show_error(exc, "Reinstall the project (`pip install -r requirements.txt`) and restore static/plugins.")
    st.stop()

view = map_panel.MapView(
    points=points,
    patch_ids=patch_ids,
    store_name=store_name,
    run_id=run_id,
    run=run,
    probs=probs,
    threshold=threshold,
    can_classify=can_classify,
    swipe=swipe,
    show_osm=show_osm,
    has_osm=has_osm,
    osm_km=osm_km,
    show_labels=show_labels,
)


@st.fragment
def _map_and_panel() -> None:
    """The map and the clicked point's panel. A fragment: a click reruns only this part. The click is read
    from session state first (streamlit-folium's change callback puts it there before the rerun), so the
    clicked patch is drawn on the map in this same run."""
    place_msg = map_panel.take_click(view, st.session_state.get(map_panel.MAP_KEY))
    left, right = st.columns([3, 2])
    with left:
        # render=False: st_folium still renders the map's script (all it sends); the whole HTML page it
        # would render too is thrown away (~25-45 ms a click here).
        out = st_folium(
            copy.deepcopy(fmap),
            key=map_panel.MAP_KEY,
            height=600,
            use_container_width=True,
            returned_objects=map_panel.RETURNED,
            feature_group_to_add=map_panel.groups(view, map_panel.selected()),
            pixelated=True,
            render=False,
        )
    place_msg = map_panel.take_click(view, out)  # AppTest (no change callback) or a value the callback did not see
    found = map_periods.take_click(period_choice, st.session_state.get(map_panel.LAST_SEEN, {}).get("last_clicked"))
    with right:
        if found:  # a click on a detection of the period layer: no need to say there is no labelled point there
            map_periods.panel(found, store_name, index)
            place_msg = None
        map_panel.panel(view, map_panel.selected(), place_msg)
        map_panel.aoi_summary()
        with st.expander("Download labels"):
            review.downloads("map")


_map_and_panel()
