"""The Home page's panels: what the tool does, getting started (first-start preparation), the data on this
machine, the active model, credits. Every fact shown comes from ``asgm`` (store summaries, registry status,
the run store)."""

from __future__ import annotations

import streamlit as st

from asgm.app import follow, loaders, page, prepare
from asgm.errors import AsgmError
from asgm.model.runs import get_run
from asgm.training import first_start

#: Columns of Home's store table (an unreadable store's row fills only some).
STORE_COLUMNS = (
    "store",
    "kind",
    "patches",
    "positives",
    "negatives",
    "sets",
    "bands",
    "size (px)",
    "OSM masks",
    "note",
)


def intro() -> None:
    """Title and one paragraph of what the tool does."""
    st.title("ASGM Explorer")
    st.markdown(
        "Find **artisanal and small-scale gold mining** (ASGM) in Sentinel-2 imagery of the Amazon. Click points "
        "on the **Map** to classify them, inspect patches and toggle their OpenStreetMap layers in the **Patch "
        "viewer**, scan an area on **Region scan**, fetch real data on **Data**, and run and compare the "
        "experiments of *Dissing & Kalo*'s study on **Train** and **Compare**."
    )


@st.fragment(run_every=3)
def _preparation_panel() -> None:
    """Live state of the background preparation and of the default run's training."""
    prep = prepare.prepare_state()
    missing = prepare.needs_prepare()
    running = [r for r in loaders.list_runs_safe() if r.status in ("running", "queued") and r.config is not None]
    if prep.get("state") == "running":
        st.info(f"Preparing the demo in the background: {prep.get('message', '')}…")
    elif prep.get("state") == "failed" and missing:
        st.error(f"Preparing the demo failed: {prep.get('message', '')}")
    for r in running:
        p = r.progress or {}
        epoch, epochs = p.get("epoch") or 0, p.get("epochs") or r.config.epochs
        st.progress(
            min(1.0, epoch / max(1, epochs)),
            text=f"Training {r.run_id} ({r.config.name or r.config.store}): epoch {epoch}/{epochs}"
            + (f", loss {p['loss']:.3f}" if isinstance(p.get("loss"), (int, float)) else "")
            + (f", ETA {p['eta_s']:.0f} s" if isinstance(p.get("eta_s"), (int, float)) else ""),
        )
    # The rest of the page was drawn by the last full run: redraw it all when the situation changed
    # (demo built, a job started or finished).
    follow.rerun_if_changed()


def getting_started() -> None:
    """The first-start panel: what is missing, the *Prepare the demo* button, the background preparation."""
    prep = prepare.prepare_state()
    missing = prepare.needs_prepare()
    follow.remember()
    if missing or prep.get("state") == "running":
        st.subheader("Getting started")
        if missing:
            st.warning("Missing for click-to-classify: " + ", ".join(missing) + ".")
        if st.button(
            "Prepare the demo",
            type="primary",
            disabled=prep.get("state") == "running",
            help="Builds the demo patch store (real Sentinel-2 chips) if missing and trains a small default "
            "model (48 px, RGB, a few epochs) in the background.",
        ):
            prepare.start_prepare()
            st.rerun()
        _preparation_panel()
    elif any(r.status in ("running", "queued") for r in loaders.list_runs_safe()):
        _preparation_panel()


def data_on_this_machine() -> list[dict]:
    """Counts of what is present, the store table, the demo's OSM state, the upstream files; returns the
    store summaries."""
    st.subheader("Data on this machine")
    stores = loaders.store_summaries()
    runs = loaders.list_runs_safe()
    reg = loaders.registry_status()
    study_keys = {"study_positives", "study_curated_negatives", "study_random_negatives"}
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.metric("Demo pack", "present" if any(s.get("name") == "demo" for s in stores) else "missing")
    c2.metric("Study point files", f"{sum(r['present'] for r in reg if r['key'] in study_keys)}/{len(study_keys)}")
    c3.metric("Patch stores", len(stores))
    c4.metric("OSM cache files", len(loaders.osm_caches()))
    c5.metric(
        "Runs",
        len(runs),
        help=", ".join(
            f"{s}: {sum(r.status == s for r in runs)}"
            for s in ("completed", "running", "failed", "cancelled")
            if any(r.status == s for r in runs)
        )
        or None,
    )

    if stores:
        rows = []
        for s in stores:
            if "error" in s:
                rows.append({"store": s["name"], "kind": "error", "patches": None, "note": s["error"]})
                continue
            kind = "synthetic" if s.get("synthetic") else s.get("source", "")
            rows.append(
                {
                    "store": s["name"],
                    "kind": kind,
                    "patches": s["patches"],
                    "positives": s["by_label"].get("1", 0),
                    "negatives": s["by_label"].get("0", 0),
                    "sets": ", ".join(f"{k} {v}" for k, v in s["by_set"].items()),
                    "bands": ",".join(s["bands"]),
                    "size (px)": s["size"],
                    "OSM masks": "yes"
                    if s["osm"]
                    else "no — `asgm osm fetch` + `asgm osm rasterize --store " + s["name"] + "`",
                    "note": "SYNTHETIC data (not real imagery)" if s.get("synthetic") else s.get("product_level", ""),
                }
            )
        st.markdown(page.markdown_table(rows, columns=STORE_COLUMNS))
    elif broken := loaders.stores_without_meta():  # not "no store": one whose store.json is gone
        for message in broken:
            st.warning(f"No readable patch store: {message}.")
    else:
        st.info("No patch store yet. Click **Prepare the demo** above, or run `asgm demo build`.")

    demo_summary = next((s for s in stores if s.get("name") == "demo" and "error" not in s), None)
    if demo_summary is not None and not demo_summary.get("osm"):
        note = first_start.demo_osm_note()
        if note and not note.get("ok"):
            st.info(note.get("message", ""))
        elif note:
            st.caption(f"OSM for the demo store: {note.get('message', '')} (see **Data** → Jobs).")

    with st.expander("Upstream files (study points, Earth Genome reference layers)"):
        st.markdown(
            page.markdown_table(
                [{k: r[k] for k in ("key", "present", "verified", "description", "licence")} for r in reg]
            )
        )
        if not all(r["present"] for r in reg):
            st.caption(
                "Missing files are downloaded on first use; offline, set `ASGM_DATA_MIRROR` to a local copy "
                "(or run `asgm data pull` where the network is available)."
            )

    return stores


def active_model(run_id: str | None, stores: list[dict]) -> None:
    """The selected run: its name, inputs and test scores; a warning when it learned from synthetic data."""
    st.subheader("Active model")
    if run_id:
        try:
            info = get_run(run_id)
            m, cfg = info.metrics or {}, info.config
            if cfg is None:
                st.warning(f"Run {run_id} has no readable config.json: pick another run in the sidebar.")
                return
            st.markdown(
                f"**{page.run_label(info)}** — store `{cfg.store}`, bands {', '.join(cfg.bands)}, "
                f"OSM layers: {', '.join(cfg.osm_layers) or 'none'}."
            )
            cols = st.columns(4)
            for col, (k, label) in zip(
                cols,
                (("f1", "F1"), ("pr_auc", "PR-AUC"), ("precision", "Precision"), ("recall", "Recall")),
                strict=True,
            ):
                col.metric(label, f"{m[k]:.3f}" if isinstance(m.get(k), (int, float)) else "–")
            store_kind = next((s for s in stores if s.get("name") == cfg.store), {})
            if store_kind.get("synthetic"):
                st.warning("This model was trained on **synthetic** data; its scores say nothing about real mining.")
        except AsgmError as exc:
            page.show_error(exc, "Pick another run in the sidebar or delete the broken run folder under models/.")
    else:
        st.caption("No trained model yet.")


def credits() -> None:
    """Credits and licences of the code and every data source."""
    st.subheader("Credits and licences")
    st.markdown(page.credits_markdown())
