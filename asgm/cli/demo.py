"""``asgm demo``: build the embedded real demo pack."""

from __future__ import annotations

import argparse

from asgm.cli import add_json_flag


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the real demo pack (Earth Genome's Sentinel-2 RGB chips of Bolívar)")
    s = p.add_subparsers(dest="demo_command", metavar="SUBCOMMAND", required=True)
    b = s.add_parser("build", help="cut the chip galleries into the patch store 'demo' (offline with ASGM_DATA_MIRROR)")
    add_json_flag(b)
    b.set_defaults(handler=_build, human=_human)


def _build(args: argparse.Namespace) -> dict:
    from asgm.sources import demo

    return demo.build(progress=not args.json).summary()


def _human(r: dict) -> str:
    sets = ", ".join(f"{k} {v}" for k, v in r["by_set"].items())
    return f"demo pack: {r['patches']} patches ({sets}) in {r['root']}\nCredits: " + " ".join(r["credits"])
