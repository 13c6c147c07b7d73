"""Scoring a model on a run's split under the run's recipe, and re-evaluating a saved run.

Validation and test rows are predicted with ``asgm.model.inference.source_logits`` (the one inference path:
test-time D4 averaging when ``config.tta``), the temperature is fitted on validation (``calibrate``), the
threshold tuned on validation, and test scored with ``asgm.training.evaluate``. Post-hoc parts of the recipe are
also scored switched off, one at a time, on the same model (``metrics['posthoc']``), and the store's
Bolívar part (the demo pack's sets) is reported separately. No TensorFlow at import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from asgm import atomic
from asgm.config import ExperimentConfig
from asgm.model.calibration import decide
from asgm.model.runs import RunError, RunFolder, RunNotFound, load_keras_model, now, read_run_config
from asgm.training.evaluate import N_BOOT, best_threshold, metrics_on_test

if TYPE_CHECKING:
    from asgm.data.store import PatchStore

#: Which test rows form a named part of a store, by set (the demo pack: north-east Bolívar, 2019).
PART_SETS: dict[str, tuple[str, ...]] = {"bolivar": ("eg-positives", "eg-negatives", "curated")}
SUMMARY_KEYS = (
    "val_f1",
    "f1",
    "precision",
    "recall",
    "pr_auc",
    "precision_at_recall_0.9",
    "ece",
    "f1_ci_cluster",
    "n",
    "tp",
    "fp",
    "fn",
    "tn",
)


def _summary(m: dict[str, Any]) -> dict[str, Any]:
    return {k: m.get(k) for k in SUMMARY_KEYS}


def _score_probs(
    val: pd.DataFrame, test: pd.DataFrame, z_val: np.ndarray, z_test: np.ndarray, temperature: float, n_boot: int
) -> tuple[dict[str, Any], np.ndarray, np.ndarray, float]:
    from asgm.model.calibration import sigmoid

    p_val, p_test = sigmoid(z_val / temperature), sigmoid(z_test / temperature)
    threshold, val_f1 = best_threshold(val["label"].to_numpy(), p_val)
    m = metrics_on_test(
        test["label"].to_numpy(), p_test, threshold, clusters=test["cluster"].to_numpy(), n_boot=n_boot, seed=42
    )
    m["val_f1"] = val_f1
    return m, p_val, p_test, threshold


def score(
    model: Any,
    store: PatchStore,
    config: ExperimentConfig,
    split: pd.DataFrame,
    n_boot: int = N_BOOT,
    zero_layers: tuple[str, ...] = (),
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Predict validation and test rows with the run's recipe (``asgm.model.inference.recipe_logits``), fit
    the temperature on validation (``calibrate``), tune the threshold on validation, score test.
    ``zero_layers`` zeroes those OSM channels at prediction time (ablation).

    Returns (metrics, predictions of val+test rows: sample_id, label, prob, pred, split, cluster, lon, lat)."""
    from asgm.model.calibration import fit_temperature
    from asgm.model.inference import source_logits
    from asgm.model.inputs import PatchSource

    def logits(part: pd.DataFrame, cfg: ExperimentConfig) -> np.ndarray:
        # One pass over each split: caching would only cost memory.
        source = PatchSource(store, cfg, part["sample_id"], cache_limit_mb=0)
        return source_logits(model, source, cfg, batch_size=256, zero_layers=zero_layers)

    val, test = (split[split["split"] == s].sort_values("sample_id").reset_index(drop=True) for s in ("val", "test"))
    z_val, z_test = logits(val, config), logits(test, config)
    temperature = fit_temperature(val["label"].to_numpy(), z_val) if config.calibrate else 1.0
    metrics, p_val, p_test, threshold = _score_probs(val, test, z_val, z_test, temperature, n_boot)
    metrics["temperature"] = temperature
    metrics["recipe"] = {
        "architecture": config.architecture,
        "tta": config.tta,
        "calibrate": config.calibrate,
        "jitter": config.jitter,
        "balance_sets": config.balance_sets,
    }

    # Post-hoc parts of the recipe switched off, one at a time, on the very same model.
    posthoc: dict[str, Any] = {}
    if config.calibrate:
        posthoc["no_calibration"] = _summary(_score_probs(val, test, z_val, z_test, 1.0, 0)[0])
    if config.tta:
        plain = config.model_copy(update={"tta": False})
        zv, zt = logits(val, plain), logits(test, plain)
        t_plain = fit_temperature(val["label"].to_numpy(), zv) if config.calibrate else 1.0
        posthoc["no_tta"] = _summary(_score_probs(val, test, zv, zt, t_plain, 0)[0])
    if posthoc:
        metrics["posthoc"] = posthoc

    sets = store.index().set_index("sample_id")["set"]
    test_sets = test["sample_id"].map(sets).to_numpy()
    parts: dict[str, Any] = {}
    for name, members in PART_SETS.items():
        m = np.isin(test_sets, members)
        if m.any() and not m.all() and test.loc[m, "label"].sum() > 0:
            pm = metrics_on_test(
                test.loc[m, "label"].to_numpy(),
                p_test[m],
                threshold,
                clusters=test.loc[m, "cluster"].to_numpy(),
                n_boot=n_boot,
                seed=42,
            )
            parts[name] = _summary(pm)
    if parts:
        metrics["parts"] = parts

    preds = pd.concat([val.assign(prob=p_val), test.assign(prob=p_test)], ignore_index=True)
    preds["pred"] = decide(preds["prob"].to_numpy(), threshold)
    return metrics, preds[["sample_id", "label", "prob", "pred", "split", "cluster", "lon", "lat"]]


def evaluate_run(run_id: str, n_boot: int = N_BOOT) -> dict[str, Any]:
    """Recompute a finished run's metrics from its saved model, split and patch store: predict
    validation and test again, re-tune the threshold on validation, rewrite ``metrics.json`` and
    ``predictions.csv``, and return the metrics."""
    from asgm.data.store import PatchStore

    folder = RunFolder.of(run_id)
    if not folder.file("config.json").exists():
        raise RunNotFound(f"no run {run_id!r} in {folder.root.parent}; list runs with `asgm runs list`")
    config = read_run_config(folder)
    if not folder.file("split.csv").exists():
        raise RunError(f"run {run_id!r} has no split.csv (it stopped before splitting); retrain it")
    split = pd.read_csv(folder.file("split.csv"), dtype={"sample_id": str})
    model = load_keras_model(folder.model_path)
    store = PatchStore.open(config.store)
    from asgm.model.inputs import masked_filter, verify_rows

    scored = split[split["split"].isin(["val", "test"])].copy()
    scored["masked_fraction"] = scored["sample_id"].map(verify_rows(store, scored["sample_id"]))
    # The masked-patch filter of training, on the pixels: a patch training would drop is not scored either.
    kept, _ = masked_filter(scored, config.masked_limit_pos, config.masked_limit_neg)
    split = split[~split["split"].isin(["val", "test"]) | split["sample_id"].isin(kept["sample_id"])]
    metrics, preds = score(model, store, config, split, n_boot=n_boot)
    try:
        old = folder.read_json("metrics.json") if folder.file("metrics.json").exists() else {}
    except (ValueError, UnicodeDecodeError):  # not JSON: evaluate is the way to rewrite it
        old = {}
    old = old if isinstance(old, dict) else {}
    for key in (
        "best_epoch",
        "best_epoch_by",
        "epochs_run",
        "batch_size",
        "class_weights",
        "counts",
        "store",
        "store_source",
        "channels",
        "train_seconds",
        "ensemble",
    ):
        if key in old:
            metrics[key] = old[key]
    if config.members and isinstance(old.get("recipe"), dict) and "architecture" in old["recipe"]:
        metrics["recipe"]["architecture"] = old["recipe"]["architecture"]  # "ensemble of N (...)"
    metrics["evaluated"] = now()
    atomic.write_text(folder.file("predictions.csv"), preds.to_csv(index=False))
    folder.write_json("metrics.json", metrics)
    return metrics
