"""The before / after report of "train with my labels": the parent run and the new run scored on the unchanged
test split and on the held-out reviewed items (``compare``, written to the new run's ``review.json``), read back
and tabled for the Compare page (``read_report``, ``report_table``). The training itself: ``asgm.review.retrain``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from asgm.data.store import PatchStore
from asgm.errors import AsgmError
from asgm.review.retrain import Plan
from asgm.review.rules import HOLDOUT_SPLIT


def _scores(run_id: str, store: PatchStore, rows: pd.DataFrame) -> dict[str, Any]:
    """A run's metrics on ``rows`` (sample_id, label) of ``store`` at its own threshold (no bootstrap)."""
    from asgm.model.inference import predict_store
    from asgm.training.evaluate import metrics_on_test

    if rows.empty:
        return {"n": 0}
    pred = predict_store(run_id, store, sample_ids=list(rows["sample_id"]))
    y = rows.set_index("sample_id").loc[pred["sample_id"], "label"].to_numpy(int)
    p = pred["probability"].to_numpy(float)
    m = metrics_on_test(y, p, float(pred.attrs["threshold"]), n_boot=0)
    keep = ("n", "threshold", "f1", "precision", "recall", "pr_auc", "tp", "fp", "fn", "tn")
    out = {k: m.get(k) for k in keep}
    out["mean_prob_not_mining"] = float(p[y == 0].mean()) if (y == 0).any() else None
    out["mean_prob_mining"] = float(p[y == 1].mean()) if (y == 1).any() else None
    return out


def compare(plan: Plan, run_id: str) -> dict[str, Any]:
    """Before (the parent) / after (the new run) on the unchanged test split and on the held-out reviewed items;
    written to the new run's ``review.json``."""
    from asgm.model import runs

    store = PatchStore.open(plan.config.store)
    index = store.index().set_index("sample_id")
    split = pd.read_csv(runs.RunFolder.of(run_id).file("split.csv"), dtype={"sample_id": str})
    parts = {"test": split[split["split"] == "test"], "review_holdout": split[split["split"] == HOLDOUT_SPLIT]}
    report: dict[str, Any] = {
        **plan.as_dict(),
        "run_id": run_id,
        "becomes_default": False,
        "note": "the new run is not the default: name it in models/DEFAULT to make it so",
    }
    for key, part in parts.items():
        rows = pd.DataFrame(
            {"sample_id": part["sample_id"], "label": index.loc[part["sample_id"], "label"].to_numpy(int)}
        )
        report[key] = {"before": _scores(plan.parent_run, store, rows), "after": _scores(run_id, store, rows)}
    runs.RunFolder.of(run_id).write_json("review.json", report)
    return report


def read_report(run_id: str) -> dict[str, Any] | None:
    """The ``review.json`` of a run trained with reviewed labels (None for any other run or an unreadable file)."""
    import json

    from asgm.model import runs

    try:
        value = json.loads(runs.RunFolder.of(run_id).file("review.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, AsgmError):
        return None
    return value if isinstance(value, dict) and "test" in value else None


def report_table(report: dict[str, Any]) -> pd.DataFrame:
    """Before / after rows of a report: part, model (parent or new run), n, F1, PR-AUC, precision, recall, FP, FN."""
    rows = []
    for part, title in (("test", "unchanged test split"), ("review_holdout", "held-out reviewed items")):
        for when, run in (("before", report["parent_run"]), ("after", report["run_id"])):
            m = (report.get(part) or {}).get(when) or {}
            rows.append(
                {
                    "part": title,
                    "model": f"{when}: {run}",
                    "n": m.get("n"),
                    "F1": m.get("f1"),
                    "PR-AUC": m.get("pr_auc"),
                    "precision": m.get("precision"),
                    "recall": m.get("recall"),
                    "FP": m.get("fp"),
                    "FN": m.get("fn"),
                    "threshold": m.get("threshold"),
                }
            )
    return pd.DataFrame(rows)
