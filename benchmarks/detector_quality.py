"""Detector quality on held-out places: the recipe ladder, seeds, spatial split and Caroní holdout.

Trains the named recipes on the ``amazon`` store (demo pack + Amazon training pack; build it with
``asgm demo build --pack amazon``) and reports every figure as mean ± sd over seeds with the mean of
the cluster-bootstrap 95 % CIs, precision at recall 0.9 and the calibration error (ECE):

- ``spatial``: the store's spatial test split (DBSCAN 3 km clusters, split seed fixed at 7 so seeds
  vary only the model), and separately its Bolívar part (the demo pack's sets);
- ``caroni``: Earth Genome's Caroní rectangle as the test set (train/val outside it, a 3 km buffer
  dropped), i.e. a geographic holdout;
- ``loro-<country>`` (venezuela, peru, brazil, bolivia, colombia, ecuador, guyana): leave one region out —
  every chip in that country (Natural Earth borders, ``asgm.data.regions``) is the test set, train/val come from
  the other countries, chips within 3 km of a test chip across the border are dropped. ``loro-venezuela``
  also reports the Bolívar part (the demo pack's sets) of its test set.

Leak-freedom is asserted by the split itself (no test point within 3 km of a training point) and
re-checked here on every run's split.csv.

    python benchmarks/detector_quality.py run --recipes detector-full --evals spatial,caroni --seeds 7,1,2
    python benchmarks/detector_quality.py run --recipes detector-full-cosine40 --evals loro-venezuela,loro-peru
    python benchmarks/detector_quality.py report            # aggregate every run recorded so far

Runs are recorded in ``models/experiments/detector_quality.jsonl`` (one line per finished run).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asgm.config import ExperimentConfig, models_dir  # noqa: E402
from asgm.data.regions import COUNTRIES

STORE = "amazon"
EPOCHS = 25
#: The default detector's recipe on the ``amazon2`` store (part 2 of the Amazon training pack).
_A2: dict[str, Any] = dict(
    store="amazon2",
    architecture="detector",
    learning_rate=1e-3,
    jitter=True,
    balance_sets=True,
    lr_schedule="cosine",
    epochs=40,
)
#: The ladder: one change at a time. TTA and calibration are post-hoc, so every run also records its
#: test metrics without them (metrics['posthoc']) — the last two steps of the ladder, same model.
RECIPES: dict[str, dict[str, Any]] = {
    "study-d4": dict(architecture="study", learning_rate=3e-4),
    "detector-d4": dict(architecture="detector", learning_rate=1e-3),
    "detector-jitter": dict(architecture="detector", learning_rate=1e-3, jitter=True),
    "detector-full": dict(architecture="detector", learning_rate=1e-3, jitter=True, balance_sets=True),
    "study-full-cosine40": dict(
        architecture="study", learning_rate=3e-4, jitter=True, balance_sets=True, lr_schedule="cosine", epochs=40
    ),
    "detector-full-cosine40": dict(
        architecture="detector", learning_rate=1e-3, jitter=True, balance_sets=True, lr_schedule="cosine", epochs=40
    ),
    # Issue 21's ladder on the store with part 2 (`asgm demo build --pack amazon2`), one change at a time:
    # part 2 in training; negatives balanced by confuser class; hard negatives mined by the step before.
    "a2-full-cosine40": _A2,
    # The shipped default's members (models/detector-default is their ensemble): the same, with TTA off so a
    # scan costs one forward pass per member and window (TTA's effect is still measured post hoc).
    "a2-ship": {**_A2, "tta": False},
    "a2-confuser-cosine40": {**_A2, "balance_by": "confuser"},
    # hard_negatives_of: that recipe's run of the same evaluation and seed is the first pass
    "a2-confuser-hn-cosine40": {**_A2, "balance_by": "confuser", "hard_negatives_of": "a2-confuser-cosine40"},
}
EVALS: dict[str, dict[str, Any]] = {
    "spatial": dict(holdout=None),
    "caroni": dict(holdout="caroni"),
    **{f"loro-{c}": dict(holdout=c) for c in COUNTRIES},
}
LEDGER = "experiments/detector_quality.jsonl"


def config_for(recipe: str, evaluation: str, seed: int, epochs: int = EPOCHS) -> ExperimentConfig:
    """The ExperimentConfig of one (recipe, evaluation, seed) cell."""
    recipe_fields = {"epochs": epochs, "store": STORE, **RECIPES[recipe]}
    recipe_fields.pop("hard_negatives_of", None)
    fields: dict[str, Any] = dict(
        name=f"{recipe}-{evaluation}-s{seed}",
        bands=("B4", "B3", "B2"),
        patch_size=48,
        batch_size=32,
        seed=seed,
        split_seed=7,
        augment=True,
        tta=True,
        calibrate=True,
    )
    return ExperimentConfig(**{**fields, **recipe_fields, **EVALS[evaluation]})


def check_leak_free(run_dir: Path, eps_m: float = 3000.0) -> float:
    """Smallest distance (m) from a test point to a training point in the run's split; asserts > eps."""
    import pandas as pd

    from asgm.data.points import nearest_distance_m

    split = pd.read_csv(run_dir / "split.csv")
    train = split[split.split == "train"][["lon", "lat"]].to_numpy(float)
    test = split[split.split == "test"][["lon", "lat"]].to_numpy(float)
    d = float(nearest_distance_m(test, train).min())
    assert d > eps_m, f"{run_dir.name}: a test point is {d:.0f} m from a training point"
    return d


def run(recipes: list[str], evals: list[str], seeds: list[int], epochs: int) -> None:
    from asgm.model.runs import get_run
    from asgm.training.train import train

    ledger = models_dir() / LEDGER
    for evaluation in evals:
        for recipe in recipes:
            for seed in seeds:
                cfg = config_for(recipe, evaluation, seed, epochs)
                first = RECIPES[recipe].get("hard_negatives_of")
                if first:
                    cfg = cfg.model_copy(update={"hard_negatives_from": first_pass(first, evaluation, seed, epochs)})
                t0 = time.perf_counter()
                run_id = train(cfg)
                info = get_run(run_id)
                row = {
                    "recipe": recipe,
                    "eval": evaluation,
                    "seed": seed,
                    "run_id": run_id,
                    "status": info.status,
                    "wall_s": round(time.perf_counter() - t0, 1),
                    "min_test_train_m": check_leak_free(info.path),
                }
                print(json.dumps(row), flush=True)
                ledger.parent.mkdir(parents=True, exist_ok=True)
                with open(ledger, "a", encoding="utf-8") as f:  # one short line: several runners may append
                    f.write(json.dumps(row) + "\n")


def first_pass(recipe: str, evaluation: str, seed: int, epochs: int) -> str:
    """The completed run of (recipe, evaluation, seed) recorded in the ledger, trained first when there is none:
    the first pass whose false positives a hard-negative recipe up-weights."""
    from asgm.model.runs import RunError, get_run

    for attempt in range(2):
        ledger = models_dir() / LEDGER
        lines = ledger.read_text().splitlines() if ledger.exists() else []
        for row in reversed([json.loads(x) for x in lines if x.strip()]):
            if (row["recipe"], row["eval"], row["seed"], row["status"]) == (recipe, evaluation, seed, "completed"):
                try:
                    get_run(row["run_id"])
                    return str(row["run_id"])
                except RunError:
                    continue
        if attempt == 0:
            run([recipe], [evaluation], [seed], epochs)
    raise RuntimeError(f"the first pass {recipe} / {evaluation} / seed {seed} did not complete")


def _cells(m: dict[str, Any], part: str | None, posthoc: str | None) -> dict[str, Any]:
    if posthoc:
        return (m.get("posthoc") or {}).get(posthoc) or {}
    if part:
        return (m.get("parts") or {}).get(part) or {}
    return m


def part_threshold_view(run_id: str, part: str = "bolivar") -> dict[str, Any]:
    """Diagnostic: the part's test metrics with the threshold tuned on the part's own validation rows
    (instead of the whole validation split), from the run's predictions.csv."""
    from asgm.data.store import PatchStore
    from asgm.model.runs import get_run, predictions
    from asgm.training.evaluate import best_threshold, metrics_on_test
    from asgm.training.scoring import PART_SETS

    info = get_run(run_id)
    sets = PatchStore.open(info.config.store).index().set_index("sample_id")["set"]
    p = predictions(run_id)
    p = p[p["sample_id"].map(sets).isin(PART_SETS[part])]
    val, test = p[p["split"] == "val"], p[p["split"] == "test"]
    t, _ = best_threshold(val["label"].to_numpy(), val["prob"].to_numpy())
    return metrics_on_test(
        test["label"].to_numpy(), test["prob"].to_numpy(), t, clusters=test["cluster"].to_numpy(), n_boot=1000
    )


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """mean ± sd over seeds per (recipe, eval, view) with the mean cluster-bootstrap CI of F1."""
    from asgm.model.runs import get_run

    out = []
    keys = sorted({(r["recipe"], r["eval"]) for r in rows}, key=lambda k: (k[1], list(RECIPES).index(k[0])))
    for recipe, evaluation in keys:
        runs = [r for r in rows if r["recipe"] == recipe and r["eval"] == evaluation and r["status"] == "completed"]
        metrics = [(r, get_run(r["run_id"]).metrics or {}) for r in runs]
        views = [
            ("test", None, None),
            ("test, no calibration", None, "no_calibration"),
            ("test, no TTA", None, "no_tta"),
        ]
        if evaluation == "spatial":
            views[1:1] = [("Bolívar part", "bolivar", None), ("Bolívar part, own val threshold", "bolivar", "own")]
        elif evaluation == "loro-venezuela":  # Bolívar is all in test here: no part of validation to tune on
            views[1:1] = [("Bolívar part", "bolivar", None)]
        for view, part, posthoc in views:
            if posthoc == "own":
                cells = [part_threshold_view(r["run_id"], part) for r, _ in metrics]
            else:
                cells = [_cells(m, part, posthoc) for _, m in metrics]
            cells = [c for c in cells if c.get("f1") is not None]
            if not cells:
                continue
            row: dict[str, Any] = {
                "recipe": recipe,
                "eval": evaluation,
                "view": view,
                "seeds": [r["seed"] for r, _ in metrics],
                "runs": [r["run_id"] for r, _ in metrics],
            }
            for k in ("f1", "precision", "recall", "pr_auc", "precision_at_recall_0.9", "ece"):
                v = np.array([c.get(k) for c in cells], float)
                row[k] = [float(np.nanmean(v)), float(np.nanstd(v, ddof=1)) if len(v) > 1 else float("nan")]
            ci = np.array([c.get("f1_ci_cluster") or [np.nan, np.nan] for c in cells], float)
            ci = ci[np.isfinite(ci).all(axis=1)]  # post-hoc views are scored without a bootstrap
            row["f1_ci_cluster_mean"] = [float(ci[:, 0].mean()), float(ci[:, 1].mean())] if len(ci) else [np.nan] * 2
            row["n_test"] = int(cells[0].get("n") or 0)
            row["train_s"] = float(np.mean([m.get("train_seconds", np.nan) for _, m in metrics]))
            out.append(row)
    return out


def by_group(rows: list[dict[str, Any]], column: str = "year") -> list[dict[str, Any]]:
    """Diagnostic: per (recipe, eval, group, class) the test chips, mean probability and the share called
    mining at each run's threshold — mean ± sd over seeds, from the runs' predictions.csv. ``column`` is a
    column of the store's index: 'year' (imagery year) or 'set'."""
    from asgm.data.store import PatchStore
    from asgm.model.runs import get_run, predictions

    out = []
    for recipe, evaluation in sorted({(r["recipe"], r["eval"]) for r in rows}):
        runs = [r for r in rows if r["recipe"] == recipe and r["eval"] == evaluation and r["status"] == "completed"]
        if not runs:
            continue
        groups = PatchStore.open(get_run(runs[0]["run_id"]).config.store).index().set_index("sample_id")[column]
        per = []
        for r in runs:
            p = predictions(r["run_id"])
            p = p[p["split"] == "test"]
            p = p.assign(group=p["sample_id"].map(groups))
            per.append(
                p.groupby(["group", "label"]).agg(n=("prob", "size"), prob=("prob", "mean"), called=("pred", "mean"))
            )
        for key in per[0].index:
            called = np.array([g.loc[key, "called"] for g in per if key in g.index], float)
            prob = np.array([g.loc[key, "prob"] for g in per if key in g.index], float)
            out.append(
                {
                    "recipe": recipe,
                    "eval": evaluation,
                    column: key[0],
                    "label": int(key[1]),
                    "n": int(per[0].loc[key, "n"]),
                    "seeds": len(called),
                    "mean_prob": [float(prob.mean()), float(prob.std(ddof=1)) if len(prob) > 1 else np.nan],
                    "called_mining": [float(called.mean()), float(called.std(ddof=1)) if len(called) > 1 else np.nan],
                }
            )
    return out


def format_by_group(rows: list[dict[str, Any]], column: str = "year") -> str:
    """A markdown table of ``by_group``."""

    def ms(v: list[float]) -> str:
        return f"{v[0]:.3f} ± {v[1]:.3f}" if np.isfinite(v[1]) else f"{v[0]:.3f}"

    lines = [
        f"| recipe | evaluation | {'imagery year' if column == 'year' else column} | class | test chips | seeds | mean probability | "  # noqa: E501
        "share called mining |",
        "|" + "---|" * 8,
    ]
    for r in rows:
        cls = "mining" if r["label"] else "not mining"
        lines.append(
            f"| {r['recipe']} | {r['eval']} | {r[column]} | {cls} | {r['n']} | {r['seeds']} | "
            f"{ms(r['mean_prob'])} | {ms(r['called_mining'])} |"
        )
    return "\n".join(lines)


def format_rows(rows: list[dict[str, Any]]) -> str:
    """A markdown table of the aggregate."""

    def ms(v: list[float]) -> str:
        return f"{v[0]:.3f} ± {v[1]:.3f}" if np.isfinite(v[1]) else f"{v[0]:.3f}"

    head = (
        "| recipe | evaluation | view | seeds | n test | F1 (mean ± sd) | F1 95 % CI (cluster, mean) | precision | "
        "recall | PR-AUC | precision @ recall 0.9 | ECE |"
    )
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        lo, hi = r["f1_ci_cluster_mean"]
        ci = f"[{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) else "–"
        lines.append(
            f"| {r['recipe']} | {r['eval']} | {r['view']} | {len(r['seeds'])} | {r['n_test']} | {ms(r['f1'])} | "
            f"{ci} | {ms(r['precision'])} | {ms(r['recall'])} | {ms(r['pr_auc'])} | "
            f"{ms(r['precision_at_recall_0.9'])} | {ms(r['ece'])} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train recipes x evaluations x seeds")
    r.add_argument("--recipes", default="detector-full")
    r.add_argument("--evals", default="spatial,caroni")
    r.add_argument("--seeds", default="7,1,2")
    r.add_argument("--epochs", type=int, default=EPOCHS)
    rep = sub.add_parser("report", help="aggregate the runs recorded so far")
    rep.add_argument("--json", action="store_true")
    rep.add_argument(
        "--by",
        choices=("year", "set"),
        help="diagnostic: test chips by imagery year or by set, and class (share called mining)",
    )
    args = ap.parse_args()
    if args.cmd == "run":
        run(args.recipes.split(","), args.evals.split(","), [int(s) for s in args.seeds.split(",")], args.epochs)
        return
    ledger = models_dir() / LEDGER
    rows = [json.loads(x) for x in ledger.read_text().splitlines() if x.strip()] if ledger.exists() else []
    if args.by:
        groups = by_group(rows, args.by)
        print(json.dumps(groups, indent=2, default=str) if args.json else format_by_group(groups, args.by))
        return
    agg = aggregate(rows)
    print(json.dumps(agg, indent=2) if args.json else format_rows(agg))


if __name__ == "__main__":
    main()
