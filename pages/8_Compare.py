"""Compare: completed runs next to the study's published Table 1, with CIs, PR curves, confusion matrices,
the OSM ablation (study's Fig. 3), runs trained with reviewed labels before / after, and downloads."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from asgm.app import loaders, page
from asgm.errors import AsgmError
from asgm.maps import figures
from asgm.review import report
from asgm.training.experiments import TABLE1_PUBLISHED

page.page_setup("Compare")
st.title("Compare runs")

all_runs = loaders.list_runs_safe()
done = [r for r in all_runs if r.status == "completed" and r.metrics and r.config is not None]
ours = figures.runs_table(done) if done else pd.DataFrame(columns=["run", "source", "F1"])
if not ours.empty:  # synthetic stores are labelled as such wherever they appear
    ours["store"] = ours["store"].map(loaders.store_label)
pub = figures.published_table(list(TABLE1_PUBLISHED))
show_pub = st.toggle("Show the study's published Table 1 as reference rows", value=True)

if not done:
    st.info("No completed run yet. Train one on the **Train** page (the default model trains on first start).")
table = pd.concat([ours, pub], ignore_index=True) if show_pub else ours

cols = [
    "run",
    "name",
    "source",
    "OSM",
    "OSM layers",
    "Patch",
    "Neg Type",
    "Class Weight",
    "F1 [95% CI]",
    "PR-AUC",
    "FP",
    "FN",
    "Precision",
    "Recall",
    "store",
    "bands",
    "epochs",
    "seed",
    "threshold",
]
cols = [c for c in cols if c in table.columns]
if not table.empty:
    st.dataframe(
        table[cols],
        hide_index=True,
        width="stretch",
        column_config={
            k: st.column_config.NumberColumn(format="%.3f") for k in ("PR-AUC", "Precision", "Recall", "threshold")
        },
    )
    st.caption(
        "Click a column header to sort. F1 [95% CI]: bootstrap over test patches. "
        "Published rows: Dissing & Kalo, Table 1 (their 2021 L1C imagery; not the demo pack)."
    )
    st.download_button("Download table (CSV)", table[cols].to_csv(index=False).encode(), "asgm_runs.csv", "text/csv")

    st.subheader("F1 with 95 % confidence intervals")
    st.plotly_chart(figures.f1_ci_figure(table), width="stretch")

reviewed = [(r, rep) for r in done if (rep := report.read_report(r.run_id))]
if reviewed:
    st.subheader("Trained with reviewed labels: before / after")
    for r, rep in reviewed:
        c = rep["counts"]
        st.markdown(
            f"**{r.run_id}** from **{rep['parent_run']}** on store `{rep['store']}`: {c['reviewed']} reviewed "
            f"item(s), {c['trained']} trained on, {c['held_out'] + c['held_out_by_distance']} held out, "
            f"{c['dropped_near_test']} dropped near test patches, {c['on_test_patches']} on test patches."
        )
        st.dataframe(
            report.report_table(rep),
            hide_index=True,
            width="stretch",
            column_config={
                k: st.column_config.NumberColumn(format="%.3f")
                for k in ("F1", "PR-AUC", "precision", "recall", "threshold")
            },
        )
        st.caption(f"Split rule: {c['rule']}. {rep['note'].capitalize()}.")

if done:
    ids = [r.run_id for r in done]
    pick = st.multiselect("Runs for curves and confusion matrices", ids, default=ids[:4], format_func=lambda i: i)
    by_id = {r.run_id: r for r in done}
    st.subheader("Precision-recall curves (test set)")
    st.plotly_chart(
        figures.pr_curves_figure({i: (by_id[i].metrics or {}).get("pr_curve") or {} for i in pick}), width="stretch"
    )
    st.subheader("Reliability (test set): does 'probability of mining' mean what it says?")
    curves = {i: (by_id[i].metrics or {}).get("reliability") or {} for i in pick}
    if any(curves.values()):
        st.plotly_chart(figures.reliability_figure(curves), width="stretch")
        st.caption(
            "Points on the dotted diagonal are calibrated: of the chips given ~0.8, ~80 % are mining. "
            "ECE (expected calibration error) per run: "
            + ", ".join(f"{i} {(by_id[i].metrics or {}).get('ece', float('nan')):.3f}" for i in pick if curves[i])
            + "."
        )
    else:
        st.caption(
            "The picked runs record no reliability curve (runs trained before calibration was measured); "
            "re-score one with `asgm evaluate RUN_ID`."
        )
    st.subheader("Confusion matrices (test set, at each run's threshold)")
    cm_cols = st.columns(max(1, min(4, len(pick))))
    for k, i in enumerate(pick):
        cm_cols[k % len(cm_cols)].plotly_chart(
            figures.confusion_figure(by_id[i].metrics or {}, title=i), width="stretch", key=f"cm_{i}"
        )

    st.subheader("OSM ablation (relative to the full OSM model, as the study's Fig. 3)")
    abl = loaders.ablation_results(ids)
    if abl.empty:  # no ablation.json: pair "all layers but one" runs with their full-OSM run instead
        abl = figures.ablation_table(ours, {r.run_id: r.config for r in done}).assign(mode="retrained")
    if abl.empty:
        st.info(
            "No ablation results yet: train a model with all five OSM layers, and one per layer left out with "
            "otherwise the same settings (CLI: `asgm ablation RUN_ID`)."
        )
    else:
        for (full, mode), part in abl.groupby(["full_run", "mode"]):
            st.markdown(
                f"Full model **{full}**, layers {'retrained without' if mode == 'retrained' else 'zeroed at test time'}:"  # noqa: E501
            )
            st.plotly_chart(figures.ablation_figure(part), width="stretch", key=f"abl_{full}_{mode}")

    st.subheader("Download a run's test predictions")
    which = st.selectbox("Run", ids)
    try:
        pred = loaders.predictions(which)
        st.download_button(
            "Download test predictions (GeoJSON)",
            figures.predictions_geojson(pred).encode(),
            f"{which}_test_predictions.geojson",
            "application/geo+json",
        )
    except AsgmError as exc:
        page.show_error(exc, "This run's predictions file is missing or damaged; retrain the run.")

failed = [r for r in all_runs if r.status in ("failed", "corrupt")]
if failed:
    with st.expander(f"{len(failed)} failed run(s)"):
        for r in failed:
            st.markdown(f"- **{r.run_id}**: {r.error or 'no error recorded'}")
