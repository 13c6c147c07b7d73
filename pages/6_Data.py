"""Data: get real data from inside the dashboard, as background jobs (``asgm.jobs.runner``): Sentinel-2 patches for a
point set (STAC or Earth Engine), OSM features fetched and rasterized onto a store, and the jobs themselves.

Each button starts the same ``asgm`` command a user would type (shown under the button); the page only
collects the options and shows progress. On a public deployment the owner passcode unlocks the buttons."""

from __future__ import annotations

from datetime import date

import streamlit as st

from asgm.app import jobs as aj
from asgm.app import loaders, page
from asgm.config import OSM_LAYERS
from asgm.data.points import EARTH_GENOME_SETS, STUDY_SETS, PointsError, placement_note
from asgm.data.store import list_stores
from asgm.errors import AsgmError

page.page_setup("Data")
st.title("Data")
st.caption(
    "Fetch real Sentinel-2 patches and OpenStreetMap context in the background. Jobs keep running when you "
    "leave or reload the page."
)
can_launch = aj.passcode_gate()
cap = aj.store_cap()
stores = list_stores()


def _store_meta(name: str):
    try:
        return loaders.open_store(name).meta
    except AsgmError:  # a broken store is reported where it is picked
        return None


def _patches_in(name: str) -> int | None:
    """Patches already in store ``name``: 0 for a new store, None for one that exists but cannot be read."""
    if name not in stores:
        return 0
    try:
        return len(loaders.store_index(name))
    except AsgmError:
        return None


def _point_count(point_sets: list[str], upload_points) -> int | None:
    """How many points a fetch asks for (None when the point files cannot be read)."""
    if upload_points is not None:
        return len(upload_points)
    try:
        from asgm.data.points import load_points

        return len(load_points(point_sets)) if point_sets else None
    except AsgmError:
        return None


# -- Sentinel-2 patches -----------------------------------------------------------------------------------
st.header("Sentinel-2 patches")
kind = st.radio(
    "Points", ["The study's points", "The demo's Earth Genome points", "Upload GeoJSON / CSV"], horizontal=True
)
point_sets: list[str] = []
upload_points = None
if kind == "The study's points":
    point_sets = st.multiselect(
        "Point sets",
        list(STUDY_SETS),
        default=["positives"],
        help="positives: mining; curated and random: the study's two kinds of negatives",
    )
elif kind == "The demo's Earth Genome points":
    point_sets = st.multiselect(
        "Point sets",
        list(EARTH_GENOME_SETS),
        default=list(EARTH_GENOME_SETS),
        help="the points of the demo pack's chips, for 12-band imagery of the same places",
    )
else:
    up = st.file_uploader(
        "Points file",
        type=["geojson", "json", "csv"],
        help="GeoJSON FeatureCollection of Points, or CSV with lon, lat (WGS 84) and a label column "
        "(1 = mining, 0 = not mining)",
    )
    c1, c2 = st.columns(2)
    label_column = c1.text_input("Label column", value="label")
    one_label = c2.selectbox(
        "If the file has no label column, label every point as",
        ["(ask me: the file must have labels)", "1 (mining)", "0 (not mining)"],
    )
    if up is not None:
        label = None if one_label.startswith("(") else int(one_label[0])
        try:
            upload_points = aj.validate_upload(up.name, up.getvalue(), label_column, label)
            counts = upload_points["label"].value_counts().to_dict()
            st.success(
                f"{up.name}: {len(upload_points)} points ({counts.get(1, 0)} mining, {counts.get(0, 0)} not "
                f"mining), sample ids {upload_points.sample_id.iloc[0]}…"
            )
            extent, where = placement_note(upload_points)
            st.caption(extent)
            if where:
                st.warning(where)
        except PointsError as exc:
            st.error(f"{exc}. Nothing was saved; fix the file and upload it again.")

src_col, size_col = st.columns(2)
ee_ok, ee_text = aj.earth_engine_account()
source = src_col.radio(
    "Source",
    ["stac", "gee"],
    horizontal=True,
    format_func={"stac": "STAC (Earth Search, Level-2A, no account)", "gee": "Earth Engine (the study's Level-1C)"}.get,
    disabled=not ee_ok,
    help="Earth Engine is enabled when credentials are configured.",
)
src_col.caption(ee_text)
size = size_col.radio("Patch size (px)", [48, 256], horizontal=True)

target = st.radio("Into", ["a new store", "an existing store"], horizontal=True)
fetchable = [s for s in stores if (m := _store_meta(s)) is not None and m.source in ("stac", "gee")]
if target == "an existing store" and fetchable:
    store_name = st.selectbox("Store", fetchable, format_func=loaders.store_label)
else:
    if target == "an existing store":
        st.info("No store fetched from STAC or Earth Engine yet: make a new one.")
    store_name = st.text_input("New store name", value=f"{source}-{size}")
meta = _store_meta(store_name) if store_name in stores else None
d0 = date.fromisoformat(meta.date_start) if meta and meta.date_start else date(2021, 1, 1)
d1 = date.fromisoformat(meta.date_end) if meta and meta.date_end else date(2022, 1, 1)
c1, c2, c3 = st.columns(3)
start = c1.date_input("First date", value=d0, min_value=date(2015, 6, 23))
end = c2.date_input("End date (exclusive)", value=d1, min_value=date(2015, 6, 24))
limit = c3.number_input("Only the first N points (0 = all)", min_value=0, value=0, step=10)

if st.button("Fetch patches", type="primary", disabled=not can_launch):
    problems = []
    if not point_sets and upload_points is None:
        problems.append("choose a point set or upload a valid points file")
    if meta is not None and meta.size != size:
        problems.append(f"store `{store_name}` holds {meta.size}-px patches; pick {meta.size} px or another store")
    if cap is not None:
        have = _patches_in(store_name)
        n_points = _point_count(point_sets, upload_points)
        wanted = min(n for n in (n_points, int(limit) or None) if n is not None) if (n_points or limit) else None
        if have is None:
            problems.append(
                f"store `{store_name}` cannot be read (see Home for the reason); pick another store or "
                "repair it with `asgm patches check`"
            )
        elif wanted is None or have + wanted > cap:
            problems.append(
                f"this deployment caps a store at {cap} patches; `{store_name}` has {have} and this fetch "
                f"could add {wanted if wanted is not None else 'an unknown number'} — set 'Only the first "
                f"N points' to at most {max(0, cap - have)}"
            )
    if problems:
        st.error("Cannot fetch: " + "; ".join(problems) + ".")
    else:
        try:
            aj.check_fetch_request(store_name, start.isoformat(), end.isoformat())  # before saving the upload
            points_file = aj.save_upload(upload_points, up.name) if upload_points is not None else None
            command = aj.fetch_patches_command(
                source=source,
                store=store_name,
                size=int(size),
                start=start.isoformat(),
                end=end.isoformat(),
                point_sets=point_sets,
                points_file=points_file,
                limit=int(limit) or None,
            )
            label = ", ".join(point_sets) if point_sets else points_file.stem
            aj.launch(command, kind="patches", title=f"fetch {label} patches into {store_name} ({source}, {size} px)")
        except AsgmError as exc:  # PointsError for a clashing upload name; the job runner's own errors
            page.show_error(exc)

# -- OpenStreetMap ---------------------------------------------------------------------------------------
st.header("OpenStreetMap context")
real = [s for s in stores if (m := _store_meta(s)) is not None and not m.synthetic]
if not real:
    st.info("No store with real imagery yet: fetch patches above (or build the demo pack on **Home**).")
else:
    osm_store = st.selectbox(
        "Store",
        real,
        key="osm_store",
        format_func=loaders.store_label,
        index=real.index("demo") if "demo" in real else 0,
    )
    m = _store_meta(osm_store)
    default_day = date.fromisoformat(m.date_end) if m and m.date_end else date.today()
    c1, c2 = st.columns(2)
    current = c1.toggle("Today's OSM instead of a dated snapshot", value=False)
    snap = c1.date_input(
        "Snapshot date",
        value=default_day,
        disabled=current,
        help="Default: the store's imagery end date, so the map matches what the satellite saw.",
    )
    keys = c2.multiselect("OSM keys (layers)", list(OSM_LAYERS), default=list(OSM_LAYERS))
    c3, c4, c5 = st.columns(3)
    buffer_m = c3.number_input("Line/point half-width (m)", min_value=0.0, max_value=50.0, value=5.0, step=1.0)
    all_touched = c4.toggle("Burn every touched pixel", value=True)
    exclude = [
        e.strip()
        for e in c5.text_input(
            "Exclude tag values",
            value="",
            help="KEY=VALUE[,VALUE], e.g. landuse=quarry; separate several keys with ';'",
        ).split(";")
        if e.strip()
    ]
    include = [
        e.strip()
        for e in c5.text_input(
            "Keep only tag values",
            value="",
            help="KEY=VALUE[,VALUE], e.g. highway=primary,secondary; separate several keys with ';'",
        ).split(";")
        if e.strip()
    ]
    if st.button("Fetch OSM and rasterize", type="primary", disabled=not can_launch):
        if not keys:
            st.error("Choose at least one OSM key.")
        else:
            fetch, raster = aj.osm_commands(
                store=osm_store,
                date="current" if current else snap.isoformat(),
                keys=keys,
                buffer_m=float(buffer_m),
                all_touched=all_touched,
                exclude=exclude,
                include=include,
            )
            aj.launch(
                fetch,
                then=[raster],
                kind="osm",
                title=f"OSM for {osm_store} ({'current' if current else snap.isoformat()}) + rasterize",
            )
    try:
        info = loaders.open_store(osm_store).osm_info()
    except AsgmError as exc:
        info = None
        page.show_error(exc)
    if info:
        from asgm.osm.coverage import coverage_table

        st.markdown(
            f"**Coverage of `{osm_store}`** (share of the patches of each class with at least one feature; "
            f"snapshot {info.get('snapshot_date') or 'unknown'}, layers {', '.join(info.get('layers', []))})"
        )
        table = coverage_table(loaders.open_store(osm_store), "label")
        wide = table.pivot(index="group", columns="key", values="share").reset_index()
        st.dataframe(
            wide,
            hide_index=True,
            width="stretch",
            column_config={k: st.column_config.NumberColumn(format="percent") for k in wide.columns[1:]},
        )
    else:
        st.caption(f"`{osm_store}` has no OSM masks yet.")

# -- jobs -----------------------------------------------------------------------------------------------------
st.header("Jobs")
aj.jobs_panel()
