"""``asgm osm``: fetch OSM features (osmnx/Overpass, cached), rasterize them onto a patch store, coverage."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from asgm.cli import CommandError, add_json_flag
from asgm.config import OSM_LAYERS

if TYPE_CHECKING:
    from asgm.data.store import PatchStore


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "osm",
        help="OpenStreetMap context layers: fetch, rasterize, coverage",
        description="OpenStreetMap context layers (© OpenStreetMap contributors, ODbL).",
    )
    osm_sub = p.add_subparsers(dest="osm_command", metavar="SUBCOMMAND", required=True)

    f = osm_sub.add_parser(
        "fetch",
        help="fetch OSM features for an area or a store's patches (cached, resumable)",
        description="Fetch the OSM keys highway, waterway, building, landuse, aeroway with osmnx from Overpass "
        "(or from a local OSM XML file) and cache them as GeoParquet under data/osm/. A re-run reads "
        "the cache; an interrupted fetch resumes.",
    )
    where = f.add_mutually_exclusive_group(required=True)
    where.add_argument("--area", metavar="NAME", help="named area: 'bolivar' (boundary from OSM, needs network once)")
    where.add_argument(
        "--bbox", nargs=4, type=float, metavar=("WEST", "SOUTH", "EAST", "NORTH"), help="lon/lat bounding box"
    )
    where.add_argument("--polygon", metavar="FILE", help="vector file of polygon(s) (GeoJSON, GeoPackage, ...)")
    where.add_argument(
        "--store", metavar="NAME", help="footprints of the patches of a patch store (batched small queries)"
    )
    where.add_argument("--xml", metavar="FILE", help="a local OSM XML file instead of Overpass")
    f.add_argument(
        "--date",
        default="auto",
        metavar="DATE",
        help="OSM snapshot date YYYY-MM-DD (Overpass [date:...]); 'current' for today's OSM; default 'auto': "
        "the end of the store's imagery period with --store, else current",
    )
    f.add_argument(
        "--keys",
        nargs="+",
        default=list(OSM_LAYERS),
        choices=OSM_LAYERS,
        metavar="KEY",
        help=f"OSM keys to fetch (default: all of {', '.join(OSM_LAYERS)})",
    )
    f.add_argument(
        "--runway-points",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add Earth Genome's OSM runway points as aeroway=runway (default: only for current snapshots, "
        "as that file is undated)",
    )
    f.add_argument("--refresh", action="store_true", help="ignore the cache and fetch again")
    f.add_argument(
        "--retries", type=int, default=4, help="retries per Overpass request after the first try (default 4)"
    )
    f.add_argument(
        "--backoff",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="first retry delay, doubled at each retry (default 5)",
    )
    f.add_argument("--timeout", type=int, default=180, metavar="SECONDS", help="Overpass request timeout (default 180)")
    f.add_argument(
        "--overpass-url",
        metavar="URL",
        help="Overpass API base URL (default $ASGM_OVERPASS_URL or https://overpass-api.de/api)",
    )
    f.add_argument("--cell-deg", type=float, default=0.25, help="area queries: one request per cell of this size (deg)")
    f.add_argument(
        "--batch-deg",
        type=float,
        default=0.1,
        help="--store: patches whose centres share a cell of this size (deg) share one request",
    )
    f.add_argument("--pad", type=float, default=100.0, metavar="METRES", help="--store: margin around each patch")
    add_json_flag(f)
    f.set_defaults(handler=_fetch, human=_fetch_human)

    r = osm_sub.add_parser(
        "rasterize",
        help="rasterize OSM vectors onto every patch of a store",
        description="Burn OSM vectors onto the exact grid of each patch (its GeoTIFF's CRS, transform, shape), one "
        "binary channel per key in the fixed order " + ", ".join(OSM_LAYERS) + ". Lines and points are "
        "buffered (default 5 m half-width = one 10 m pixel) and burnt with all_touched, so they stay "
        "unbroken. The recipe is recorded in the store's osm.json.",
    )
    r.add_argument("--store", required=True, metavar="NAME", help="patch store name (or folder)")
    r.add_argument(
        "--vectors",
        metavar="FILE",
        help="OSM vectors to use (default: the synthetic store's osm_vectors.parquet, else the newest "
        "`asgm osm fetch --store NAME` cache)",
    )
    r.add_argument(
        "--layers",
        nargs="+",
        default=list(OSM_LAYERS),
        choices=OSM_LAYERS,
        metavar="KEY",
        help="channels to make (kept in the fixed order)",
    )
    r.add_argument(
        "--buffer",
        type=float,
        default=5.0,
        metavar="METRES",
        help="half-width buffer for lines and points (default 5; 0 = none, as in the study)",
    )
    r.add_argument(
        "--all-touched",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="burn every pixel a feature touches (default) rather than pixel centres only",
    )
    r.add_argument(
        "--exclude",
        action="append",
        metavar="KEY=VALUE[,VALUE]",
        help="leave tag values out of a channel, e.g. landuse=quarry (repeatable)",
    )
    r.add_argument(
        "--include",
        action="append",
        metavar="KEY=VALUE[,VALUE]",
        help="keep only these tag values in a channel, e.g. highway=primary,secondary (repeatable)",
    )
    r.add_argument(
        "--force",
        action="store_true",
        help="write even when the vectors put no feature on any patch (replacing existing masks)",
    )
    add_json_flag(r)
    r.set_defaults(handler=_rasterize, human=_rasterize_human)

    c = osm_sub.add_parser(
        "coverage",
        help="share of patches with OSM, per class and key; tag-value frequencies",
        description="Share of patches with at least one OSM feature, per class (or set) and per key, over all "
        "patches of the class; and the most frequent tag values per class.",
    )
    c.add_argument("--store", required=True, metavar="NAME", help="patch store name (or folder)")
    c.add_argument(
        "--by", choices=("label", "set"), default="label", help="group by class label (default) or point set"
    )
    c.add_argument("--no-tag-values", action="store_true", help="skip tag-value frequencies")
    c.add_argument("--top", type=int, default=10, help="tag values listed per key and group (default 10)")
    add_json_flag(c)
    c.set_defaults(handler=_coverage, human=_coverage_human)


class _Bar:
    """A tqdm bar on stderr driven by (done, total) callbacks."""

    def __init__(self, desc: str, unit: str) -> None:
        from tqdm import tqdm

        self._tqdm, self.desc, self.unit = tqdm, desc, unit
        self.bar: Any = None

    def __call__(self, done: int, total: int, *_: Any) -> None:
        from asgm.jobs.runner import report_progress

        report_progress(done, total, self.desc)  # the app's job panel, when run as a job
        if self.bar is None:
            self.bar = self._tqdm(total=total, desc=self.desc, unit=self.unit, leave=False)
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _open_store(name: str) -> PatchStore:
    from asgm.data.store import PatchStore

    return PatchStore.open(name)


def _fetch(args: argparse.Namespace) -> dict[str, Any]:
    from asgm.osm import fetch as F
    from asgm.osm import local_xml
    from asgm.osm import queries as Q

    if args.retries < 0 or args.timeout <= 0 or args.backoff < 0:
        raise CommandError("--retries and --backoff must be >= 0 and --timeout > 0")
    bar = _Bar("OSM requests", "req")
    try:
        if args.xml:
            if args.date not in ("auto", "current"):
                raise CommandError("--date applies to Overpass queries; an OSM XML file is what it is (drop --date)")
            result = local_xml.fetch_xml(
                args.xml, keys=args.keys, runway=bool(args.runway_points), refresh=args.refresh
            )
        else:
            if args.area:
                query = Q.area_query(args.area, cell_deg=args.cell_deg)
            elif args.bbox:
                west, south, east, north = args.bbox
                query = Q.bbox_query(west, south, east, north, cell_deg=args.cell_deg)
            elif args.polygon:
                query = Q.polygon_query(args.polygon, cell_deg=args.cell_deg)
            else:
                query = Q.store_query(_open_store(args.store), pad_m=args.pad, batch_deg=args.batch_deg)
            result = F.fetch(
                query,
                keys=args.keys,
                date=args.date,
                runway=args.runway_points,
                refresh=args.refresh,
                retries=args.retries,
                backoff_s=args.backoff,
                timeout_s=args.timeout,
                overpass_url=args.overpass_url,
                progress=bar,
            )
    finally:
        bar.close()
    return result.report()


def _fetch_human(r: dict[str, Any]) -> str:
    counts = ", ".join(f"{k} {v:,}" for k, v in r["counts"].items())
    if r["cached"]:
        how = "read from cache"
    elif r.get("source") == "osm_xml":
        how = f"read from {r['query']['file']}"
    else:
        how = f"fetched ({r['requests']} Overpass request(s))"
    return (
        f"{r['features']:,} OSM features {how}: {counts}\n"
        f"snapshot date: {r.get('snapshot_date') or 'unknown'}; runway points added: {r['runway_points']['added']}\n"
        f"saved to {r['path']}\n{r['credit']}"
    )


def _rasterize(args: argparse.Namespace) -> dict[str, Any]:
    from asgm.osm.rasterize import RasterizeOptions, parse_filters, rasterize_store

    options = RasterizeOptions(
        layers=tuple(args.layers),
        buffer_m=args.buffer,
        all_touched=args.all_touched,
        exclude=parse_filters(args.exclude),
        include=parse_filters(args.include),
    )
    store = _open_store(args.store)
    bar = _Bar(f"rasterize {store.name}", "patch")
    try:
        info = rasterize_store(store, vectors=args.vectors, options=options, progress=bar, force=args.force)
    finally:
        bar.close()
    return {"store": store.name, **info}


def _rasterize_human(r: dict[str, Any]) -> str:
    per = ", ".join(f"{k} {v}" for k, v in r["patches_per_layer"].items())
    return (
        f"store {r['store']}: OSM masks for {r['patches']} patches ({r['patches_with_any']} with any feature; {per})\n"
        f"layers {', '.join(r['layers'])}; buffer {r['buffer_m']} m; all_touched {r['all_touched']}; "
        f"filters {r['filters']}; snapshot {r.get('snapshot_date') or 'unknown'}\nvectors: {r['source_cache']}"
    )


def _coverage(args: argparse.Namespace) -> dict[str, Any]:
    from asgm.osm.coverage import coverage_report

    if args.top < 1:
        raise CommandError("--top must be at least 1")
    return coverage_report(_open_store(args.store), by=args.by, tag_values=not args.no_tag_values, top=args.top)


def _coverage_human(r: dict[str, Any]) -> str:
    lines = [f"OSM coverage of store {r['store']} (share of all patches of each {r['by']})"]
    for group, g in r["groups"].items():
        keys = "  ".join(f"{k} {v['share']:.1%} ({v['patches_with']})" for k, v in g.get("keys", {}).items())
        lines.append(f"  {group} (n={g.get('patches', '?')}): {keys}")
        for key, vals in (g.get("tag_values") or {}).items():
            top = ", ".join(f"{v['value']} {v['patches']}{' [excluded]' if v['excluded'] else ''}" for v in vals[:5])
            lines.append(f"      {key}: {top}")
    if r.get("tag_values_error"):
        lines.append(f"  (tag values unavailable: {r['tag_values_error']})")
    return "\n".join(lines)
