"""What an hour of review buys: a simulated reviewer labels the ``--budget`` patches of a held-apart region that
the model is least sure of (|p - threshold| smallest; their true labels come from the store), the recipe is
retrained with them, and the region's evaluation half is scored before and after — beside reviewing as many
random patches of the same pool (the reference, measured in the same run). Mean ± sd over seeds.

The region (a country of ``asgm.data.regions``, Natural Earth borders) is the test side of a leave-one-region-out
split: train / val outside it, chips within 3 km across the border dropped (``holdout=REGION``). Its 3 km DBSCAN
clusters are dealt, with a fixed seed, into a review pool and an evaluation set, so no pool chip is within 3 km of
an evaluation chip. A review moves the chosen pool chips (true labels) into training; validation is unchanged.
Each seed trains the baseline once and each strategy once (seeds vary the model and the random picks).

    python benchmarks/review_value.py --store amazon --region peru --budget 100 --seeds 7,1,2 --epochs 40 \
        --out benchmarks/results/review_value.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asgm.config import ExperimentConfig, models_dir  # noqa: E402

#: The default detector's recipe (models/detector-default), with the epochs of the command line.
RECIPE = dict(
    bands=("B4", "B3", "B2"),
    patch_size=48,
    batch_size=32,
    learning_rate=1e-3,
    architecture="detector",
    jitter=True,
    balance_sets=True,
    lr_schedule="cosine",
    calibrate=True,
    split_seed=7,
)
POOL_SEED = 7
#: Cluster-bootstrap resamples (3 km clusters) of each run's evaluation figures.
N_BOOT = 500


def _config(store: str, region: str, seed: int, epochs: int, name: str) -> ExperimentConfig:
    return ExperimentConfig(name=name, store=store, seed=seed, epochs=epochs, holdout=region, **RECIPE)


def pool_and_eval(split: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The region's test rows dealt by cluster into a review pool and an evaluation set (about half each)."""
    test = split[split["split"] == "test"]
    clusters = np.random.default_rng(POOL_SEED).permutation(np.sort(test["cluster"].unique()))
    sizes = test.groupby("cluster").size()
    pool: list[int] = []
    n = 0
    for c in clusters:
        if n < len(test) / 2:
            pool.append(int(c))
            n += int(sizes[c])
    in_pool = test["cluster"].isin(pool)
    return test[in_pool], test[~in_pool]


def scores(run_id: str, store: str, rows: pd.DataFrame) -> dict[str, float]:
    """F1, PR-AUC, precision, recall of a run on ``rows`` at its own threshold."""
    from asgm.model.inference import predict_store
    from asgm.training.evaluate import metrics_on_test

    pred = predict_store(run_id, store, sample_ids=list(rows["sample_id"]))
    by_id = rows.set_index("sample_id").loc[pred["sample_id"]]
    y = by_id["label"].to_numpy(int)
    p = pred["probability"].to_numpy(float)
    m = metrics_on_test(y, p, float(pred.attrs["threshold"]), clusters=by_id["cluster"].to_numpy(), n_boot=N_BOOT)
    out = {k: float(m[k]) if m.get(k) is not None else float("nan") for k in ("f1", "pr_auc", "precision", "recall")}
    return out | {"f1_ci_cluster": m["f1_ci_cluster"], "pr_auc_ci_cluster": m["pr_auc_ci_cluster"]}


def one_seed(store: str, region: str, seed: int, epochs: int, budget: int) -> dict[str, Any]:
    """Baseline, uncertain-first and random reviews for one seed."""
    from asgm.model.inference import predict_store
    from asgm.model.runs import RunFolder
    from asgm.training.train import train

    t0 = time.perf_counter()
    base = train(_config(store, region, seed, epochs, f"review-value-base-{region}-s{seed}"), n_boot=0)
    split = pd.read_csv(RunFolder.of(base).file("split.csv"), dtype={"sample_id": str})
    pool, evaluation = pool_and_eval(split)
    out: dict[str, Any] = {
        "seed": seed,
        "pool": len(pool),
        "eval": len(evaluation),
        "eval_positives": int(evaluation["label"].sum()),
        "before": scores(base, store, evaluation),
        "base_run": base,
    }
    pred = predict_store(base, store, sample_ids=list(pool["sample_id"]))
    margin = (pred["probability"] - float(pred.attrs["threshold"])).abs().to_numpy()
    picks = {
        "uncertain": list(pred["sample_id"].to_numpy()[np.argsort(margin, kind="stable")[:budget]]),
        "random": list(
            np.random.default_rng(seed).choice(pool["sample_id"].to_numpy(), size=min(budget, len(pool)), replace=False)
        ),
    }
    for strategy, ids in picks.items():
        over = split.copy()
        over.loc[over["sample_id"].isin(ids), "split"] = "train"
        over.loc[over["sample_id"].isin(pool["sample_id"]) & ~over["sample_id"].isin(ids), "split"] = "unused"
        cfg = _config(store, region, seed, epochs, f"review-value-{strategy}-{region}-s{seed}")
        run_id = train(cfg, split_override=over[["sample_id", "split", "cluster"]], n_boot=0)
        out[strategy] = {
            **scores(run_id, store, evaluation),
            "run": run_id,
            "reviewed_positives": int(pool.set_index("sample_id").loc[ids, "label"].sum()),
        }
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    return out


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def ms(values: list[float]) -> list[float]:
        v = np.array(values, float)
        return [float(np.nanmean(v)), float(np.nanstd(v, ddof=1)) if len(v) > 1 else float("nan")]

    def gain(strategy: str, m: str) -> dict[str, Any]:
        """Paired gain over the baseline per seed: mean ± sd and a 95 % t-interval over the seeds."""
        from scipy import stats

        d = np.array([r[strategy][m] - r["before"][m] for r in rows], float)
        half = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else np.nan
        return {"mean_sd": ms(list(d)), "ci95_seeds": [float(d.mean() - half), float(d.mean() + half)]}

    out: dict[str, Any] = {
        k: {m: ms([r[k][m] for r in rows]) for m in ("f1", "pr_auc")} for k in ("before", "uncertain", "random")
    }
    out["gain"] = {s: {m: gain(s, m) for m in ("f1", "pr_auc")} for s in ("uncertain", "random")}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default="amazon")
    ap.add_argument("--region", default="peru")
    ap.add_argument("--budget", type=int, default=100, help="patches the simulated reviewer labels (default 100)")
    ap.add_argument("--seeds", default="7,1,2")
    ap.add_argument("--epochs", type=int, default=40, help="epochs of every training (the default detector: 40)")
    ap.add_argument("--out", type=Path, help="also write the rows and summary to this JSON file")
    args = ap.parse_args()
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        row = one_seed(args.store, args.region, seed, args.epochs, args.budget)
        print(json.dumps(row), flush=True)
        rows.append(row)
    summary = summarise(rows)
    print(
        f"held-apart region {args.region}: review pool {rows[0]['pool']} chips, evaluation {rows[0]['eval']} chips "
        f"({rows[0]['eval_positives']} mining); budget {args.budget}; {len(rows)} seed(s); {args.epochs} epochs"
    )
    for k, title in (
        ("before", "no review (baseline)"),
        ("uncertain", f"{args.budget} least-sure reviewed"),
        ("random", f"{args.budget} random reviewed (reference)"),
    ):
        f1, ap_ = summary[k]["f1"], summary[k]["pr_auc"]
        print(f"  {title:32s} F1 {f1[0]:.3f} ± {f1[1]:.3f}   PR-AUC {ap_[0]:.3f} ± {ap_[1]:.3f}")
    for k in ("uncertain", "random"):
        g = summary["gain"][k]
        print(
            f"  gain of {k:9s} F1 {g['f1']['mean_sd'][0]:+.3f} ± {g['f1']['mean_sd'][1]:.3f} "
            f"(95 % CI over seeds {g['f1']['ci95_seeds'][0]:+.3f} .. {g['f1']['ci95_seeds'][1]:+.3f})   "
            f"PR-AUC {g['pr_auc']['mean_sd'][0]:+.3f} ± {g['pr_auc']['mean_sd'][1]:.3f} "
            f"(95 % CI {g['pr_auc']['ci95_seeds'][0]:+.3f} .. {g['pr_auc']['ci95_seeds'][1]:+.3f})"
        )
    ledger = models_dir() / "experiments" / "review_value.jsonl"
    ledger.parent.mkdir(parents=True, exist_ok=True)
    with open(ledger, "a", encoding="utf-8") as f:
        f.write(json.dumps({"args": vars(args) | {"out": str(args.out)}, "rows": rows, "summary": summary}) + "\n")
    if args.out:
        from asgm import atomic

        record = {"command": " ".join(["python", *sys.argv]), "rows": rows, "summary": summary}
        atomic.write_text(args.out, json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
