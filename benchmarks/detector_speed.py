"""Inference speed of a run's full recipe (``asgm.model.inference.source_logits``), batched, on a real store.

Prints chips/s for the run as configured (TTA on or off as the run says), with TTA forced off, and —
the same-run reference — the study's CNN (untrained weights, same input pipeline, no TTA). Patches
are read from the store's GeoTIFFs into RAM once up front, so the figures are model + recipe cost.

    python benchmarks/detector_speed.py --run detector-default --store demo
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="detector-default")
    ap.add_argument("--store", default="demo")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from asgm.data.store import PatchStore
    from asgm.model import runs
    from asgm.model.cnn import build_model
    from asgm.model.inference import source_logits
    from asgm.model.inputs import PatchSource

    info = runs.get_run(args.run)
    store = PatchStore.open(args.store)
    source = PatchSource(store, info.config, store.sample_ids(), cache_limit_mb=512)
    source.warm()
    n = len(source.sample_ids)
    model = runs.load_model(args.run)
    study = build_model(info.config.patch_size, len(info.config.channels), seed=0)

    def rate(m, cfg) -> float:
        source_logits(m, source, cfg, args.batch_size)  # warm-up: graph tracing, allocations
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            source_logits(m, source, cfg, args.batch_size)
            best = min(best, time.perf_counter() - t0)
        return n / best

    plain = info.config.model_copy(update={"tta": False})
    out = {
        "run": args.run,
        "store": args.store,
        "chips": n,
        "batch_size": args.batch_size,
        "recipe_chips_per_s": rate(model, info.config),
        "tta": info.config.tta,
        "no_tta_chips_per_s": rate(model, plain),
        "study_cnn_chips_per_s": rate(study, plain),
    }
    out["no_tta_vs_study_cnn"] = out["no_tta_chips_per_s"] / out["study_cnn_chips_per_s"]
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()}, indent=2))


if __name__ == "__main__":
    main()
