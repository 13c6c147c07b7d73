"""Places: how much mining, where, since when. A boundary set (AMW's indigenous territories, the countries, the
basin, or an uploaded file with a name column) x detections (AMW's yearly layers, or the project's scans) ->
a ranked table of new and cumulative area per place over the chosen periods, a chart per place, a choropleth
whose click selects a place, and downloads. Every number comes from ``asgm.places``."""

from __future__ import annotations

import copy
import re

import streamlit as st
from streamlit_folium import st_folium  # imported at script run so tests can monkeypatch it

from asgm.app import page
from asgm.app import places as ap
from asgm.errors import AsgmError
from asgm.maps import figures
from asgm.places import boundaries as B
from asgm.places import detections as D
from asgm.places import export
from asgm.places.vectors import MAX_FILE_BYTES

page.page_setup("Places")
st.title("Places")
st.caption(
    "How much gold mining lies inside each indigenous territory, country or area of your own, and how fast "
    "it grows: each detection counts with the share of its polygon inside the place (areas in an equal-area "
    "projection), the rule of Amazon Mining Watch's own tables."
)

# -- inputs ---------------------------------------------------------------------------------------------------
c1, c2 = st.columns(2)
choice = c1.radio("Places", [*ap.BOUNDARY_SETS, ap.UPLOAD], key="places_set")
scans = ap.scan_source()
det_choices: dict[str, D.DetectionSource | None] = {
    "Amazon Mining Watch yearly detections (2018–2025 Q3)": D.DetectionSource("amw")
}
if scans is not None:
    det_choices[scans[0]] = scans[1]
det_choices[ap.DETECTIONS_UPLOAD] = None
det_label = c2.radio("Detections", list(det_choices), key="places_detections")
dsrc = det_choices[det_label]
if dsrc is None:  # the user's own detections file, read by the same core reader as `asgm stats --detections FILE`
    det_up = st.file_uploader(
        f"Detections file: GeoJSON, GeoPackage, zipped Shapefile or KML of polygons (up to "
        f"{MAX_FILE_BYTES // 2**20} MB; larger files are refused)",
        type=["geojson", "json", "gpkg", "zip", "kml"],
        key="places_det_upload",
        help="Optional columns: 'Mined area (ha)' (or mined_ha) for the mined area, and 'period' or 'year'. "
        "Without an area column the table counts the polygons' detected footprint.",
    )
    if det_up is None:
        st.info(
            "Upload a polygon file of detections (your own mapping, another model's output, …) to count them in "
            "each place."
        )
        st.stop()
    dsrc = D.DetectionSource("file", upload=(det_up.name, det_up.getvalue()))

bsrc: B.BoundarySource | None = None
if choice == ap.UPLOAD:
    up = st.file_uploader(
        f"Boundary file: GeoJSON, GeoPackage, zipped Shapefile or KML of polygons (up to "
        f"{MAX_FILE_BYTES // 2**20} MB; larger files are refused)",
        type=["geojson", "json", "gpkg", "zip", "kml"],
        key="places_upload",
    )
    if up is None:
        st.info(
            "Upload a polygon file (parks, municipalities, concessions, …) to count the mining inside each "
            "of its polygons."
        )
    else:
        try:
            columns = ap.upload_columns(up.name, up.getvalue())
            name_col = st.selectbox("Name column", columns or ["(none: places are numbered)"], key="places_name_col")
            bsrc = B.BoundarySource("file", upload=(up.name, up.getvalue()), name_column=name_col if columns else None)
        except AsgmError as exc:
            page.show_error(exc, "Fix the file and upload it again; nothing was saved.")
else:
    bsrc = B.BoundarySource(ap.BOUNDARY_SETS[choice])

if bsrc is None:
    st.stop()
try:
    result = ap.stats(dsrc, bsrc)
    bnd = ap.boundaries(bsrc.key(), bsrc)
except AsgmError as exc:
    page.show_error(exc, "Pick other inputs or fix the file and upload it again; nothing was saved.")
    st.stop()

if result.synthetic:
    st.warning("**SYNTHETIC imagery** (not a real place): these detections come from a synthetic scan.")
for note in result.notes:
    st.info(note)

periods = result.periods
c1, c2, c3 = st.columns([3, 2, 2])
if len(periods) > 1:
    first, last = c1.select_slider("Periods", options=periods, value=(periods[0], periods[-1]), key="places_periods")
else:
    first = last = periods[0]
    c1.markdown(f"Period: **{first}**")
span = f"{first}..{last}"
measures = {"mined area (AMW's refined)": "mined", "detected footprint": "footprint"}
if not result.has_mined:
    measures = {"detected footprint": "footprint"}
measure_label = c2.radio(
    "Measure",
    list(measures),
    key="places_measure",
    help="Mined area: Amazon Mining Watch's SAM2-refined mined area of each detection. Detected "
    "footprint: the area of the detection polygons (patches of about 23 ha for AMW).",
)
measure = measures[measure_label]
search = c3.text_input("Search a place by name", key="places_search")

totals = result.totals(span)
totals["share_pct"] = totals[f"cumulative_{measure}_pct_of_area"]
shown = totals
if search.strip():
    shown = totals[
        totals["name"].str.contains(re.escape(search.strip()), case=False, na=False)
        | totals["boundary_id"].str.contains(re.escape(search.strip()), case=False, na=False)
    ]
shown = shown.sort_values(f"new_{measure}_ha", ascending=False, kind="stable").reset_index(drop=True)

# -- selection: map click, table row, or the picker -------------------------------------------------------------
ids = shown["boundary_id"].tolist()
names = dict(zip(totals["boundary_id"], totals["name"], strict=True))
if st.session_state.get("places_pick") not in names:
    st.session_state["places_pick"] = ids[0] if ids else totals["boundary_id"].iloc[0]

new_col, cum_col = f"new_{measure}_ha", f"cumulative_{measure}_ha"
st.subheader(
    f"Places ranked by {measure_label} new in {first}–{last}"
    if first != last
    else f"Places ranked by {measure_label} in {first}"
)
st.caption(
    f"{len(shown)} of {len(totals)} places · {result.detections} × {result.boundaries}"
    + (f" · names containing “{search.strip()}”" if search.strip() else "")
)
table = shown[
    [
        "name",
        "boundary_id",
        "country",
        "type",
        "status",
        new_col,
        cum_col,
        "n_detections",
        "boundary_area_ha",
        "share_pct",
    ]
]
picked = st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    height=320,
    on_select="rerun",
    selection_mode="single-row",
    key="places_table",
    column_config={
        new_col: st.column_config.NumberColumn(f"new {first}–{last} (ha)", format="%.1f"),
        cum_col: st.column_config.NumberColumn(f"cumulative up to {last} (ha)", format="%.1f"),
        "n_detections": st.column_config.NumberColumn("detections"),
        "boundary_area_ha": st.column_config.NumberColumn("place area (ha)", format="%.0f"),
        "share_pct": st.column_config.NumberColumn("share of the place (%)", format="%.3f"),
    },
)
rows = list(getattr(getattr(picked, "selection", None), "rows", []) or [])
if rows and ids[rows[0]] != st.session_state.get("_places_table_row"):
    st.session_state["_places_table_row"] = st.session_state["places_pick"] = ids[rows[0]]

left, right = st.columns([3, 2])
with left:
    places = export.with_totals(result, bnd, span, simplify_m=ap.DISPLAY_SIMPLIFY_M)
    short = "mined area" if measure == "mined" else "footprint"
    title = f"New {short} {first}–{last}" if first != last else f"New {short} {first}"
    credit = "Earth Genome, Amazon Mining Watch (CC BY 4.0)" if dsrc.kind == "amw" or bsrc.kind != "file" else ""
    fmap = ap.places_map(
        (bsrc.key(), dsrc.key(), span, measure, st.session_state["places_pick"]),
        places,
        new_col,
        title,
        st.session_state["places_pick"],
        credit,
    )
    out = st_folium(
        copy.deepcopy(fmap),
        key="places_map",
        height=600,
        use_container_width=True,
        returned_objects=["last_object_clicked_tooltip"],
    )
    tip = str((out or {}).get("last_object_clicked_tooltip") or "")
    hit = next((t for t in re.split(r"\s+", tip) if t in names), None)
    if hit and tip != st.session_state.get("_places_map_clicked"):
        st.session_state["_places_map_clicked"] = tip
        if hit != st.session_state["places_pick"]:
            st.session_state["places_pick"] = hit
            st.rerun()
with right:
    options = list(dict.fromkeys([st.session_state["places_pick"], *ids]))
    pick = st.selectbox("Place", options, format_func=lambda b: f"{names[b]} ({b})", key="places_pick")
    rows_place = result.rows(span)
    rows_place = rows_place[rows_place["boundary_id"] == pick]
    row = totals[totals["boundary_id"] == pick].iloc[0]
    st.markdown(
        f"**{row['name']}** — {row['country'] if isinstance(row['country'], str) else ''} "
        f"{'· ' + row['type'] if isinstance(row['type'], str) else ''} "
        f"{'· ' + row['status'] if isinstance(row['status'], str) else ''}"
    )
    m1, m2, m3 = st.columns(3)
    m1.metric("New (ha)", f"{(row[new_col] or 0):,.0f}", help=f"{measure_label} new in {first}–{last}")
    m2.metric("Cumulative (ha)", f"{(row[cum_col] or 0):,.0f}", help=f"{measure_label} up to {last}")
    m3.metric("Share (%)", f"{(row['share_pct'] or 0):.2f}", help=f"cumulative {measure_label} / the place's area")
    st.plotly_chart(
        figures.place_chart(rows_place, str(row["name"]), measure, measure_label), width="stretch", key="places_chart"
    )
    st.caption("The chart's camera button downloads it as PNG.")

# -- downloads and credits ---------------------------------------------------------------------------------------
st.subheader("Downloads")
stem = f"places-{bsrc.kind}-{first}-{last}"
d1, d2, d3 = st.columns(3)
d1.download_button(
    "Table (CSV)", export.table_csv(result.rows(span)), file_name=f"{stem}.csv", mime="text/csv", key="places_csv"
)
full = export.with_totals(result, bnd, span)
d2.download_button(
    "Places with totals (GeoJSON)",
    export.geojson_bytes(full, result),
    file_name=f"{stem}.geojson",
    mime="application/geo+json",
    key="places_geojson",
)
d3.download_button(
    "Places with totals (KML, Google Earth)",
    ap.kml((bsrc.key(), dsrc.key(), span), full, result),
    file_name=f"{stem}.kml",
    mime="application/vnd.google-earth.kml+xml",
    key="places_kml",
)
st.caption(
    "The CSV has one row per place and period: new_mined_ha (AMW's refined mined area, apportioned), "
    "cumulative_mined_ha, new_footprint_ha (detection polygons inside the place), cumulative_footprint_ha, "
    "n_detections, the place's area and the cumulative share of it."
)
st.subheader("Credits")
st.markdown("\n".join(f"- {c}" for c in result.credits))
