"""First start with a shipped default model (``models/DEFAULT``): the demo preparation job builds the demo store,
trains nothing, and fetches OSM for the demo store when Overpass answers (local stand-in, real HTTP) — or says
plainly that OSM needs the network when it does not."""

from __future__ import annotations

import json
import socket
import time
import zipfile

import pytest
from overpass_standin import FakeOverpass, serve_overpass
from streamlit.testing.v1 import AppTest
from ui_env import page, page_script

from asgm.app import prepare as sup
from asgm.config import ExperimentConfig
from asgm.data.store import PatchStore
from asgm.jobs import runner as jobs
from asgm.model import runs
from asgm.model.runs import create_run
from asgm.training import first_start


def _completed_run(run_id: str, created: str) -> None:
    folder = create_run(ExperimentConfig(name=run_id, store="demo", epochs=1), run_id)
    folder.set_status("completed", created=created)
    folder.write_json("metrics.json", {"f1": 0.5, "pr_auc": 0.5, "precision": 0.5, "recall": 0.5, "threshold": 0.5})
    # A completed run lists as usable only with a model archive (asgm.model.runs.model_file_problem); this one is
    # never loaded, so an archive holding the two member names is enough.
    with zipfile.ZipFile(folder.model_path, "w") as z:
        z.writestr("config.json", "{}")
        z.writestr("model.weights.h5", "")


@pytest.fixture
def shipped(empty_env, monkeypatch):
    """A run store holding a 'shipped' run named in DEFAULT and a newer run (DEFAULT must win)."""
    _completed_run("shipped-run", "2026-01-01T00:00:00+00:00")
    _completed_run("newer-run", "2026-06-01T00:00:00+00:00")
    (empty_env / "models" / "DEFAULT").write_text("shipped-run\n")
    return empty_env


def _wait_jobs(timeout=300):
    end = time.monotonic() + timeout
    while any(j.active for j in jobs.list_jobs()):
        assert time.monotonic() < end, [(j.title, j.log_tail()) for j in jobs.list_jobs()]
        time.sleep(0.5)
    return jobs.list_jobs()


def test_default_run_id_prefers_models_default(shipped):
    assert runs.default_run_id() == "shipped-run"
    (shipped / "models" / "DEFAULT").write_text("deleted-run\n")
    assert runs.default_run_id() == "newer-run"  # a stale DEFAULT falls back to the newest completed run
    (shipped / "models" / "DEFAULT").unlink()
    assert runs.default_run_id() == "newer-run"


def test_offline_first_start_builds_demo_trains_nothing_and_says_osm_needs_network(shipped, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("ASGM_OVERPASS_URL", f"http://127.0.0.1:{port}/api")  # nothing answers there
    sup.start_prepare()
    [job] = _wait_jobs()
    assert not sup.should_auto_prepare()  # demo built, a model shipped, OSM tried once (the note says how it went)
    assert job.kind == "prepare" and job.status == "completed", (job.error, job.log_tail())
    assert "a model exists already (shipped-run)" in job.progress["message"]
    assert PatchStore.open("demo").summary()["patches"] == 491
    assert sorted(r.run_id for r in runs.list_runs()) == ["newer-run", "shipped-run"]  # nothing trained
    note = first_start.demo_osm_note()
    assert note["ok"] is False and "OSM context needs the network" in note["message"]

    at = AppTest.from_file(page("app.py"), default_timeout=120).run()
    assert not at.exception
    shown = "\n".join(str(e.value) for kind in ("info", "warning", "markdown", "caption") for e in getattr(at, kind))
    assert "OSM context needs the network" in shown and "synthetic store shows the mechanism" in shown
    assert "No trained run yet" not in shown and "shipped-run" in shown
    assert at.session_state["run_id"] == "shipped-run"


def test_online_first_start_fetches_and_rasterizes_osm_for_the_demo(shipped, demo_root, monkeypatch):
    # A 'demo' store of 12 real demo patches (the whole pack takes ~170 Overpass requests, over a minute here),
    # every one with a road through its centre so the rasterized masks can be checked.
    full = PatchStore.open("demo", root=demo_root)
    small = PatchStore.create(full.meta)
    small.write_patches(full.read_patch(sid) for sid in full.index().sample_id.iloc[::41])
    index = small.index()
    assert len(index) == 12
    elements = []
    for i, r in enumerate(index.itertuples()):
        a, b = 2 * i + 1, 2 * i + 2
        elements += [
            {"type": "node", "id": a, "lat": r.lat, "lon": r.lon - 0.001},
            {"type": "node", "id": b, "lat": r.lat, "lon": r.lon + 0.001},
            {"type": "way", "id": 10_000 + i, "nodes": [a, b], "tags": {"highway": "track"}},
        ]
    with serve_overpass(FakeOverpass(elements)) as fake:
        monkeypatch.setenv("ASGM_OVERPASS_URL", fake.url)
        sup.start_prepare()
        done = _wait_jobs()
    by_kind = {j.kind: j for j in done}
    assert by_kind["prepare"].status == "completed" and by_kind["osm"].status == "completed", by_kind["osm"].log_tail()
    assert fake.queries and all('[date:"2019-12-31T00:00:00Z"]' in q for q in fake.queries)
    info = PatchStore.open("demo").osm_info()
    assert info["snapshot_date"].startswith("2019-12-31") and info["patches_per_layer"]["highway"] == len(index)
    assert first_start.demo_osm_note()["ok"] is True
    assert sorted(r.run_id for r in runs.list_runs()) == ["newer-run", "shipped-run"]
    assert json.loads((by_kind["osm"].folder / "status.json").read_text())["step"] == 2  # fetch, then rasterize


def test_the_first_start_osm_job_trains_an_rgb_osm_model_on_a_full_demo_store():
    """With network the OSM job ends by training the RGB + OSM model (so the OSM toggles work on real patches);
    a cut-down store (like the 12-patch one above) only gets its masks."""
    from asgm.cli import build_parser

    full = first_start.demo_osm_steps(491)
    assert [s[2:4] for s in full] == [["osm", "fetch"], ["osm", "rasterize"], ["train", "--store"]]
    args = build_parser().parse_args(full[2][2:])
    assert args.store == "demo" and args.osm == "all" and args.epochs == first_start.DEFAULT_EPOCHS
    assert args.name == first_start.OSM_MODEL_NAME
    assert len(first_start.demo_osm_steps(first_start.MIN_PATCHES_TO_TRAIN - 1)) == 2


def test_a_demo_store_built_before_the_first_start_still_gets_its_osm_tried(shipped, demo_root):
    """The README builds the demo store before `streamlit run`, and a model is shipped: nothing is missing for
    click-to-classify, but the demo store's OSM was never attempted, so the first start's job still runs."""
    full = PatchStore.open("demo", root=demo_root)
    PatchStore.create(full.meta).write_patches(full.read_patch(sid) for sid in full.index().sample_id.iloc[:3])
    assert sup.needs_prepare() == [] and sup.should_auto_prepare()
    (shipped / "data" / "app").mkdir(parents=True, exist_ok=True)
    (shipped / "data" / "app" / "demo_osm.json").write_text('{"ok": false, "message": "needs the network"}')
    assert not sup.should_auto_prepare()  # tried before: not again on every start


def _alerts(at: AppTest, where: str = "main") -> str:
    tree = at.sidebar if where == "sidebar" else at.main
    return "\n".join(str(e.value) for kind in ("info", "warning", "caption") for e in getattr(tree, kind))


def test_a_page_opened_during_the_first_start_says_so_and_sees_the_store_when_it_is_ready(shipped, monkeypatch):
    """The Map opened while `asgm demo prepare` runs: it says the demo store is being prepared and that it
    refreshes (its sidebar follows the job), and once the job ended the page shows the store."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("ASGM_OVERPASS_URL", f"http://127.0.0.1:{port}/api")  # offline: OSM is not fetched
    at = AppTest.from_file(page(page_script("Map")), default_timeout=120).run()  # loads the map stack once
    assert not at.exception
    assert "Go to **Home** and click **Prepare the demo**" in _alerts(at)
    assert not at.sidebar.caption or "Running in the background" not in _alerts(at, "sidebar")

    sup.start_prepare()
    at.run()
    assert not at.exception
    assert "No patch store yet" in _alerts(at) and "being prepared in the background" in _alerts(at)
    assert "Running in the background: prepare the demo" in _alerts(at, "sidebar")
    before = at.session_state["_jobs_situation"]
    assert before[0] and "demo" not in before[1]  # the job active, no store yet: what the page was drawn in

    [job] = _wait_jobs()
    assert job.status == "completed", job.log_tail()
    at.run()
    assert not at.exception
    assert "No patch store yet" not in _alerts(at) and "with a patch in `demo`" in _alerts(at)
    assert "Running in the background" not in _alerts(at, "sidebar")  # nothing runs: nothing polls
    assert at.session_state["_jobs_situation"][:2] == ((), ("demo",))


def test_a_first_start_with_no_model_at_all_launches_the_small_default_training(empty_env, monkeypatch):
    """Nothing shipped, nothing trained (a models folder of its own): the preparation job builds the demo store and
    launches the small default run in the background; it can be cancelled like any run."""
    from asgm.model import run_jobs

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("ASGM_OVERPASS_URL", f"http://127.0.0.1:{port}/api")  # offline
    assert sup.needs_prepare() == ["demo patch store", "a trained model"]
    sup.start_prepare()
    end = time.monotonic() + 300
    while not (found := runs.list_runs()) or any(j.active for j in jobs.list_jobs() if j.kind == "prepare"):
        assert time.monotonic() < end, [(j.title, j.log_tail()) for j in jobs.list_jobs()]
        time.sleep(0.3)
    [run] = found
    assert run.config is not None
    # The launch records the store's input encoding; the rest is the default recipe as it is.
    assert run.config.encoding is not None and run.config.model_copy(update={"encoding": None}) == (
        first_start.default_config()
    )
    [prep] = [j for j in jobs.list_jobs() if j.kind == "prepare"]
    assert (
        prep.status == "completed"
        and f"default model training launched as run {run.run_id}" in (prep.progress["message"])
    )
    assert sup.needs_prepare() == []  # a queued or running run counts: the first start does not launch twice
    if runs.get_run(run.run_id).status in ("queued", "running"):
        run_jobs.request_cancel(run.run_id)
    while runs.get_run(run.run_id).status in ("queued", "running"):
        assert time.monotonic() < end, runs.get_run(run.run_id)
        time.sleep(0.3)
    assert runs.get_run(run.run_id).status in ("cancelled", "completed")
