"""``asgm train | runs | evaluate | model | experiments | ablation``: the training and evaluation engine."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from asgm.cli import CommandError, add_command, add_json_flag, command_group
from asgm.training.evaluate import N_BOOT


def _config_flags(p: argparse.ArgumentParser) -> None:
    from asgm.config import HOLDOUTS

    g = p.add_argument_group("experiment (flags override --config)")
    g.add_argument("--config", help="experiment config file (.toml or .json)")
    g.add_argument("--name", help="free label for the run")
    g.add_argument("--store", help="patch store name (default: demo)")
    g.add_argument("--bands", help="comma-separated Sentinel-2 bands in channel order (default: the store's bands)")
    g.add_argument("--osm", help="comma-separated OSM layers (highway,waterway,building,landuse,aeroway) or 'all'")
    g.add_argument("--size", type=int, choices=(48, 256), help="patch size in pixels")
    g.add_argument("--negatives", choices=("curated", "random"))
    g.add_argument(
        "--class-weight",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="weight classes n/(2 n_c) on the training split",
    )
    g.add_argument("--seed", type=int)
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--learning-rate", type=float)
    g.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None, help="flips + 90° rotations")
    g.add_argument("--affine", action=argparse.BooleanOptionalAction, default=None, help="small shifts/zoom too")
    g.add_argument(
        "--early-stopping",
        type=int,
        metavar="PATIENCE",
        help="stop after PATIENCE epochs without a better validation PR-AUC",
    )
    g.add_argument(
        "--holdout",
        choices=HOLDOUTS,
        help="use a geographic holdout region as the test set: caroni "
        "(Earth Genome's box) or a country (leave-one-region-out)",
    )
    g.add_argument("--split-eps", type=float, metavar="METRES", help="DBSCAN eps of the spatial split (true metres)")
    g.add_argument("--split-seed", type=int, help="seed of the spatial split (default: --seed)")
    r = p.add_argument_group("recipe beyond the study (defaults: the study's pipeline)")
    r.add_argument(
        "--architecture",
        choices=("study", "detector"),
        help="study: the study's CNN (Table 1); detector: BatchNorm + global pooling net",
    )
    r.add_argument(
        "--jitter",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="brightness, per-band gain and haze jitter in training",
    )
    r.add_argument(
        "--balance-sets",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="weight samples by 1/sqrt(set size) within each class",
    )
    r.add_argument(
        "--balance-by",
        choices=("set", "confuser"),
        default=None,
        help="what --balance-sets groups by: sets, or negatives by confuser class (store 'amazon2')",
    )
    r.add_argument(
        "--hard-negatives-from",
        metavar="RUN",
        help="hard-negative mining: the training negatives this finished first-pass run calls mining weigh "
        "--hard-negative-weight times more",
    )
    r.add_argument("--hard-negative-weight", type=float, help="weight factor of the mined negatives (default 3)")
    r.add_argument("--lr-schedule", choices=("constant", "cosine"), help="learning-rate schedule (default constant)")
    r.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average over the 8 D4 symmetries at prediction time",
    )
    r.add_argument(
        "--calibrate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="temperature scaling fitted on validation",
    )


def config_from_args(args: argparse.Namespace) -> Any:
    """An ExperimentConfig from ``--config`` plus flag overrides (bands default to the store's)."""
    from asgm.config import OSM_LAYERS, ExperimentConfig

    raw: dict[str, Any] = {}
    if args.config:
        raw = ExperimentConfig.from_file(args.config).model_dump()
    flags = {
        "name": args.name,
        "store": args.store,
        "patch_size": args.size,
        "negatives": args.negatives,
        "class_weight": args.class_weight,
        "seed": args.seed,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "augment": args.augment,
        "affine_augment": args.affine,
        "early_stopping_patience": args.early_stopping,
        "holdout": args.holdout,
        "split_eps_m": args.split_eps,
        "split_seed": args.split_seed,
        "architecture": args.architecture,
        "jitter": args.jitter,
        "balance_sets": args.balance_sets,
        "balance_by": args.balance_by,
        "hard_negatives_from": args.hard_negatives_from,
        "hard_negative_weight": args.hard_negative_weight,
        "tta": args.tta,
        "calibrate": args.calibrate,
        "lr_schedule": args.lr_schedule,
    }
    raw.update({k: v for k, v in flags.items() if v is not None})
    if args.bands:
        raw["bands"] = tuple(b.strip() for b in args.bands.split(",") if b.strip())
    if args.osm:
        raw["osm_layers"] = (
            OSM_LAYERS if args.osm == "all" else tuple(x.strip() for x in args.osm.split(",") if x.strip())
        )
    if "bands" not in raw or "patch_size" not in raw:
        # Default bands and size to what the chosen store holds, so `--store NAME` alone works.
        from asgm.data.store import PatchStore

        st = PatchStore.open(raw.get("store", "demo"))
        raw.setdefault("bands", st.meta.bands)
        raw.setdefault("patch_size", st.meta.size)
    try:
        return ExperimentConfig.model_validate(raw)
    except ValueError as exc:
        raise CommandError(f"invalid experiment config: {exc}") from None


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", help="train the study's CNN on a patch store (spatial split, best epoch, test metrics)")
    _config_flags(t)
    t.add_argument("--run-id", help="train into this run folder (used by the app's background launcher)")
    t.add_argument("--bootstrap", type=int, default=N_BOOT, help=f"bootstrap resamples for the CIs (default {N_BOOT})")
    t.add_argument("--detach", action="store_true", help="start in the background and print the run id")
    add_json_flag(t)
    t.set_defaults(handler=_train, human=_human_metrics)

    runs = command_group(sub, "runs", "list, show and cancel training runs (the run store)")
    add_command(runs, "list", "every run, newest first", _runs_list, _human_runs)
    add_command(
        runs, "show", "one run's status, progress and metrics", lambda a: _get(a.run_id).to_dict()
    ).add_argument("run_id")
    add_command(runs, "cancel", "ask a running run to stop", _runs_cancel).add_argument("run_id")

    e = sub.add_parser("evaluate", help="re-score a run: predict val/test again, tune the threshold, write metrics")
    e.add_argument("run_id")
    e.add_argument("--bootstrap", type=int, default=N_BOOT, help=f"bootstrap resamples (default {N_BOOT})")
    add_json_flag(e)
    e.set_defaults(handler=_evaluate, human=_human_metrics)

    model = command_group(sub, "model", "the study's CNN")
    su = add_command(model, "summary", "layers and parameter count for an input size", _model_summary, _human_summary)
    su.add_argument("--size", type=int, default=48, help="patch size in pixels (default 48)")
    su.add_argument("--channels", type=int, default=12, help="input channels (default 12)")

    experiments = command_group(sub, "experiments", "the study's experiments")
    t1 = add_command(
        experiments,
        "table1",
        "run Table 1's ten configurations (unsupported ones are reported as skipped)",
        _table1,
        _human_table1,
    )
    t1.add_argument(
        "--dataset", action="append", help="patch store to use (repeat for a 48-px and a 256-px store; default: demo)"
    )
    t1.add_argument("--epochs", type=int, default=160)
    t1.add_argument("--seed", type=int, default=7)
    t1.add_argument("--only", help="comma-separated experiment numbers to run (default: all)")
    t1.add_argument("--plan", action="store_true", help="only show which rows would run or be skipped")
    t1.add_argument(
        "--scheduler",
        default="none",
        help="run the rows as Dask tasks: 'local' (a LocalCluster), "
        "tcp://HOST:8786 (workers sharing the data and models folders), or 'none' (default: one by one)",
    )
    t1.add_argument("--workers", type=int, default=2, help="workers of the local cluster (default 2)")

    a = sub.add_parser("ablation", help="each OSM layer of a run: retrained without it and zeroed at test time")
    a.add_argument("run_id")
    a.add_argument("--no-retrain", action="store_true", help="only zero channels at test time (fast)")
    a.add_argument("--bootstrap", type=int, default=N_BOOT, help=f"bootstrap resamples (default {N_BOOT})")
    add_json_flag(a)
    a.set_defaults(handler=_ablation, human=_human_ablation)


def _get(run_id: str) -> Any:
    from asgm.model.runs import get_run

    return get_run(run_id)


def _train(args: argparse.Namespace) -> dict[str, Any]:
    from asgm.model import run_jobs, runs
    from asgm.training import train

    config = config_from_args(args)
    if args.detach:
        return {"run_id": run_jobs.launch(config), "status": "queued"}
    if args.run_id is None:  # a launched child trains into its own queued folder: not a duplicate
        run_jobs.refuse_duplicate(config)
    run_id = train.train(
        config, run_id=args.run_id, show_progress=not args.json and sys.stderr.isatty(), n_boot=args.bootstrap
    )
    info = runs.get_run(run_id)
    if info.status != "completed":
        raise CommandError(f"run {run_id} ended {info.status}: {info.error}")
    return {"run_id": run_id, "status": info.status, "path": str(info.path), **(info.metrics or {})}


def _human_metrics(m: dict[str, Any]) -> str:
    if "f1" not in m:
        return "\n".join(f"{k}: {v}" for k, v in m.items())
    ci = m.get("f1_ci_patch") or [float("nan")] * 2
    cc = m.get("f1_ci_cluster") or [float("nan")] * 2
    ap = m.get("pr_auc")
    apci = m.get("pr_auc_ci") or [float("nan")] * 2
    lines = [
        f"run {m.get('run_id', '')}  best epoch {m.get('best_epoch')}  threshold {m['threshold']:.4f} (prob >= t)",
        f"test F1 {m['f1']:.3f}  95% CI patch [{ci[0]:.3f}, {ci[1]:.3f}]  cluster [{cc[0]:.3f}, {cc[1]:.3f}]",
        f"precision {m['precision']:.3f}  recall {m['recall']:.3f}  PR-AUC "
        + (f"{ap:.3f} [{apci[0]:.3f}, {apci[1]:.3f}]" if ap is not None else "n/a"),
        f"TP {m['tp']}  FP {m['fp']}  FN {m['fn']}  TN {m['tn']}",
    ]
    return "\n".join(lines)


def _runs_list(args: argparse.Namespace) -> list[dict[str, Any]]:
    from asgm.model.runs import list_runs

    return [r.to_dict() for r in list_runs()]


def _human_runs(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no runs yet; start one with `asgm train`"
    out = []
    for r in rows:
        m = r.get("metrics") or {}
        p = r.get("progress") or {}
        extra = (
            f"F1 {m['f1']:.3f}"
            if m.get("f1") is not None
            else (f"epoch {p.get('epoch')}/{p.get('epochs')}" if p else "")
        )
        err = f"  {r['error']}" if r.get("error") and r["status"] != "completed" else ""
        out.append(f"{r['run_id']:44s} {r['status']:10s} {extra}{err}")
    return "\n".join(out)


def _runs_cancel(args: argparse.Namespace) -> dict[str, Any]:
    from asgm.model.run_jobs import request_cancel

    request_cancel(args.run_id)
    return {"run_id": args.run_id, "cancel_requested": True}


def _evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from asgm.training.scoring import evaluate_run

    return {"run_id": args.run_id, **evaluate_run(args.run_id, n_boot=args.bootstrap)}


def _model_summary(args: argparse.Namespace) -> dict[str, Any]:
    from asgm.model.cnn import summary

    if args.size < 18 or args.channels < 1:
        raise CommandError("size must be at least 18 px (three poolings) and channels at least 1")
    return summary(args.size, args.channels)


def _human_summary(s: dict[str, Any]) -> str:
    lines = [
        f"{la['name']:10s} {la['type']:14s} {str(la['output_shape']):18s} {la['params']:>9,}" for la in s["layers"]
    ]
    return "\n".join([*lines, f"input {s['input']}  total params {s['params']:,}"])


def _table1(args: argparse.Namespace) -> dict[str, Any]:
    from asgm.training import experiments

    stores = args.dataset or ["demo"]
    only = [int(x) for x in args.only.split(",")] if args.only else None
    if args.plan:
        return {
            "rows": experiments.planned_rows(stores, args.epochs, args.seed, only),
            "published": list(experiments.TABLE1_PUBLISHED),
        }
    import tqdm

    plans = experiments.plan_table1(stores, args.epochs, args.seed)
    bar = tqdm.tqdm(
        total=len([p for p in plans if not only or p.exp in only]),
        desc="Table 1",
        unit="exp",
        disable=args.json or not sys.stderr.isatty(),
    )
    out = experiments.run_table1(
        stores,
        args.epochs,
        args.seed,
        only=only,
        on_row=lambda r: bar.update(1),
        scheduler=None if args.scheduler == "none" else args.scheduler,
        workers=args.workers,
    )
    bar.close()
    return out


def _human_table1(out: dict[str, Any]) -> str:
    from asgm.training.experiments import format_table

    text = "Reproduced:\n" + format_table(out["rows"]) + "\n\nPublished (Dissing & Kalo, Table 1):\n"
    text += format_table([{**r, "status": ""} for r in out["published"]])
    if out.get("path"):
        text += f"\n\nsaved to {out['path']}"
    return text


def _ablation(args: argparse.Namespace) -> dict[str, Any]:
    from asgm.training.experiments import ablation

    def step(msg: str) -> None:
        if not args.json:
            print(f"ablation: {msg}", file=sys.stderr)

    return ablation(args.run_id, retrain=not args.no_retrain, n_boot=args.bootstrap, on_step=step)


def _human_ablation(out: dict[str, Any]) -> str:
    full = out["full"]
    lines = [
        f"full model: F1 {full['f1']:.3f}  precision {full['precision']:.3f}  recall {full['recall']:.3f}",
        f"{'layer':10s} {'mode':10s} {'ΔF1':>7s} {'Δprec':>7s} {'Δrec':>7s}",
    ]
    for e in out["layers"]:
        for mode in ("zeroed", "retrained"):
            d = e.get(f"{mode}_delta")
            if d:
                lines.append(f"{e['layer']:10s} {mode:10s} {d['f1']:+7.3f} {d['precision']:+7.3f} {d['recall']:+7.3f}")
    return "\n".join(lines)


def train_with_labels(args: argparse.Namespace) -> dict[str, Any]:
    """``asgm labels train``: the reviewed labels -> a new store version -> the parent's recipe retrained on it
    (``asgm.review.retrain``), with the before/after report. ``--detach`` starts it as a background job."""
    from asgm.jobs.runner import report_progress
    from asgm.model import run_jobs, runs
    from asgm.review import report, retrain
    from asgm.training import train

    parent = args.from_run or runs.default_run_id()
    if not parent:
        raise CommandError("no completed run to start from; pass --from-run RUN")
    if args.detach:
        return {
            "run_id": retrain.launch(
                parent, epochs=args.epochs, holdout_fraction=args.holdout_fraction, fetch=args.fetch
            ),
            "status": "queued",
            "parent_run": parent,
        }
    # A launched job's folder stays "queued" while the store version is built: training takes it over then.
    folder = runs.RunFolder.of(args.run_id) if args.run_id else None

    import tqdm

    bar = tqdm.tqdm(desc="store version", unit="patch", disable=args.json or not sys.stderr.isatty())

    def progress(done: int, total: int, what: str = "building the store version with the reviewed items") -> None:
        report_progress(done, total, what)
        bar.total, bar.n = total, done  # the fetch, then the store version: two counts in turn
        bar.refresh()

    try:
        plan = retrain.prepare(
            parent,
            epochs=args.epochs,
            holdout_fraction=args.holdout_fraction,
            progress=progress,
            cancelled=folder.cancel_requested if folder is not None else None,
            fetch=args.fetch,
        )
    except retrain.RetrainCancelled:
        if folder is not None:
            folder.set_status("cancelled", finished=runs.now(), error="cancelled on request")
        return {"run_id": args.run_id, "status": "cancelled"}
    except BaseException as exc:
        if args.run_id:
            retrain.failed(args.run_id, exc)
        raise
    finally:
        bar.close()
    if folder is None:
        run_jobs.refuse_duplicate(plan.config)
        folder = retrain.queue_run(plan.config, parent, plan.counts["reviewed"], args.holdout_fraction)
    run_id = train.train(
        plan.config,
        run_id=folder.run_id,
        split_override=plan.split,
        n_boot=args.bootstrap,
        show_progress=not args.json and sys.stderr.isatty(),
    )
    info = runs.get_run(run_id)
    if info.status != "completed":
        raise CommandError(f"run {run_id} ended {info.status}: {info.error}")
    return report.compare(plan, run_id)


def human_with_labels(r: dict[str, Any]) -> str:
    """Before / after of ``asgm labels train``."""
    if "test" not in r:
        return "\n".join(f"{k}: {v}" for k, v in r.items())

    def fmt(m: dict[str, Any]) -> str:
        if not m.get("n"):
            return "n/a (no rows)"
        ap = m.get("pr_auc")
        return (
            f"F1 {m['f1']:.3f}  PR-AUC {'n/a' if ap is None else f'{ap:.3f}'}  FP {m['fp']}  FN {m['fn']}  "
            f"(n {m['n']}, threshold {m['threshold']:.3f})"
        )

    c = r["counts"]
    lines = [
        f"run {r['run_id']} from {r['parent_run']} on store {r['store']} (not the default: {r['note']})",
        f"reviewed {c['reviewed']}: trained {c['trained']}, held out {c['held_out']} + "
        f"{c['held_out_by_distance']} nearby, dropped near test {c['dropped_near_test']}, on test patches "
        f"{c['on_test_patches']}; skipped {c['skipped'] or 'none'}",
        f"rule: {c['rule']}",
    ]
    if c.get("fetched") or c.get("fetch_failed"):
        lines.append(f"imagery fetched for {c['fetched']} item(s), failed for {len(c['fetch_failed'])}")
    lines += [f"warning: {w}" for w in c.get("warnings", [])]
    for key, title in (("test", "unchanged test split"), ("review_holdout", "held-out reviewed items")):
        lines += [f"{title}:", f"  before {fmt(r[key]['before'])}", f"  after  {fmt(r[key]['after'])}"]
    return "\n".join(lines)
