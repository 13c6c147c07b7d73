"""``asgm stats``: how much mining lies inside each territory, country or boundary of a file, per period."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from asgm.cli import CommandError, add_json_flag


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stats",
        help="mined and detected area per place and period (territories, countries, any boundary file)",
        description="Count detections inside boundaries: each detection's area is apportioned by the share of its "
        "polygon inside a boundary (equal-area projection), per period, new and cumulative. Writes a tidy CSV "
        "(boundary_id, name, country, type, status, period, new_mined_ha, cumulative_mined_ha, new_footprint_ha, "
        "cumulative_footprint_ha, n_detections, ...). Tables are cached by the inputs' sha256.",
    )
    p.add_argument(
        "--detections",
        default="amw",
        help="'amw' (Amazon Mining Watch's yearly layers 2018-2025Q3, default), a scan folder or a folder "
        "of scans (`asgm scan run --out`), or a polygon file (GeoJSON, GeoPackage, zipped Shapefile, "
        "KML; columns 'Mined area (ha)' and 'period'/'year' used when present)",
    )
    p.add_argument(
        "--boundaries",
        required=True,
        help="'territories' (AMW's 237 indigenous territories with mining), 'countries' (9 countries + "
        "the whole basin AMAZ), 'basin', or a polygon file (GeoJSON, GeoPackage, zipped Shapefile, KML)",
    )
    p.add_argument(
        "--periods",
        default=None,
        help="periods to list: a range '2018..2025Q3' (ends optional) or a list '2024,2025Q2' (default all)",
    )
    p.add_argument("--name-column", default=None, help="column of a boundary file holding the place names")
    p.add_argument("--out", required=True, help="CSV file to write (one row per place and period)")
    p.add_argument("--geojson", default=None, help="also write the boundaries with their totals as GeoJSON")
    p.add_argument("--kml", default=None, help="also write the boundaries with their totals as KML (Google Earth)")
    p.add_argument("--force", action="store_true", help="replace output files that exist")
    p.add_argument("--no-cache", action="store_true", help="compute again even if the table is cached")
    add_json_flag(p)
    p.set_defaults(handler=_stats, human=_human)


def _stats(args: argparse.Namespace) -> dict[str, Any]:
    from asgm.cli.predict import check_out
    from asgm.places import boundaries, detections, export, stats

    outs = [Path(x) for x in (args.out, args.geojson, args.kml) if x]
    if len(set(o.resolve() for o in outs)) < len(outs):
        raise CommandError("--out, --geojson and --kml must be different files")
    for out in outs:
        check_out(out, args.force)
    if args.name_column and args.boundaries.strip().lower() in boundaries.KINDS:
        raise CommandError(f"--name-column is for a boundary file; {args.boundaries} has its own names")
    dsrc = detections.detection_source(args.detections)
    bsrc = boundaries.boundary_source(args.boundaries, args.name_column)
    result = stats.place_stats(dsrc, bsrc, use_cache=not args.no_cache)
    rows = result.rows(args.periods)  # a bad --periods is refused before anything is written
    files = {"table": str(outs[0])}
    payload = [(outs[0], export.table_csv(rows))]
    if args.geojson or args.kml:
        gdf = export.with_totals(result, bsrc.load(), args.periods)
        if args.geojson:
            payload.append((Path(args.geojson), export.geojson_bytes(gdf, result)))
            files["geojson"] = args.geojson
        if args.kml:
            payload.append((Path(args.kml), export.kml_bytes(gdf, result)))
            files["kml"] = args.kml
    for path, data in payload:
        path.parent.mkdir(parents=True, exist_ok=True)
        export.write(path, data)
    top = result.totals(args.periods).head(10)
    report = result.summary(args.periods)
    report["files"] = files
    report["rows"] = len(rows)
    report["top"] = [
        {k: (None if v != v else v) for k, v in r.items()}  # NaN -> null
        for r in top[["boundary_id", "name", "country", "new_mined_ha", "new_footprint_ha", "n_detections"]]
        .round(3)
        .to_dict("records")
    ]
    return report


def _human(r: dict[str, Any]) -> str:
    label = "SYNTHETIC: " if r["synthetic"] else ""
    periods = r["periods"]
    span = f"{periods[0]}..{periods[-1]}" if len(periods) > 1 else periods[0]
    lines = [
        f"{label}{r['detections']} x {r['boundaries']}: {r['places']} place(s), {r['places_with_mining']} with "
        f"detections, periods {span} ({'cached' if r['cached'] else 'computed'} in {r['seconds']:.2f} s)"
    ]
    measure = "new_mined_ha" if "mined" in r["measures"] else "new_footprint_ha"
    lines.append(f"top places by {measure} over {span}:")
    for t in r["top"]:
        lines.append(
            f"  {t['name']} ({t['boundary_id']}{', ' + t['country'] if t['country'] else ''}): "
            f"{t[measure] or 0:,.1f} ha, {t['n_detections']} detection(s)"
        )
    lines += [f"note: {n}" for n in r["notes"]]
    lines.append("files: " + ", ".join(f"{k} {v}" for k, v in r["files"].items()))
    lines.append("credits: " + " ".join(r["credits"]))
    return "\n".join(lines)
