"""``asgm data``: fetch and verify the pinned upstream files."""

from __future__ import annotations

import argparse

from asgm.cli import CommandError, add_command, command_group


def register(sub: argparse._SubParsersAction) -> None:
    group = command_group(sub, "data", "upstream data files (pinned URLs, sha256-checked)")
    pull = add_command(
        group,
        "pull",
        "fetch and verify every upstream file (ASGM_DATA_MIRROR reads a local mirror)",
        _pull,
        _human_pull,
    )
    pull.add_argument(
        "--into",
        metavar="DIR",
        default=None,
        help="write the files into DIR in their upstream layout instead: a mirror to use offline "
        "with ASGM_DATA_MIRROR=DIR",
    )
    add_command(
        group,
        "status",
        "which upstream files are present and verified, without fetching",
        _status,
        lambda rows: "\n".join(f"{'ok ' if r['verified'] else '-- '} {r['key']:26s} {r['path']}" for r in rows),
    )


def _pull(args: argparse.Namespace) -> list[dict]:
    from asgm import registry

    if args.into:
        from pathlib import Path

        try:
            root = registry.fill_mirror(Path(args.into), progress=not args.json)
        except registry.DataFetchError as exc:
            raise CommandError(str(exc)) from None
        return [
            {"key": f.key, "ok": True, "path": str(root / f.relpath), "sha256": f.sha256, "url": f.url}
            for f in registry.FILES.values()
        ]
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
