"""Train: the study's experiment toggles -> one ExperimentConfig -> a background training process
(``asgm.model.run_jobs.launch``), with live progress, cancel, and errors shown; "train with my labels" retrains a
run's recipe with the reviewed labels (``asgm.review.retrain.launch``). The Streamlit script thread never
trains: the run lives on in its own process across reruns, page switches and browser reloads."""

from __future__ import annotations

import streamlit as st

from asgm.app import jobs as aj
from asgm.app import loaders, page
from asgm.config import OSM_LAYERS, RGB_BANDS, S2_BANDS, ExperimentConfig
from asgm.data.store import list_stores
from asgm.errors import AsgmError
from asgm.model import run_jobs
from asgm.review import retrain

page.page_setup("Train")
st.title("Train")

stores = list_stores()
if not stores:
    page.no_store_warning(" to train on")
    st.stop()

can_launch = aj.passcode_gate()  # a public deployment: training needs the owner passcode

# -- the experiment ------------------------------------------------------------------------------------
with st.form("experiment"):
    st.markdown("**Experiment** (the study's Table 1 toggles)")
    c1, c2, c3 = st.columns(3)
    store_name = c1.selectbox(
        "Dataset (patch store)",
        stores,
        index=stores.index("demo") if "demo" in stores else 0,
        format_func=loaders.store_label,
    )
    store_meta = None
    try:
        store_meta = loaders.open_store(store_name).meta
    except AsgmError as exc:
        page.show_error(exc, "Rebuild the store or pick another one.")
    avail = tuple(store_meta.bands) if store_meta else RGB_BANDS
    band_choice = c1.radio(
        "Bands",
        ["RGB (B4, B3, B2)", "all 12 (study)"],
        horizontal=True,
        disabled=set(S2_BANDS) - set(avail) != set(),
        help="12 bands need a store built from Earth Engine or STAC; the demo pack is RGB.",
    )
    use_osm = c2.toggle("OSM channels", value=False, help="The study's 'OSM: Yes' — needs OSM masks in the store.")
    osm_layers = c2.multiselect("OSM layers", list(OSM_LAYERS), default=list(OSM_LAYERS))
    patch_size = c2.radio("Patch size (px)", [48, 256], horizontal=True)
    negatives = c3.radio("Negatives", ["curated", "random"], horizontal=True)
    class_weight = c3.toggle("Class weighting", value=False)
    e1, e2, e3 = st.columns(3)
    epochs = e1.number_input("Epochs", min_value=1, max_value=500, value=20)
    seed = e2.number_input("Seed", min_value=0, max_value=2**31 - 1, value=7)
    name = e3.text_input("Name (optional)", value="")
    submitted = st.form_submit_button("Train", type="primary", disabled=not can_launch)

if submitted:
    config, problems = None, []
    if use_osm and not osm_layers:
        problems.append("OSM channels are on but no layer is selected")
    else:
        try:
            config = ExperimentConfig(
                name=name,
                store=store_name,
                bands=S2_BANDS if band_choice.startswith("all") else RGB_BANDS,
                osm_layers=tuple(osm_layers) if use_osm else (),
                patch_size=patch_size,
                negatives=negatives,
                class_weight=class_weight,
                epochs=int(epochs),
                seed=int(seed),
            )
        except ValueError as exc:  # pydantic's ValidationError: a setting out of range
            problems.append(f"invalid experiment ({exc})")
    if config is not None:
        problems += loaders.store_problems(config, store_name)
    if problems:
        st.error("Cannot train: " + "; ".join(problems) + ".")
    else:
        try:
            new_id = run_jobs.launch(config, max_active=aj.max_active_jobs())
            st.session_state["train_run"] = new_id
            st.success(
                f"Training started as run **{new_id}** in the background. You can leave this page; it keeps going."
            )
        except AsgmError as exc:  # RunError: an identical run is already queued or running
            page.show_error(exc, "Wait for the identical run to finish (or cancel it below), or change the experiment.")

# -- train with my labels ------------------------------------------------------------------------------
st.subheader("Train with my labels")
parents = loaders.completed_runs()
if not parents:
    st.info("No completed run to start from yet.")
else:
    parent_ids = [r.run_id for r in parents]
    chosen = page.selected_run_id(sidebar=False)
    p1, p2 = st.columns([3, 1])
    parent_id = p1.selectbox(
        "Start from run (its recipe and training data)",
        parent_ids,
        key="relabel_parent",
        index=parent_ids.index(chosen) if chosen in parent_ids else 0,
    )
    parent_run = next(r for r in parents if r.run_id == parent_id)
    relabel_epochs = p2.number_input(
        "Epochs",
        min_value=1,
        max_value=500,
        key="relabel_epochs",
        value=int(parent_run.config.epochs) if parent_run.config else 20,
    )
    fetch_choices = {
        "off: leave them out": None,
        "Earth Search (STAC, no account)": "stac",
        "Earth Engine (needs credentials)": "gee",
    }
    fetch_choice = st.selectbox(
        "Imagery for reviewed Amazon Mining Watch detections (none on this machine)",
        list(fetch_choices),
        key="relabel_fetch",
        help="Fetched when the job runs, as `asgm patches fetch` does (the store's patch size, the detection's "
        "year); a detection whose fetch fails (no scene, clouds, offline, no credentials) is skipped and counted.",
    )
    fetch = fetch_choices[fetch_choice]
    try:
        usable = retrain.reviewed_items(retrain.parent_config(parent_id), fetch=fetch)
        st.caption(
            f"{len(usable.items)} reviewed item(s) can join the training data of store "
            f"`{parent_run.config.store if parent_run.config else '?'}`"
            + (f", {len(usable.pending)} more once their imagery is fetched from {fetch}" if usable.pending else "")
            + (
                " (left out: " + ", ".join(f"{v} {k}" for k, v in usable.skipped.items()) + ")"
                if usable.skipped
                else ""
            )
            + f". The newest {100 * retrain.HOLDOUT_FRACTION:.0f} % are held out to measure them; the run's test "
            "split stays unchanged; the new run becomes the default only if you name it in models/DEFAULT."
        )
    except AsgmError as exc:
        usable = None
        page.show_error(exc, "Pick another run to start from.")
    ready = usable is not None and bool(usable.items or usable.pending)
    if st.button("Train with my labels", key="relabel_go", disabled=not can_launch or not ready):
        try:
            new_id = retrain.launch(parent_id, epochs=int(relabel_epochs), max_active=aj.max_active_jobs(), fetch=fetch)
            st.session_state["train_run"] = new_id
            st.success(
                f"Training with your labels started as run **{new_id}** in the background; its before / "
                "after shows on **Compare** when it is done."
            )
        except AsgmError as exc:
            page.show_error(exc, "Mark more items mining / not mining, or wait for the identical run to finish.")

# -- runs and their progress ---------------------------------------------------------------------------
STALE_S = 180  # no progress update for this long while 'running' -> the process probably died


@st.fragment(run_every=2)
def _progress() -> None:
    """Polls the run store (files written by the training process); only this fragment reruns."""
    all_runs = loaders.list_runs_safe()
    active = [r for r in all_runs if r.status in ("queued", "running") and r.config is not None]
    st.subheader("Training now" if active else "No training running")
    for r in active:
        p = r.progress or {}
        epoch, total = int(p.get("epoch") or 0), int(p.get("epochs") or r.config.epochs)
        bits = [f"epoch {epoch}/{total}"]
        if isinstance(p.get("loss"), (int, float)):
            bits.append(f"loss {p['loss']:.4f}")
        if isinstance(p.get("val_pr_auc"), (int, float)):
            bits.append(f"validation PR-AUC {p['val_pr_auc']:.3f}")
        if isinstance(p.get("eta_s"), (int, float)):
            bits.append(f"ETA {p['eta_s']:.0f} s")
        c1, c2 = st.columns([5, 1])
        c1.progress(
            min(1.0, epoch / max(1, total)),
            text=f"**{r.run_id}** ({r.config.name or r.config.store}, {r.status}): " + " · ".join(bits),
        )
        if c2.button("Cancel", key=f"cancel_{r.run_id}"):
            try:
                run_jobs.request_cancel(r.run_id)
                st.toast(f"Cancel requested for {r.run_id}")
            except AsgmError as exc:
                page.show_error(
                    exc, "Reload the page; if the run still shows as running, delete its folder under models/."
                )
        age = page.seconds_since(p.get("updated"))
        if age is not None and age > STALE_S:
            st.warning(
                f"{r.run_id} has not reported progress for {age:.0f} s: its process may be stuck. "
                "Cancel it and launch it again."
            )
    recent = all_runs[:12]
    if recent:
        st.subheader("Recent runs")
        rows = []
        for r in recent:
            m = r.metrics or {}
            if r.config is None:  # a corrupt run folder: still listed, with its error below
                rows.append({"run": r.run_id, "status": r.status, "created": str(r.created)})
                continue
            rows.append(
                {
                    "run": r.run_id,
                    "name": r.config.name,
                    "status": r.status,
                    "store": r.config.store,
                    "OSM": ",".join(r.config.osm_layers) or "no",
                    "patch": r.config.patch_size,
                    "negatives": r.config.negatives,
                    "class weight": r.config.class_weight,
                    "epochs": r.config.epochs,
                    "F1": m.get("f1"),
                    "PR-AUC": m.get("pr_auc"),
                    "created": str(r.created),
                }
            )
        st.dataframe(rows, hide_index=True, width="stretch")
        for r in recent:
            if r.status in ("failed", "corrupt"):
                st.error(
                    f"Run **{r.run_id}** {'is corrupt' if r.status == 'corrupt' else 'failed'}: {r.error or 'no error message recorded'}\n\n"  # noqa: E501
                    "**What to do:** fix the cause shown and launch it again "
                    "(or delete the run folder under models/)."
                )


_progress()
