"""``asgm demo``: build the embedded real demo pack, or the Amazon training pack (parts 1 and 2) on top of it."""

from __future__ import annotations

import argparse
import sys

from asgm.cli import add_command, command_group


def register(sub: argparse._SubParsersAction) -> None:
    group = command_group(sub, "demo", "the real demo pack (Earth Genome's Sentinel-2 RGB chips of Bolívar)")
    b = add_command(
        group,
        "build",
        "cut the chip galleries into a patch store (offline with ASGM_DATA_MIRROR): "
        "'demo' (Bolívar, 2019), with --pack amazon the store 'amazon' (demo + Amazon pack, 2019-2025), "
        "with --pack amazon2 the store 'amazon2' (those + part 2: hard negatives, 2019 mines)",
        _build,
        _human,
    )
    b.add_argument(
        "--pack",
        choices=("demo", "amazon", "amazon2"),
        default="demo",
        help="demo: 491 Bolívar chips; amazon: those plus 2,910 chips across the Amazon; amazon2: those "
        "plus part 2's 3,817 chips, in a store of its own so 'amazon' and the runs trained on it stay "
        "as they are (default demo)",
    )
    add_command(
        group,
        "prepare",
        "the app's first start: build the demo store if missing, launch the small default "
        "model's training unless a trained model exists, and fetch OSM for the demo store when Overpass "
        "answers (then rasterize it and train an RGB + OSM model)",
        _prepare,
        lambda r: r["done"],
    )


def _prepare(args: argparse.Namespace) -> dict:
    from asgm.jobs.runner import report_progress
    from asgm.training import first_start

    def report(message: str) -> None:
        report_progress(message=message)  # a no-op outside a background job
        if not args.json:
            print(message, file=sys.stderr)

    return {"done": first_start.prepare_demo(report)}


def _build(args: argparse.Namespace) -> dict:
    from asgm.sources import amazon, demo

    pack = getattr(args, "pack", "demo")
    store = (amazon.build_part2 if pack == "amazon2" else amazon.build if pack == "amazon" else demo.build)(
        progress=not args.json
    )
    report = store.summary()
    excluded = store.meta.extra.get("excluded_rows")
    if excluded:
        report["excluded_rows"] = {name: len(rows) for name, rows in excluded.items()}
    return report


def _human(r: dict) -> str:
    sets = ", ".join(f"{k} {v}" for k, v in r["by_set"].items())
    text = f"{r['name']} pack: {r['patches']} patches ({sets}) in {r['root']}"
    if r.get("excluded_rows"):
        kept = ", ".join(f"{k} {v}" for k, v in r["excluded_rows"].items())
        text += f"\nRows kept for independent evaluation, not cut: {sum(r['excluded_rows'].values())} ({kept})"
    return text + "\nCredits: " + " ".join(r["credits"])
