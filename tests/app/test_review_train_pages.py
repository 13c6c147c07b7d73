"""AppTest of "train with my labels" (issue 23): the Train page launches it as a background job (cancelled here,
to keep the machine free), and Compare shows a finished one's before / after beside the run it started from.
A SYNTHETIC toy store, a parent trained 1 epoch, five reviewed patches, a retrain of 1 epoch."""

from __future__ import annotations

import json

import pytest
from _engine import toy_parent, use_folders, wait_until
from streamlit.testing.v1 import AppTest
from ui_env import page, page_script

from asgm.cli import main
from asgm.jobs import runner as jobs
from asgm.model import runs
from asgm.review import items

TIMEOUT = 120


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("review-train")
    with pytest.MonkeyPatch.context() as mp:
        use_folders(mp, root)
        parent = toy_parent(root)
        for sid in ("pos-0000", "pos-0001", "neg-0000", "neg-0001", "neg-0002"):
            items.mark(items.store_item("toy", sid), "not_mining" if sid.startswith("pos") else "mining")
    return root, parent


@pytest.fixture
def env(world, monkeypatch):
    import streamlit as st

    root, parent = world
    use_folders(monkeypatch, root)
    monkeypatch.setenv("ASGM_APP_AUTOPREPARE", "0")
    st.cache_data.clear()
    st.cache_resource.clear()
    return parent


def test_train_page_launches_train_with_my_labels_as_a_job(env):
    at = AppTest.from_file(page(page_script("Train")), default_timeout=TIMEOUT)
    at.session_state["run_id"] = env
    at.run()
    assert not at.exception, at.exception
    assert any("5 reviewed item(s) can join the training data of store `toy`" in c.value for c in at.caption)
    button = at.button(key="relabel_go")
    assert not button.disabled
    button.click().run()
    assert not at.exception, at.exception
    new_id = at.session_state["train_run"]
    assert any(new_id in s.value and "Training with your labels started" in s.value for s in at.success)
    job = next(j for j in jobs.list_jobs() if j.extra.get("run_id") == new_id)
    assert job.kind == "train" and job.command[job.command.index("--run-id") + 1] == new_id
    jobs.cancel(job.job_id)
    wait_until(lambda: not jobs.get_job(job.job_id).active, timeout=240)
    assert runs.get_run(new_id).status in ("cancelled", "failed", "completed")
    assert runs.default_choice()[0] == env


def test_train_page_offers_to_fetch_the_imagery_of_amw_detections(env):
    """An AMW detection has no imagery here: left out by default, counted as to be fetched when a source is chosen
    (the fetch itself: tests/review/test_retrain_fetch.py)."""
    items.mark(items.resolve("amw", "amw_2022", "det-1", -61.8, 6.4, year=2022), "mining")
    try:
        at = AppTest.from_file(page(page_script("Train")), default_timeout=TIMEOUT)
        at.session_state["run_id"] = env
        at.run()
        assert not at.exception, at.exception
        assert any("left out: 1 AMW detection" in c.value for c in at.caption)
        at.selectbox(key="relabel_fetch").select("Earth Engine (needs credentials)").run()
        assert not at.exception, at.exception
        assert any(
            "5 reviewed item(s)" in c.value and "1 more once their imagery is fetched from gee" in c.value
            for c in at.caption
        )
        assert not at.button(key="relabel_go").disabled
    finally:
        items.mark(items.resolve("amw", "amw_2022", "det-1", -61.8, 6.4, year=2022), "unsure")  # the module's world


def test_compare_shows_before_and_after(env, capsys):
    assert main(["labels", "train", "--from-run", env, "--epochs", "1", "--bootstrap", "20", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    at = AppTest.from_file(page(page_script("Compare")), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert any(s.value == "Trained with reviewed labels: before / after" for s in at.subheader)
    assert any(report["run_id"] in m.value and env in m.value for m in at.markdown)
    table = next(df.value for df in at.dataframe if "part" in df.value.columns)
    assert list(table["model"]) == [f"before: {env}", f"after: {report['run_id']}"] * 2
    test_rows = table[table["part"] == "unchanged test split"]
    assert list(test_rows["F1"]) == pytest.approx([report["test"]["before"]["f1"], report["test"]["after"]["f1"]])
    assert runs.default_choice()[0] == env  # never the default by itself
