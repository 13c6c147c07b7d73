"""Training: one run of an ``ExperimentConfig`` into its run folder ``models/<run_id>/`` (layout: ``asgm.model.runs``).

Fixes of the study (spec §4, §7): the batch size is really used (tf.data), the best epoch by
validation PR-AUC is kept (and recorded), augmentation is D4 + optional small affine that keeps OSM
masks binary, patches are keyed by sample_id throughout.
"""

from __future__ import annotations

import os
import time
import traceback
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from asgm import atomic
from asgm.config import ExperimentConfig
from asgm.errors import one_line
from asgm.model.runs import RunError, RunFolder, create_run, now, refuse_reuse
from asgm.training.evaluate import N_BOOT
from asgm.training.scoring import score


class RunCancelled(Exception):
    """Raised inside training when a cancel was requested."""


def _progress_callback(folder: RunFolder, epochs: int, tqdm_bar: Any = None) -> Any:
    """A Keras callback: progress.json + history.json after every epoch, best weights by val PR-AUC,
    and a cancel check after every batch."""
    import keras

    class Progress(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.history: list[dict[str, float]] = []
            self.best_epoch: int | None = None
            self.best_value = -np.inf
            self.best_weights: list[np.ndarray] | None = None
            self.cancelled = False
            self.t0 = time.monotonic()
            self.epoch_times: list[float] = []
            self._epoch_t0 = self.t0

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._epoch_t0 = time.monotonic()

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if folder.cancel_requested():
                self.cancelled = True
                self.model.stop_training = True

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = {k: float(v) for k, v in (logs or {}).items()}
            self.epoch_times.append(time.monotonic() - self._epoch_t0)
            row = {"epoch": epoch + 1, **logs, "seconds": round(self.epoch_times[-1], 3)}
            self.history.append(row)
            value = logs.get("val_pr_auc", float("nan"))
            # Strictly better only: ties keep the earlier (simpler) epoch.
            if np.isfinite(value) and value > self.best_value:
                self.best_value, self.best_epoch = value, epoch + 1
                self.best_weights = self.model.get_weights()
            remaining = epochs - (epoch + 1)
            eta = float(np.mean(self.epoch_times[-5:]) * remaining)
            progress = {
                "epoch": epoch + 1,
                "epochs": epochs,
                "loss": logs.get("loss"),
                "val_loss": logs.get("val_loss"),
                "val_pr_auc": logs.get("val_pr_auc"),
                "val_precision": logs.get("val_precision"),
                "val_recall": logs.get("val_recall"),
                "best_epoch": self.best_epoch,
                "best_val_pr_auc": None if self.best_epoch is None else self.best_value,
                "elapsed_s": round(time.monotonic() - self.t0, 1),
                "eta_s": round(eta, 1),
                "updated": now(),
            }
            folder.write_json("progress.json", progress)
            folder.write_json("history.json", self.history)
            if tqdm_bar is not None:
                tqdm_bar.update(1)
                tqdm_bar.set_postfix(
                    loss=f"{logs.get('loss', float('nan')):.3f}", val_pr_auc=f"{value:.3f}", best=self.best_epoch
                )

    return Progress()


def train(
    config: ExperimentConfig,
    run_id: str | None = None,
    *,
    show_progress: bool = False,
    n_boot: int = N_BOOT,
    split_override: pd.DataFrame | None = None,
) -> str:
    """Train ``config`` into a run folder (created if needed) and return the run id.

    The folder ends ``completed`` with metrics, ``cancelled`` when a cancel was requested, or
    ``failed`` with the error (the exception is re-raised). ``split_override`` reuses a given split
    (sample_id, split, cluster) instead of computing one, e.g. for ablation retraining."""
    from asgm.data.store import PatchStore
    from asgm.model.store_fit import with_store_encoding

    if config.members:
        raise RunError(
            f"this config is an ensemble of runs {list(config.members)}: it is built, not trained; "
            "rebuild it with `asgm ensemble --members ...` or train one of its members' configs"
        )
    if run_id is None:
        PatchStore.open(config.store)
    # The run records the encoding its inputs had (the training store's unless the config names one), so
    # every later input is encoded the same way (asgm.model.inputs.encode_bands).
    config = with_store_encoding(config)
    if run_id is not None:
        refuse_reuse(run_id, config)
    folder = create_run(config, run_id, status="running")
    folder.set_status("running", pid=os.getpid(), started=now(), error=None)
    try:
        result = _train(folder, config, show_progress, n_boot, split_override)
    except RunCancelled:
        folder.set_status("cancelled", finished=now(), error="cancelled on request")
        return folder.run_id
    except BaseException as exc:
        folder.file("error.txt").parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(folder.file("error.txt"), traceback.format_exc())
        # One line for lists and pages; error.txt keeps the traceback.
        msg = "interrupted" if isinstance(exc, KeyboardInterrupt) else one_line(exc)
        folder.set_status("failed", finished=now(), error=msg)
        raise
    folder.set_status("completed", finished=now(), error=None, f1=result.get("f1"))
    return folder.run_id


def _train(
    folder: RunFolder, config: ExperimentConfig, show_progress: bool, n_boot: int, split_override: pd.DataFrame | None
) -> dict[str, Any]:
    from asgm.data.regions import COUNTRIES, country_codes
    from asgm.data.store import PatchStore
    from asgm.model.inputs import DEFAULT_CACHE_LIMIT_MB, PatchSource, assemble, run_pipeline
    from asgm.training.dataset import augmenter, class_weights, make_tf_dataset
    from asgm.training.split import holdout_mask, spatial_split, split_counts

    t0 = time.monotonic()
    store = PatchStore.open(config.store)
    data = assemble(store, config)
    rows = data.rows
    if split_override is not None:
        split = rows.merge(split_override[["sample_id", "split", "cluster"]], on="sample_id", how="inner")
        split = split[["sample_id", "label", "lon", "lat", "cluster", "split"]]
    else:
        mask = holdout_mask(rows, config.holdout) if config.holdout else None
        split = spatial_split(rows, config.split_eps_m, config.split_fractions, config.split_seed_used, test_mask=mask)
        if config.holdout in COUNTRIES:  # record each row's country: what the holdout was decided on
            split["country"] = country_codes(split["lon"].to_numpy(float), split["lat"].to_numpy(float))
    atomic.write_text(folder.file("split.csv"), split.to_csv(index=False))
    counts = {**data.counts, "splits": split_counts(split)}
    folder.write_json("counts.json", counts)
    if folder.cancel_requested():
        raise RunCancelled()

    import keras
    import tqdm

    from asgm.model.cnn import build_for, compile_model

    keras.utils.set_random_seed(config.seed)
    train_rows = split[split["split"] == "train"].sort_values("sample_id").reset_index(drop=True)
    val_rows = split[split["split"] == "val"].sort_values("sample_id").reset_index(drop=True)
    y_train = train_rows["label"].to_numpy()
    weights = class_weights(y_train) if config.class_weight else None
    sample_weights = None
    if config.balance_sets:
        from asgm.training.recipe import balance_groups, set_weights

        sets = train_rows["sample_id"].map(rows.set_index("sample_id")["set"]).to_numpy()
        confusers = None
        if config.balance_by == "confuser":
            index = store.index().set_index("sample_id")
            if "confuser" not in index.columns or not (index["confuser"].fillna("") != "").any():
                raise RunError(
                    f"store {store.name!r} records no confuser classes; rebuild it (`asgm demo build --pack "
                    "amazon2`) or balance by set"
                )
            confusers = train_rows["sample_id"].map(index["confuser"].fillna("")).to_numpy()
        sample_weights = set_weights(y_train, balance_groups(y_train, sets, confusers))
    if config.hard_negatives_from:
        from asgm.training.recipe import hard_negative_weights

        ids = list(train_rows["sample_id"].astype(str))
        sample_weights, counts["hard_negatives"] = hard_negative_weights(config, ids, y_train, sample_weights)
        folder.write_json("counts.json", counts)
    # One cache budget shared by the training and validation rows (memory stays bounded, spec §4).
    share = len(train_rows) / max(1, len(train_rows) + len(val_rows))
    train_src = PatchSource(store, config, train_rows["sample_id"], cache_limit_mb=DEFAULT_CACHE_LIMIT_MB * share)
    val_src = PatchSource(store, config, val_rows["sample_id"], cache_limit_mb=DEFAULT_CACHE_LIMIT_MB * (1 - share))
    aug = augmenter(config, len(config.bands), config.seed) if config.augment else None
    train_ds = make_tf_dataset(
        train_src,
        y_train,
        config.batch_size,
        training=True,
        seed=config.seed,
        weights=weights,
        augment=aug,
        sample_weights=sample_weights,
    )
    val_ds = make_tf_dataset(val_src, val_rows["label"].to_numpy(), config.batch_size)

    from asgm.training.recipe import learning_rate

    model = compile_model(
        build_for(config.architecture, config.patch_size, len(config.channels)), learning_rate(config, len(train_rows))
    )
    bar = tqdm.tqdm(total=config.epochs, desc="epochs", unit="ep") if show_progress else None
    progress = _progress_callback(folder, config.epochs, bar)
    callbacks: list[Any] = [progress]
    if config.early_stopping_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor="val_pr_auc", mode="max", patience=config.early_stopping_patience)
        )
    try:
        # shuffle=False: the tf.data pipeline already reshuffles every epoch (seeded).
        run_pipeline(
            partial(
                model.fit,
                train_ds,
                validation_data=val_ds,
                epochs=config.epochs,
                callbacks=callbacks,
                verbose=0,
                shuffle=False,
            ),
            train_src,
            val_src,
        )
    finally:
        if bar is not None:
            bar.close()
    del train_ds, val_ds, train_src, val_src  # release the patch caches before scoring
    if progress.cancelled:
        raise RunCancelled()
    if progress.best_weights is not None:
        model.set_weights(progress.best_weights)
    with atomic.atomic_path(folder.model_path) as tmp:
        model.save(tmp)
    metrics, preds = score(model, store, config, split, n_boot=n_boot)
    atomic.write_text(folder.file("predictions.csv"), preds.to_csv(index=False))
    metrics.update(
        {
            "best_epoch": progress.best_epoch,
            "best_epoch_by": "val_pr_auc (Keras AUC, curve='PR'), highest; ties keep the earlier epoch",
            "epochs_run": len(progress.history),
            "batch_size": config.batch_size,
            "class_weights": weights,
            "counts": counts,
            "store": store.name,
            "store_source": store.meta.source,
            "channels": list(config.channels),
            "train_seconds": round(time.monotonic() - t0, 1),
        }
    )
    folder.write_json("metrics.json", metrics)
    return metrics
