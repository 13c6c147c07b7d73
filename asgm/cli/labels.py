"""``asgm labels list | export | import | mark | queue | train``: the reviewed labels of this data folder
(``<data>/labels/labels.gpkg``, a GeoPackage QGIS opens) and training with them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from asgm.cli import CommandError, add_command, command_group


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kind", choices=("store", "scan", "amw"), help="only items of this kind of source")
    p.add_argument("--source", help="only items of this store, scan or AMW layer")


def register(sub: argparse._SubParsersAction) -> None:
    group = command_group(sub, "labels", "reviewed labels: list, export, import, mark, the review queue, train")
    ls = add_command(group, "list", "current labels (or every change with --history)", _list, _human_list)
    _filters(ls)
    ls.add_argument("--history", action="store_true", help="every change, oldest first, instead of current labels")

    ex = add_command(
        group,
        "export",
        "write the current labels as GeoJSON, CSV, KML or a GeoPackage copy",
        _export,
        lambda r: f"{r['labels']} label(s) written to {r['path']} ({r['format']})",
    )
    _filters(ex)
    ex.add_argument("--format", choices=("geojson", "csv", "kml", "gpkg"), help="default: from --out's extension")
    ex.add_argument("--out", type=Path, required=True, help="file to write")
    ex.add_argument("--force", action="store_true", help="replace an existing file")

    im = add_command(
        group,
        "import",
        "add labels from a GeoJSON, CSV, KML or GeoPackage file (all rows or none)",
        _import,
        lambda r: f"{r['rows']} row(s) read from {r['file']}: {r['written']} written, {r['unchanged']} already current",
    )
    im.add_argument("file", type=Path)
    im.add_argument("--reviewer", default="", help="reviewer for rows that name none")

    mk = add_command(
        group,
        "mark",
        "mark one item mining / not_mining / unsure",
        _mark,
        lambda r: f"{r['item']}: {r['label']}" + ("" if r["changed"] else " (already its current label)"),
    )
    where = mk.add_mutually_exclusive_group(required=True)
    where.add_argument("--store", help="a patch of this store (with --item SAMPLE_ID)")
    where.add_argument("--scan", help="a window of this scan (with --item I,J)")
    where.add_argument("--amw", metavar="LAYER", help="a detection of this AMW layer (with --item, --lon, --lat)")
    mk.add_argument("--item", required=True, help="sample id, scan window 'i,j' or AMW detection id")
    mk.add_argument("--label", required=True, help="mining, not_mining (or not) or unsure")
    mk.add_argument("--note", default="")
    mk.add_argument("--reviewer", default="")
    mk.add_argument("--run", dest="run_id", help="the run whose probability the reviewer saw")
    mk.add_argument("--probability", type=float, help="the probability the reviewer saw")
    mk.add_argument("--lon", type=float, help="AMW detections: longitude")
    mk.add_argument("--lat", type=float, help="AMW detections: latitude")
    mk.add_argument(
        "--year", type=int, help="AMW detections: the layer's year (the window `labels train --fetch` fetches)"
    )

    q = add_command(
        group, "queue", "the items of a store or scan still to review, in review order", _queue, _human_queue
    )
    qw = q.add_mutually_exclusive_group(required=True)
    qw.add_argument("--store", help="patches of this store, scored with --run")
    qw.add_argument("--scan", help="windows of this finished scan")
    q.add_argument("--run", dest="run_id", help="with --store: the run whose probabilities order the queue")
    q.add_argument(
        "--order",
        choices=("uncertain", "confident"),
        default="uncertain",
        help="uncertain: probability nearest the threshold first (default); confident: highest first",
    )
    q.add_argument("--head", type=int, default=10, help="how many next items to show (default 10)")

    from asgm.cli.training import human_with_labels, train_with_labels
    from asgm.data.labels import HOLDOUT_FRACTION
    from asgm.training.evaluate import N_BOOT

    t = add_command(
        group,
        "train",
        "train with my labels: the reviewed items join the parent run's training data "
        "(a new store version, a leak-free split) and the report compares before and after",
        train_with_labels,
        human_with_labels,
    )
    t.add_argument("--from-run", help="the run whose recipe and data to start from (default: the default run)")
    t.add_argument("--epochs", type=int, help="epochs (default: the parent run's)")
    t.add_argument(
        "--holdout-fraction",
        type=float,
        default=HOLDOUT_FRACTION,
        help=f"newest share of the reviewed items held out to measure them (default {HOLDOUT_FRACTION})",
    )
    t.add_argument(
        "--fetch",
        choices=("stac", "gee"),
        default=None,
        help="fetch the imagery of reviewed items with none here (Amazon Mining Watch detections) through "
        "Earth Search (stac) or Earth Engine (gee, needs credentials), as `asgm patches fetch` does: the "
        "store's patch size, the item's year; an item whose fetch fails is skipped and counted with why "
        "(default: off, such items are left out)",
    )
    t.add_argument("--run-id", help="train into this queued run folder (used by the background launcher)")
    t.add_argument("--bootstrap", type=int, default=N_BOOT, help=f"bootstrap resamples for the CIs (default {N_BOOT})")
    t.add_argument("--detach", action="store_true", help="start in the background and print the run id")


def _list(args: argparse.Namespace) -> dict[str, Any]:
    from asgm.data.labels import LabelStore

    store = LabelStore()
    if args.history:
        rows = store.history()
        rows = [
            r
            for r in rows
            if (not args.kind or r["source_kind"] == args.kind) and (not args.source or r["source"] == args.source)
        ]
    else:
        rows = store.current(args.kind, args.source)
    return {
        "path": str(store.path),
        "history": bool(args.history),
        "counts": store.counts(args.kind, args.source),
        "rows": rows,
    }


def _human_list(r: dict[str, Any]) -> str:
    lines = [
        f"{x['time'][:19]}  {x['label']:10s}  {x['item']}" + (f"  — {x['note']}" if x["note"] else "")
        for x in r["rows"]
    ]
    counts = ", ".join(f"{k} {v}" for k, v in r["counts"].items())
    return "\n".join(lines + [f"{len(r['rows'])} row(s) in {r['path']} (current: {counts})"])


def _export(args: argparse.Namespace) -> dict[str, Any]:
    from asgm.data.labels import EXPORT_FORMATS, LabelStore

    fmt = args.format or args.out.suffix.lower().lstrip(".")
    if fmt == "json":
        fmt = "geojson"
    if fmt not in EXPORT_FORMATS:
        raise CommandError(f"cannot tell the format of {args.out}; pass --format geojson, csv, kml or gpkg")
    if args.out.exists() and not args.force:
        raise CommandError(f"{args.out} exists; pass --force to replace it")
    store = LabelStore()
    path = store.export(fmt, args.out, args.kind, args.source)
    return {"path": str(path), "format": fmt, "labels": len(store.current(args.kind, args.source))}


def _import(args: argparse.Namespace) -> dict[str, Any]:
    from asgm.review.items import import_file

    return {"file": str(args.file), **import_file(args.file, reviewer=args.reviewer)}


def _mark(args: argparse.Namespace) -> dict[str, Any]:
    from asgm.review import items

    if args.store:
        item = items.store_item(args.store, args.item)
    elif args.scan:
        item = items.scan_item(args.scan, args.item)
    else:
        item = items.resolve("amw", args.amw, args.item, args.lon, args.lat, year=args.year)
    res = items.mark(
        item,
        args.label,
        note=args.note,
        run_id=args.run_id,
        probability=args.probability,
        reviewer=args.reviewer,
        via="cli",
    )
    return {"item": res.item, "label": res.label, "changed": res.changed, "history_fid": res.history_fid}


def _queue(args: argparse.Namespace) -> dict[str, Any]:
    from asgm.review import queue

    if args.store:
        if not args.run_id:
            raise CommandError("--store needs --run: the run whose probabilities order the queue")
        q = queue.store_queue(args.store, args.run_id, args.order)
    else:
        q = queue.scan_queue(args.scan, args.order)
    return q.summary(head=args.head)


def _human_queue(r: dict[str, Any]) -> str:
    head = (
        f"{r['source_kind']} {r['source']}: {r['done']} reviewed, {r['left']} left of {r['total']} "
        f"(order {r['order']}, threshold {r['threshold']:.3f})"
    )
    return "\n".join(
        [head]
        + [
            f"  {x['item_id']}  p={x['prob']:.4f}" if x["prob"] is not None else f"  {x['item_id']}  p=?"
            for x in r["next"]
        ]
    )
