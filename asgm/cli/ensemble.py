"""``asgm ensemble``: join three or more completed runs into one ensemble run (logits averaged, calibrated as one)."""

from __future__ import annotations

import argparse
from typing import Any

from asgm.cli import add_json_flag
from asgm.training.evaluate import N_BOOT


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ensemble",
        help="join completed runs into one ensemble run (mean logit, one calibration)",
        description="Make one run whose model averages the logits of the member runs; its "
        "temperature and threshold are fitted on the members' shared validation split and its "
        "test figures sit beside the members' in metrics.json. Members must be completed runs on "
        "the same store, inputs and spatial split (same split_seed; seeds and architectures may "
        "differ). predict, the map, the Patch viewer and scans then use it like any run.",
    )
    p.add_argument("--members", nargs="+", required=True, metavar="RUN", help="member run ids (at least 3)")
    p.add_argument("--name", default="", help="free label for the ensemble run")
    p.add_argument("--run-id", default=None, help="run id to create (default: a fresh one)")
    p.add_argument("--n-boot", type=int, default=N_BOOT, help=f"bootstrap resamples for the CIs (default {N_BOOT})")
    add_json_flag(p)
    p.set_defaults(handler=_ensemble, human=_human)


def _ensemble(args: argparse.Namespace) -> dict[str, Any]:
    from asgm.training import ensemble

    return ensemble.summary(ensemble.build(args.members, name=args.name, run_id=args.run_id, n_boot=args.n_boot))


def _fmt(m: dict[str, Any]) -> str:
    def f(k: str) -> str:
        v = m.get(k)
        return "  n/a" if v is None else f"{v:.3f}"

    return f"F1 {f('f1')}  precision {f('precision')}  recall {f('recall')}  PR-AUC {f('pr_auc')}  ECE {f('ece')}"


def _human(r: dict[str, Any]) -> str:
    lines = [
        f"ensemble run {r['run_id']} ({r['path']}), test split shared by its members:",
        f"  ensemble   {_fmt(r['ensemble'])}",
    ]
    lines += [f"  {m['run_id']}  {_fmt(m)}" for m in r["member_metrics"]]
    return "\n".join(lines)
