"""The Patch viewer for one window of a region scan (``Patch_viewer?scan=NAME&window=I,J``): its pixels re-read
from the scan's composite, classified with the scan's run through the one inference path (the run's full
recipe), probability, Grad-CAM and OSM overlays when an OSM cache covers the window, and review: mark the window
mining / not mining / unsure (keys m / n / u), then the next window of the scan's review queue. Facts from
``asgm.scan.results``, ``asgm.model.inference`` and ``asgm.review``."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import streamlit as st

from asgm.app import loaders, page, review
from asgm.config import ExperimentConfig
from asgm.errors import AsgmError
from asgm.maps import images
from asgm.model import explain, inference, runs
from asgm.review import items as review_items
from asgm.review import queue as review_queue
from asgm.scan import results as scan_results


@st.cache_data(max_entries=64, show_spinner="Reading the window from the scan's imagery…")
def _window(name: str, i: int, j: int, version: float) -> Any:
    """(patch, osm, osm note, recorded probability) of one scan window, read once per scan version."""
    s = scan_results.open_scan(name)
    patch = scan_results.window_patch(s, i, j)
    osm, note = scan_results.window_osm(patch)
    return patch, osm, note, scan_results.window_probability(s, i, j)


def show(name: str, window: str) -> None:
    """The whole view; errors are shown with the way out, never raised."""
    st.caption("A window of a region scan (from the **Region scan** page).")
    try:
        s = scan_results.open_scan(name)
        i, j = scan_results.parse_window(window)
        patch, osm, osm_note, recorded = _window(name, i, j, s.version)
    except AsgmError as exc:
        page.show_error(exc, "Open the window again from the Region scan page's detections.")
        page.scan_page_link("Back to the Region scan page →")
        return
    run_id = str(s.identity["run_id"])
    if s.synthetic:
        st.warning(f"**{scan_results.SYNTHETIC_LABEL}**: this window comes from a generated mosaic.")
    st.markdown(
        f"**Scan `{name}`, window {i},{j}** · {s.identity['year']} · lon {patch.lon:.5f}, lat {patch.lat:.5f} · "
        f"{patch.grid.size} px at 10 m, EPSG:{patch.grid.epsg} · source {patch.source}"
        + (f" {patch.product_level}" if patch.product_level not in ("", patch.source) else "")
        + f" {patch.date_start}…{patch.date_end} · no true label (not a labelled point)"
    )
    layers = tuple(osm[1]) if osm is not None else ()
    left, right = st.columns([3, 2])
    with right:
        st.markdown("**OSM layers**")
        if osm is None:
            st.info(osm_note)
            visible: list[str] = []
        else:
            st.caption(osm_note)
            st.markdown(images.legend_html(layers), unsafe_allow_html=True)
            visible = [
                layer
                for layer in layers
                if st.toggle(
                    f"{layer} ({int(osm[0][layers.index(layer)].sum())} px)", value=True, key=f"scan_osm_{layer}"
                )
            ]
        gradcam_on = st.toggle(
            "Grad-CAM heatmap",
            value=False,
            key="scan_gradcam",
            help="Where the model looked (last convolution layer), for the scan's run.",
        )
        st.markdown("**Prediction** (the scan's run " + f"`{run_id}`)")
        cam = None
        shown = recorded
        try:
            info = runs.get_run(run_id)
            config = cast(ExperimentConfig, info.config)
            res = inference.classify_patch(loaders.compiled_model(run_id), info, patch, None)
            shown = float(res["prob"])
            st.metric(
                "Probability of mining",
                f"{res['prob']:.4f}",
                help="The run's full recipe (test-time augmentation and temperature when it uses them).",
            )
            thr = s.thresholds
            st.markdown(
                f"Decision at the run's threshold {res['threshold']:.3f}: "
                f"**{'mining' if res['decision'] else 'not mining'}** · scan thresholds high "
                f"{thr.get('high', 0):.3f}, low {thr.get('low', 0):.3f}"
            )
            if recorded is not None:
                st.caption(f"The scan recorded {recorded:.4f} for this window.")
            if gradcam_on:
                cam = explain.gradcam(loaders.load_model(run_id), inference.prepare_input(patch, None, config))
        except AsgmError as exc:
            page.show_error(exc, "The scan's run is gone or changed: retrain it, or scan again with another run.")
        _review(name, f"{i},{j}", run_id, shown)
    with left:
        tc = images.true_colour(patch.data, patch.bands)
        if tc is None:
            st.info("This window lacks B4, B3 or B2.")
        else:
            img = images.overlay_osm(tc, osm[0] if osm else None, layers, visible)
            title = "True colour (B4-B3-B2)"
            if cam is not None:
                img = images.overlay_heatmap(img, np.asarray(cam))
                title += " + Grad-CAM"
            st.image(images.to_png(images.mark_centre(img), size=420), caption=title, width="stretch")
    page.scan_page_link("Back to the Region scan page →")


def _go_window(window: str) -> None:
    st.query_params["window"] = window


def _review(name: str, window: str, run_id: str, probability: float | None) -> None:
    """Mark this window, then open the next window of the scan's review queue."""
    st.markdown("**Review**")
    with st.sidebar:  # the reviewer's name is asked by the Patch viewer page itself
        order = review.order_picker("scan_window_queue_order")
    try:
        q = review_queue.scan_queue(name, order)
        item = review_items.scan_item(name, window)
    except AsgmError as exc:
        page.show_error(exc, "Close the label layer in the program holding it, or open the window again.")
        return
    with st.sidebar:
        review.queue_progress(q)
    nxt = q.next_item(skip=(window,))
    review.mark_panel(
        item,
        key="scan_window",
        run_id=run_id,
        probability=probability,
        shortcuts=True,
        after=(lambda: _go_window(nxt)) if nxt else None,
    )
    st.button(
        review.NEXT_BUTTON,
        on_click=_go_window,
        args=(nxt or window,),
        disabled=nxt is None,
        key="scan_window_next",
        help="The next unreviewed window of this scan's queue.",
    )
