"""``asgm patches``: fetch real Sentinel-2 patches (Earth Engine or STAC) and list a store's index."""

from __future__ import annotations

import argparse
from typing import Any

from asgm.cli import CommandError, add_json_flag


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("patches", help="fetch real Sentinel-2 patches into a patch store (Earth Engine or STAC)")
    s = p.add_subparsers(dest="patches_command", metavar="SUBCOMMAND", required=True)

    f = s.add_parser(
        "fetch",
        help="fetch patches for a point set (resumable: patches already stored are skipped)",
        description=(
            "Fetch one Sentinel-2 median composite per point on an exact 10 m UTM grid centred on the point. "
            "--source gee: the study's recipe (Level-1C, Cloud Score+), needs an Earth Engine project and "
            "credentials (docs/sources.md). --source stac: Element84 Earth Search (Level-2A, SCL mask), no account."
        ),
    )
    f.add_argument(
        "--source", choices=("gee", "stac"), required=True, help="gee = Earth Engine (L1C); stac = Earth Search (L2A)"
    )
    f.add_argument(
        "--points",
        action="append",
        metavar="SET",
        help="point set(s): positives, curated, random (the study's), eg-positives, eg-negatives (the "
        "demo's Earth Genome points); repeat or comma-separate for several",
    )
    f.add_argument(
        "--points-file",
        metavar="FILE",
        help="your own points instead: GeoJSON FeatureCollection of Points or CSV with lon, lat, and a "
        "'label' column (1 = mining, 0 = not)",
    )
    f.add_argument(
        "--size", type=int, choices=(48, 256), default=48, help="patch size in pixels (10 m each); default 48"
    )
    f.add_argument("--start", default=None, help="first date, YYYY-MM-DD (default 2021-01-01)")
    f.add_argument("--end", default=None, help="end date, exclusive, YYYY-MM-DD (default 2022-01-01)")
    f.add_argument("--store", default=None, help="patch store name (default: <source>-<size>, e.g. gee-48)")
    f.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N points (in sample_id order)")
    f.add_argument("--workers", type=int, default=4, metavar="N", help="requests in flight at once (default 4)")
    f.add_argument(
        "--clear-threshold",
        type=float,
        default=None,
        metavar="X",
        help="gee: Cloud Score+ cs_cdf needed for a clear pixel (default 0.75, the study's)",
    )
    f.add_argument(
        "--stac-url",
        default=None,
        metavar="URL",
        help="stac: STAC API root (default $ASGM_STAC_URL or https://earth-search.aws.element84.com/v1)",
    )
    f.add_argument(
        "--max-scenes",
        type=int,
        default=40,
        metavar="N",
        help="stac: use at most the N least cloudy scenes per point (default 40; 0 = all)",
    )
    f.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_json_flag(f)
    f.set_defaults(handler=_fetch, human=_human_fetch)

    ls = s.add_parser("list", help="list a patch store's index (one row per patch)")
    ls.add_argument("--store", required=True, help="patch store name (see data/stores/)")
    add_json_flag(ls)
    ls.set_defaults(handler=_list, human=_human_list)

    ck = s.add_parser(
        "check",
        help="verify a store's files against its index (exit 1 when a patch is unusable)",
        description="Check every patch of a store: file present, a readable GeoTIFF of the store's size, "
        "dtype and bands, and its masked share recomputed from the pixels; the index complete "
        "(rows, columns, the count in store.json). Training runs the same check first.",
    )
    ck.add_argument("--store", required=True, help="patch store name (or folder)")
    ck.add_argument("--no-pixels", action="store_true", help="headers only (fast): skip reading the pixels")
    add_json_flag(ck)
    ck.set_defaults(handler=_check, human=_human_check)


def _point_sets(values: list[str]) -> list[str]:
    sets = [v.strip() for value in values for v in value.split(",") if v.strip()]
    return list(dict.fromkeys(sets))


def _fetch(args: argparse.Namespace) -> dict[str, Any]:
    from asgm.data.points import read_labelled_points
    from asgm.sources import make_source
    from asgm.sources.common import fetch_to_store, store_meta

    if bool(args.points) == bool(args.points_file):
        raise CommandError("give the points with either --points SET or --points-file FILE")
    if args.limit is not None and args.limit < 1:
        raise CommandError("--limit must be at least 1")
    if args.workers < 1 or args.workers > 32:
        raise CommandError("--workers must be between 1 and 32")
    if args.source == "gee" and args.stac_url:
        raise CommandError("--stac-url only applies to --source stac")
    if args.source == "stac" and args.clear_threshold is not None:
        raise CommandError("--clear-threshold only applies to --source gee (STAC masks clouds with SCL)")
    source = make_source(
        args.source,
        args.size,
        args.start,
        args.end,
        clear_threshold=args.clear_threshold,
        stac_url=args.stac_url,
        max_scenes=args.max_scenes,
    )
    points = read_labelled_points(args.points_file) if args.points_file else _point_sets(args.points)

    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=0, unit="patch", desc=f"{source.name} -> {store_meta(source, args.store).name}", disable=None)

    from asgm.jobs.runner import report_progress

    def progress(done: int, total: int) -> None:
        report_progress(done, total, f"patches from {source.name}")
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.refresh()

    try:
        return fetch_to_store(source, points, args.store, workers=args.workers, limit=args.limit, progress=progress)
    finally:
        if bar is not None:
            bar.close()


def _human_fetch(r: dict[str, Any]) -> str:
    lines = [
        f"store {r['store']} ({r['source']}, {r['product_level']}): {r['written_count']} written, "
        f"{r['skipped']} already stored, {r['failed_count']} failed, of {r['requested']} points in {r['seconds']:.1f} s",  # noqa: E501
    ]
    for sid, msg in sorted(r["failed"].items()):
        lines.append(f"  failed {sid}: {msg}")
    if r["masked_fraction"]:
        worst = sorted(r["masked_fraction"].items(), key=lambda kv: -kv[1])[:5]
        lines.append("  most masked: " + ", ".join(f"{k} {v:.0%}" for k, v in worst))
    lines.append(f"  {r['store_root']}")
    return "\n".join(lines)


def _list(args: argparse.Namespace) -> dict[str, Any]:
    from asgm.data.store import PatchStore
    from asgm.data.store_check import check_store

    store = PatchStore.open(args.store)
    df = store.index()
    # A cheap look at every file (present, readable header, size and bands; no pixels): a listing must not
    # show patches that cannot be used as if they were fine. `asgm patches check` also reads the pixels.
    check = check_store(store, pixels=False)
    return {
        "summary": store.summary(),
        "extra": store.meta.extra,
        "patches": df.to_dict(orient="records"),
        "ok": check.ok,
        "problems": check.problems,
        "store_problems": check.store_problems,
    }


def _human_list(r: dict[str, Any]) -> str:
    s = r["summary"]
    head = (
        f"{s['name']}: {s['patches']} patches, source {s['source']}, {s['product_level']}, {s['size']} px, "
        f"{s['date_start']}..{s['date_end']}"
    )
    bad = r.get("problems", {})
    rows = [
        f"{p['sample_id']:12s} {p['set']:10s} label={p['label']} lon={p['lon']:.5f} lat={p['lat']:.5f} "
        f"EPSG:{p['epsg']} masked={float(p['masked_fraction']):.1%}"
        + (f"  UNUSABLE: {bad[p['sample_id']]}" if p["sample_id"] in bad else "")
        for p in r["patches"]
    ]
    tail = [*r.get("store_problems", [])]
    if bad:
        tail.append(f"{len(bad)} unusable patch(es); `asgm patches check --store {s['name']}` for details")
    return "\n".join([head, *rows, *tail])


def _check(args: argparse.Namespace) -> dict[str, Any]:
    from tqdm import tqdm

    from asgm.data.store import PatchStore
    from asgm.data.store_check import check_store

    store = PatchStore.open(args.store)
    with tqdm(total=len(store), unit="patch", desc=f"check {store.name}", disable=None, leave=False) as bar:
        report = check_store(store, pixels=not args.no_pixels, progress=lambda done, total: bar.update(1))
    return report.as_dict()


def _human_check(r: dict[str, Any]) -> str:
    lines = [f"store {r['store']}: {r['checked']} patches checked, {len(r['problems'])} unusable"]
    lines += [f"  {p}" for p in r["store_problems"]]
    lines += [f"  {msg}" for msg in r["problems"].values()]
    for sid, m in r["masked_mismatch"].items():
        lines.append(
            f"  patch {sid!r}: index says {m['index']:.1%} masked, the pixels {m['pixels']:.1%} "
            "(training uses the pixels)"
        )
    if not r["ok"]:
        lines.append("re-fetch or rebuild the patches above (`asgm patches fetch` skips those already stored)")
    return "\n".join(lines)
