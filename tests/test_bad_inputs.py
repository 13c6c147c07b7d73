"""What the project promises when its input is bad (issue 13: nothing hangs, nothing lies).

Every case feeds a real bad file (tiny, generated here) to the command or page a user would use and
checks four things: the one-line message (what is wrong, what to do), the exit status, that the
process ends (a subprocess deadline where a hang was possible), and that no file was changed or left
half-written. Read top to bottom, this is the list of those promises:

1. A patch that cannot be read stops ``train`` / ``evaluate`` in seconds, naming the sample and cause.
2. A store's files are checked against its index (``asgm patches check``); a cut, emptied or deleted
   index is a message, the masked filter uses the pixels, a copied store goes by its folder name.
3. Failures are one line (bad ``--config``, invalid run config, full disk, NaN geometry, damaged caches);
   the traceback goes to the run's error.txt only.
4. Bad OSM vectors are refused before anything is written; an all-empty result never replaces masks
   without ``--force``; an HTML page is not an OSM extract.
5. A run whose model file is missing, empty or damaged is listed "corrupt", and a link to an unusable
   run says so.
6. Smaller: refused stores leave no run folder, damaged cached downloads say so offline, the kill -9
   message only points at a log that exists, foreground training refuses duplicates.
7. A region scan's damaged outputs are a one-line message; the list of scans still loads.
8. Nothing is overwritten by accident, no broken patch is classified silently (issue 22, wrong cases):
   ``train --run-id`` never reuses a run; ``synthetic build`` never replaces a store (real ones never);
   ``predict --out`` refuses the data/models folders and existing files without ``--force``; a full disk
   in ``osm rasterize`` keeps the old masks; ``scan diff`` needs scans of one run (the page pairs only
   those and shows the run); non-numeric metrics make a run "corrupt"; a NaN threshold is refused; every
   prediction path validates the pixels as ``patches check`` does; ``evaluate`` applies the masked
   filter; ``patches check`` catches label 7, duplicated rows and a CRS/centre off its row; ``osm fetch
   --xml`` checks node coordinates.
9. One line where a traceback was (issue 22, unclear classes): scan options and ``--out`` folders,
   ``store.json`` field types, a non-JSON metrics.json in ``evaluate``; page requests (store names, dates,
   a cut index) refused before a job starts; written files honour the umask; text files may carry a UTF-8
   BOM and others are told "save it as UTF-8"; uploaded points show their extent and swapped lon/lat;
   advice fits the case (the user's own vectors file, a store missing only store.json, a 47 px or 12-band
   patch is mended, not the run retrained; a scan does not speak of stored patches).
10. The label database (issue 23): a damaged ``labels.gpkg`` or one locked by another program (QGIS) is one
    line and nothing is written; a full disk during a mark leaves the database as it was; a label for an
    unknown item is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from _engine import toy_store
from shapely.geometry import LineString
from ui_env import page_script

from asgm.cli import main
from asgm.config import RGB_BANDS, ExperimentConfig

REPO = Path(__file__).resolve().parent.parent
DEADLINE_S = 240  # generous for a loaded 2-core machine; a hang runs into it and fails the test


# -- helpers ----------------------------------------------------------------------------------------
def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (to prove nothing was changed, added or half-written)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``asgm ARGS`` in-process; (exit status, stdout, stderr)."""
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line(err: str, *needles: str) -> str:
    """Assert ``err`` is a single line without a traceback that contains every needle; return it."""
    # tqdm progress bars share stderr (redrawn with \r): they are not messages
    lines = [ln for ln in re.split(r"[\r\n]", err) if ln.strip() and not re.search(r"\d+%\|", ln)]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def subprocess_cli(env_root: Path, *args: str, limit_file_bytes: int | None = None) -> tuple[int, str, str, float]:
    """Run ``python -m asgm ARGS`` in its own process against ``env_root``; (status, stdout, stderr, seconds)."""
    env = {
        **os.environ,
        "ASGM_DATA_DIR": str(env_root / "data"),
        "ASGM_MODELS_DIR": str(env_root / "models"),
        "PYTHONPATH": str(REPO),
        "PYTHONDONTWRITEBYTECODE": "1",
    }

    def limit() -> None:  # a full disk, as the kernel reports it for a file size limit (EFBIG)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_bytes, limit_file_bytes))

    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "asgm", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=DEADLINE_S,
        preexec_fn=limit if limit_file_bytes else None,
    )
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0


def small_store(root: Path, name: str = "toy"):
    """Six RGB patches of 48 px on real UTM grids (3 positives, 3 curated negatives)."""
    return toy_store(root, name=name, n_pos=3, n_neg=3, bands=RGB_BANDS)


def write_tif(path: Path, data: np.ndarray, bands: tuple[str, ...] | None, like: Path) -> None:
    """A GeoTIFF on the grid of ``like`` (its CRS and origin) holding ``data``; band names optional."""
    with rasterio.open(like) as src:
        crs, transform = src.crs, src.transform
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=data.dtype,
        crs=crs,
        transform=transform,
    ) as dst:
        dst.write(data)
        for i, b in enumerate(bands or (), start=1):
            dst.set_band_description(i, b)


# -- 1. a bad patch stops training in seconds, naming the sample -----------------------------------
def _corrupt(kind: str, path: Path) -> str:
    """Damage one patch file; returns the words the message must contain."""
    n = 48
    if kind == "deleted":
        path.unlink()
        return "file is missing"
    if kind == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(4000))
        return "unreadable GeoTIFF"
    if kind == "0 bytes":
        path.write_bytes(b"")
        return "file is empty (0 bytes)"
    src = path.with_suffix(".orig")
    path.rename(src)
    if kind == "47 px":
        write_tif(path, np.full((3, 47, 47), 900, np.uint16), RGB_BANDS, like=src)
        expected = "47x47 px, the store holds 48x48 px"
    elif kind == "5 bands":
        write_tif(path, np.full((5, n, n), 900, np.uint16), ("B4", "B3", "B2", "B8", "B11"), like=src)
        expected = "5 bands, the store holds 3"
    elif kind == "no band names":
        write_tif(path, np.full((3, n, n), 900, np.uint16), None, like=src)
        expected = "no band names"
    else:  # "NaN pixels": a float GeoTIFF with NaNs, not the store's uint16 DN
        data = np.full((3, n, n), 0.1, np.float32)
        data[:, :5] = np.nan
        write_tif(path, data, RGB_BANDS, like=src)
        expected = "pixels are float32"
    src.unlink()
    return expected


@pytest.mark.parametrize(
    "kind", ["deleted", "random bytes", "0 bytes", "47 px", "5 bands", "no band names", "NaN pixels"]
)
def test_train_refuses_a_bad_patch_in_one_line(data_env, capsys, kind):
    store = small_store(data_env / "stores")
    expected = _corrupt(kind, store.patch_path("pos-0001"))
    before = snapshot(store.root)
    rc, out, err = cli(capsys, "train", "--store", store.root, "--epochs", "1")
    assert rc == 1 and out == ""
    one_line(err, "pos-0001", expected, "asgm patches check --store toy")
    assert snapshot(store.root) == before
    # the run is recorded as failed with that same line; the traceback is only in error.txt
    (run,) = (data_env / "models").iterdir()
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "failed" and "pos-0001" in status["error"] and "\n" not in status["error"]
    rc, out, _ = cli(capsys, "runs", "list")
    assert rc == 0 and "failed" in out and "pos-0001" in out and len(out.strip().splitlines()) == 1


def test_train_process_with_a_deleted_patch_exits_in_seconds(tmp_path):
    store = small_store(tmp_path / "data" / "stores")
    store.patch_path("neg-0002").unlink()
    rc, out, err, seconds = subprocess_cli(tmp_path, "train", "--store", "toy", "--epochs", "1")
    assert rc == 1, err
    one_line(err, "neg-0002", "file is missing")
    assert seconds < 60, seconds  # it fails before TensorFlow is even imported


PIPELINE_SCRIPT = """
import sys
import numpy as np
from asgm.config import ExperimentConfig
from asgm.model.inputs import PatchSource, run_pipeline
from asgm.training.dataset import make_tf_dataset
from asgm.errors import AsgmError
from asgm.model.cnn import build_model
from asgm.data.store import PatchStore

store = PatchStore.open(sys.argv[1])
cfg = ExperimentConfig(store=sys.argv[1], bands=store.meta.bands, patch_size=store.meta.size)
source = PatchSource(store, cfg, store.sample_ids(), cache_limit_mb=0)
store.patch_path(sys.argv[2]).unlink()  # the file vanishes after the checks, while the pipeline runs
model = build_model(cfg.patch_size, len(cfg.channels))
ds = make_tf_dataset(source, np.zeros(len(source.sample_ids)), 16)
try:
    run_pipeline(lambda: model.predict(ds.map(lambda x, y: x), verbose=0), source)
except AsgmError as exc:
    print(f"ERROR {exc}")
    sys.exit(1)
"""


def test_a_patch_failing_inside_the_pipeline_ends_the_process(tmp_path):
    """Before the fix this process printed TensorFlow's error and then never exited (issue 13 item 1;
    reproduced with these 40 patches in batches of 16, the failing one in the first batch)."""
    store = toy_store(tmp_path / "stores", n_pos=20, n_neg=20, bands=RGB_BANDS)
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [sys.executable, "-c", PIPELINE_SCRIPT, str(store.root), "neg-0002"],
        capture_output=True,
        text=True,
        env=env,
        timeout=DEADLINE_S,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert proc.stdout.strip().startswith("ERROR patch file for 'neg-0002' is missing")


def test_evaluate_refuses_a_bad_patch_in_one_line(data_env, capsys):
    from asgm.model.runs import create_run

    store = small_store(data_env / "stores")
    folder = create_run(ExperimentConfig(store=str(store.root), bands=RGB_BANDS, epochs=1), "done-1")
    folder.set_status("completed")
    split = store.index()[["sample_id", "label", "lon", "lat"]].assign(cluster=0, split="test")
    folder.file("split.csv").write_text(split.to_csv(index=False))
    _save_tiny_keras_model(folder.model_path)
    store.patch_path("neg-0001").write_bytes(b"")
    rc, _, err = cli(capsys, "evaluate", "done-1", "--bootstrap", "10")
    assert rc == 1
    one_line(err, "neg-0001", "empty (0 bytes)")
    assert not folder.file("metrics.json").exists() and not folder.file("predictions.csv").exists()


def _save_tiny_keras_model(path: Path) -> None:
    from asgm.model.cnn import build_model

    build_model(48, 3).save(path)


# -- 2. store integrity ------------------------------------------------------------------------------
def test_patches_check_reports_every_bad_file_and_exits_1(data_env, capsys):
    store = small_store(data_env / "stores")
    assert cli(capsys, "patches", "check", "--store", store.root)[0] == 0
    store.patch_path("pos-0000").unlink()
    store.patch_path("neg-0000").write_bytes(b"")
    before = snapshot(store.root)
    rc, out, _ = cli(capsys, "patches", "check", "--store", store.root, "--json")
    report = json.loads(out)
    assert rc == 1 and report["ok"] is False and report["checked"] == 6
    assert set(report["problems"]) == {"pos-0000", "neg-0000"}
    assert "missing" in report["problems"]["pos-0000"] and "0 bytes" in report["problems"]["neg-0000"]
    rc, out, _ = cli(capsys, "patches", "check", "--store", store.root)
    assert rc == 1 and "2 unusable" in out and "pos-0000" in out and "neg-0000" in out
    assert snapshot(store.root) == before


def test_patches_list_marks_unusable_files(data_env, capsys):
    store = small_store(data_env / "stores")
    rc, out, _ = cli(capsys, "patches", "list", "--store", store.root, "--json")
    assert rc == 0 and json.loads(out)["problems"] == {}
    store.patch_path("pos-0001").unlink()
    before = snapshot(store.root)
    rc, out, _ = cli(capsys, "patches", "list", "--store", store.root)
    assert rc == 1 and "pos-0001" in out and "UNUSABLE" in out and "missing" in out
    assert "1 unusable patch(es)" in out and "asgm patches check" in out
    assert snapshot(store.root) == before


def test_masked_filter_uses_the_pixels_not_the_index(data_env, capsys):
    from asgm.model.inputs import assemble

    store = small_store(data_env / "stores")
    path = store.patch_path("pos-0002")
    _corrupt("no band names", path)  # replace it with a clean file, then give it names but zero pixels
    write_tif(path, np.zeros((3, 48, 48), np.uint16), RGB_BANDS, like=path)
    assert store.index().set_index("sample_id").loc["pos-0002", "masked_fraction"] == 0.0  # the index is stale
    rc, out, _ = cli(capsys, "patches", "check", "--store", store.root)
    assert rc == 0 and "index says 0.0% masked, the pixels 100.0%" in out
    data = assemble(store, ExperimentConfig(store=str(store.root), bands=RGB_BANDS))
    assert "pos-0002" not in set(data.rows["sample_id"]) and data.dropped["positives"] == 1


@pytest.mark.parametrize(
    "damage, expected",
    [
        ("cut at a row boundary", "lists 4 patches but store.json records 6: the index was truncated"),
        ("cut mid-line", "has 1 incomplete row(s): line 7 (pos-0002)"),
        ("0 bytes", "is empty (0 bytes)"),
        ("deleted", "is missing although 6 patch file(s) are present"),
    ],
)
def test_a_damaged_index_is_a_message_for_every_command(data_env, capsys, damage, expected):
    store = small_store(data_env / "stores")
    index = store.root / "index.csv"
    text = index.read_text()
    if damage == "cut at a row boundary":
        index.write_text("".join(text.splitlines(keepends=True)[:5]))
    elif damage == "cut mid-line":
        index.write_text(text[: len(text) - 60])
    elif damage == "0 bytes":
        index.write_text("")
    else:
        index.unlink()
    before = snapshot(store.root)
    for args in (
        ["patches", "list", "--store", store.root],
        ["patches", "check", "--store", store.root],
        ["train", "--store", store.root, "--epochs", "1"],
    ):
        rc, out, err = cli(capsys, *args)
        assert rc == 1 and out == "", args
        one_line(err, expected, "rebuild the store")
    assert snapshot(store.root) == before


def test_a_copied_store_goes_by_its_folder_name(data_env, capsys):
    import shutil

    store = small_store(data_env / "stores")
    shutil.copytree(store.root, store.root.parent / "copy")
    rc, out, _ = cli(capsys, "patches", "list", "--store", store.root.parent / "copy", "--json")
    assert rc == 0 and json.loads(out)["summary"]["name"] == "copy"


# -- 3. one-line failures ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content, expected",
    [
        ("{not json", "is not valid JSON"),
        ('{"epochs": 0, "colour": "red"}', "epochs: Input should be greater than or equal to 1; colour: Extra inputs"),
        ("[1, 2]", "must hold a JSON object"),
        (None, "not found"),
    ],
)
def test_bad_config_file(data_env, capsys, content, expected):
    path = data_env / "exp.json"
    if content is not None:
        path.write_text(content)
    rc, out, err = cli(capsys, "train", "--config", path)
    assert rc == 1 and out == ""
    one_line(err, f"config file {path}", expected)
    assert not (data_env / "models").exists()


def test_invalid_run_config_is_a_message(data_env, capsys):
    from asgm.model.runs import create_run

    folder = create_run(ExperimentConfig(epochs=1), "bad-config")
    folder.file("config.json").write_text('{"epochs": "many"}')
    rc, _, err = cli(capsys, "evaluate", "bad-config")
    assert rc == 1
    one_line(err, "run 'bad-config' has an invalid config.json", "epochs")
    rc, out, _ = cli(capsys, "runs", "list")
    assert rc == 0 and "corrupt" in out and "config.json is unreadable" in out


def test_full_disk_at_run_creation_leaves_nothing_behind(tmp_path):
    small_store(tmp_path / "data" / "stores")
    rc, out, err, _ = subprocess_cli(tmp_path, "train", "--store", "toy", "--epochs", "1", limit_file_bytes=300)
    assert rc == 1, err
    one_line(err, "no space left to write", "config.json", "free disk space")
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_full_disk_while_saving_the_model_is_one_line(tmp_path):
    small_store(tmp_path / "data" / "stores")
    # ~200 kB per file: the run's JSON and CSV files fit, the 1.4 MB model.keras does not
    rc, out, err, _ = subprocess_cli(
        tmp_path, "train", "--store", "toy", "--epochs", "1", "--bootstrap", "10", limit_file_bytes=200_000
    )
    assert rc == 1 and out == "" and "Traceback" not in err
    message = [ln for ln in err.splitlines() if ln.startswith("asgm train:")]  # TensorFlow logs its start-up too
    assert len(message) == 1 and "no space left to write" in message[0] and "model.keras" in message[0]
    (run,) = (tmp_path / "models").iterdir()
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "failed" and status["error"].startswith("no space left to write")
    assert not (run / "model.keras").exists() and not list(run.glob(".tmp-*"))


def test_nan_polygon_and_damaged_boundary_cache(data_env, capsys):
    from asgm.data import boundary

    poly = data_env / "area.geojson"
    poly.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {},
                        "geometry": {
                            "type": "Polygon",
                            "coordinates": [[[-63, 6], ["NaN", 6.1], [-62.9, 6.1], [-63, 6]]],
                        },
                    }
                ],
            }
        ).replace('"NaN"', "NaN")
    )
    rc, _, err = cli(capsys, "osm", "fetch", "--polygon", poly)
    assert rc == 1
    one_line(err, "NaN or infinite coordinate")
    cache = boundary.cached_path()
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"\x00garbage")
    rc, _, err = cli(capsys, "points", "random", "--boundary", "osm")
    assert rc == 1
    one_line(err, "cached boundary", "is damaged", "delete")
    assert cache.read_bytes() == b"\x00garbage"


# -- 4. OSM vectors ------------------------------------------------------------------------------------
def _vectors(path: Path, lines: list[list[tuple[float, float]]], crs: str = "EPSG:4326", **columns) -> Path:
    cols = columns or {"highway": ["track"] * len(lines)}
    gpd.GeoDataFrame(cols, geometry=[LineString(c) for c in lines], crs=crs).to_parquet(path)
    return path


@pytest.fixture
def osm_store(data_env, capsys):
    """A store with OSM masks already made from a good file (a road through the first positive)."""
    store = small_store(data_env / "stores")
    row = store.index().iloc[0]
    lon, lat = float(row["lon"]), float(row["lat"])
    good = _vectors(data_env / "good.parquet", [[(lon - 0.01, lat), (lon + 0.01, lat)]])
    assert cli(capsys, "osm", "rasterize", "--store", store.root, "--vectors", good)[0] == 0
    return store, lon, lat


@pytest.mark.parametrize(
    "case, expected",
    [
        ("latitude out of range", "beyond ±180/±90"),
        ("metres labelled as lon/lat", "probably metres of a projected CRS"),
        ("NaN coordinates", "NaN or infinite coordinate"),
        ("empty file", "hold no features"),
        ("no OSM key columns", "has a value for the keys"),
        ("somewhere else", "do not reach any patch of the store"),
        ("near but on no patch", "put no feature on any of the 6 patches"),
    ],
)
def test_bad_osm_vectors_never_touch_existing_masks(osm_store, data_env, capsys, case, expected):
    store, lon, lat = osm_store
    f = data_env / "bad.parquet"
    if case == "latitude out of range":
        _vectors(f, [[(lon, lat), (lon, 95.0)]])
    elif case == "metres labelled as lon/lat":
        _vectors(f, [[(612_000.0, 663_000.0), (612_500.0, 663_000.0)]])
    elif case == "NaN coordinates":
        _vectors(f, [[(lon, lat), (np.nan, lat)]])
    elif case == "empty file":
        gpd.GeoDataFrame({"highway": []}, geometry=[], crs="EPSG:4326").to_parquet(f)
    elif case == "no OSM key columns":
        _vectors(f, [[(lon - 0.01, lat), (lon + 0.01, lat)]], name=["a road"])
    elif case == "somewhere else":
        _vectors(f, [[(10.0, 50.0), (10.1, 50.0)]])
    else:  # ~780 m north of the first patch (whose half-width is 240 m): near it, on no patch
        _vectors(f, [[(lon - 0.002, lat + 0.007), (lon + 0.002, lat + 0.007)]])
    before = snapshot(store.root)
    rc, out, err = cli(capsys, "osm", "rasterize", "--store", store.root, "--vectors", f)
    assert rc == 1 and out == ""
    one_line(err, expected)
    assert snapshot(store.root) == before
    if case == "near but on no patch":  # asked for explicitly, the empty masks are written
        rc, _, _ = cli(capsys, "osm", "rasterize", "--store", store.root, "--vectors", f, "--force")
        assert rc == 0 and all(store.read_osm(s)[0].sum() == 0 for s in store.sample_ids())


def test_osm_fetch_refuses_an_html_page_saved_as_xml(data_env, capsys):
    page = data_env / "extract.osm"
    page.write_text("<html><head><title>504 Gateway Time-out</title></head><body>try later</body></html>")
    rc, _, err = cli(capsys, "osm", "fetch", "--xml", page)
    assert rc == 1
    one_line(err, "is not OSM XML: its root element is <html>")
    assert not (data_env / "data" / "osm").exists() or not any((data_env / "data" / "osm").rglob("*.parquet"))


# -- 5. runs that lie ------------------------------------------------------------------------------------
def _completed_run(run_id: str, model: bytes | None):
    from asgm.model.runs import create_run

    folder = create_run(ExperimentConfig(epochs=1), run_id)
    folder.set_status("completed")
    folder.write_json("metrics.json", {"f1": 0.5, "threshold": 0.5})
    if model is not None:
        folder.model_path.write_bytes(model)
    return folder


def _zip_bytes(names: list[str]) -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n in names:
            z.writestr(n, "{}")
    return buf.getvalue()


def test_runs_with_a_bad_model_file_are_listed_corrupt(data_env, capsys):
    from asgm.app import loaders
    from asgm.model import runs

    _completed_run("ok", _zip_bytes(["metadata.json", "config.json", "model.weights.h5"]))
    _completed_run("missing", None)
    _completed_run("empty", b"")
    _completed_run("damaged", b"PK\x03\x04 cut short")
    status = {r.run_id: (r.status, r.error) for r in runs.list_runs()}
    assert status["ok"] == ("completed", None)
    for run_id, why in (
        ("missing", "model.keras is missing"),
        ("empty", "model.keras is empty"),
        ("damaged", "model.keras is not a Keras archive"),
    ):
        assert status[run_id][0] == "corrupt" and why in status[run_id][1], run_id
    assert [r.run_id for r in loaders.completed_runs()] == ["ok"]  # only usable runs can be picked
    rc, out, _ = cli(capsys, "runs", "list")
    assert rc == 0 and out.count("corrupt") == 3


@pytest.mark.parametrize(
    "link, expected",
    [
        ("nope", "no run with that id exists here"),
        ("../../x", "no run with that id exists here"),
        ("empty", "that run is corrupt (model.keras is empty"),
    ],
)
def test_a_link_to_an_unusable_run_says_so(data_env, monkeypatch, link, expected):
    from streamlit.testing.v1 import AppTest

    from asgm.config import PROJECT_ROOT

    monkeypatch.setenv("ASGM_APP_AUTOPREPARE", "0")
    _completed_run("empty", b"")
    at = AppTest.from_file(str(PROJECT_ROOT / "pages" / "2_Map.py"), default_timeout=120)
    at.query_params["run"] = link
    at.run()
    assert not at.exception
    assert any(f"The link names run '{link}', but {expected}" in w.value for w in at.warning)


# -- 6. smaller ------------------------------------------------------------------------------------------
def test_a_refused_store_leaves_no_run_folder(data_env, capsys):
    rc, _, err = cli(capsys, "train", "--store", "../../etc", "--bands", "B4,B3,B2", "--size", "48")
    assert rc == 1
    one_line(err, "no patch store '../../etc'")
    assert not (data_env / "models").exists() or not any((data_env / "models").iterdir())


def test_damaged_cached_download_offline_says_so(data_env, monkeypatch):
    from asgm import registry
    from asgm.config import cache_dir

    monkeypatch.delenv("ASGM_DATA_MIRROR", raising=False)
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # nothing listens there: the network is cut
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    key = next(iter(registry.FILES))
    cached = cache_dir() / registry.FILES[key].relpath
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"half a download")
    with pytest.raises(registry.DataFetchError, match="cached copy .* is damaged \\(sha256 mismatch\\).*delete it"):
        registry.get(key)


def test_killed_foreground_run_does_not_point_at_a_missing_log(data_env):
    from asgm.model import runs
    from asgm.model.runs import create_run

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = create_run(ExperimentConfig(epochs=1), "killed", status="running")
    folder.set_status("running", pid=dead.pid)
    info = runs.get_run("killed")
    assert info.status == "failed" and "died without finishing" in info.error and "log.txt" not in info.error
    folder.file("log.txt").write_text("epoch 1\n")
    assert "log.txt" in runs.get_run("killed").error


def test_foreground_train_refuses_a_duplicate_of_a_running_run(data_env, capsys):
    from asgm.model.runs import create_run

    store = small_store(data_env / "stores")
    cfg = ExperimentConfig(store=str(store.root), bands=RGB_BANDS, patch_size=48, epochs=1)
    create_run(cfg, "running-1", status="running").set_status("running", pid=os.getpid())
    rc, _, err = cli(capsys, "train", "--store", store.root, "--epochs", "1")
    assert rc == 1
    one_line(err, "run running-1 with the same config is already running")
    assert sorted(p.name for p in (data_env / "models").iterdir()) == ["running-1"]


@pytest.mark.parametrize(
    "page", ["app.py", page_script("Map"), page_script("Patch viewer"), page_script("Train"), page_script("Compare")]
)
def test_the_app_stays_up_with_a_cut_index_and_a_corrupt_run(data_env, monkeypatch, page):
    from streamlit.testing.v1 import AppTest

    from asgm.config import PROJECT_ROOT

    monkeypatch.setenv("ASGM_APP_AUTOPREPARE", "0")
    store = small_store(data_env / "data" / "stores", name="demo")
    index = store.root / "index.csv"
    index.write_text("".join(index.read_text().splitlines(keepends=True)[:3]))
    _completed_run("empty", b"")
    at = AppTest.from_file(str(PROJECT_ROOT / page), default_timeout=120)
    at.query_params["store"] = "demo"
    at.run()
    assert not at.exception
    if page in (page_script("Map"), page_script("Patch viewer")):  # the pages that read the store say what is wrong
        assert any("the index was truncated" in e.value for e in at.error)


def _scan_folder(root: Path) -> Path:
    """A finished region-scan folder written with the scan's own writers (one detection), no model needed."""
    from dataclasses import asdict

    from shapely.geometry import box, mapping

    from asgm import atomic
    from asgm.scan import outputs as scan_outputs
    from asgm.scan import windows

    grid = windows.ScanGrid(epsg=32620, x0=587_000.0, y0=708_000.0, window=48, stride=24, ny=4, nx=4, tile_windows=8)
    prob = np.full((4, 4), 0.1, np.float32)
    prob[1:3, 1:3] = 0.9
    det, conf = scan_outputs.dual_threshold(prob, 0.5, 0.3)
    gdf = scan_outputs.polygons(det, prob, conf, grid.cell_transform, grid.epsg)
    folder = root / "scans" / "area"
    scan_outputs.write_geojson(folder / "detections.geojson", gdf, {"synthetic": False})
    np.savez(folder / "cells.npz", prob=prob, detected=det, confirmed=conf)
    atomic.write_json(
        folder / "scan.json",
        {
            "identity": {
                "aoi": mapping(box(-62.2, 6.4, -62.18, 6.42)),
                "year": 2021,
                "run_id": "r",
                "source": {"kind": "stac"},
                "grid": asdict(grid),
            }
        },
    )
    atomic.write_json(folder / "summary.json", {"detections": len(gdf), "detected_area_ha": 23.04, "synthetic": False})
    return folder


@pytest.mark.parametrize(
    "damage, expected",
    [
        ("detections.geojson", "has unreadable outputs"),
        ("cells.npz", "cells.npz is unreadable"),
        ("summary.json", "is not finished"),
    ],
)
def test_a_damaged_scan_folder_is_a_message_for_the_scan_page(data_env, damage, expected):
    """7. A region scan's damaged output is a one-line message on the Region scan page, and the list of scans
    still loads (the page catches ``AsgmError`` only)."""
    from asgm.scan import results as scan_results

    folder = _scan_folder(data_env / "data")
    assert len(scan_results.detections_table(scan_results.open_scan("area"))) == 1  # intact: readable
    (folder / damage).write_bytes(os.urandom(64))
    [entry] = scan_results.list_scans()
    assert entry.name == "area" and entry.finished == (damage != "summary.json")
    with pytest.raises(scan_results.ScanResultError) as err:
        scan_results.detections_table(scan_results.open_scan("area"))
    assert expected in str(err.value) and "\n" not in str(err.value)


# -- 8. issue 22: nothing overwritten by accident, no broken patch classified silently ------------------
def test_train_run_id_never_reuses_a_folder_holding_a_run(data_env, capsys):
    """Wrong 1: ``--run-id`` of a completed run used to replace its model.keras with a 1-epoch model."""
    small_store(data_env / "stores")
    _completed_run("done", _zip_bytes(["metadata.json", "config.json", "model.weights.h5"]))
    before = snapshot(data_env / "models")
    rc, out, err = cli(capsys, "train", "--store", data_env / "stores" / "toy", "--epochs", "1", "--run-id", "done")
    assert rc == 1 and out == ""
    one_line(err, "already holds run 'done' (completed)", "--run-id never reuses a run")
    assert snapshot(data_env / "models") == before


def test_synthetic_build_never_replaces_a_store(data_env, capsys):
    """Wrong 2: ``synthetic build --name demo`` used to delete the real demo patches."""
    store = small_store(data_env / "data" / "stores", name="demo")
    meta = json.loads((store.root / "store.json").read_text())
    (store.root / "store.json").write_text(json.dumps({**meta, "synthetic": False, "source": "demo"}))  # real
    before = snapshot(store.root)
    for extra in ([], ["--overwrite"]):
        rc, out, err = cli(
            capsys, "synthetic", "build", "--name", "demo", "--positives", "1", "--negatives", "1", *extra
        )
        assert rc == 1 and out == ""
        one_line(err, "holds real (non-synthetic) patches", "pick another --name")
    assert snapshot(store.root) == before
    assert cli(capsys, "synthetic", "build", "--name", "syn", "--positives", "1", "--negatives", "1")[0] == 0
    syn = data_env / "data" / "stores" / "syn"
    before = snapshot(syn)
    rc, _, err = cli(capsys, "synthetic", "build", "--name", "syn", "--positives", "1", "--negatives", "1")
    assert rc == 1
    one_line(err, "already exists", "pass --overwrite")
    assert snapshot(syn) == before
    rc, _, _ = cli(capsys, "synthetic", "build", "--name", "syn", "--positives", "1", "--negatives", "2", "--overwrite")
    assert rc == 0 and snapshot(syn) != before


def test_predict_out_refuses_managed_folders_and_existing_files(data_env, capsys):
    """Wrong 3: ``predict --out <store>/index.csv`` used to destroy the store's index."""
    store = small_store(data_env / "data" / "stores")
    _completed_run("done", _zip_bytes(["metadata.json", "config.json", "model.weights.h5"]))
    existing = data_env / "mine.csv"
    existing.write_text("keep me\n")
    before = snapshot(data_env)
    for out_path, expected in (
        (store.root / "index.csv", "is inside the data folder"),
        (data_env / "models" / "x.csv", "is inside the models folder"),
        (existing, "exists; pass --force to replace it"),
    ):
        rc, out, err = cli(capsys, "predict", "--run", "done", "--store", "toy", "--out", out_path)
        assert rc == 1 and out == ""
        one_line(err, expected)
    assert snapshot(data_env) == before


def test_a_nan_threshold_is_refused(data_env, capsys):
    """Wrong 7: a NaN threshold used to decide 'not mining' for every patch."""
    small_store(data_env / "data" / "stores")
    folder = _completed_run("nan", _zip_bytes(["metadata.json", "config.json", "model.weights.h5"]))
    folder.file("metrics.json").write_text('{"f1": 0.5, "threshold": NaN}')
    before = snapshot(data_env)
    rc, out, err = cli(capsys, "predict", "--run", "nan", "--store", "toy", "--out", data_env / "p.csv")
    assert rc == 1 and out == ""
    one_line(err, "no valid threshold", "rerun `asgm evaluate nan`")
    assert snapshot(data_env) == before


@pytest.mark.parametrize(
    "dtype, expected",
    [
        ("float32", "pixels are float32"),
        ("uint8", "pixels are uint8"),
        ("47 px", "47x47 px, the store holds 48x48 px"),
        ("12 bands", "12 bands, the store holds 3 (B4,B3,B2)"),
    ],
)
def test_every_prediction_path_validates_the_patch(data_env, capsys, dtype, expected):
    """Wrong 8: a NaN float32 or a uint8 patch used to get a probability on the Map, the Patch viewer and in
    ``predict``; a 47 px file was told to "retrain the run" (numpy's shape error), and a 12-band file in an RGB
    store was classified without a word. The app's paths (a click, the Patch viewer) check the patch against
    the store (``loaders.checked_patch``), ``predict`` and the Map's batched pass through PatchSource: the same
    words as ``patches check``, and the patch (not the run) is what to mend."""
    from asgm.app import loaders
    from asgm.model import inference
    from asgm.model.inputs import DatasetError

    store = small_store(data_env / "data" / "stores")
    path = store.patch_path("pos-0001")
    src = path.with_suffix(".orig")
    path.rename(src)
    if dtype == "47 px":
        data = np.full((3, 47, 47), 900, np.uint16)
    elif dtype == "12 bands":
        data = np.full((12, 48, 48), 900, np.uint16)
    else:
        data = np.full((3, 48, 48), 0.1 if dtype == "float32" else 90, dtype)
    if dtype == "float32":
        data[:, :5] = np.nan
    names = RGB_BANDS + tuple(f"X{i}" for i in range(9)) if dtype == "12 bands" else RGB_BANDS
    write_tif(path, data, names, like=src)
    src.unlink()
    cfg = ExperimentConfig(store="toy", bands=RGB_BANDS, epochs=1)
    if dtype != "12 bands":  # the patch alone (its bands hold the run's) cannot tell it is foreign to the store
        with pytest.raises(DatasetError, match=f"patch 'pos-0001': {expected.split(', the store')[0]}"):
            inference.prepare_input(store.read_patch("pos-0001"), None, cfg)
    from asgm.model.runs import create_run

    folder = create_run(cfg, "done")
    folder.set_status("completed")
    folder.write_json("metrics.json", {"f1": 0.5, "threshold": 0.5})
    _save_tiny_keras_model(folder.model_path)
    with pytest.raises(DatasetError) as caught:  # a click on the Map, the Patch viewer
        loaders.classify("done", "toy", "pos-0001")
    line = one_line(str(caught.value), "patch 'pos-0001'", expected, "asgm patches check")
    assert "retrain" not in line.lower()
    capsys.readouterr()  # Streamlit's "no runtime" warnings of the cached loaders, outside an app
    out_csv = data_env / "p.csv"
    before = snapshot(data_env)
    rc, out, err = cli(capsys, "predict", "--run", "done", "--store", "toy", "--out", out_csv)
    assert rc == 1 and out == ""
    line = one_line(err, "pos-0001", expected)
    assert "retrain" not in line.lower()
    assert snapshot(data_env) == before and not out_csv.exists()


def test_a_run_with_non_numeric_metrics_is_listed_corrupt(data_env, capsys, monkeypatch):
    """Wrong 6: ``"f1": "high"`` used to crash ``runs list`` and take the whole Compare page down."""
    from streamlit.testing.v1 import AppTest

    from asgm.config import PROJECT_ROOT

    model = _zip_bytes(["metadata.json", "config.json", "model.weights.h5"])
    _completed_run("good", model)
    _completed_run("high", model).write_json("metrics.json", {"f1": "high", "threshold": 0.5})
    before = snapshot(data_env / "models")
    rc, out, err = cli(capsys, "runs", "list")
    assert rc == 0 and err == ""
    line = next(ln for ln in out.splitlines() if ln.startswith("high"))
    assert "corrupt" in line and "non-numeric f1='high'" in line
    assert "F1 0.500" in next(ln for ln in out.splitlines() if ln.startswith("good"))
    monkeypatch.setenv("ASGM_APP_AUTOPREPARE", "0")
    at = AppTest.from_file(str(PROJECT_ROOT / "pages" / "8_Compare.py"), default_timeout=120)
    at.run()
    assert not at.exception
    assert snapshot(data_env / "models") == before


def test_evaluate_applies_the_masked_filter_as_training_does(data_env, capsys):
    """Wrong 9: a fully masked test patch (training would drop it) used to be scored."""
    from asgm.model.runs import create_run

    store = small_store(data_env / "stores")
    folder = create_run(ExperimentConfig(store=str(store.root), bands=RGB_BANDS, epochs=1), "done")
    folder.set_status("completed")
    split = store.index()[["sample_id", "label", "lon", "lat"]].assign(cluster=0, split="test")
    split.loc[split["sample_id"].isin(["pos-0000", "neg-0000"]), "split"] = "val"
    folder.file("split.csv").write_text(split.to_csv(index=False))
    folder.file("metrics.json").write_text("{not json")  # unclear class: evaluate rewrites it, no traceback
    _save_tiny_keras_model(folder.model_path)
    write_tif(
        store.patch_path("neg-0002"), np.zeros((3, 48, 48), np.uint16), RGB_BANDS, like=store.patch_path("neg-0002")
    )  # all pixels masked
    rc, out, err = cli(capsys, "evaluate", "done", "--bootstrap", "0", "--json")
    assert rc == 0, err
    import pandas as pd

    preds = pd.read_csv(folder.file("predictions.csv"))
    assert "neg-0002" not in set(preds["sample_id"]) and len(preds) == 5
    assert json.loads(folder.file("metrics.json").read_text())["n"] == 3


@pytest.mark.parametrize(
    "damage, expected",
    [
        ("label 7", "index label is 7, not 0 or 1"),
        ("duplicated row", "lists 1 sample_id(s) more than once (e.g. pos-0001)"),
        ("other CRS", "CRS is EPSG:32619, its index row says EPSG:"),
        ("other centre", "m from the point of its index row"),
    ],
)
def test_patches_check_finds_bad_index_rows(data_env, capsys, damage, expected):
    """Wrong 10: these rows used to pass ``patches check`` (exit 0)."""
    store = small_store(data_env / "stores")
    index = store.root / "index.csv"
    import pandas as pd

    df = pd.read_csv(index, dtype={"sample_id": str})
    if damage == "label 7":
        df.loc[df["sample_id"] == "pos-0001", "label"] = 7
    elif damage == "duplicated row":
        df = pd.concat([df, df[df["sample_id"] == "pos-0001"]])
    elif damage == "other CRS":
        df.loc[df["sample_id"] == "pos-0001", "epsg"] = 32619 if df["epsg"].iloc[0] != 32619 else 32620
    else:
        df.loc[df["sample_id"] == "pos-0001", "lat"] += 0.01  # ~1.1 km
    index.write_text(df.to_csv(index=False))
    before = snapshot(store.root)
    rc, out, _ = cli(capsys, "patches", "check", "--store", store.root)
    assert rc == 1 and expected.split("EPSG:32619")[-1] in out
    if damage != "other CRS":
        assert expected in out
    assert snapshot(store.root) == before


def test_osm_fetch_xml_checks_node_coordinates(data_env, capsys):
    """Wrong 11: a way through nodes at lat 123 / lon -361.5 used to be cached."""
    xml = data_env / "bad.osm"
    xml.write_text(
        '<?xml version="1.0"?>\n<osm version="0.6">\n'
        '<node id="1" lat="6.4" lon="-61.8"/>\n<node id="2" lat="123" lon="-361.5"/>\n'
        '<way id="3"><nd ref="1"/><nd ref="2"/><tag k="highway" v="track"/></way>\n</osm>\n'
    )
    rc, out, err = cli(capsys, "osm", "fetch", "--xml", xml)
    assert rc == 1 and out == ""
    one_line(err, "node 2 is at lat 123 / lon -361.5, beyond ±90/±180")
    assert not any((data_env / "data").rglob("*.parquet"))


def test_osm_rasterize_on_a_full_disk_keeps_the_old_masks(osm_store, data_env):
    """Wrong 4: a full disk used to leave cut masks and exit 0 (GDAL only logs a failed write)."""
    store, lon, lat = osm_store
    again = _vectors(data_env / "again.parquet", [[(lon - 0.02, lat), (lon + 0.02, lat)]])
    before = snapshot(store.root)
    rc, out, err, _ = subprocess_cli(
        data_env, "osm", "rasterize", "--store", store.root, "--vectors", again, limit_file_bytes=150
    )
    assert rc == 1 and out == "" and "Traceback" not in err
    message = [ln for ln in err.splitlines() if ln.startswith("asgm osm:")]  # libtiff prints its own line too
    assert len(message) == 1 and "could not write" in message[0] and "probably full" in message[0]
    assert {k: v for k, v in snapshot(store.root).items() if ".tmp-" not in k} == before
    assert not list(store.root.rglob(".tmp-*"))


def test_scan_diff_refuses_scans_of_different_runs(data_env, capsys):
    """Wrong 5: the difference between two runs' scans used to be reported as new mining; the Region scan
    page's Change over time offered such pairs and its pickers did not show the run."""
    import shutil

    from asgm.scan import results as scan_results

    a = _scan_folder(data_env / "data")
    b = a.parent / "other"
    shutil.copytree(a, b)
    manifest = json.loads((b / "scan.json").read_text())
    manifest["identity"].update(run_id="another", year=2022)
    (b / "scan.json").write_text(json.dumps(manifest))
    before = snapshot(data_env)
    rc, out, err = cli(capsys, "scan", "diff", a, b, "--out", data_env / "change")
    assert rc == 1 and out == ""
    one_line(err, "made by different runs (r and another)", "scan both years with the same run")
    assert snapshot(data_env) == before
    entries = {e.name: e for e in scan_results.list_scans()}
    assert not scan_results.comparable(entries["area"], entries["other"])  # the page offers no such pair
    assert "run r" in entries["area"].label and "run another" in entries["other"].label


# -- 9. issue 22: unclear messages made one line ---------------------------------------------------------
@pytest.mark.parametrize(
    "args, expected",
    [
        (["--batch-size", "0"], "--batch-size must be at least 1 (got 0)"),
        (["--workers", "0"], "--workers must be at least 1 (got 0)"),
        (["--scheduler", "bogus"], "--scheduler 'bogus' is not 'none', 'local' or a scheduler address"),
        (["--out", "FILE"], "is a file; give a folder to write into"),
        (["--out", "READONLY/scan"], "is not writable"),
    ],
)
def test_scan_run_bad_options_are_one_line(data_env, capsys, args, expected):
    if os.geteuid() == 0 and "READONLY/scan" in args:
        pytest.skip("root can write into a read-only folder")
    (data_env / "FILE").write_text("mine\n")
    (data_env / "READONLY").mkdir()
    (data_env / "READONLY").chmod(0o500)
    args = [str(data_env / a) if a in ("FILE", "READONLY/scan") else a for a in args]
    flags = {"--out": str(data_env / "scan"), **dict(zip(args[::2], args[1::2], strict=True))}
    before = snapshot(data_env)
    rc, out, err = cli(
        capsys,
        "scan",
        "run",
        "--aoi=-62.2,6.4,-62.18,6.42",
        "--year",
        "2021",
        "--run",
        "r",
        "--source",
        "stac",
        *[x for kv in flags.items() for x in kv],
    )
    assert rc == 1 and out == ""
    one_line(err, expected)
    assert snapshot(data_env) == before and not (data_env / "scan").exists()


def test_scan_diff_out_onto_a_file_is_one_line(data_env, capsys):
    a = _scan_folder(data_env / "data")
    (data_env / "FILE").write_text("mine\n")
    rc, out, err = cli(capsys, "scan", "diff", a, a, "--out", data_env / "FILE")
    assert rc == 1
    one_line(err, "is a file; give a folder")
    assert (data_env / "FILE").read_text() == "mine\n"


@pytest.mark.parametrize("field, value", [("size", "big"), ("bands", 5), ("synthetic", "yes"), ("patches", "6")])
def test_a_store_json_with_wrong_types_is_one_line(data_env, capsys, field, value):
    store = small_store(data_env / "stores")
    meta = json.loads((store.root / "store.json").read_text())
    (store.root / "store.json").write_text(json.dumps({**meta, field: value}))
    before = snapshot(store.root)
    for args in (["patches", "list", "--store", store.root], ["train", "--store", store.root, "--epochs", "1"]):
        rc, out, err = cli(capsys, *args)
        assert rc == 1 and out == ""
        one_line(err, "store.json is corrupt", f"field {field!r}", "restore it or rebuild the store")
    assert snapshot(store.root) == before


def test_atomic_writes_honour_the_umask(tmp_path):
    from asgm import atomic

    old = os.umask(0o022)
    try:
        atomic.write_text(tmp_path / "a.json", "{}")
        assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        atomic.write_text(tmp_path / "b.json", "{}")
        assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


@pytest.mark.parametrize("kind", ["geojson", "csv", "config"])
def test_utf8_bom_is_read_and_latin1_says_save_as_utf8(data_env, capsys, kind):
    from asgm.config import ConfigError, TextEncodingError
    from asgm.data.points import PointsError, read_labelled_points, read_points_file

    text = {
        "geojson": json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"name": "Caroní"},
                        "geometry": {"type": "Point", "coordinates": [-62.1, 6.4]},
                    }
                ],
            },
            ensure_ascii=False,
        ),
        "csv": "lon,lat,label,name\n-62.1,6.4,1,Caroní\n",
        "config": '{"name": "Caroní", "epochs": 1}',
    }[kind]
    path = data_env / f"in.{'json' if kind == 'config' else kind}"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))

    def read() -> object:
        if kind == "config":
            return ExperimentConfig.from_file(path)
        return read_points_file(path, "p", 0, "p") if kind == "geojson" else read_labelled_points(path)

    assert read() is not None  # the BOM is fine
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises((TextEncodingError, ConfigError, PointsError), match="save it as UTF-8"):
        read()


def test_an_uploaded_scan_area_may_carry_a_bom_and_latin1_says_save_as_utf8():
    """The Region scan page's GeoJSON upload read strict UTF-8: a BOM was "not readable GeoJSON"."""
    from asgm.scan.area import AoiError
    from asgm.scan.request import aoi_from_upload

    ring = [[-62.2, 6.4], [-62.18, 6.4], [-62.18, 6.42], [-62.2, 6.42], [-62.2, 6.4]]
    text = json.dumps(
        {"type": "Feature", "properties": {"name": "Caroní"}, "geometry": {"type": "Polygon", "coordinates": [ring]}},
        ensure_ascii=False,
    )
    _, km2 = aoi_from_upload("area.geojson", b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert 4 < km2 < 6
    with pytest.raises(AoiError) as caught:
        aoi_from_upload("area.geojson", text.encode("latin-1"))
    one_line(str(caught.value), "area.geojson is not UTF-8 text", "save it as UTF-8")


@pytest.mark.parametrize(
    "store, start, end, expected",
    [
        ("../../evil", "2021-01-01", "2022-01-01", "invalid store name '../../evil'"),
        ("a b", "2021-01-01", "2022-01-01", "invalid store name 'a b'"),
        ("ok", "2022-01-01", "2021-01-01", "the date range is empty"),
    ],
)
def test_data_page_requests_are_checked_before_a_job_starts(data_env, store, start, end, expected):
    """The Data page calls these before launching (``asgm.app.jobs``): no job, no job folder."""
    from asgm.app import jobs as aj
    from asgm.errors import AsgmError

    with pytest.raises(AsgmError, match=re.escape(expected)):
        aj.fetch_patches_command(source="stac", store=store, size=48, start=start, end=end, point_sets=["positives"])
    if store != "ok":
        with pytest.raises(AsgmError, match=re.escape(expected)):
            aj.osm_commands(store=store, date="current", keys=["highway"], buffer_m=0, all_touched=False, exclude=())
    assert not (data_env / "data").exists() or not any((data_env / "data").rglob("*"))


def test_train_launch_refuses_a_cut_index(data_env):
    """The Train page launches with ``run_jobs.launch``: a cut index is refused there, before any job starts."""
    from asgm.data.store import PatchStoreError
    from asgm.model import run_jobs

    store = small_store(data_env / "data" / "stores")
    index = store.root / "index.csv"
    index.write_text("".join(index.read_text().splitlines(keepends=True)[:3]))
    with pytest.raises(PatchStoreError, match="the index was truncated"):
        run_jobs.launch(ExperimentConfig(store="toy", bands=RGB_BANDS, epochs=1))
    assert not (data_env / "models").exists() or not any((data_env / "models").iterdir())


def test_uploaded_points_show_their_extent_and_hint_at_swapped_coordinates(data_env):
    """An upload at lon 6.9, lat -61.5 (lat, lon swapped) used to be accepted silently; the Data page shows
    ``placement_note`` under the upload."""
    import pandas as pd

    from asgm.app import jobs as aj
    from asgm.data.points import placement_note

    swapped = "lon,lat,label\n6.9,-61.5,1\n6.95,-61.55,0\n"
    pts = aj.validate_upload("mine.csv", swapped.encode())
    extent, warning = placement_note(pts)
    assert extent == "extent lon 6.9000 … 6.9500, lat -61.5500 … -61.5000 (2 point(s))"
    assert warning is not None and "2 of 2 point(s) lie on no country" in warning and "lists lat before lon" in warning
    assert placement_note(pd.DataFrame({"lon": [-61.5], "lat": [6.9]}))[1] is None  # Venezuela: fine
    ocean = placement_note(pd.DataFrame({"lon": [-30.0], "lat": [0.5]}))[1]  # mid-Atlantic either way round
    assert ocean is not None and "on no country" in ocean


def test_advice_fits_the_case(data_env, capsys):
    """Wrong advice mended: the user's own unreadable vectors file is not 'fetched again', and a store missing
    only store.json is not 'no patch store'."""
    store = small_store(data_env / "data" / "stores")
    own = data_env / "mine.parquet"
    own.write_bytes(b"not parquet")
    rc, _, err = cli(capsys, "osm", "rasterize", "--store", store.root, "--vectors", own)
    assert rc == 1
    line = one_line(err, "could not read OSM vectors", "export it again")
    assert "fetch again" not in line
    (store.root / "store.json").unlink()
    before = snapshot(store.root)
    rc, _, err = cli(capsys, "patches", "list", "--store", "toy")
    assert rc == 1
    line = one_line(err, "has its patches but no store.json", "restore store.json")
    assert "no patch store" not in line
    assert snapshot(store.root) == before


@pytest.mark.parametrize("page", ["app.py", page_script("Map"), page_script("Patch viewer"), page_script("Train")])
def test_pages_say_which_store_lost_its_store_json(data_env, monkeypatch, page):
    """The pages list stores by their store.json: one that lost only that file used to read "No patch store
    yet ... Prepare the demo", as if nothing were there."""
    from streamlit.testing.v1 import AppTest

    from asgm.config import PROJECT_ROOT

    monkeypatch.setenv("ASGM_APP_AUTOPREPARE", "0")
    store = small_store(data_env / "data" / "stores")
    (store.root / "store.json").unlink()
    before = snapshot(store.root)
    at = AppTest.from_file(str(PROJECT_ROOT / page), default_timeout=120).run()
    assert not at.exception
    shown = [w.value for w in at.warning]
    assert any("store 'toy'" in w and "has its patches but no store.json" in w for w in shown), shown
    assert not any("Prepare the demo" in w for w in shown), shown
    assert snapshot(store.root) == before


def test_a_scan_that_cannot_reach_its_source_does_not_speak_of_stored_patches(data_env, capsys):
    """Wrong advice mended: the STAC source's "stored patches are kept" (true for a patch fetch) was printed by a
    region scan, which keeps tiles, not patches; nothing is written."""
    import socket

    from scan_support import detector_run

    run_id = detector_run()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    before = snapshot(data_env)
    rc, out, err = cli(
        capsys,
        "scan",
        "run",
        "--aoi=-62.2,6.4,-62.18,6.42",
        "--year",
        "2021",
        "--run",
        run_id,
        "--source",
        "stac",
        "--stac-url",
        f"http://127.0.0.1:{closed}/v1",
        "--out",
        data_env / "scan",
    )
    assert rc == 1 and out == ""
    line = one_line(err, "cannot reach the STAC API", "pass another --stac-url")
    assert "patches" not in line
    assert snapshot(data_env) == before and not (data_env / "scan").exists()


@pytest.mark.parametrize("page", [page_script("Map"), page_script("Patch viewer"), page_script("Train")])
def test_pages_stay_up_with_a_store_json_of_wrong_types(data_env, monkeypatch, page):
    from streamlit.testing.v1 import AppTest

    from asgm.config import PROJECT_ROOT

    monkeypatch.setenv("ASGM_APP_AUTOPREPARE", "0")
    store = small_store(data_env / "data" / "stores", name="demo")
    meta = json.loads((store.root / "store.json").read_text())
    (store.root / "store.json").write_text(json.dumps({**meta, "size": "big"}))
    at = AppTest.from_file(str(PROJECT_ROOT / page), default_timeout=120)
    at.query_params["store"] = "demo"
    at.run()
    assert not at.exception


# -- 10. the label database (issue 23) -----------------------------------------------------------------------
def test_a_damaged_label_database_is_one_line(data_env, capsys):
    small_store(data_env / "data" / "stores")
    path = data_env / "data" / "labels" / "labels.gpkg"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x00garbage" * 500)
    before = path.read_bytes()
    for args in (("labels", "list"), ("labels", "mark", "--store", "toy", "--item", "pos-0000", "--label", "mining")):
        rc, _, err = cli(capsys, *args)
        assert rc == 1
        one_line(err, "is not a readable label database", "move it away")
    assert path.read_bytes() == before


def test_a_label_database_locked_by_another_program_is_one_line(data_env, capsys, monkeypatch):
    import sqlite3

    from asgm.data import labels

    small_store(data_env / "data" / "stores")
    assert cli(capsys, "labels", "mark", "--store", "toy", "--item", "pos-0000", "--label", "mining")[0] == 0
    monkeypatch.setattr(labels, "BUSY_TIMEOUT_S", 0.2)
    holder = sqlite3.connect(labels.default_path(), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        rc, _, err = cli(capsys, "labels", "mark", "--store", "toy", "--item", "pos-0001", "--label", "not")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert rc == 1
    one_line(err, "is locked by another program", "QGIS", "Nothing was written")
    assert [r["item_id"] for r in labels.LabelStore().current()] == ["pos-0000"]


def test_full_disk_while_marking_leaves_the_database_as_it_was(tmp_path):
    small_store(tmp_path / "data" / "stores")
    rc, _, err, _ = subprocess_cli(tmp_path, "labels", "mark", "--store", "toy", "--item", "pos-0000", "--label", "1")
    assert rc == 0, err
    db = tmp_path / "data" / "labels" / "labels.gpkg"
    size = db.stat().st_size
    notes = "x" * 100_000  # a note too long for the file size limit below (one argv string stays < 128 KiB)
    rc, _, err, _ = subprocess_cli(
        tmp_path,
        "labels",
        "mark",
        "--store",
        "toy",
        "--item",
        "pos-0001",
        "--label",
        "0",
        "--note",
        notes,
        limit_file_bytes=size + 4096,
    )
    assert rc == 1
    one_line(err, "no space left to write", "labels.gpkg", "unchanged")
    rc, out, _, _ = subprocess_cli(tmp_path, "labels", "list", "--json")
    assert rc == 0 and [r["item_id"] for r in json.loads(out)["rows"]] == ["pos-0000"]
