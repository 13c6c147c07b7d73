"""Map: the labelled points, reference layers, and click-to-classify with the selected run."""

from __future__ import annotations

import time

import streamlit as st
from streamlit_folium import st_folium  # imported at script run so tests can monkeypatch it

from asgm import map_data, viz
from asgm.app import assets, loaders, page
from asgm.errors import AsgmError
from asgm.store import list_stores

page.page_setup("Map")
st.title("Map")

run_id = page.selected_run_id()
run = page.selected_run(run_id)

stores = list_stores()
if not stores:
    st.warning("No patch store yet, so nothing can be classified. Go to **Home** and click **Prepare the demo** "
               "(or run `asgm demo build`). The study's points are still shown.")
default_store = run.config.store if run and run.config.store in stores else ("demo" if "demo" in stores else None)
store_name = (st.sidebar.selectbox("Patch store", stores, index=stores.index(default_store) if default_store else 0,
                                  format_func=loaders.store_label) if stores else None)
if store_name:
    try:
        if loaders.open_store(store_name).meta.synthetic:
            st.warning(f"Store `{store_name}` holds **synthetic** patches (not real imagery).")
    except AsgmError as exc:
        page.show_error(exc, "Rebuild the store (`asgm demo build` for the demo) or pick another one.")
        store_name = None

# -- data ---------------------------------------------------------------------------------------------
study = index = pred = None
try:
    study = loaders.study_points()
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
points = loaders.map_points(store_name, run_id)

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
    colour_by = st.radio("Colour", ["label", "outcome"], horizontal=True, disabled=pred is None,
                         format_func={"label": "true label", "outcome": "run outcome"}.get)
    st.markdown("**Layers**")
    show_polys = st.toggle("Earth Genome 2020 mining polygons", value=True, help="Yellow; Earth Genome's 44-px model, 2020.")
    show_runways = st.toggle("Runway points (OSM)", value=False, help="Grey dots.")
    show_holdout = st.toggle("Caroní holdout", value=True, help="Green rectangle: the geographic holdout.")
    tiles = st.toggle("Satellite basemap (online)", value=False,
                      help="Needs the internet; offline the map keeps a plain background.")

pred_filter = predicted if pred is not None and set(predicted or []) != {0, 1} else None
split_filter = splits if splits is not None and set(splits) != {"val", "test", "other"} else None
shown = map_data.filter_points(points, sets=sets, labels=labels, predicted=pred_filter, errors_only=bool(errors_only),
                          splits=split_filter)
st.caption(f"{len(shown):,} of {len(points):,} points shown · larger dots have a patch in `{store_name}` · "
           + viz.map_legend(colour_by if pred is not None else "label"))


@st.cache_resource(max_entries=6, show_spinner=False)
def _map(key: tuple, _shown, colour_by: str, layers: tuple[bool, bool, bool], tiles: bool):
    """The folium map, built once per filter combination (key): re-sending the same map keeps the
    component, and the user's pan and zoom, as they are."""
    # Centre on the points; zoom 7 shows all of Bolívar in the map column.
    center = ((float(_shown["lat"].min()) + float(_shown["lat"].max())) / 2,
              (float(_shown["lon"].min()) + float(_shown["lon"].max())) / 2) if len(_shown) else (6.8, -63.0)
    m = viz.base_map(center=center, zoom=7, tiles=tiles, js=assets.LEAFLET_JS, css=assets.LEAFLET_CSS)
    for on, lkey, colour, fill in zip(layers, assets.REFERENCE_LAYERS, ("#e6ab02", "#444444", "#1b9e77"), (0.5, 0.7, 0.05), strict=True):
        if on:
            try:
                viz.remote_geojson_layer(assets.reference_layer_url(lkey), colour, fill_opacity=fill).add_to(m)
            except (AsgmError, OSError) as exc:  # a missing reference file must not hide the points
                st.warning(f"Reference layer {lkey} unavailable: {exc}")
    viz.points_layer(_shown, colour_by=colour_by).add_to(m)
    if tiles:
        import folium

        folium.LayerControl(collapsed=True).add_to(m)
    return m


key = (store_name, run_id, tuple(sets), tuple(labels), tuple(pred_filter or ()), tuple(split_filter or ()),
       bool(errors_only), colour_by,
       show_polys, show_runways, show_holdout, tiles, loaders.store_version(store_name) if store_name else 0)
fmap = _map(key, shown, colour_by if pred is not None else "label", (show_polys, show_runways, show_holdout), tiles)

@st.fragment
def _map_and_result() -> None:
    """The map and the clicked point's classification. A fragment: a click reruns only this part, not
    the filters and data loading above, which keeps click -> probability short."""
    left, right = st.columns([3, 2])
    with left:
        out = st_folium(fmap, key="map", height=560, use_container_width=True,
                        returned_objects=["last_object_clicked_tooltip", "last_object_clicked", "last_clicked"])

    # A click on a marker also counts as a click on the map: what changed since the last run tells which.
    out = out or {}
    now = {k: out.get(k) for k in ("last_object_clicked_tooltip", "last_object_clicked", "last_clicked")}
    before = st.session_state.get("_map_last", {})
    st.session_state["_map_last"] = now
    place_msg = None
    if now["last_object_clicked_tooltip"] and (now["last_object_clicked_tooltip"] != before.get("last_object_clicked_tooltip")
                                               or now["last_object_clicked"] != before.get("last_object_clicked")):
        st.session_state["map_sid"] = str(now["last_object_clicked_tooltip"]).strip()
    elif now["last_clicked"] and now["last_clicked"] != before.get("last_clicked"):
        lon, lat = float(now["last_clicked"]["lng"]), float(now["last_clicked"]["lat"])
        st.session_state["map_sid"], place_msg = map_data.clicked_patch(points, lon, lat)
    sid = st.session_state.get("map_sid")

    with right:
        if place_msg:
            st.warning(place_msg)
        elif not sid:
            st.info("Click a point on the map to classify its patch with the selected run.")
        else:
            row = points[points["sample_id"] == sid]
            has_patch = index is not None and sid in set(index["sample_id"])
            st.subheader(sid)
            if not row.empty:
                r = row.iloc[0]
                st.caption(f"set `{r['set']}` · true label **{int(r['label'])}** · lon {r['lon']:.4f}, lat {r['lat']:.4f}"
                           + (f" · split `{r['split']}`" if isinstance(r.get("split"), str) else ""))
            if not has_patch:
                st.warning(map_data.no_patch_message(sid, store_name or "(none)", str(row.iloc[0]["set"]) if not row.empty else None))
            elif run is None:
                st.info("No trained run to classify with yet: the default model trains in the background (see **Home**).")
            elif page.run_can_classify(run_id, run.config, store_name):
                try:
                    t0 = time.perf_counter()
                    res = loaders.classify(run_id, store_name, sid)
                    ms = (time.perf_counter() - t0) * 1000
                    word = "mining" if res["decision"] else "not mining"
                    truth = "mining" if res["label"] else "not mining"
                    ok = res["decision"] == res["label"]
                    st.metric("Probability of mining", f"{res['prob']:.3f}",
                              help=f"Decision threshold of run {run_id}: {res['threshold']:.3f}")
                    st.markdown(f"Decision at threshold {res['threshold']:.3f}: **{word}** · true label: **{truth}** "
                                + (":green[(correct)]" if ok else ":red[(" + ("false positive" if res["decision"] else "false negative") + ")]"))
                    st.caption(f"classified {sid} in {ms:.0f} ms")
                except AsgmError as exc:
                    page.show_error(exc, "Retrain the run on the Train page, or pick another run in the sidebar.")
            if has_patch:
                try:
                    patch = loaders.read_patch(store_name, sid)
                    img = viz.true_colour(patch.data, patch.bands)
                    osm = loaders.read_osm(store_name, sid)
                    if img is not None:
                        if osm is not None:
                            img = viz.overlay_osm(img, osm[0], osm[1], osm[1])
                        st.image(viz.to_png(viz.mark_centre(img)), caption="True colour (B4-B3-B2)"
                                 + (" with OSM overlays" if osm is not None else " — no OSM masks in this store"), width=240)
                        if osm is not None:
                            st.markdown(viz.legend_html(osm[1]), unsafe_allow_html=True)
                except AsgmError as exc:
                    page.show_error(exc, f"Rebuild store `{store_name}`.")
                page.patch_viewer_link(store_name, sid)


_map_and_result()
