"""``asgm labels list | export | import | mark | queue`` on a toy store (real CLI entry point, temp data folder)."""

from __future__ import annotations

import json

import pyogrio
import pytest
from _engine import toy_store

from asgm.cli import main
from asgm.data.labels import LabelStore


@pytest.fixture
def toy(data_env):
    return toy_store(data_env / "data" / "stores", n_pos=3, n_neg=4)


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_help_of_every_labels_command(capsys):
    for cmd in ("list", "export", "import", "mark", "queue"):
        with pytest.raises(SystemExit) as exc:
            main(["labels", cmd, "--help"])
        assert exc.value.code == 0
        assert "usage: asgm labels " + cmd in capsys.readouterr().out


def test_mark_list_export_import(toy, data_env, capsys, tmp_path):
    ids = sorted(toy.index()["sample_id"])
    assert (
        main(
            [
                "labels",
                "mark",
                "--store",
                "toy",
                "--item",
                ids[0],
                "--label",
                "not",
                "--note",
                "river bar",
                "--reviewer",
                "ana",
                "--run",
                "run-1",
                "--probability",
                "0.7",
                "--json",
            ]
        )
        == 0
    )
    out = _json(capsys)
    assert out["changed"] and out["label"] == "not_mining" and out["item"] == f"store:toy:{ids[0]}"
    assert (
        main(
            [
                "labels",
                "mark",
                "--store",
                "toy",
                "--item",
                ids[0],
                "--label",
                "not_mining",
                "--note",
                "river bar",
                "--reviewer",
                "ana",
                "--json",
            ]
        )
        == 0
    )
    assert _json(capsys)["changed"] is False  # a repeat writes nothing
    assert main(["labels", "mark", "--store", "toy", "--item", ids[1], "--label", "mining"]) == 0
    assert "mining" in capsys.readouterr().out
    assert (
        main(
            ["labels", "mark", "--amw", "amw-2023", "--item", "7", "--lon", "-70", "--lat", "-12", "--label", "unsure"]
        )
        == 0
    )
    capsys.readouterr()

    assert main(["labels", "list", "--json"]) == 0
    listed = _json(capsys)
    assert listed["counts"] == {"mining": 1, "not_mining": 1, "unsure": 1} and len(listed["rows"]) == 3
    assert main(["labels", "list", "--kind", "store", "--json"]) == 0
    assert len(_json(capsys)["rows"]) == 2
    assert main(["labels", "list", "--history", "--json"]) == 0
    assert {r["via"] for r in _json(capsys)["rows"]} == {"cli"}
    assert main(["labels", "list"]) == 0
    assert "river bar" in capsys.readouterr().out

    for fmt in ("geojson", "csv", "kml", "gpkg"):
        out_file = tmp_path / f"out.{fmt}"
        assert main(["labels", "export", "--out", str(out_file), "--json"]) == 0
        assert _json(capsys)["labels"] == 3
        assert main(["labels", "export", "--out", str(out_file)]) == 1
        assert "pass --force" in capsys.readouterr().err
    assert len(pyogrio.read_dataframe(tmp_path / "out.gpkg", layer="labels")) == 3

    # a fresh data folder imports the export back, item by item
    (data_env / "data" / "labels" / "labels.gpkg").unlink()
    assert main(["labels", "import", str(tmp_path / "out.geojson"), "--json"]) == 0
    assert _json(capsys) == {"file": str(tmp_path / "out.geojson"), "rows": 3, "written": 3, "unchanged": 0}
    assert main(["labels", "import", str(tmp_path / "out.csv"), "--json"]) == 0
    assert _json(capsys)["unchanged"] == 3
    assert {r["label"] for r in LabelStore().current()} == {"mining", "not_mining", "unsure"}


def test_bad_marks_and_imports_are_one_line_errors(toy, capsys, tmp_path):
    assert main(["labels", "mark", "--store", "toy", "--item", "pos-9999", "--label", "mining"]) == 1
    assert "no patch 'pos-9999' in store 'toy'" in capsys.readouterr().err
    assert main(["labels", "mark", "--store", "toy", "--item", "pos-0000", "--label", "maybe"]) == 1
    assert "label is 'maybe'" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "source_kind,source,item_id,lon,lat,label\nstore,toy,pos-0000,-63,6,1\nstore,toy,pos-7777,-63,6,0\n",
        encoding="utf-8",
    )
    assert main(["labels", "import", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "row 2" in err and "pos-7777" in err and err.count("\n") == 1
    assert LabelStore().current() == []  # the good first row was not written either


def test_queue_of_a_store(toy, capsys):
    assert main(["labels", "queue", "--store", "toy"]) == 1
    assert "--store needs --run" in capsys.readouterr().err
    assert main(["labels", "queue", "--scan", "nothing"]) == 1
    assert "no scan named 'nothing'" in capsys.readouterr().err


def test_queue_of_a_store_under_a_run(toy, capsys):
    from scan_support import detector_run

    run_id = detector_run()
    assert main(["labels", "mark", "--store", "toy", "--item", "pos-0000", "--label", "mining"]) == 0
    capsys.readouterr()
    assert main(["labels", "queue", "--store", "toy", "--run", run_id, "--order", "confident", "--json"]) == 0
    q = _json(capsys)
    assert (q["total"], q["done"], q["left"]) == (7, 1, 6) and q["run_id"] == run_id
    probs = [x["prob"] for x in q["next"]]
    assert probs == sorted(probs, reverse=True) and "pos-0000" not in [x["item_id"] for x in q["next"]]
    assert main(["labels", "queue", "--store", "toy", "--run", run_id]) == 0
    assert "1 reviewed, 6 left of 7" in capsys.readouterr().out
