"""Table 1 (published values as data, planning with honest skips, a real 1-epoch row) and ablation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from _engine import toy_store

from asgm.config import S2_BANDS, ExperimentConfig
from asgm.training import experiments
from asgm.training.train import train

PAPER = Path(__file__).resolve().parents[3] / "shared" / "docs" / "paper.md"


@pytest.mark.skipif(not PAPER.exists(), reason="paper.md not available")
def test_published_table_matches_the_paper():
    rows = [ln.split("\t") for ln in PAPER.read_text().splitlines() if re.match(r"^\d+\t(Yes|No)\t", ln)]
    assert len(rows) == len(experiments.TABLE1_PUBLISHED) == 10
    for raw, pub in zip(rows, experiments.TABLE1_PUBLISHED, strict=True):
        f1, ci = raw[5].split(" ", 1)
        lo, hi = (float(v) for v in ci.strip("[]").split(","))
        assert (int(raw[0]), raw[1] == "Yes", int(raw[2]), raw[3].lower(), raw[4] == "Yes") == (
            pub["exp"],
            pub["osm"],
            pub["patch"],
            pub["negatives"],
            pub["class_weight"],
        )
        assert (float(f1), lo, hi, float(raw[6]), int(raw[7]), int(raw[8]), float(raw[9]), float(raw[10])) == (
            pub["f1"],
            *pub["f1_ci"],
            pub["pr_auc"],
            pub["fp"],
            pub["fn"],
            pub["precision"],
            pub["recall"],
        )


def test_plan_skips_what_an_rgb_48px_store_cannot_support(data_env):
    toy_store(data_env / "data" / "stores", name="rgb48", n_pos=4, n_neg=4, bands=("B4", "B3", "B2"))
    plans = {p.exp: p for p in experiments.plan_table1(["rgb48"], epochs=1)}
    assert [e for e, p in plans.items() if p.config is not None] == [3]
    assert plans[3].config.bands == ("B2", "B3", "B4") and plans[3].config.osm_layers == ()
    assert "256" in plans[1].reason and "OSM" in plans[4].reason


def test_table1_row_runs_and_is_saved(data_env):
    toy_store(data_env / "data" / "stores", name="toy48", n_pos=10, n_neg=12)
    out = experiments.run_table1(["toy48"], epochs=1, only=[3, 7])
    by_exp = {r["exp"]: r for r in out["rows"]}
    assert by_exp[3]["status"] == "completed" and by_exp[3]["f1"] is not None and by_exp[3]["run_id"]
    assert by_exp[7]["status"] == "skipped" and "256" in by_exp[7]["reason"]
    assert Path(out["path"]).is_file() and Path(out["path"]).with_suffix(".csv").is_file()
    text = experiments.format_table(out["rows"])
    assert "F1 [95% CI]" in text and "skipped" in text


def test_ablation_both_ways(data_env):
    # One OSM layer keeps this to two trainings: the full run and the run retrained without the layer,
    # which (having no OSM layer left) also serves the "no OSM" refusal.
    st = toy_store(data_env / "stores", n_pos=10, n_neg=12, osm=("highway",))
    cfg = ExperimentConfig(store=str(st.root), bands=S2_BANDS, osm_layers=("highway",), epochs=1, batch_size=8)
    run_id = train(cfg, n_boot=50)
    out = experiments.ablation(run_id, retrain=True, n_boot=50)
    assert [e["layer"] for e in out["layers"]] == ["highway"]
    for e in out["layers"]:
        for mode in ("zeroed", "retrained"):
            assert e[f"{mode}_delta"]["f1"] == pytest.approx(e[mode]["f1"] - out["full"]["f1"])
    from asgm.model.runs import get_run

    retrained = out["layers"][0]["retrained_run_id"]
    sub = get_run(retrained).config
    assert sub.osm_layers == () and sub.bands == cfg.bands and sub.epochs == cfg.epochs
    with pytest.raises(experiments.ExperimentError, match="no OSM"):
        experiments.ablation(retrained, retrain=False)


def test_table1_plan_cli_trains_nothing(data_env, capsys):
    from asgm.cli import main
    from asgm.model import runs

    toy_store(data_env / "data" / "stores", name="rgb48", n_pos=4, n_neg=4, bands=("B4", "B3", "B2"))
    assert main(["experiments", "table1", "--dataset", "rgb48", "--plan", "--only", "3,4", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [(r["exp"], r["status"]) for r in rows] == [(3, "planned"), (4, "skipped")]
    assert rows == experiments.planned_rows(["rgb48"], only=[3, 4]) and runs.list_runs() == []


def test_ablation_results_report_unreadable_files(data_env):
    from asgm.config import models_dir

    good = {"layers": [{"layer": "highway", "zeroed_delta": {"f1": -0.1, "precision": 0.0, "recall": -0.2}}]}
    for rid, text in (("full", json.dumps(good)), ("broken", "{not json")):
        (models_dir() / rid).mkdir(parents=True)
        (models_dir() / rid / "ablation.json").write_text(text)
    table, problems = experiments.ablation_results(["full", "broken", "never-ablated"])
    assert table.to_dict("records") == [
        {
            "full_run": "full",
            "removed": "highway",
            "mode": "zeroed",
            "delta_f1": -0.1,
            "delta_precision": 0.0,
            "delta_recall": -0.2,
        }
    ]
    assert len(problems) == 1 and "broken" in problems[0] and "`asgm ablation broken`" in problems[0]
