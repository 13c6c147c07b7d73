"""``asgm jobs``: the background jobs the app (or anyone) started — list and cancel."""

from __future__ import annotations

import argparse
from typing import Any

from asgm.cli import add_command, command_group


def register(sub: argparse._SubParsersAction) -> None:
    group = command_group(sub, "jobs", "background jobs (patch and OSM fetches, training, demo preparation)")
    ls = add_command(group, "list", "every job, newest first, with status, progress and error", _list, _human_list)
    ls.add_argument("--active", action="store_true", help="only queued and running jobs")
    add_command(
        group,
        "cancel",
        "ask a queued or running job to stop",
        _cancel,
        lambda r: f"cancel requested for job {r['job_id']} ({r['title']})",
    ).add_argument("job_id")
    pr = add_command(
        group,
        "prune",
        "remove the folders of old finished jobs (their outputs stay)",
        _prune,
        lambda r: f"removed {len(r['removed'])} finished job folder(s), kept the newest {r['keep']}",
    )
    pr.add_argument("--keep", type=int, default=None, help="finished jobs to keep (default: the app's 50)")


def _list(args: argparse.Namespace) -> list[dict[str, Any]]:
    from asgm.jobs import runner as jobs

    return [j.to_dict() for j in (jobs.active_jobs() if args.active else jobs.list_jobs())]


def _human_list(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no jobs"
    out = []
    for r in rows:
        frac = f" {r['fraction']:.0%}" if r["fraction"] is not None else ""
        eta = f" ETA {r['eta_s']:.0f} s" if r["eta_s"] is not None else ""
        out.append(f"{r['job_id']:36s} {r['status']:9s}{frac}{eta}  {r['title']}")
        if r["error"]:
            out.append(f"    error: {r['error']}")
    return "\n".join(out)


def _cancel(args: argparse.Namespace) -> dict[str, Any]:
    from asgm.jobs import runner as jobs

    return jobs.cancel(args.job_id).to_dict()


def _prune(args: argparse.Namespace) -> dict[str, Any]:
    from asgm.jobs import runner as jobs

    keep = jobs.KEEP_FINISHED if args.keep is None else args.keep
    return {"removed": jobs.prune(keep), "keep": keep}
