"""``asgm synthetic``: write a seeded SYNTHETIC patch store (tests, benchmarks, offline fallback)."""

from __future__ import annotations

import argparse

from asgm.cli import add_command, command_group


def register(sub: argparse._SubParsersAction) -> None:
    group = command_group(sub, "synthetic", "generate a SYNTHETIC 12-band store with OSM vectors (not real imagery)")
    b = add_command(group, "build", "write the store", _build,
                    lambda r: f"SYNTHETIC store {r['name']}: {r['patches']} patches in {r['root']}")
    b.add_argument("--name", default="synthetic", help="store name (default: synthetic)")
    b.add_argument("--positives", type=int, default=60, help="mining scenes")
    b.add_argument("--negatives", type=int, default=120, help="curated-style negatives (a third hard negatives)")
    b.add_argument("--random", type=int, default=0, help="random-style negatives")
    b.add_argument("--size", type=int, default=48, help="patch size in pixels (48 or 256 in the study)")
    b.add_argument("--seed", type=int, default=0)


def _build(args: argparse.Namespace) -> dict:
    from asgm.sources import synthetic

    store = synthetic.build_store(args.name, args.positives, args.negatives, args.random, args.size, args.seed,
                                  progress=not args.json)
    return store.summary()
