"""``asgm predict``: a run's full recipe (TTA, calibration) applied to every patch of a store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from asgm.cli import CommandError, add_json_flag, add_prior_args, prior_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="probability of mining for every patch of a store, with a run's full recipe",
        description="Apply a completed run (its model, test-time augmentation, temperature and "
        "threshold) to every patch of a store, batched; write sample_id, probability, decision.",
    )
    p.add_argument("--run", required=True, help="run id (see `asgm runs list`)")
    p.add_argument("--store", required=True, help="patch store name or folder")
    p.add_argument("--out", required=True, help="CSV file to write (sample_id, probability, decision[, label])")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--batch-size", type=int, default=256, help="patches per forward pass (default 256)")
    add_prior_args(p)
    add_json_flag(p)
    p.set_defaults(handler=_predict, human=_human)


def check_out(out: Path, force: bool = False) -> None:
    """Refuse an ``--out`` that is a folder, lies inside the data or models folders (it could replace a
    store's index or a run's files), or exists without ``force``. Nothing is written."""
    from asgm.config import data_dir, models_dir

    if out.is_dir():
        raise CommandError(f"--out {out} is a folder; give a CSV file name")
    where = out.resolve()
    for kind, root in (("data", data_dir()), ("models", models_dir())):
        if where.is_relative_to(Path(root).resolve()):
            raise CommandError(
                f"--out {out} is inside the {kind} folder ({root}), whose files the project manages; "
                "write the CSV somewhere else"
            )
    if out.exists() and not force:
        raise CommandError(f"--out {out} exists; pass --force to replace it")


def _predict(args: argparse.Namespace) -> dict[str, Any]:
    import time

    from asgm import atomic
    from asgm.model.inference import predict_store
    from asgm.model.runs import get_run
    from asgm.training.evaluate import metrics_on_test

    if args.batch_size < 1:
        raise CommandError("--batch-size must be at least 1")
    out = Path(args.out)
    check_out(out, args.force)
    t0 = time.perf_counter()
    prior = prior_from_args(args)
    df = predict_store(
        args.run,
        args.store,
        batch_size=args.batch_size,
        progress=not args.json and sys.stderr.isatty(),
        spatial_prior=prior,
    )
    seconds = time.perf_counter() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out, df.to_csv(index=False))
    metrics = get_run(args.run).metrics or {}
    report: dict[str, Any] = {
        "run": args.run,
        "store": args.store,
        "out": str(out),
        "patches": int(len(df)),
        "predicted_mining": int(df["decision"].sum()),
        "threshold": float(metrics["threshold"]),
        "temperature": float(metrics.get("temperature") or 1.0),
        "seconds": round(seconds, 2),
        "chips_per_second": round(len(df) / seconds, 1) if seconds > 0 else None,
    }
    if prior is not None:
        report["spatial_prior"] = df.attrs["spatial_prior"]
    if "label" in df and df["label"].nunique() == 2:
        m = metrics_on_test(df["label"].to_numpy(), df["probability"].to_numpy(), report["threshold"], n_boot=0)
        report["against_labels"] = {k: m[k] for k in ("f1", "precision", "recall", "pr_auc", "ece")}
        if prior is not None:
            y, pred = df["label"].to_numpy(), df["decision"].to_numpy()
            tp, fp, fn = (
                int(((pred == 1) & (y == 1)).sum()),
                int(((pred == 1) & (y == 0)).sum()),
                int(((pred == 0) & (y == 1)).sum()),
            )
            report["against_labels_spatial_prior"] = {
                "f1": 2 * tp / max(1, 2 * tp + fp + fn),
                "precision": tp / max(1, tp + fp),
                "recall": tp / max(1, tp + fn),
            }
    return report


def _human(r: dict[str, Any]) -> str:
    if "spatial_prior" in r:
        sp = r["spatial_prior"]
        rule = (
            f"spatial prior: t_main {sp['t_main']:.2f}, t_iso {sp['t_iso']:.2f}; {sp['isolated']} isolated, "
            f"{sp['dropped_isolated']} dropped"
        )
    else:
        rule = f"threshold {r['threshold']:.3f}"
    text = (
        f"{r['patches']} patches of {r['store']} -> {r['out']}: {r['predicted_mining']} predicted mining "
        f"({rule}, temperature {r['temperature']:.2f}; {r['chips_per_second']} chips/s)"
    )
    if "against_labels" in r:
        m = r["against_labels"]
        text += (
            f"\nagainst the store's labels (all patches, incl. any the run trained on): F1 {m['f1']:.3f}  "
            f"precision {m['precision']:.3f}  recall {m['recall']:.3f}  ECE {m['ece']:.3f}"
        )
    return text
