"""``asgm demo``: build the embedded real demo pack."""

from __future__ import annotations

import argparse

from asgm.cli import add_command, command_group


def register(sub: argparse._SubParsersAction) -> None:
    group = command_group(sub, "demo", "the real demo pack (Earth Genome's Sentinel-2 RGB chips of Bolívar)")
    add_command(group, "build", "cut the chip galleries into the patch store 'demo' (offline with ASGM_DATA_MIRROR)",
                _build, _human)


def _build(args: argparse.Namespace) -> dict:
    from asgm.sources import demo

    return demo.build(progress=not args.json).summary()


def _human(r: dict) -> str:
    sets = ", ".join(f"{k} {v}" for k, v in r["by_set"].items())
    return f"demo pack: {r['patches']} patches ({sets}) in {r['root']}\nCredits: " + " ".join(r["credits"])
