"""Train with my labels (asgm.review.retrain, ``asgm labels train``) on a small SYNTHETIC toy store, 1 epoch:
a new store version with set ``reviewed`` and provenance, the parent's test split unchanged, the newest 20 % of
the reviews held out, reviews near test patches dropped, a before/after report, and the new run never the
default by itself."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from _engine import toy_store

from asgm.cli import main
from asgm.config import S2_BANDS, ExperimentConfig
from asgm.data.labels import LabelStore
from asgm.data.store import PatchStore
from asgm.model import runs
from asgm.review import items, retrain


def _sel(points: list[tuple[str, float, float]]) -> retrain.Selection:
    return retrain.Selection(
        items=[
            retrain.Reviewed(
                sample_id=sid, item=f"store:s:{sid}", label=k % 2, history_fid=k + 1, lon=lon, lat=lat, patch=None
            )
            for k, (sid, lon, lat) in enumerate(points)
        ]
    )


def test_split_rule_holds_out_the_newest_and_drops_reviews_near_test():
    parent = pd.DataFrame(
        {
            "sample_id": ["t1", "v1", "a", "b"],
            "split": ["test", "val", "train", "train"],
            "cluster": [0, 1, 2, 3],
            "lon": [-63.0, -62.0, -61.0, -60.0],
            "lat": [6.0] * 4,
        }
    )
    km = 1 / 111.0  # one km of latitude, in degrees
    sel = _sel(
        [
            ("t1", -63.0, 6.0),  # a test patch itself: keeps its test row
            ("near", -63.0, 6.0 + 2 * km),  # 2 km from the test patch: dropped
            ("a", -61.0, 6.0),  # a training patch relabelled: trains
            ("far", -58.0, 7.0),  # trains
            ("buddy", -55.0, 6.0 + 1 * km),  # 1 km from the newest (held out): held out too
            ("newest", -55.0, 6.0),
        ]
    )  # newest 20 % of the 5 usable ones: held out
    split, counts = retrain.split_with_reviews(parent, sel, eps_m=3000.0, holdout_fraction=0.2)
    by = dict(zip(split["sample_id"], split["split"], strict=True))
    assert by == {
        "t1": "test",
        "v1": "val",
        "b": "train",
        "a": "train",
        "far": "train",
        "near": "dropped",
        "buddy": "review",
        "newest": "review",
    }
    assert counts == {
        "reviewed": 6,
        "on_test_patches": 1,
        "held_out": 1,
        "held_out_by_distance": 1,
        "dropped_near_test": 1,
        "trained": 2,
        "skipped": {},
        "rule": counts["rule"],
    }
    assert "3 km" in counts["rule"] and "20 %" in counts["rule"]
    assert split["sample_id"].is_unique
    with pytest.raises(retrain.RetrainError, match="between 0 and 1"):
        retrain.split_with_reviews(parent, sel, 3000.0, holdout_fraction=1.0)


@pytest.fixture
def parent(data_env):
    """A toy store and a parent run trained 1 epoch on it."""
    from asgm.training.train import train

    toy_store(data_env / "data" / "stores", n_pos=12, n_neg=18)
    run_id = train(ExperimentConfig(name="parent", store="toy", bands=S2_BANDS, epochs=1, batch_size=8), n_boot=20)
    return run_id


def test_nothing_to_train_with_is_refused_before_any_job(parent):
    with pytest.raises(retrain.RetrainError, match="no reviewed item can train"):
        retrain.launch(parent)
    items.mark(items.store_item("toy", "pos-0000"), "unsure")
    with pytest.raises(retrain.RetrainError, match="no reviewed item can train"):
        retrain.launch(parent)
    assert [r.run_id for r in runs.list_runs()] == [parent]  # no run folder left behind


def test_train_with_my_labels_end_to_end(parent, capsys):
    split = pd.read_csv(runs.RunFolder.of(parent).file("split.csv"), dtype={"sample_id": str})
    test_ids = sorted(split.loc[split["split"] == "test", "sample_id"])
    train_ids = sorted(split.loc[split["split"] == "train", "sample_id"])
    base = PatchStore.open("toy").index().set_index("sample_id")
    # Relabel five training patches (flip them), one test patch, and one unsure (no training label).
    flipped = train_ids[:5]
    for sid in flipped:
        items.mark(
            items.store_item("toy", sid),
            "not_mining" if base.loc[sid, "label"] == 1 else "mining",
            run_id=parent,
            probability=0.5,
        )
    items.mark(items.store_item("toy", test_ids[0]), "not_mining" if base.loc[test_ids[0], "label"] else "mining")
    items.mark(items.store_item("toy", train_ids[5]), "unsure")
    default_before = runs.default_choice()[0]
    assert default_before == parent

    assert main(["labels", "train", "--from-run", parent, "--epochs", "1", "--bootstrap", "20", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    run_id = report["run_id"]
    c = report["counts"]
    assert c["reviewed"] == 6 and c["on_test_patches"] == 1 and c["skipped"] == {"unsure (no training label)": 1}
    assert c["held_out"] == 1 and c["held_out"] + c["held_out_by_distance"] + c["trained"] + c["dropped_near_test"] == 5

    # the store version: every parent patch, the reviewed ones in set 'reviewed', test patches untouched
    new = PatchStore.open(report["store"])
    assert report["store"].startswith("toy-reviewed-")
    idx = new.index().set_index("sample_id")
    assert set(idx.index) == set(base.index)
    for sid in flipped:
        assert idx.loc[sid, "set"] == "reviewed" and idx.loc[sid, "label"] != base.loc[sid, "label"]
    assert idx.loc[test_ids[0], "label"] == base.loc[test_ids[0], "label"]
    assert idx.loc[test_ids[0], "set"] == base.loc[test_ids[0], "set"]
    prov = new.meta.extra["reviewed"]
    assert prov["from_store"] == "toy" and prov["items"] == 6
    rev = pd.read_csv(new.root / "reviewed.csv", dtype={"sample_id": str})
    assert set(rev["sample_id"]) == set(flipped) | {test_ids[0]}
    np.testing.assert_array_equal(new.read_patch(flipped[0]).data, PatchStore.open("toy").read_patch(flipped[0]).data)

    # the new run: test split unchanged, the newest review held out and never trained on
    new_split = pd.read_csv(runs.RunFolder.of(run_id).file("split.csv"), dtype={"sample_id": str})
    assert sorted(new_split.loc[new_split["split"] == "test", "sample_id"]) == test_ids
    held = new_split.loc[new_split["split"] == "review", "sample_id"].tolist()
    assert flipped[-1] in held and not set(held) & set(new_split.loc[new_split["split"] == "train", "sample_id"])
    assert report["test"]["before"]["n"] == report["test"]["after"]["n"] == len(test_ids)
    assert report["review_holdout"]["after"]["n"] == len(held)
    assert 0.0 <= report["test"]["after"]["f1"] <= 1.0
    assert json.loads(runs.RunFolder.of(run_id).file("review.json").read_text())["run_id"] == run_id
    assert runs.get_run(run_id).status == "completed"

    # never the default by itself, though it is the newest completed run
    assert runs.default_choice()[0] == default_before
    assert report["becomes_default"] is False


def test_detached_job_is_refused_while_the_same_one_runs(parent, monkeypatch):
    items.mark(items.store_item("toy", "pos-0001"), "not_mining")
    folder = retrain.queue_run(retrain.new_config(retrain.parent_config(parent), "toy-reviewed-1", 1), parent, 1, 0.2)
    folder.set_status("running", pid=__import__("os").getpid())
    with pytest.raises(runs.RunError, match="already running"):
        retrain.launch(parent, epochs=1)
    assert LabelStore().counts()["not_mining"] == 1


def test_the_background_job_trains_and_reports(parent):
    """``retrain.launch``: one job of the runner (``asgm labels train --run-id``), its progress and log in the run
    folder, the run listed as queued at once and completed with its review.json."""
    from _engine import wait_until

    from asgm.jobs import commands
    from asgm.jobs import runner as jobs

    for sid in ("pos-0002", "neg-0003", "neg-0004"):
        items.mark(items.store_item("toy", sid), "mining" if sid.startswith("neg") else "not_mining")
    run_id = retrain.launch(parent, epochs=1)
    assert runs.get_run(run_id).status in ("queued", "running")
    assert runs.RunFolder.of(run_id).file(runs.REVIEWED_MARKER).is_file()
    job = next(j for j in jobs.list_jobs() if j.extra.get("run_id") == run_id)
    assert job.kind == "train" and job.command == commands.train_with_labels(parent, run_id, 1, 0.2)
    assert job.log == runs.RunFolder.of(run_id).file("log.txt")
    wait_until(lambda: not jobs.get_job(job.job_id).active, timeout=300)
    info = runs.get_run(run_id)
    assert info.status == "completed", (info.error, jobs.get_job(job.job_id).log_tail())
    report = json.loads(runs.RunFolder.of(run_id).file("review.json").read_text())
    assert report["parent_run"] == parent and report["counts"]["reviewed"] == 3
    assert runs.default_choice()[0] == parent
