"""Region scan: where is mining in this area, and what is new since last year? The area drawn on the Map (or an
uploaded GeoJSON), a run and a year -> ``asgm scan run`` as a background job (``asgm.jobs.runner``); finished scans as a
detections layer and table with downloads, each detection's window openable in the Patch viewer and markable
mining / not mining / unsure (with the scan's review queue, highest probability first); the change
between two scans of the same area. Every fact comes from ``asgm.scan.request`` / ``asgm.scan.results``."""

from __future__ import annotations

import copy
import re
from datetime import date

import streamlit as st
from streamlit_folium import st_folium  # imported at script run so tests can monkeypatch it

from asgm.app import assets, loaders, map_panel, page, review
from asgm.app import jobs as aj
from asgm.config import REFLECTANCE
from asgm.errors import AsgmError
from asgm.maps import leaflet
from asgm.model import store_fit
from asgm.review import items as review_items
from asgm.review import queue as review_queue
from asgm.scan import request as scan_request
from asgm.scan import results as scan_results

page.page_setup("Region scan")
st.title("Region scan")
st.caption(
    "Slide a trained run's classifier over a Sentinel-2 composite of a whole area (as Earth Genome's Amazon "
    "Mining Watch does) and see where it finds mining. Scans run in the background and keep going when you "
    "leave or reload the page; a stopped scan resumes where it was."
)
can_launch = aj.passcode_gate()
new_tab, results_tab, change_tab = st.tabs(["New scan", "Results", "Change over time"])

SHORT = {scan_request.SYNTHETIC: "SYNTHETIC demo", "stac": "STAC", "gee": "Earth Engine", "mosaic": "mosaic"}
SOURCES = {
    scan_request.SYNTHETIC: "SYNTHETIC demo mosaic (offline; not real imagery)",
    "stac": "STAC: Earth Search Sentinel-2 Level-2A (no account)",
    "gee": "Earth Engine: the study's Level-1C (needs credentials)",
    "mosaic": "A GeoTIFF/COG mosaic on the server",
}

# -- a new scan -----------------------------------------------------------------------------------------------
with new_tab:
    st.subheader("Area")
    how = st.radio(
        "Area of interest", ["The area drawn on the Map", "Upload GeoJSON"], horizontal=True, key="scan_area_how"
    )
    aoi = None
    if how == "The area drawn on the Map":
        if not st.session_state.get(map_panel.AOI):
            st.info(
                "No area drawn yet: draw a rectangle or polygon on the **Map** page (left toolbar), then come back."
            )
        else:
            try:
                aoi, km2 = scan_request.aoi_from_drawing(st.session_state[map_panel.AOI])
                st.success(f"Drawn area: {km2:,.1f} km², bounds {tuple(round(v, 4) for v in aoi.bounds)}.")
            except AsgmError as exc:
                page.show_error(exc, "Redraw the area on the Map page (one polygon without crossing edges).")
    else:
        up = st.file_uploader("Area (GeoJSON polygon in lon/lat)", type=["geojson", "json"], key="scan_upload")
        if up is not None:
            try:
                aoi, km2 = scan_request.aoi_from_upload(up.name, up.getvalue())
                st.success(f"{up.name}: {km2:,.1f} km², bounds {tuple(round(v, 4) for v in aoi.bounds)}.")
            except AsgmError as exc:
                st.error(f"{exc}. Nothing was saved; fix the file and upload it again.")

    st.subheader("Run, year and imagery")
    usable = [r for r in loaders.completed_runs() if r.config is not None and not r.config.osm_layers]
    c1, c2 = st.columns([3, 1])
    run_id = None
    if not usable:
        c1.warning(
            "No completed run trained on bands alone: region scans feed imagery only (no OSM layers). "
            "Train one on the **Train** page with OSM channels off."
        )
    else:
        ids = [r.run_id for r in usable]
        labels = {r.run_id: page.run_label(r) for r in usable}
        current = st.session_state.get("run_id")
        run_id = c1.selectbox(
            "Run (trained on bands only)",
            ids,
            index=ids.index(current) if current in ids else 0,
            format_func=labels.get,
            key="scan_run",
        )
    year = int(
        c2.number_input("Year", min_value=2016, max_value=date.today().year, value=2021, step=1, key="scan_year")
    )
    ee_ok, ee_text = aj.earth_engine_account()
    choices = [k for k in SOURCES if k != "gee" or ee_ok]
    source = st.radio("Imagery", choices, format_func=SOURCES.get, key="scan_source")
    if run_id is not None:
        st.caption(
            store_fit.encoding_note(
                next(r.config for r in usable if r.run_id == run_id), REFLECTANCE, "the composite's windows"
            )
        )
    if not ee_ok:
        st.caption(ee_text + " — Earth Engine is offered when credentials are configured.")
    mosaic_path = ""
    if source == "mosaic":
        mosaic_path = st.text_input(
            "Mosaic path on the server",
            key="scan_mosaic",
            help="uint16 DN (reflectance x 10000, 0 = no data), bands named B1, B2, … or the 12 study bands in order",
        )
    elif source == scan_request.SYNTHETIC:
        st.warning(
            "The SYNTHETIC demo writes a generated 12-band mosaic with known mine sites around your area (not "
            "real imagery; more mines in later years) and scans it: for trying the scan offline. Every result "
            "of it is labelled SYNTHETIC."
        )
    elif source == "stac":
        from asgm.sources.stac import stac_url

        st.caption(
            f"Catalogue: {stac_url()} (set ASGM_STAC_URL for another one). Scenes are fetched per tile by the job."
        )
    name = st.text_input("Scan name (its folder under data/scans)", value=f"scan-{year}", key="scan_name")
    prior = st.checkbox(
        "Spatial prior (Earth Genome's rule)",
        value=False,
        key="scan_prior",
        help="Instead of the run's threshold: a window needs probability ≥ 0.43, and ≥ 0.75 when no "
        "other candidate is among its 5 nearest windows within 3 km. Earth Genome's settings, tuned "
        "for their model.",
    )

    if st.button("Start the scan", type="primary", disabled=not can_launch):
        if aoi is None:
            st.error("Cannot scan: no valid area. Draw one on the Map page or upload a GeoJSON polygon.")
        elif run_id is None:
            st.error("Cannot scan: no run trained on bands alone.")
        elif source == "mosaic" and not mosaic_path.strip():
            st.error("Cannot scan: give the path of the mosaic GeoTIFF.")
        else:
            req = scan_request.ScanRequest(
                name=name.strip(),
                year=year,
                run_id=run_id,
                source=mosaic_path.strip() if source == "mosaic" else source,
                spatial_prior=prior,
            )
            try:
                fresh = not req.folder.exists()  # else the same request again: a resume, or a job already running
                steps = scan_request.prepare(req, scan_request.check(req, aoi))
                job = aj.launch(
                    steps[0],
                    then=steps[1:],
                    kind="scan",
                    key=f"scan:{req.name}",
                    title=f"scan {req.name} ({year}, {SHORT[source]})",
                )
                if job is None and fresh:
                    scan_request.discard(req)  # refused (public limits): leave nothing behind
                else:
                    st.session_state["scan_pick"] = req.name
            except AsgmError as exc:
                page.show_error(exc, "Change the area, run, year, source or name and start again; nothing was written.")

    st.subheader("Scan jobs")
    aj.jobs_panel(kinds=("scan",))

# -- results ------------------------------------------------------------------------------------------------------
entries = scan_results.list_scans()
finished = [e for e in entries if e.finished]
labels_by_name = {e.name: e.label for e in entries}


@st.cache_resource(max_entries=4, show_spinner="Building the map…")
def _scan_map(key: tuple, _polygons, _aoi, threshold, change: bool, synthetic: bool):
    """A scan's map, built once per scan version (key); each rerun draws a copy (streamlit-folium changes it)."""
    return leaflet.scan_map(
        _polygons,
        _aoi,
        js=assets.LEAFLET_JS,
        css=assets.LEAFLET_CSS,
        threshold=threshold,
        change=change,
        synthetic=synthetic,
    )


@st.cache_data(max_entries=8, show_spinner="Comparing the scans…")
def _change(a: str, b: str, version_a: float, version_b: float):
    """``scan_results.change`` once per version of the two scans."""
    return scan_results.change(a, b)


def _results(name: str) -> None:
    """A finished scan: summary, map, table, the picked detection's window, downloads."""
    try:
        s = scan_results.open_scan(name)
        table = scan_results.detections_table(s)
    except AsgmError as exc:
        page.show_error(exc, "Start the scan again under New scan (it resumes), or pick another scan.")
        return
    sm = s.summary
    if s.synthetic:
        st.warning(
            f"**{scan_results.SYNTHETIC_LABEL}**: this scan read a generated mosaic; its detections are "
            "the generator's mine sites, not real mining."
        )
    t = s.thresholds
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Detections", sm.get("detections", 0))
    m2.metric("Detected area", f"{sm.get('detected_area_ha', 0):,.1f} ha")
    m3.metric("Windows scored", f"{sm.get('windows_scored', 0):,}")
    m4.metric("Masked pixels", f"{100 * (sm.get('masked_pixel_fraction') or 0):.1f} %")
    st.caption(
        f"{s.identity['year']} · run {s.identity['run_id']} · source {s.identity['source'].get('kind')} · "
        f"{sm.get('aoi_area_km2', 0):,.1f} km² · thresholds high {t.get('high', 0):.3f} ({t.get('high_from')}), "
        f"low {t.get('low', 0):.3f} ({t.get('low_from')}) · {sm.get('windows_masked', 0)} windows skipped as masked"
    )
    if sm.get("spatial_prior"):
        sp = sm["spatial_prior"]
        st.caption(
            f"Spatial prior: {sp['candidates']:,} candidate windows (≥ {sp['t_main']}), {sp['isolated']:,} "
            f"isolated, {sp['dropped_isolated']:,} dropped as isolated below {sp['t_iso']}."
        )
    for w in sm.get("warnings") or []:
        st.warning(w)
    fmap = _scan_map(("scan", name, s.version), s.detections, s.aoi, t.get("high"), False, s.synthetic)
    out = st_folium(
        copy.deepcopy(fmap),
        key="scan_map",
        height=520,
        use_container_width=True,
        returned_objects=["last_object_clicked_tooltip"],
    )
    clicked = re.search(r"det-\d+", str((out or {}).get("last_object_clicked_tooltip") or ""))
    ids = table["id"].tolist()
    if clicked and clicked.group(0) in ids and clicked.group(0) != st.session_state.get("_scan_map_clicked"):
        st.session_state["_scan_map_clicked"] = st.session_state["scan_det"] = clicked.group(0)
    st.markdown("**Detections** (select a row, or click a polygon on the map, to open its window)")
    chosen = st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="single-row",
        key="scan_table",
        column_config={
            "area_ha": st.column_config.NumberColumn("area (ha)", format="%.2f"),
            "max_prob": st.column_config.NumberColumn("max prob", format="%.3f"),
            "mean_prob": st.column_config.NumberColumn("mean prob", format="%.3f"),
        },
    )
    rows = list(getattr(getattr(chosen, "selection", None), "rows", []) or [])
    if rows and ids[rows[0]] != st.session_state.get("_scan_table_row"):
        st.session_state["_scan_table_row"] = st.session_state["scan_det"] = ids[rows[0]]
    if ids:
        if st.session_state.get("scan_det") not in ids:
            st.session_state["scan_det"] = ids[0]
        det = st.selectbox("Detection", ids, key="scan_det")
        row = table[table["id"] == det].iloc[0]
        st.markdown(
            f"**{det}**: {row['area_ha']:.2f} ha, max probability {row['max_prob']:.3f}, mean "
            f"{row['mean_prob']:.3f}, centroid lon {row['centroid_lon']:.5f}, lat {row['centroid_lat']:.5f}"
        )
        if row["window"]:
            page.scan_window_link(name, row["window"])
            _review(name, str(row["window"]), str(s.identity["run_id"]), float(row["max_prob"]), ids, det)
    d1, d2 = st.columns(2)
    d1.download_button(
        "Download detections (GeoJSON)",
        scan_results.detections_geojson(s),
        file_name=f"{name}-detections.geojson",
        mime="application/geo+json",
    )
    d2.download_button(
        "Download the table (CSV)",
        scan_results.table_csv(table, s.synthetic),
        file_name=f"{name}-detections.csv",
        mime="text/csv",
    )


def _next_detection(det: str) -> None:
    st.session_state["scan_det"] = det


def _review(name: str, window: str, run_id: str, prob: float, ids: list[str], det: str) -> None:
    """Mark the picked detection's window; then the next detection of the table. The queue's progress counts
    every scored window of the scan (the Patch viewer goes through them, most uncertain first)."""
    try:
        q = review_queue.scan_queue(name, "confident")
        item = review_items.scan_item(name, window)
    except AsgmError as exc:
        page.show_error(exc, "Close the label layer in the program holding it, or pick the detection again.")
        return
    st.markdown(f"**Review {det}** (its window {window})")
    review.reviewer_box()
    nxt = ids[(ids.index(det) + 1) % len(ids)]
    review.mark_panel(
        item,
        key="scan_det_review",
        run_id=run_id,
        probability=prob,
        after=(lambda: _next_detection(nxt)) if nxt != det else None,
    )
    review.queue_progress(q)
    with st.expander("Download this scan's labels"):
        review.downloads("scan", "scan", name)


with results_tab:
    if not finished:
        st.info(
            "No finished scan yet: start one under **New scan**."
            + (f" Not finished: {', '.join(e.name for e in entries)}." if entries else "")
        )
    else:
        names = [e.name for e in finished]
        pick = st.session_state.get("scan_pick")  # the scan started last: shown once it is finished
        if pick in names and st.session_state.get("_scan_pick_shown") != pick:
            st.session_state["scan_result"] = st.session_state["_scan_pick_shown"] = pick
        name = st.selectbox("Scan", names, format_func=labels_by_name.get, key="scan_result")
        _results(name)

# -- change over time ------------------------------------------------------------------------------------------
with change_tab:
    if len(finished) < 2:
        st.info("Change over time needs two finished scans of the same area with the same run (e.g. two years).")
    else:
        names = [e.name for e in finished]
        by_name = {e.name: e for e in finished}
        c1, c2 = st.columns(2)
        a = c1.selectbox("Earlier scan", names, index=len(names) - 1, format_func=labels_by_name.get, key="change_a")
        partners = [n for n in names if scan_results.comparable(by_name[a], by_name[n])]
        if not partners:
            st.warning(
                f"No other finished scan has the grid and run of `{a}` (same area, window and stride; run "
                f"`{by_name[a].run_id}`): scan the same area with the same run for another year."
            )
        else:
            b = c2.selectbox("Later scan", partners, format_func=labels_by_name.get, key="change_b")
            try:
                report, gdf = _change(a, b, by_name[a].version, by_name[b].version)
                s_a = scan_results.open_scan(a)
            except AsgmError as exc:
                page.show_error(exc, "Pick two finished scans of the same area.")
            else:
                if report["synthetic"]:
                    st.warning(
                        f"**{scan_results.SYNTHETIC_LABEL}**: at least one of the scans read a generated mosaic."
                    )
                st.markdown(
                    f"**{report['year_a']} → {report['year_b']}**: new {report['new_ha']:,.1f} ha, gone "
                    f"{report['gone_ha']:,.1f} ha, persistent {report['persistent_ha']:,.1f} ha; unknown (masked "
                    f"in one year) {report['unknown_ha']:,.1f} ha."
                )
                cmap = _scan_map(
                    ("change", a, b, by_name[a].version, by_name[b].version),
                    gdf,
                    s_a.aoi,
                    None,
                    True,
                    bool(report["synthetic"]),
                )
                st_folium(
                    copy.deepcopy(cmap), key="change_map", height=480, use_container_width=True, returned_objects=[]
                )
                st.dataframe(scan_results.change_table(report), hide_index=True, width="stretch")
                st.download_button(
                    "Download the change (GeoJSON)",
                    scan_results.change_geojson(report),
                    file_name=f"{a}__{b}-change.geojson",
                    mime="application/geo+json",
                )
