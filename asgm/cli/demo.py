"""``asgm demo``: build the embedded real demo pack, or the Amazon training pack on top of it."""

from __future__ import annotations

import argparse
import sys

from asgm.cli import add_command, command_group


def register(sub: argparse._SubParsersAction) -> None:
    group = command_group(sub, "demo", "the real demo pack (Earth Genome's Sentinel-2 RGB chips of Bolívar)")
    b = add_command(group, "build", "cut the chip galleries into a patch store (offline with ASGM_DATA_MIRROR): "
                    "'demo' (Bolívar, 2019), or with --pack amazon the store 'amazon' (demo + Amazon pack, 2019-2025)",
                    _build, _human)
    b.add_argument("--pack", choices=("demo", "amazon"), default="demo",
                   help="demo: 491 Bolívar chips; amazon: those plus 2,910 chips across the Amazon (default demo)")
    add_command(group, "prepare", "the app's first start: build the demo store if missing, launch the small default "
                "model's training unless a trained model exists, and fetch OSM for the demo store when Overpass "
                "answers (then rasterize it and train an RGB + OSM model)", _prepare, lambda r: r["done"])


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

    module = amazon if getattr(args, "pack", "demo") == "amazon" else demo
    return module.build(progress=not args.json).summary()


def _human(r: dict) -> str:
    sets = ", ".join(f"{k} {v}" for k, v in r["by_set"].items())
    return f"{r['name']} pack: {r['patches']} patches ({sets}) in {r['root']}\nCredits: " + " ".join(r["credits"])
