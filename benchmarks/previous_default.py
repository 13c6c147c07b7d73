"""The shipped default against the one it replaced, on the same held-out chips (issue 21).

The two were trained on different splits of different stores (``amazon`` and ``amazon2``), so neither's test
split is unseen by the other. This scores both on the chips that are: the current default's ``amazon2``
test chips more than 3 km from every chip the previous default trained or validated on. Reported for all of
them, for the part-2 chips among them and for the ``amazon``-store chips, each model at its own threshold,
PR-AUC with a 95 % cluster-bootstrap CI (the current split's 3 km clusters).

    git worktree add /tmp/previous 6b33eb8      # the commit before the new default landed
    ASGM_DATA_MIRROR=../shared/data python benchmarks/previous_default.py --previous /tmp/previous/models

Needs the ``amazon2`` store (``asgm demo build --pack amazon2``). Writes benchmarks/results/previous_default.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RUN = "detector-default"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--previous", required=True, help="a models folder holding the previous detector-default")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    import pandas as pd

    from asgm.data.points import nearest_distance_m
    from asgm.data.store import PatchStore
    from asgm.errors import AsgmError
    from asgm.model import inference
    from asgm.sources import amazon
    from asgm.training.evaluate import metrics_on_test

    current = REPO / "models" / RUN
    previous = Path(args.previous) / RUN
    if not (previous / "split.csv").is_file() or not (previous / "metrics.json").is_file():
        parser.error(f"{previous} is not a run folder with split.csv and metrics.json; see --help for how to get it")
    try:
        store = PatchStore.open(amazon.STORE_NAME2)
    except AsgmError as exc:
        parser.error(str(exc))
    idx = store.index().set_index("sample_id")
    preds = pd.read_csv(current / "predictions.csv", dtype={"sample_id": str})
    test = preds[preds["split"] == "test"]
    old_split = pd.read_csv(previous / "split.csv", dtype={"sample_id": str})
    seen = idx.loc[idx.index.intersection(old_split.loc[old_split["split"] != "test", "sample_id"])]
    far = nearest_distance_m(test[["lon", "lat"]].to_numpy(), seen[["lon", "lat"]].to_numpy()) > 3000.0
    common = test[far].assign(part2=lambda d: d["sample_id"].map(idx["set"]).isin({s.name for s in amazon.SETS2}))
    os.environ["ASGM_MODELS_DIR"] = str(Path(args.previous))
    inference.clear_cache()
    old = inference.predict_store(RUN, store, sample_ids=list(common["sample_id"]), progress=False)
    common = common.merge(old[["sample_id", "probability"]], on="sample_id")

    thresholds = {
        "current": float(json.loads((current / "metrics.json").read_text())["threshold"]),
        "previous": float(json.loads((previous / "metrics.json").read_text())["threshold"]),
    }

    def figures(sub: pd.DataFrame, prob: str, who: str) -> dict:
        m = metrics_on_test(sub["label"].to_numpy(), sub[prob].to_numpy(), thresholds[who], sub["cluster"].to_numpy())
        return {
            "threshold": m["threshold"],
            "f1": m["f1"],
            "negatives_called_mining": m["fp"] / (m["fp"] + m["tn"]),
            "recall": m["recall"],
            "pr_auc": m["pr_auc"],
            "pr_auc_ci_cluster": m["pr_auc_ci_cluster"],
        }

    out: dict = {"previous": args.previous, "current": str(current.relative_to(REPO))}
    for name, sub in (("all", common), ("part 2", common[common.part2]), ("amazon store", common[~common.part2])):
        out[name] = {
            "chips": len(sub),
            "mines": int(sub["label"].sum()),
            "current": figures(sub, "prob", "current"),
            "previous": figures(sub, "probability", "previous"),
        }
    (REPO / "benchmarks" / "results" / "previous_default.json").write_text(json.dumps(out, indent=2) + "\n")
    if args.json:
        print(json.dumps(out, indent=2))
        return
    for name in ("all", "part 2", "amazon store"):
        r = out[name]
        for who in ("current", "previous"):
            f = r[who]
            lo, hi = f["pr_auc_ci_cluster"]
            print(
                f"{name} ({r['chips']} chips, {r['mines']} mines), {who}: F1 {f['f1']:.3f}, negatives called mining "
                f"{f['negatives_called_mining']:.1%}, recall {f['recall']:.3f}, PR-AUC {f['pr_auc']:.3f} "
                f"[{lo:.3f}, {hi:.3f}]"
            )


if __name__ == "__main__":
    main()
