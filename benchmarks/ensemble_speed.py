"""Cost of an ensemble in scans: the scan's forward function (``asgm.model.inference.CompiledModel`` +
``recipe_probabilities``, as ``asgm.scan.tiles.forward_fn`` runs it) for one net and for an ensemble of
``--members`` copies of it (``asgm.model.ensemble``: same arithmetic as that many distinct members), on the
real scene's 400 windows tiled to ``--windows``; measured in turn in the same run. Also the size of the
ensemble's model.keras. A copy of one net stands in for trained members: speed and size do not depend on
the weights.

    ASGM_DATA_MIRROR=../shared/data python benchmarks/ensemble_speed.py [--members 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", default="detector-default")
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--windows", type=int, default=4096)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("ASGM_MODELS_DIR", str(REPO / "models"))
    import numpy as np
    import real_scene

    from asgm.model import inference, runs
    from asgm.model.ensemble import build_ensemble_model
    from asgm.model.inputs import encode_bands

    info = runs.get_run(args.run)
    cfg, temp = info.config, inference.run_temperature(info.metrics)
    dn = real_scene.scene_dn()
    wins = np.stack([dn[:, r : r + 48, c : c + 48] for r, c in real_scene.window_origins(dn.shape[1])])
    x = np.ascontiguousarray(encode_bands(wins, cfg.encoding).transpose(0, 2, 3, 1))
    x = np.concatenate([x] * (args.windows // len(x) + 1))[: args.windows]
    single = runs.load_model(args.run)
    ens = build_ensemble_model([runs.load_model(args.run) for _ in range(args.members)])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        ens.save(path)
        ens_bytes = path.stat().st_size
    nets = {"single": inference.CompiledModel(single, batch=None), "ensemble": inference.CompiledModel(ens, batch=None)}

    def run(model) -> float:
        t0 = time.perf_counter()
        for s in range(0, len(x), args.batch_size):
            inference.recipe_probabilities(model, x[s : s + args.batch_size], cfg, temp)
        return time.perf_counter() - t0

    for m in nets.values():  # compile and warm up
        run(m)
    times: dict[str, list[float]] = {k: [] for k in nets}
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    for _ in range(args.repeats):
        for k, m in nets.items():  # in turn, so both see the same machine load
            times[k].append(run(m))
    cores = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    p_single = inference.recipe_probabilities(nets["single"], x[:256], cfg, temp)
    p_ens = inference.recipe_probabilities(nets["ensemble"], x[:256], cfg, temp)
    out = {
        "run": args.run,
        "members": args.members,
        "windows": len(x),
        "batch_size": args.batch_size,
        "single_windows_per_s": round(len(x) / min(times["single"]), 1),
        "ensemble_windows_per_s": round(len(x) / min(times["ensemble"]), 1),
        "ensemble_over_single": round(min(times["single"]) / min(times["ensemble"]), 3),
        "single_model_bytes": (info.path / "model.keras").stat().st_size,
        "ensemble_model_bytes": ens_bytes,
        "copies_agree_max_abs_diff": float(np.abs(p_single - p_ens).max()),
        "cores_used": round(cores, 2),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(
        f"scan forward pass, {out['windows']} real windows, batch {out['batch_size']}, {cores:.2f} cores used, "
        f"load {out['load_average']}: one net {out['single_windows_per_s']}/s, ensemble of {args.members} "
        f"{out['ensemble_windows_per_s']}/s ({out['ensemble_over_single']:.2f} x); model.keras "
        f"{out['single_model_bytes'] / 1e6:.2f} MB -> {out['ensemble_model_bytes'] / 1e6:.2f} MB; copies of one net "
        f"agree with it to {out['copies_agree_max_abs_diff']:.1e}"
    )


if __name__ == "__main__":
    main()
