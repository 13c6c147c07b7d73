"""``asgm synthetic``: write a seeded SYNTHETIC patch store (tests, benchmarks, offline fallback)."""

from __future__ import annotations

import argparse

from asgm.cli import add_command, command_group


def register(sub: argparse._SubParsersAction) -> None:
    group = command_group(sub, "synthetic", "generate a SYNTHETIC 12-band store with OSM vectors (not real imagery)")
    b = add_command(
        group,
        "build",
        "write the store",
        _build,
        lambda r: f"SYNTHETIC store {r['name']}: {r['patches']} patches in {r['root']}",
    )
    b.add_argument("--name", default="synthetic", help="store name (default: synthetic)")
    b.add_argument("--positives", type=int, default=60, help="mining scenes")
    b.add_argument("--negatives", type=int, default=120, help="curated-style negatives (a third hard negatives)")
    b.add_argument("--random", type=int, default=0, help="random-style negatives")
    b.add_argument("--size", type=int, default=48, help="patch size in pixels (48 or 256 in the study)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument(
        "--overwrite",
        action="store_true",
        help="rebuild an existing SYNTHETIC store of that name (a store of real patches is never overwritten)",
    )
    m = add_command(
        group,
        "mosaic",
        "write a SYNTHETIC 12-band mosaic GeoTIFF with known mine sites (for `asgm scan`)",
        _mosaic,
        lambda r: f"SYNTHETIC mosaic {r['path']} ({r['size_px']} px, {r['mines']} mine sites in {r['mines_path']})",
    )
    m.add_argument("--out", required=True, help="GeoTIFF path to write")
    m.add_argument("--lon", type=float, default=-61.8, help="centre longitude (default -61.8)")
    m.add_argument("--lat", type=float, default=6.4, help="centre latitude (default 6.4)")
    m.add_argument("--size-px", type=int, default=1024, help="pixels per side at 10 m (default 1024)")
    m.add_argument("--mines", type=int, default=4, help="mine sites to draw (default 4)")
    m.add_argument("--year", type=int, default=2021, help="year recorded in the tags (default 2021)")
    m.add_argument("--seed", type=int, default=0)


def _build(args: argparse.Namespace) -> dict:
    from asgm.sources import synthetic

    store = synthetic.build_store(
        args.name,
        args.positives,
        args.negatives,
        args.random,
        args.size,
        args.seed,
        progress=not args.json,
        overwrite=args.overwrite,
    )
    return store.summary()


def _mosaic(args: argparse.Namespace) -> dict:
    from asgm.sources.synthetic_mosaic import write_mosaic

    m = write_mosaic(args.out, args.lon, args.lat, args.size_px, args.mines, args.seed, args.year)
    return {
        "path": str(m.path),
        "size_px": m.size,
        "epsg": m.epsg,
        "mines": len(m.mines),
        "mines_path": str(m.mines_path),
        "synthetic": True,
    }
