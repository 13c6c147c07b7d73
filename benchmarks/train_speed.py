"""Training speed and peak memory: this project's tf.data pipeline against the study's recipe.

Measured in one run, each mode in its own fresh process (so peak RSS is that mode's alone), on
synthetic patches (random DN, 12 bands + 5 OSM masks = 17 channels) written to a temporary store:

- ``pipeline``: ``asgm.dataset`` streaming tf.data with D4 augmentation (Keras layers), batch 16;
- ``plain``:    the same pipeline without augmentation (the floor augmentation is compared to);
- ``study``:    the study's recipe: every patch loaded into one float32 array, then
  ``model.fit(ImageDataGenerator(rotation 360, shifts, shear, zoom, flips).flow(x, y))`` — whose
  batch size is the generator default 32, as actually ran (spec §4, B6).

Targets (issue 3): pipeline epoch within 10 % of plain, >= 2x faster than study; peak memory at
256 px x 1,259 patches <= 2.5 GB. The default run is short (48 px, 160 patches); use
``--sizes 48,256 --patches 1259`` for the full figures. Epoch time is the fastest of the epochs after
the first (which includes graph building and cache warm-up); other load on the machine only adds time.

    python benchmarks/train_speed.py                       # ~1-2 min
    python benchmarks/train_speed.py --sizes 48,256 --patches 1259 --epochs 3   # the full figures
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

OSM = ("highway", "waterway", "building", "landuse", "aeroway")


def build_store(root: Path, size: int, n: int, seed: int = 0) -> str:
    """A synthetic 12-band + 5-mask store of ``n`` patches (half positives) under ``root``."""
    from asgm.config import S2_BANDS
    from asgm.grid import patch_grid
    from asgm.store import Patch, PatchStore, StoreMeta

    rng = np.random.default_rng(seed)
    name = f"bench{size}"
    store = PatchStore.create(StoreMeta(name=name, source="synthetic", bands=S2_BANDS, size=size,
                                        product_level="synthetic", synthetic=True), root=root, overwrite=True)
    for i in range(n):
        label = i % 2
        lon, lat = -63.0 + 0.05 * (i % 40), 5.0 + 0.05 * (i // 40)
        data = rng.integers(500, 4000, (12, size, size), dtype=np.uint16)
        sid = f"{'pos' if label else 'neg'}-{i:05d}"
        store.write_patch(Patch(sid, label, "positives" if label else "curated", lon, lat,
                                patch_grid(lon, lat, size), data, S2_BANDS, source="synthetic"))
        store.write_osm(sid, (rng.random((5, size, size)) < 0.05).astype(np.uint8), OSM)
    store.write_osm_info({"layers": list(OSM)})
    return str(store.root)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run_mode(mode: str, store_path: str, size: int, epochs: int) -> dict:
    """Train ``epochs`` epochs in this process and report epoch times and peak RSS."""
    import keras

    from asgm.config import S2_BANDS, ExperimentConfig
    from asgm.dataset import PatchSource, augmenter, make_tf_dataset, select_rows
    from asgm.model import build_model, compile_model
    from asgm.store import PatchStore

    store = PatchStore.open(store_path)
    cfg = ExperimentConfig(store=store_path, bands=S2_BANDS, osm_layers=OSM, patch_size=size, batch_size=16)
    rows = select_rows(store, cfg)
    y = rows["label"].to_numpy().astype("float32")
    model = compile_model(build_model(size, 17, seed=0), cfg.learning_rate)
    times: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t)

    if mode in ("pipeline", "plain"):
        src = PatchSource(store, cfg, rows["sample_id"])
        aug = augmenter(cfg, 12, 0) if mode == "pipeline" else None
        ds = make_tf_dataset(src, y, cfg.batch_size, training=True, seed=0, augment=aug)
        model.fit(ds, epochs=epochs, callbacks=[Timer()], verbose=0, shuffle=False)
        batch = cfg.batch_size
    elif mode == "study":
        from keras.src.legacy.preprocessing.image import ImageDataGenerator

        src = PatchSource(store, cfg, rows["sample_id"], cache_limit_mb=0)
        x = src.load_batch(np.arange(len(rows)))  # the study's in-memory float32 array
        gen = ImageDataGenerator(rotation_range=360, width_shift_range=[0.9, 1.1], height_shift_range=[0.9, 1.1],
                                 shear_range=10, zoom_range=[0.9, 1.1], horizontal_flip=True, vertical_flip=True,
                                 fill_mode="reflect")
        model.fit(gen.flow(x, y), batch_size=16, epochs=epochs, callbacks=[Timer()], verbose=0, shuffle=True)
        batch = 32  # flow()'s default; the fit batch_size is ignored (B6)
    else:
        raise SystemExit(f"unknown mode {mode}")
    steady = times[1:] or times
    # Minimum, not mean: on a shared machine other processes only ever add time.
    return {"mode": mode, "size": size, "patches": len(rows), "batch": batch, "epoch_s": float(np.min(steady)),
            "first_epoch_s": times[0], "peak_rss_mb": _peak_mb()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="48", help="comma-separated patch sizes (48, 256)")
    ap.add_argument("--patches", type=int, default=160, help="patches per store (1259 for the full figure)")
    ap.add_argument("--epochs", type=int, default=4, help="epochs per mode (first one is not timed)")
    ap.add_argument("--modes", default="pipeline,plain,study")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--_child", nargs=4, metavar=("MODE", "STORE", "SIZE", "EPOCHS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._child:
        mode, store, size, epochs = args._child
        print("RESULT " + json.dumps(run_mode(mode, store, int(size), int(epochs))))
        return 0
    results = []
    with tempfile.TemporaryDirectory(prefix="asgm-bench-") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            t0 = time.perf_counter()
            store = build_store(Path(tmp), size, args.patches)
            print(f"[{size} px] wrote {args.patches} synthetic patches in {time.perf_counter() - t0:.0f} s",
                  file=sys.stderr)
            for mode in args.modes.split(","):
                env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
                out = subprocess.run([sys.executable, __file__, "--_child", mode, store, str(size), str(args.epochs)],
                                     capture_output=True, text=True, env=env, check=False)
                line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
                if line is None:
                    print(out.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f"mode {mode} at {size} px failed")
                res = json.loads(line[7:])
                results.append(res)
                print(f"[{size} px] {mode:8s} epoch {res['epoch_s']:7.2f} s  peak RSS {res['peak_rss_mb']:7.0f} MB  "
                      f"(batch {res['batch']})", file=sys.stderr)
    summary = []
    for size in sorted({r["size"] for r in results}):
        by = {r["mode"]: r for r in results if r["size"] == size}
        row = {"size": size, "patches": args.patches}
        if "pipeline" in by and "plain" in by:
            row["augment_overhead"] = by["pipeline"]["epoch_s"] / by["plain"]["epoch_s"] - 1
        if "pipeline" in by and "study" in by:
            row["speedup_vs_study"] = by["study"]["epoch_s"] / by["pipeline"]["epoch_s"]
        if "pipeline" in by:
            row["pipeline_peak_gb"] = by["pipeline"]["peak_rss_mb"] / 1024
        if "study" in by:
            row["study_peak_gb"] = by["study"]["peak_rss_mb"] / 1024
        summary.append(row)
    if args.json:
        print(json.dumps({"results": results, "summary": summary}, indent=2))
    else:
        for row in summary:
            parts = [f"{row['size']} px x {row['patches']} patches:"]
            if "augment_overhead" in row:
                parts.append(f"augmentation overhead {row['augment_overhead']:+.1%} (target <= +10%)")
            if "speedup_vs_study" in row:
                parts.append(f"speed-up vs study recipe {row['speedup_vs_study']:.2f}x (target >= 2x)")
            if "pipeline_peak_gb" in row:
                parts.append(f"peak memory {row['pipeline_peak_gb']:.2f} GB (study {row.get('study_peak_gb', float('nan')):.2f} GB)")
            print("  ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
