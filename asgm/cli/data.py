"""``asgm data``: fetch and verify the pinned upstream files."""

from __future__ import annotations

import argparse

from asgm.cli import CommandError, add_json_flag


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="upstream data files (pinned URLs, sha256-checked)")
    s = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    pull = s.add_parser("pull", help="fetch and verify every upstream file (ASGM_DATA_MIRROR reads a local mirror)")
    add_json_flag(pull)
    pull.set_defaults(handler=_pull, human=_human_pull)
    st = s.add_parser("status", help="which upstream files are present and verified, without fetching")
    add_json_flag(st)
    st.set_defaults(handler=_status, human=lambda rows: "\n".join(
        f"{'ok ' if r['verified'] else '-- '} {r['key']:26s} {r['path']}" for r in rows))


def _pull(args: argparse.Namespace) -> list[dict]:
    from asgm import registry

    rows = registry.pull(progress=not args.json)
    failed = [r for r in rows if not r["ok"]]
    if failed:
        raise CommandError(f"{len(failed)} of {len(rows)} files failed; first: {failed[0]['error']}")
    return rows


def _human_pull(rows: list[dict]) -> str:
    return "\n".join(f"ok  {r['key']:26s} {r['path']}" for r in rows) + f"\n{len(rows)} files verified"


def _status(args: argparse.Namespace) -> list[dict]:
    from asgm import registry

    return registry.status()
