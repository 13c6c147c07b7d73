"""Region-scan speed and memory (issue 12 targets), on SYNTHETIC mosaics with known mine sites.

Three figures, each beside a reference measured in the same run:

1. throughput: ``asgm.scan.scan`` at 48 px / stride 24 on a cached local mosaic, end to end to
   GeoJSON (reading, input scaling, window gathering, model, threshold, polygons, COG), in windows/s,
   against the bare batched model forward pass (same tf.function, same batch size) on windows already
   in memory. Target >= 1,000 windows/s on 2 cores; the ratio shows what the scan adds.
2. memory: a fresh process scans a 50 x 50 km area (5,000 x 5,000 px mosaic); its peak RSS against
   its RSS once the model is loaded (TensorFlow alone), for two tile sizes. Target <= 2 GB: memory is
   bounded by the tile size, not the area.
3. Dask: the same scan as (1) on a LocalCluster of 2 single-threaded worker processes vs this process
   (TensorFlow free to use both cores). Cluster start and model loading on the workers are excluded.

The model is the study's CNN with fixed weights (``tests/scan_support.py``): speed does not depend on
the weights. The machine is shared: other load only ever slows things down, so the best of
``--repeat`` runs is reported.

    python benchmarks/scan_speed.py                   # all three (~5-10 min)
    python benchmarks/scan_speed.py --skip-memory --size-px 1024
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

LON, LAT = -61.8, 6.4


def _aoi(path: Path):
    import rasterio
    from rasterio.warp import transform_bounds
    from shapely.geometry import box

    with rasterio.open(path) as src:
        return box(*transform_bounds(src.crs, "EPSG:4326", *src.bounds)).buffer(-0.001)


def _bare_forward(run_id: str, n: int, batch: int, repeat: int) -> float:
    """Windows/s of the forward pass alone on in-memory batches (the reference)."""
    import numpy as np

    from asgm import scan

    spec = scan.load_run(run_id).spec
    fwd = scan.forward_fn(spec)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 0.4, (batch, 48, 48, 12)).astype(np.float32)
    fwd(x)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(max(1, n // batch)):
            fwd(x)
        best = min(best, time.perf_counter() - t0)
    return max(1, n // batch) * batch / best


def _scan_rate(run_id: str, mosaic: Path, out: Path, repeat: int, **kw) -> tuple[float, dict]:
    from asgm import scan

    best, summary = float("inf"), {}
    for k in range(repeat):
        t0 = time.perf_counter()
        summary = scan.scan(_aoi(mosaic), 2021, run_id, out / f"r{k}", source=str(mosaic), **kw)
        best = min(best, time.perf_counter() - t0)
    return summary["windows_scored"] / best, summary


def _memory_child(args: argparse.Namespace) -> None:
    """Runs in a fresh process: load the model, note RSS, scan, print peak RSS as JSON."""
    from asgm import scan

    spec = scan.load_run(args.run_id).spec
    scan.forward_fn(spec)
    base = _rss_mb()
    t0 = time.perf_counter()
    s = scan.scan(_aoi(Path(args.mosaic)), 2021, args.run_id, args.out, source=args.mosaic,
                  tile_windows=args.tile_windows)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"base_mb": base, "peak_mb": peak, "windows": s["windows_scored"], "km2": s["aoi_area_km2"],
                      "seconds": time.perf_counter() - t0, "detections": s["detections"]}))


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-px", type=int, default=2048, help="throughput mosaic side in px (default 2048)")
    ap.add_argument("--memory-km", type=float, default=50.0, help="memory test area side in km (default 50)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-dask", action="store_true")
    ap.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--run-id", help=argparse.SUPPRESS)
    ap.add_argument("--mosaic", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--tile-windows", type=int, default=32, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        _memory_child(args)
        return

    tmp = Path(tempfile.mkdtemp(prefix="asgm-scan-bench-"))
    os.environ["ASGM_MODELS_DIR"] = str(tmp / "models")
    os.environ["ASGM_DATA_DIR"] = str(tmp / "data")
    from scan_support import detector_run

    from asgm.sources.synthetic_mosaic import write_mosaic

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared: figures are lower bounds)")
    run_id = detector_run()
    t0 = time.perf_counter()
    m = write_mosaic(tmp / "mosaic.tif", LON, LAT, size_px=args.size_px, n_mines=max(2, args.size_px // 400), seed=1)
    print(f"SYNTHETIC mosaic {args.size_px} px ({args.size_px / 100:.1f} km) written in {time.perf_counter() - t0:.1f} s")

    # 1. throughput
    bare = _bare_forward(run_id, 8192, 256, args.repeat)
    _scan_rate(run_id, m.path, tmp / "warm", 1, tile_windows=8)  # page cache + graph warm-up
    rate, s = _scan_rate(run_id, m.path, tmp / "single", args.repeat)
    print(f"[1] bare forward pass (batch 256):     {bare:8.0f} windows/s")
    print(f"[1] scan end to end to GeoJSON:        {rate:8.0f} windows/s  ({s['windows_scored']} windows, "
          f"{s['detections']} detections)  ratio {rate / bare:.2f} of the bare pass  (target >= 1,000/s)")

    # 3. Dask
    if not args.skip_dask:
        from distributed import Client

        from asgm.cluster import dask_client

        with dask_client("local", workers=2) as client:
            assert isinstance(client, Client)
            _scan_rate(run_id, m.path, tmp / "dwarm", 1, scheduler=client, tile_windows=8)  # models onto workers
            drate, _ = _scan_rate(run_id, m.path, tmp / "dask", args.repeat, scheduler=client)
        print(f"[3] Dask LocalCluster 2 workers x 1 thread: {drate:8.0f} windows/s  vs 1 process {rate:.0f}/s  "
              f"speed-up {drate / rate:.2f}x")

    # 2. memory (fresh processes)
    if not args.skip_memory:
        side = int(args.memory_km * 100)
        t0 = time.perf_counter()
        big = write_mosaic(tmp / "big.tif", LON, LAT, size_px=side, n_mines=40, seed=2)
        print(f"[2] SYNTHETIC {args.memory_km:g} x {args.memory_km:g} km mosaic ({side} px, "
              f"{big.path.stat().st_size / 1e9:.2f} GB on disk) written in {time.perf_counter() - t0:.0f} s")
        for tw in (16, 32):
            cmd = [sys.executable, __file__, "--memory-child", "--run-id", run_id, "--mosaic", str(big.path),
                   "--out", str(tmp / f"mem{tw}"), "--tile-windows", str(tw)]
            res = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
            if res.returncode:
                print(res.stderr[-2000:])
                continue
            r = json.loads(res.stdout.strip().splitlines()[-1])
            print(f"[2] tile {tw} x {tw} windows: peak RSS {r['peak_mb']:.0f} MB (model loaded: {r['base_mb']:.0f} MB; "
                  f"scan adds {r['peak_mb'] - r['base_mb']:.0f} MB) for {r['km2']:.0f} km², {r['windows']} windows in "
                  f"{r['seconds']:.0f} s ({r['windows'] / r['seconds']:.0f}/s)  (target <= 2,048 MB)")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
