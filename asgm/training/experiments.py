"""The study's experiments: Table 1 (ten configurations) and the OSM layer ablation (Fig. 3).

``TABLE1_PUBLISHED`` holds the paper's published values as data, so the app can show them as a
reference next to reproduced rows. A configuration the chosen stores cannot support (patch size,
OSM masks or random negatives missing) is reported as skipped with the reason, never faked.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asgm import atomic
from asgm.config import S2_BANDS, ExperimentConfig, models_dir
from asgm.errors import AsgmError, one_line
from asgm.model.runs import now
from asgm.training.evaluate import N_BOOT

if TYPE_CHECKING:
    import pandas as pd

#: Table 1 of Dissing & Kalo, as published (paper.md). F1 CI is the patch-level bootstrap.
TABLE1_PUBLISHED: tuple[dict[str, Any], ...] = tuple(
    {
        "exp": e,
        "osm": o,
        "patch": p,
        "negatives": n,
        "class_weight": w,
        "f1": f1,
        "f1_ci": [lo, hi],
        "pr_auc": ap,
        "fp": fp,
        "fn": fn,
        "precision": pr,
        "recall": rc,
    }
    for e, o, p, n, w, f1, lo, hi, ap, fp, fn, pr, rc in [
        (1, False, 256, "curated", False, 0.867, 0.739, 0.960, 0.865, 6, 0, 0.769, 1.000),
        (2, True, 256, "curated", False, 0.923, 0.827, 1.000, 0.972, 1, 2, 0.947, 0.900),
        (3, False, 48, "curated", False, 0.711, 0.529, 0.851, 0.850, 7, 5, 0.682, 0.750),
        (4, True, 48, "curated", False, 0.788, 0.625, 0.913, 0.782, 3, 5, 0.833, 0.750),
        (5, False, 256, "curated", True, 0.728, 0.565, 0.849, 0.866, 13, 1, 0.594, 0.950),
        (6, True, 256, "curated", True, 0.611, 0.444, 0.744, 0.677, 23, 1, 0.452, 0.950),
        (7, False, 256, "random", False, 0.948, 0.800, 1.000, 0.900, 1, 0, 0.900, 1.000),
        (8, True, 256, "random", False, 0.792, 0.533, 0.957, 0.909, 3, 1, 0.727, 0.889),
        (9, False, 256, "random", True, 0.129, 0.028, 0.237, 0.069, 62, 4, 0.075, 0.556),
        (10, True, 256, "random", True, 0.898, 0.727, 1.000, 0.928, 2, 0, 0.818, 1.000),
    ]
)
#: The study's five OSM layers, used by every "OSM: yes" experiment.
STUDY_OSM = ("highway", "waterway", "building", "landuse", "aeroway")
COLUMNS = [
    "exp",
    "osm",
    "patch",
    "negatives",
    "class_weight",
    "status",
    "f1",
    "f1_ci",
    "f1_ci_cluster",
    "pr_auc",
    "fp",
    "fn",
    "precision",
    "recall",
    "run_id",
    "store",
    "bands",
    "reason",
]


class ExperimentError(AsgmError):
    """An experiment request that cannot run; the message says why."""


@dataclass
class Plan:
    """One Table 1 row: the config to train, or the reason it is skipped."""

    exp: int
    spec: dict[str, Any]
    config: ExperimentConfig | None
    reason: str | None


def plan_table1(stores: Sequence[str], epochs: int = 160, seed: int = 7, **overrides: Any) -> list[Plan]:
    """Map each Table 1 configuration onto one of ``stores`` (first whose patch size matches and which
    has what the row needs), or give the reason it is skipped. Bands: the store's bands among the
    study's 12, in the study's order (all 12 on a full store; RGB on the demo store)."""
    from asgm.data.store import PatchStore

    opened = [PatchStore.open(s) for s in stores]
    plans = []
    for spec in TABLE1_PUBLISHED:
        reasons = []
        chosen = None
        for st in opened:
            if int(st.meta.size) != spec["patch"]:
                reasons.append(f"{st.name}: {st.meta.size}-px patches, row needs {spec['patch']} px")
                continue
            if spec["osm"]:
                have = tuple((st.osm_info() or {}).get("layers", ()))
                lacking = [x for x in STUDY_OSM if x not in have]
                if lacking:
                    reasons.append(f"{st.name}: no OSM masks for {lacking}")
                    continue
            idx = st.index()
            if spec["negatives"] == "random" and not ((idx["label"] == 0) & (idx["set"] == "random")).any():
                reasons.append(f"{st.name}: no random negatives")
                continue
            if spec["negatives"] == "curated" and not ((idx["label"] == 0) & (idx["set"] != "random")).any():
                reasons.append(f"{st.name}: no curated negatives")
                continue
            chosen = st
            break
        if chosen is None:
            plans.append(Plan(spec["exp"], spec, None, "; ".join(reasons) or "no store given"))
            continue
        bands = tuple(b for b in S2_BANDS if b in chosen.meta.bands)
        cfg = ExperimentConfig(
            name=f"table1-exp{spec['exp']}",
            store=chosen.name,
            bands=bands,
            osm_layers=STUDY_OSM if spec["osm"] else (),
            patch_size=spec["patch"],
            negatives=spec["negatives"],
            class_weight=spec["class_weight"],
            epochs=epochs,
            seed=seed,
            **overrides,
        )
        plans.append(Plan(spec["exp"], spec, cfg, None))
    return plans


def table_row(
    plan: Plan, run_id: str | None, metrics: dict[str, Any] | None, status: str, reason: str | None
) -> dict[str, Any]:
    """One row of the reproduced Table 1 (``COLUMNS``) for a plan and, when it ran, its run's metrics."""
    s = plan.spec
    m = metrics or {}
    return {
        "exp": plan.exp,
        "osm": s["osm"],
        "patch": s["patch"],
        "negatives": s["negatives"],
        "class_weight": s["class_weight"],
        "status": status,
        "f1": m.get("f1"),
        "f1_ci": m.get("f1_ci_patch"),
        "f1_ci_cluster": m.get("f1_ci_cluster"),
        "pr_auc": m.get("pr_auc"),
        "fp": m.get("fp"),
        "fn": m.get("fn"),
        "precision": m.get("precision"),
        "recall": m.get("recall"),
        "run_id": run_id,
        "store": plan.config.store if plan.config else None,
        "bands": list(plan.config.bands) if plan.config else None,
        "reason": reason,
    }


def planned_rows(
    stores: Sequence[str], epochs: int = 160, seed: int = 7, only: Sequence[int] | None = None
) -> list[dict[str, Any]]:
    """Table 1 as it would run on ``stores``: each row 'planned' or 'skipped' with the reason, nothing trained."""
    return [
        table_row(p, None, None, "planned" if p.config else "skipped", p.reason)
        for p in plan_table1(stores, epochs, seed)
        if not only or p.exp in only
    ]


def _run_row(plan: Plan) -> dict[str, Any]:
    """Train one Table 1 row (in this process or on a Dask worker) and return its table row."""
    from asgm.training.train import train

    if plan.config is None:
        return table_row(plan, None, None, "skipped", plan.reason)
    try:
        run_id = train(plan.config)
        from asgm.model.runs import get_run

        info = get_run(run_id)
        return table_row(plan, run_id, info.metrics, info.status, info.error)
    except Exception as exc:  # one failing row must not lose the others
        return table_row(plan, None, None, "failed", one_line(exc))


def run_table1(
    stores: Sequence[str],
    epochs: int = 160,
    seed: int = 7,
    only: Sequence[int] | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    scheduler: Any = None,
    workers: int = 2,
    **overrides: Any,
) -> dict[str, Any]:
    """Train every supported Table 1 configuration and save the table under
    ``models/experiments/table1-<time>.json`` (and ``.csv``). Returns {rows, published, path}.

    ``scheduler`` (None: one after another in this process; ``"local"``, an address or a Client, see
    ``asgm.cluster.dask_client``) runs the rows as Dask tasks; workers must see the same stores and
    models folders (same machine, or a shared disk with the same ``ASGM_DATA_DIR``/``ASGM_MODELS_DIR``)."""
    from asgm.jobs.dask_client import dask_client

    plans = [p for p in plan_table1(stores, epochs, seed, **overrides) if not only or p.exp in only]
    with dask_client(scheduler, workers) as client:
        if client is None:
            rows = []
            for plan in plans:
                rows.append(_run_row(plan))
                if on_row:
                    on_row(rows[-1])
        else:
            from distributed import as_completed

            futures = {client.submit(_run_row, plan, pure=False): i for i, plan in enumerate(plans)}
            done: dict[int, dict[str, Any]] = {}
            for fut in as_completed(futures):
                done[futures[fut]] = fut.result()
                if on_row:
                    on_row(done[futures[fut]])
            rows = [done[i] for i in range(len(plans))]  # table order, whatever finished first
    out = {
        "created": now(),
        "epochs": epochs,
        "seed": seed,
        "stores": list(stores),
        "rows": rows,
        "published": list(TABLE1_PUBLISHED),
    }
    path = models_dir() / "experiments" / f"table1-{now().replace(':', '').replace('+0000', 'Z')}.json"
    atomic.write_json(path, out)
    import pandas as pd

    atomic.write_text(path.with_suffix(".csv"), pd.DataFrame(rows, columns=COLUMNS).to_csv(index=False))
    out["path"] = str(path)
    return out


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Table 1's columns as fixed-width text: Exp, OSM, Patch, Neg, CW, F1 [95% CI], PR-AUC, FP, FN, P, R."""
    head = f"{'Exp':>3} {'OSM':<3} {'Patch':>5} {'Neg':<7} {'CW':<3} {'F1 [95% CI]':<22} {'PR-AUC':>6} {'FP':>3} {'FN':>3} {'Prec':>5} {'Rec':>5}  note"  # noqa: E501
    lines = [head, "-" * len(head)]
    for r in rows:
        ci = r.get("f1_ci") or [None, None]
        f1 = f"{_fmt(r.get('f1'))} [{_fmt(ci[0])}, {_fmt(ci[1])}]" if r.get("f1") is not None else "–"
        note = r.get("status", "")
        if r.get("reason") and r.get("status") != "completed":
            note += f": {r['reason']}"
        lines.append(
            f"{r['exp']:>3} {'yes' if r['osm'] else 'no':<3} {r['patch']:>5} {r['negatives']:<7} "
            f"{'yes' if r['class_weight'] else 'no':<3} {f1:<22} {_fmt(r.get('pr_auc')):>6} {_fmt(r.get('fp')):>3} "
            f"{_fmt(r.get('fn')):>3} {_fmt(r.get('precision')):>5} {_fmt(r.get('recall')):>5}  {note}"
        )
    return "\n".join(lines)


def ablation(
    run_id: str, retrain: bool = True, n_boot: int = N_BOOT, on_step: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Each OSM layer of a completed run measured two ways, relative to the full model:
    - ``zeroed``: the run's model on its own test set with that channel set to 0 (threshold re-tuned
      on the equally zeroed validation set);
    - ``retrained``: a new run without that layer, same seed and the very same split.
    (The study's jobs actually *added* single layers; see pipeline spec §5. This is leave-one-out.)"""
    import pandas as pd

    from asgm.data.store import PatchStore
    from asgm.model.runs import RunFolder, get_run, load_model
    from asgm.training.scoring import score
    from asgm.training.train import train

    info = get_run(run_id)
    if info.status != "completed" or info.config is None or not info.metrics:
        raise ExperimentError(f"run {run_id!r} is {info.status}; ablation needs a completed run")
    config = info.config
    if not config.osm_layers:
        raise ExperimentError(f"run {run_id!r} uses no OSM layers; nothing to ablate")
    folder = RunFolder.of(run_id)
    split = pd.read_csv(folder.file("split.csv"), dtype={"sample_id": str})
    model = load_model(run_id)
    store = PatchStore.open(config.store)
    keys = ("f1", "precision", "recall", "pr_auc")
    full = {k: info.metrics.get(k) for k in keys}
    layers = []
    for layer in config.osm_layers:
        if on_step:
            on_step(f"{layer}: zeroed")
        zm, _ = score(model, store, config, split, n_boot=n_boot, zero_layers=(layer,))
        entry: dict[str, Any] = {"layer": layer, "zeroed": {k: zm.get(k) for k in keys}}
        if retrain:
            if on_step:
                on_step(f"{layer}: retraining without it")
            sub = config.model_copy(
                update={
                    "osm_layers": tuple(x for x in config.osm_layers if x != layer),
                    "name": f"ablation-{run_id}-no-{layer}"[:60],
                }
            )
            rid = train(sub, n_boot=n_boot, split_override=split)
            rm = get_run(rid).metrics or {}
            entry["retrained"] = {k: rm.get(k) for k in keys}
            entry["retrained_run_id"] = rid
        for mode in ("zeroed", "retrained"):
            if mode in entry:
                entry[f"{mode}_delta"] = {
                    k: (None if entry[mode][k] is None or full[k] is None else entry[mode][k] - full[k]) for k in keys
                }
        layers.append(entry)
    out = {
        "run_id": run_id,
        "full": full,
        "layers": layers,
        "created": now(),
        "note": "deltas are ablated minus full model (negative = the layer helped)",
    }
    atomic.write_json(folder.file("ablation.json"), out)
    return out


def ablation_results(run_ids: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """OSM ablation results written by ``ablation`` (``ablation.json`` in a run folder), one row per (run,
    removed layer, mode) with the change of F1/precision/recall vs the full model; and one problem message
    per unreadable file (the other runs' results are still returned)."""
    import json

    import pandas as pd

    rows, problems = [], []
    for rid in run_ids:
        path = models_dir() / rid / "ablation.json"
        if not path.exists():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            for entry in data.get("layers", []):
                for mode in ("retrained", "zeroed"):
                    d = entry.get(f"{mode}_delta")
                    if d:
                        rows.append(
                            {
                                "full_run": rid,
                                "removed": entry["layer"],
                                "mode": mode,
                                **{f"delta_{k}": d.get(k) for k in ("f1", "precision", "recall")},
                            }
                        )
        except (OSError, json.JSONDecodeError, KeyError, AttributeError) as exc:
            problems.append(f"{path} is unreadable ({exc}); rerun `asgm ablation {rid}`.")
    columns = ["full_run", "removed", "mode", "delta_f1", "delta_precision", "delta_recall"]
    return pd.DataFrame(rows, columns=columns), problems
