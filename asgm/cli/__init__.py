"""The ``asgm`` command: argument parsing only; every subcommand calls into the ``asgm`` modules.

Each ``asgm.cli.<name>`` module has ``register(subparsers)`` adding its commands; a command's
handler gets the parsed args and returns a JSON-able report (printed with ``--json``) or None.

May import: every core package (it is the top, beside ``asgm.app``, which it never imports).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from asgm.errors import AsgmError

#: Subcommand modules, in the order ``asgm --help`` lists them.
COMMAND_MODULES = [
    "data",
    "points",
    "demo",
    "synthetic",
    "patches",
    "osm",
    "training",
    "ensemble",
    "predict",
    "scan",
    "stats",
    "labels",
    "jobs",
]


class CommandError(AsgmError):
    """A bad combination of command-line arguments: printed as one line, exit status 1."""


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")


def add_prior_args(parser: argparse.ArgumentParser) -> None:
    """``--spatial-prior`` and its settings (``asgm.model.spatial_prior``; defaults: Earth Genome's)."""
    from asgm.model.spatial_prior import AMONG, SpatialPrior

    d = SpatialPrior()
    parser.add_argument(
        "--spatial-prior",
        action="store_true",
        help="decide with the dual threshold with isolation (Earth Genome's scan rule): prob >= "
        "--t-main, and >= --t-iso for an isolated patch",
    )
    parser.add_argument(
        "--t-main", type=float, default=d.t_main, help=f"threshold of every candidate (default {d.t_main})"
    )
    parser.add_argument(
        "--t-iso", type=float, default=d.t_iso, help=f"threshold of an isolated candidate (default {d.t_iso})"
    )
    parser.add_argument("--prior-k", type=int, default=d.k, help=f"nearest patches looked at (default {d.k})")
    parser.add_argument(
        "--prior-radius-m",
        type=float,
        default=d.radius_m,
        help=f"how far a neighbour may be, metres (default {d.radius_m:g})",
    )
    parser.add_argument(
        "--prior-min-neighbours",
        type=int,
        default=d.min_neighbours,
        help=f"fewer other candidates than this among them: isolated (default {d.min_neighbours})",
    )
    parser.add_argument(
        "--prior-among",
        choices=AMONG,
        default=d.among,
        help=f"'its k nearest' are the nearest patches or the nearest candidates (default {d.among})",
    )


def prior_from_args(args: argparse.Namespace) -> Any:
    """The ``SpatialPrior`` the arguments ask for, or None without ``--spatial-prior``."""
    from asgm.model.spatial_prior import SpatialPrior

    if not args.spatial_prior:
        return None
    return SpatialPrior(
        args.t_main, args.t_iso, args.prior_k, args.prior_radius_m, args.prior_min_neighbours, args.prior_among
    )


def command_group(sub: argparse._SubParsersAction, name: str, help: str) -> argparse._SubParsersAction:
    """Add a command group (``asgm NAME SUBCOMMAND``) and return its subparsers."""
    group = sub.add_parser(name, help=help, description=help)
    return group.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND", required=True)


def add_command(
    group: argparse._SubParsersAction,
    name: str,
    help: str,
    handler: Callable[[argparse.Namespace], Any],
    human: Callable[[Any], str] | None = None,
    reports: bool = True,
) -> argparse.ArgumentParser:
    """Add one subcommand; ``reports`` adds ``--json``. Returns the parser for its own arguments."""
    parser = group.add_parser(name, help=help, description=help)
    if reports:
        add_json_flag(parser)
    parser.set_defaults(handler=handler, human=human)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asgm", description="ASGM Explorer: find small-scale gold mining in Sentinel-2 imagery."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__import__('asgm').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"asgm.cli.{name}").register(sub)
    return parser


def print_report(report: Any, as_json: bool, human: Callable[[Any], str] | None = None) -> None:
    """Print a command's report: JSON with ``--json``, else a human rendering."""
    if as_json:
        print(json.dumps(report, indent=2, default=str))
    elif human is not None:
        print(human(report))
    elif report is not None:
        print(json.dumps(report, indent=2, default=str))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``asgm`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # TensorFlow logs a failing pipeline step (with its Python traceback) at warning level; the CLI
    # reports the cause itself in one line. Set before TensorFlow is imported; a user's value wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        report = args.handler(args)
    except KeyboardInterrupt:
        print("asgm: interrupted", file=sys.stderr)
        return 130
    except AsgmError as exc:  # CommandError and every module's error type
        print(f"asgm {args.command}: {exc}", file=sys.stderr)
        return 1
    human = getattr(args, "human", None)
    try:
        print_report(report, getattr(args, "json", False), human)
    except BrokenPipeError:  # output piped into `head` and friends
        sys.stderr.close()
    # A check whose report says ``ok: false`` fails, so scripts can rely on the exit status.
    return 1 if isinstance(report, dict) and report.get("ok") is False else 0


if __name__ == "__main__":
    sys.exit(main())
