"""Run tables and plotly figures of the Compare and Train pages.

Pure functions (run metrics in, tables / figures out), testable without a browser. No streamlit here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from asgm.config import OSM_LAYERS

# -- run tables and figures ----------------------------------------------------------------------
TABLE_COLUMNS = ["F1 [95% CI]", "PR-AUC", "FP", "FN", "Precision", "Recall"]


def _ci_text(value: float | None, ci: Sequence[float] | None) -> str:
    if value is None or pd.isna(value):
        return ""
    if ci and len(ci) == 2 and all(c is not None for c in ci):
        return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"
    return f"{value:.3f}"


def runs_table(runs: Sequence[Any]) -> pd.DataFrame:
    """One row per completed run: the study's Table 1 columns plus the config toggles.

    ``runs`` are ``asgm.model.runs.RunInfo`` objects (anything with run_id, config, status, metrics)."""
    rows = []
    for r in runs:
        m = r.metrics or {}
        c = r.config
        ci = m.get("f1_ci_patch") or m.get("f1_ci_cluster")
        rows.append(
            {
                # the store right after the name, so "(synthetic)" is seen without scrolling
                "run": r.run_id,
                "name": c.name,
                "store": c.store,
                "source": "this project",
                "status": r.status,
                "OSM": "Yes" if c.osm_layers else "No",
                "OSM layers": ",".join(c.osm_layers),
                "Patch": c.patch_size,
                "Neg Type": c.negatives.capitalize(),
                "Class Weight": "Yes" if c.class_weight else "No",
                "bands": ",".join(c.bands),
                "epochs": c.epochs,
                "seed": c.seed,
                "F1": m.get("f1"),
                "F1 lo": ci[0] if ci else None,
                "F1 hi": ci[1] if ci else None,
                "F1 [95% CI]": _ci_text(m.get("f1"), ci),
                "PR-AUC": m.get("pr_auc"),
                "FP": m.get("fp"),
                "FN": m.get("fn"),
                "Precision": m.get("precision"),
                "Recall": m.get("recall"),
                "threshold": m.get("threshold"),
            }
        )
    return pd.DataFrame(rows)


def published_table(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The study's Table 1 rows in the same columns as ``runs_table`` (marked source = 'published')."""
    out = []

    def pick(r: Mapping[str, Any], *keys: str) -> Any:
        return next((r[k] for k in keys if k in r), None)  # tolerate key spellings

    for r in rows:
        get = lambda *keys, r=r: pick(r, *keys)  # noqa: E731
        ci = get("f1_ci", "F1 CI", "f1_ci_patch")
        f1 = get("f1", "F1")
        osm = get("osm", "OSM")
        out.append(
            {
                "run": f"paper Exp {get('exp', 'Exp', 'experiment')}",
                "name": "Dissing & Kalo, Table 1",
                "source": "published",
                "status": "published",
                "OSM": "Yes" if osm in (True, "Yes", "yes") else "No",
                "OSM layers": "",
                "Patch": get("patch", "Patch", "patch_size"),
                "Neg Type": str(get("negatives", "Neg Type", "neg_type") or "").capitalize(),
                "Class Weight": "Yes" if get("class_weight", "Class Weight") in (True, "Yes", "yes") else "No",
                "F1": f1,
                "F1 lo": ci[0] if ci else None,
                "F1 hi": ci[1] if ci else None,
                "F1 [95% CI]": _ci_text(f1, ci),
                "PR-AUC": get("pr_auc", "PR-AUC"),
                "FP": get("fp", "FP"),
                "FN": get("fn", "FN"),
                "Precision": get("precision", "Precision"),
                "Recall": get("recall", "Recall"),
            }
        )
    return pd.DataFrame(out)


def f1_ci_figure(table: pd.DataFrame) -> Any:
    """F1 per run with its 95 % CI as error bars (published rows in grey)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    t = table.dropna(subset=["F1"])
    for source, colour in (("this project", "#d7301f"), ("published", "#7f7f7f")):
        s = t[t["source"] == source]
        if s.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=s["run"],
                y=s["F1"],
                mode="markers",
                name=source,
                marker=dict(size=10, color=colour),
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=(s["F1 hi"] - s["F1"]).fillna(0),
                    arrayminus=(s["F1"] - s["F1 lo"]).fillna(0),
                ),
            )
        )
    fig.update_layout(
        yaxis=dict(title="F1 (95 % CI)", range=[0, 1.05]),
        xaxis_title="run",
        height=360,
        margin=dict(l=40, r=10, t=30, b=80),
    )
    return fig


def pr_curves_figure(curves: Mapping[str, Mapping[str, Sequence[float]]]) -> Any:
    """Precision-recall curves overlaid, one per run (``{run_id: {"precision": [...], "recall": [...]}}``)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for run_id, c in curves.items():
        if c and c.get("precision") and c.get("recall"):
            fig.add_trace(go.Scatter(x=list(c["recall"]), y=list(c["precision"]), mode="lines", name=run_id))
    fig.update_layout(
        xaxis=dict(title="recall", range=[0, 1.02]),
        yaxis=dict(title="precision", range=[0, 1.02]),
        height=360,
        margin=dict(l=40, r=10, t=30, b=40),
    )
    return fig


def reliability_figure(curves: Mapping[str, Mapping[str, Sequence[float]]]) -> Any:
    """Reliability diagram: observed share of mining against mean predicted probability per bin, one line per
    run (``{run_id: metrics["reliability"]}``), marker size by bin count, the diagonal = perfectly calibrated."""
    import plotly.graph_objects as go

    fig = go.Figure(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="calibrated", line=dict(dash="dot", color="#888"))
    )
    for run_id, c in curves.items():
        if c and c.get("mean_prob") and c.get("frac_pos"):
            counts = list(c.get("count") or [1] * len(c["mean_prob"]))
            top = max(counts) or 1
            fig.add_trace(
                go.Scatter(
                    x=list(c["mean_prob"]),
                    y=list(c["frac_pos"]),
                    mode="lines+markers",
                    name=run_id,
                    marker=dict(size=[6 + 14 * n / top for n in counts]),
                    customdata=counts,
                    hovertemplate="predicted %{x:.2f} · observed %{y:.2f} · %{customdata} chips<extra></extra>",
                )
            )
    fig.update_layout(
        xaxis=dict(title="mean predicted probability of mining", range=[0, 1.02]),
        yaxis=dict(title="observed share of mining", range=[0, 1.02]),
        height=360,
        margin=dict(l=40, r=10, t=30, b=40),
    )
    return fig


def confusion_figure(metrics: Mapping[str, Any], title: str = "") -> Any:
    """2 x 2 confusion matrix (rows = true, columns = predicted) as an annotated heatmap."""
    import plotly.graph_objects as go

    tn, fp, fn, tp = (int(metrics.get(k) or 0) for k in ("tn", "fp", "fn", "tp"))
    z = [[tn, fp], [fn, tp]]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=["pred 0", "pred 1"],
            y=["true 0", "true 1"],
            colorscale="Blues",
            showscale=False,
            text=z,
            texttemplate="%{text}",
        )
    )
    fig.update_layout(title=title, height=230, margin=dict(l=10, r=10, t=30, b=10), yaxis=dict(autorange="reversed"))
    return fig


def ablation_figure(ablation: pd.DataFrame) -> Any:
    """The study's Fig. 3: F1, precision and recall of each 'without layer X' run relative to the full
    model (difference, so 0 = as good as the full model)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for metric, colour in (("f1", "#d7301f"), ("precision", "#2b8cbe"), ("recall", "#4daf4a")):
        fig.add_trace(go.Bar(x=ablation["removed"], y=ablation[f"delta_{metric}"], name=metric, marker_color=colour))
    fig.update_layout(
        barmode="group",
        yaxis_title="change vs full OSM model",
        xaxis_title="OSM layer removed",
        height=340,
        margin=dict(l=40, r=10, t=30, b=40),
    )
    return fig


def ablation_table(table: pd.DataFrame, configs: Mapping[str, Any]) -> pd.DataFrame:
    """Pair each completed run that uses all OSM layers but one with the full-OSM run of otherwise equal
    config; empty when no such pairs exist. ``configs`` maps run_id -> ExperimentConfig."""
    rows = []
    done = table[table["source"] == "this project"].dropna(subset=["F1"])
    full_ids = [r for r in done["run"] if set(configs[r].osm_layers) == set(OSM_LAYERS)]
    for full in full_ids:
        base = configs[full].model_dump(exclude={"name", "osm_layers"})
        frow = done[done["run"] == full].iloc[0]
        for rid in done["run"]:
            c = configs[rid]
            missing = set(OSM_LAYERS) - set(c.osm_layers)
            if len(missing) != 1 or c.model_dump(exclude={"name", "osm_layers"}) != base:
                continue
            r = done[done["run"] == rid].iloc[0]
            rows.append(
                {
                    "full_run": full,
                    "run": rid,
                    "removed": missing.pop(),
                    **{
                        f"delta_{k}": float(r[col]) - float(frow[col])
                        for k, col in (("f1", "F1"), ("precision", "Precision"), ("recall", "Recall"))
                    },
                }
            )
    return pd.DataFrame(rows, columns=["full_run", "run", "removed", "delta_f1", "delta_precision", "delta_recall"])


def predictions_geojson(pred: pd.DataFrame, only_split: str | None = "test") -> str:
    """A run's predictions as a GeoJSON FeatureCollection of points (EPSG:4326)."""
    df = pred if only_split is None else pred[pred["split"] == only_split]
    feats = []
    for r in df.to_dict("records"):
        props = {
            k: (None if isinstance(v, float) and np.isnan(v) else (v.item() if hasattr(v, "item") else v))
            for k, v in r.items()
            if k not in ("lon", "lat")
        }
        feats.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [float(r["lon"]), float(r["lat"])]},
                "properties": props,
            }
        )
    return json.dumps({"type": "FeatureCollection", "features": feats})


# -- place statistics (the Places page) ------------------------------------------------------------------
def place_chart(rows: pd.DataFrame, name: str, measure: str, label: str) -> Any:
    """Bars of the area new in each period and a line of the cumulative area (second axis) for one place;
    ``rows`` has ``period``, ``new_<measure>_ha`` and ``cumulative_<measure>_ha`` in period order."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Bar(x=rows["period"], y=rows[f"new_{measure}_ha"], name=f"new {label} (ha)", marker_color="#f03b20"),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=rows["period"],
            y=rows[f"cumulative_{measure}_ha"],
            name=f"cumulative {label} (ha)",
            mode="lines+markers",
            line={"color": "#252525"},
        ),
        secondary_y=True,
    )
    fig.update_layout(
        title=f"{name}: {label} per period",
        height=360,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        legend={"orientation": "h", "y": -0.2},
        xaxis={"type": "category", "title": "period"},
    )
    fig.update_yaxes(title_text="new (ha)", secondary_y=False, rangemode="tozero")
    fig.update_yaxes(title_text="cumulative (ha)", secondary_y=True, rangemode="tozero")
    return fig
