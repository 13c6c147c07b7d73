"""Patch viewer: one patch in true (and false) colour, OSM overlays with per-layer toggles that re-run the
prediction with that channel zeroed, a Grad-CAM toggle, button navigation, and review: mark the patch mining /
not mining / unsure (keys m / n / u, then the next one), optionally through the review queue (most uncertain or
most confident first); or, from the Region scan page (``?scan=NAME&window=I,J``), one window of a scan
(``asgm.app.scan_window``)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from asgm.app import loaders, page, review
from asgm.data.store import list_stores
from asgm.errors import AsgmError
from asgm.maps import images
from asgm.review import items as review_items
from asgm.review import queue as review_queue

page.page_setup("Patch viewer")
st.title("Patch viewer")
review.reviewer_box()

if st.query_params.get("scan"):  # a window of a region scan (a link from the Region scan page)
    from asgm.app import scan_window

    scan_window.show(st.query_params["scan"], st.query_params.get("window", ""))
    st.stop()

run_id = page.selected_run_id()
stores = list_stores()
if not stores:
    page.no_store_warning()
    st.stop()

qp = st.query_params
if qp.get("store") in stores and st.session_state.get("_viewer_qp") != dict(qp):
    # A link from the map: adopt its store and sample once, then let the widgets drive.
    st.session_state["_viewer_qp"] = dict(qp)
    st.session_state["viewer_store"] = qp["store"]
    st.session_state["viewer_sid"] = qp.get("sample")
    st.session_state["viewer_pick"] = qp.get("sample")

if qp.get("store") and qp.get("store") not in stores:
    st.warning(
        f"The link asks for patch store `{qp['store']}`, which is not on this machine "
        f"(stores present: {', '.join(stores)}). Showing another store instead."
    )

run = page.selected_run(run_id)
default_store = st.session_state.get("viewer_store") or (run.config.store if run else "demo")
store_name = st.sidebar.selectbox(
    "Patch store",
    stores,
    index=stores.index(default_store) if default_store in stores else 0,
    format_func=loaders.store_label,
)
st.session_state["viewer_store"] = store_name
try:
    store = loaders.open_store(store_name)
    index = loaders.store_index(store_name)
except AsgmError as exc:
    page.show_error(exc, f"Rebuild store `{store_name}` or pick another one.")
    st.stop()
if store.meta.synthetic:
    st.warning(f"Store `{store_name}` holds **synthetic** patches (not real imagery).")
if index.empty:
    st.info(f"Store `{store_name}` is empty.")
    st.stop()

ids = list(index["sample_id"])
sid = st.session_state.get("viewer_sid")
if sid not in ids:
    if sid:
        st.warning(f"No patch `{sid}` in store `{store_name}`; showing `{ids[0]}`. Pick a sample below.")
    sid = ids[0]

# -- navigation (buttons, no keyboard needed) ----------------------------------------------------------
pred = None
if run is not None and run.config.store == store_name:
    try:
        pred = loaders.predictions(run_id)
    except AsgmError as exc:
        st.caption(f"No predictions for run {run_id}: {exc}")


def _go(new_sid: str) -> None:
    st.session_state["viewer_sid"] = new_sid
    st.session_state["viewer_pick"] = new_sid


# -- the review queue (sidebar): where "next" goes after a mark ------------------------------------------
queue = None
if st.sidebar.toggle(
    "Review mode",
    key="viewer_review",
    help="Go through this store's unreviewed patches in queue order; mark with m / n / u.",
):
    with st.sidebar:
        order = review.order_picker("viewer_queue_order")
    probs = None
    if run is not None and not loaders.store_problems(run.config, store_name):
        try:
            probs = loaders.store_probabilities(run_id, store_name)
        except AsgmError as exc:
            st.sidebar.caption(f"No probabilities for the queue: {exc}")
    if probs is None:
        import pandas as pd

        probs = pd.DataFrame({"sample_id": ids, "prob": np.nan})
        st.sidebar.caption("No run can score this store: the queue is in sample order.")
    try:
        queue = review_queue.store_queue(store_name, run_id or "", order, probabilities=probs)
    except AsgmError as exc:
        page.show_error(exc, "Close the label layer in QGIS (or the program holding it) and reload.")
    if queue is not None:
        with st.sidebar:
            review.queue_progress(queue)
        started = (store_name, order)
        if st.session_state.get("_viewer_queue_started") != started:
            # Review mode just turned on (or the order changed): start at the head of the queue.
            st.session_state["_viewer_queue_started"] = started
            first = queue.next_item()
            if first:
                sid = first
                st.session_state["viewer_sid"] = st.session_state["viewer_pick"] = first
else:
    st.session_state.pop("_viewer_queue_started", None)

nav = st.columns([1, 1, 1, 1, 4])
pos = ids.index(sid)
nav[0].button("◀ Previous", on_click=_go, args=(ids[(pos - 1) % len(ids)],), width="stretch")
nav[1].button("Next ▶", on_click=_go, args=(ids[(pos + 1) % len(ids)],), width="stretch")
rng = np.random.default_rng()
for col, kind in ((nav[2], "FP"), (nav[3], "FN")):
    pool = []
    if pred is not None:
        p = pred[pred["sample_id"].isin(ids)]
        want = (p["pred"] == 1) & (p["label"] == 0) if kind == "FP" else (p["pred"] == 0) & (p["label"] == 1)
        pool = list(p.loc[want, "sample_id"])
    col.button(
        f"Random {kind}",
        disabled=not pool,
        on_click=_go,
        args=(str(rng.choice(pool)) if pool else sid,),
        help=f"A random {'false positive' if kind == 'FP' else 'false negative'} of the selected run"
        if pool
        else f"No {kind} in the selected run's predictions for this store",
        width="stretch",
    )
if st.session_state.get("viewer_pick") not in ids:
    st.session_state["viewer_pick"] = sid
sid = nav[4].selectbox("Patch", ids, key="viewer_pick", label_visibility="collapsed")
st.session_state["viewer_sid"] = sid

# -- the patch -----------------------------------------------------------------------------------------
try:
    patch = loaders.read_patch(store_name, sid)
    osm = loaders.read_osm(store_name, sid)
except AsgmError as exc:
    page.show_error(exc, f"Rebuild store `{store_name}` or re-fetch this patch.")
    st.stop()

st.markdown(
    f"**{sid}** · set `{patch.set}` · true label **{patch.label}** ({'mining' if patch.label else 'not mining'}) · "
    f"lon {patch.lon:.4f}, lat {patch.lat:.4f} · {patch.grid.size} px at 10 m, EPSG:{patch.grid.epsg} · "
    f"{patch.product_level} {patch.date_start}…{patch.date_end}"
)

layers = tuple(osm[1]) if osm is not None else ()
left, right = st.columns([3, 2])
with right:
    st.markdown("**OSM layers**")
    if osm is None:
        info = store.osm_info()
        st.info(
            f"No OSM masks for this patch. Get them with `asgm osm fetch` then `asgm osm rasterize --store {store_name}`."  # noqa: E501
            if info is None
            else "This patch has no OSM mask file; rerun `asgm osm rasterize --store " + store_name + "`."
        )
        visible: list[str] = []
    else:
        st.markdown(images.legend_html(layers), unsafe_allow_html=True)
        visible = [
            layer
            for layer in layers
            if st.toggle(
                f"{layer} ({int(osm[0][layers.index(layer)].sum())} px)",
                value=True,
                key=f"osm_{layer}",
                help="Off hides the overlay and re-runs the prediction with this channel set to zero.",
            )
        ]
    gradcam_on = st.toggle(
        "Grad-CAM heatmap",
        value=False,
        disabled=run is None,
        help="Where the model looked (last convolution layer), for the selected run.",
    )
    show_false = st.toggle(
        "False colour (B12-B8-B4)",
        value=False,
        disabled=images.false_colour(patch.data, patch.bands) is None,
        help="Needs bands B12, B8 and B4; the demo pack has only B4, B3, B2.",
    )

# -- prediction with ablation --------------------------------------------------------------------------
shown_prob = None
with right:
    st.markdown("**Prediction**")
    cam = None
    if run is None:
        st.info("No trained run yet (see **Home**/**Train**).")
    elif page.run_can_classify(run_id, run.config, store_name):
        zero = tuple(x for x in run.config.osm_layers if x not in visible)
        try:
            full = loaders.classify(run_id, store_name, sid)
            shown_prob = float(full["prob"])
            now = loaders.classify(run_id, store_name, sid, zero_layers=zero) if zero else full
            delta = now["prob"] - full["prob"]
            # Four decimals: zeroing one OSM channel often moves the output by less than 0.001.
            st.metric(
                "Probability of mining",
                f"{now['prob']:.4f}",
                delta=f"{delta:+.4f} vs all layers" if zero else None,
                delta_color="off",
            )
            st.markdown(
                f"Decision at threshold {now['threshold']:.3f}: **{'mining' if now['decision'] else 'not mining'}**"
                + (f" · zeroed: {', '.join(zero)}" if zero else "")
                + f" · true label: **{'mining' if patch.label else 'not mining'}**"
            )
            if not run.config.osm_layers and layers:
                st.caption("The selected run uses no OSM channels, so toggling layers only changes the picture.")
            if gradcam_on:
                from asgm.maps import images
                from asgm.model import explain

                model, config, x = loaders.model_input(run_id, store_name, sid)
                cam = explain.gradcam(model, x)
        except AsgmError as exc:
            page.show_error(exc, page.classify_way_out(exc, store_name))

# -- review ----------------------------------------------------------------------------------------------
with right:
    st.markdown("**Review**")
    next_sid = (queue.next_item(skip=(sid,)) if queue is not None else ids[(pos + 1) % len(ids)]) or sid
    try:
        item = review_items.store_item(store, sid)
        review.mark_panel(
            item, key="viewer", run_id=run_id, probability=shown_prob, shortcuts=True, after=lambda: _go(next_sid)
        )
    except AsgmError as exc:
        page.show_error(exc, f"Rebuild store `{store_name}`.")
    st.button(
        review.NEXT_BUTTON,
        on_click=_go,
        args=(next_sid,),
        disabled=next_sid == sid,
        help="The next unreviewed patch of the queue (review mode) or the next patch of the store.",
    )
    with st.expander("Download labels"):
        review.downloads("viewer", "store", store_name)

with left:
    tc = images.true_colour(patch.data, patch.bands)
    fc = images.false_colour(patch.data, patch.bands) if show_false else None
    imgs = [("True colour (B4-B3-B2)", tc)] + ([("False colour (B12-B8-B4)", fc)] if fc is not None else [])
    cols = st.columns(len(imgs))
    for col, (title, img) in zip(cols, imgs, strict=True):
        if img is None:
            col.info("This patch lacks B4, B3 or B2.")
            continue
        img = images.overlay_osm(img, osm[0] if osm else None, layers, visible)
        if cam is not None:
            img = images.overlay_heatmap(img, np.asarray(cam))
            title += " + Grad-CAM"
        col.image(images.to_png(images.mark_centre(img), size=420), caption=title, width="stretch")
