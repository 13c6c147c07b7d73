"""``asgm points``: the labelled point sets."""

from __future__ import annotations

import argparse
from pathlib import Path

from asgm.cli import CommandError, add_command, command_group


def register(sub: argparse._SubParsersAction) -> None:
    group = command_group(sub, "points", "the study's labelled points")
    summ = add_command(
        group,
        "summary",
        "counts per set and label",
        _summary,
        lambda r: "\n".join([f"{k:10s} {v}" for k, v in r["by_set"].items()] + [f"{'total':10s} {r['total']}"]),
    )
    summ.add_argument(
        "--sets",
        nargs="+",
        default=["positives", "curated", "random"],
        help="point sets to load (positives, curated, random)",
    )

    rnd = add_command(
        group,
        "random",
        "draw random negatives by the study's method and record the exact list",
        _random,
        lambda r: (
            f"{r['n']} random negatives written to {r['path']} "
            f"(boundary: {r['boundary']}, min distance to a positive {r['min_distance_m']:.0f} m)"
        ),
    )
    rnd.add_argument("--seed", type=int, default=42, help="random seed (default 42, as the study)")
    rnd.add_argument("--n", type=int, default=None, help="how many (default 5 x positives)")
    rnd.add_argument("--spacing", type=float, default=2560.0, help="grid spacing in metres (default 2560)")
    rnd.add_argument("--min-distance", type=float, default=2560.0, help="minimum distance to any positive, metres")
    rnd.add_argument(
        "--boundary",
        choices=["osm", "extent"],
        default="osm",
        help="osm: Bolívar from OpenStreetMap (needs network, cached); extent: extent of the labelled points",
    )
    rnd.add_argument(
        "--out", type=Path, default=None, help="output GeoJSON (default data/points/random_seed<SEED>.geojson)"
    )


def _summary(args: argparse.Namespace) -> dict:
    from asgm.data import points

    return points.summary(points.load_points(args.sets))


def _random(args: argparse.Namespace) -> dict:
    from asgm.data import boundary, points

    pos = points.load_points(["positives"])
    if args.boundary == "osm":
        try:
            area, used = boundary.bolivar(), "OpenStreetMap: Bolívar, Venezuela"
        except boundary.BoundaryUnavailable as exc:
            raise CommandError(str(exc)) from None
    else:
        area, used = boundary.extent_of(points.load_points()), "extent of the labelled points (offline fallback)"
    gdf = points.random_negatives(
        area,
        pos,
        n=args.n,
        spacing_m=args.spacing,
        min_distance_m=args.min_distance,
        seed=args.seed,
        prefix=f"gen{args.seed}",
    )
    out = points.save_random_negatives(gdf, args.seed, args.out)
    d = points.nearest_distance_m(gdf[["lon", "lat"]].to_numpy(), pos[["lon", "lat"]].to_numpy())
    return {"n": len(gdf), "path": str(out), "seed": args.seed, "boundary": used, "min_distance_m": float(d.min())}
