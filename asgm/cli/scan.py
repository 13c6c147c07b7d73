"""``asgm scan``: region scans of an area of interest with a trained run, and change between two years."""

from __future__ import annotations

import argparse
from typing import Any

from asgm.cli import add_command, add_prior_args, command_group, prior_from_args


def register(sub: argparse._SubParsersAction) -> None:
    from asgm.scan import area as scan_area
    from asgm.scan import tiles as scan_tiles

    group = command_group(sub, "scan", "scan an area for mining with a trained run (probability COG + detections)")
    r = add_command(group, "run", "scan an area of interest for one year", _run, _human_run)
    r.add_argument("--aoi", required=True, help="GeoJSON polygon file, or a bbox 'west,south,east,north' in degrees")
    r.add_argument("--year", type=int, required=True, help="composite year (the mosaic's year for --source PATH)")
    r.add_argument("--run", required=True, help="id of a completed run trained on bands only (`asgm runs list`)")
    r.add_argument(
        "--source",
        required=True,
        help="a local GeoTIFF/COG mosaic path, 'stac' (Earth Search, no account) or 'gee' (Earth Engine)",
    )
    r.add_argument("--stac-url", default=None, help="another STAC API for --source stac")
    r.add_argument("--out", required=True, help="output folder (reused to resume the same scan)")
    r.add_argument("--stride", type=int, default=None, help="window step in pixels (default: half the window)")
    r.add_argument("--high", type=float, default=None, help="high threshold (default: the run's tuned threshold)")
    r.add_argument(
        "--low", type=float, default=None, help="low threshold next to confirmed windows (default 0.6 x high)"
    )
    r.add_argument(
        "--tile-windows",
        type=int,
        default=scan_tiles.DEFAULT_TILE_WINDOWS,
        help=f"windows per tile side; memory grows with it (default {scan_tiles.DEFAULT_TILE_WINDOWS})",
    )
    r.add_argument("--batch-size", type=int, default=scan_tiles.DEFAULT_BATCH, help="windows per model call")
    r.add_argument(
        "--max-masked",
        type=float,
        default=scan_tiles.DEFAULT_MAX_MASKED,
        help=f"skip windows with a larger share of masked pixels (default {scan_tiles.DEFAULT_MAX_MASKED})",
    )
    r.add_argument("--max-area-km2", type=float, default=scan_area.DEFAULT_MAX_AREA_KM2, help="refuse larger areas")
    r.add_argument(
        "--scheduler",
        default="local",
        help="'local' (a Dask LocalCluster, default), 'none' (this process) or tcp://HOST:8786",
    )
    r.add_argument("--workers", type=int, default=2, help="workers of the local cluster (default 2)")
    r.add_argument("--overwrite", action="store_true", help="replace another scan found in --out")
    add_prior_args(r)
    d = add_command(
        group, "diff", "new / gone / persistent detections between two scans of the same area", _diff, _human_diff
    )
    d.add_argument("a", help="folder of the earlier scan")
    d.add_argument("b", help="folder of the later scan")
    d.add_argument("--out", default=None, help="write change.geojson and change.json here")


def _run(args: argparse.Namespace) -> dict[str, Any]:
    from tqdm import tqdm

    from asgm.jobs.runner import report_progress
    from asgm.scan import driver

    bar: list[Any] = []

    def progress(done: int, total: int) -> None:
        report_progress(done, total, "tiles scanned")  # the app's job panel, when run as a job
        if args.json:
            return
        if not bar:
            bar.append(tqdm(total=total, initial=done, desc="tiles", unit="tile"))
        bar[0].n = done
        bar[0].refresh()

    scheduler = None if args.scheduler in ("none", "") else args.scheduler
    try:
        options = driver.ScanOptions(
            source=args.source,
            stac_url=args.stac_url,
            stride=args.stride,
            high=args.high,
            low=args.low,
            tile_windows=args.tile_windows,
            max_masked=args.max_masked,
            max_area_km2=args.max_area_km2,
            spatial_prior=prior_from_args(args),
        )
        return driver.scan(
            args.aoi,
            args.year,
            args.run,
            args.out,
            options,
            batch_size=args.batch_size,
            scheduler=scheduler,
            workers=args.workers,
            progress=progress,
            overwrite=args.overwrite,
        )
    finally:
        if bar:
            bar[0].close()


def _human_run(r: dict[str, Any]) -> str:
    label = "SYNTHETIC imagery: " if r["synthetic"] else ""
    t = r["thresholds"]
    lines = [
        f"{label}{r['detections']} detection(s), {r['detected_area_ha']:.1f} ha, in {r['aoi_area_km2']:.1f} km² "
        f"({r['year']}, run {r['run_id']})",
        f"windows: {r['windows_scored']} scored, {r['windows_masked']} skipped as masked; masked pixels "
        f"{100 * (r['masked_pixel_fraction'] or 0):.1f} % of the area",
        f"thresholds: high {t['high']:.3f} ({t['high_from']}), low {t['low']:.3f} ({t['low_from']})",
        f"files: {r['files']['detections']}, {r['files']['probability']}",
    ]
    if "spatial_prior" in r:
        sp = r["spatial_prior"]
        lines.insert(
            3,
            f"spatial prior: {sp['candidates']} candidate window(s), {sp['isolated']} isolated, "
            f"{sp['dropped_isolated']} dropped as isolated below t_iso {sp['t_iso']:.2f}",
        )
    return "\n".join(lines + [f"warning: {w}" for w in r["warnings"]])


def _diff(args: argparse.Namespace) -> dict[str, Any]:
    from asgm.scan import change as scan_change

    return scan_change.diff_scans(args.a, args.b, args.out)


def _human_diff(r: dict[str, Any]) -> str:
    label = "SYNTHETIC imagery: " if r["synthetic"] else ""
    return (
        f"{label}{r['year_a']} -> {r['year_b']}: new {r['new_ha']:.1f} ha ({r['new_count']}), gone "
        f"{r['gone_ha']:.1f} ha ({r['gone_count']}), persistent {r['persistent_ha']:.1f} ha "
        f"({r['persistent_count']}), unknown (masked in one year) {r['unknown_ha']:.1f} ha"
    )
