"""The label store (asgm.data.labels): a GeoPackage GIS tools read, history rows, two writers, a locked
database, import/export round trips and bad imports."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pyogrio
import pytest

from asgm.data.gpkg import point_blob
from asgm.data.label_files import read_label_file
from asgm.data.labels import (
    HISTORY,
    LAYER,
    Item,
    LabelsError,
    LabelsLockedError,
    LabelStore,
    Mark,
    default_path,
)

REPO = Path(__file__).resolve().parents[2]


def _item(i: int = 1, kind: str = "store", source: str = "demo") -> Item:
    return Item(kind, source, f"egp-{i:04d}", -70.0 - i / 100, -12.0 + i / 100, "2023-01-01/2023-12-31", 2023)


def test_default_path_follows_the_data_folder(data_env):
    from asgm.config import data_dir

    assert default_path() == data_dir() / "labels" / "labels.gpkg"
    assert data_env in default_path().parents


def test_marks_keep_history_and_the_current_label_is_the_latest(tmp_path):
    store = LabelStore(tmp_path / "labels.gpkg")
    item = _item()
    first = store.mark(Mark(item, "mining", run_id="run-a", probability=0.81, reviewer="ana"))
    again = store.mark(Mark(item, "mining", run_id="run-a", probability=0.81, reviewer="ana"))  # a double click
    second = store.mark(Mark(item, "not", note="sandbar", run_id="run-a", probability=0.81, reviewer="ana"), via="cli")
    store.mark(Mark(_item(2), "unsure", reviewer="ben"))

    assert first.changed and not again.changed and second.changed
    assert again.history_fid == first.history_fid
    hist = store.history(item.key)
    assert [h["label"] for h in hist] == ["mining", "not_mining"]
    assert [h["via"] for h in hist] == ["app", "cli"]
    cur = store.get(item.key)
    assert cur is not None and cur["label"] == "not_mining" and cur["note"] == "sandbar"
    assert cur["history_fid"] == second.history_fid and cur["probability"] == pytest.approx(0.81)
    assert store.counts() == {"mining": 0, "not_mining": 1, "unsure": 1}
    assert len(store.history()) == 3 and len(store.current()) == 2
    assert store.get("store:demo:nothing") is None


def test_history_is_append_only_for_any_sqlite_writer(tmp_path):
    store = LabelStore(tmp_path / "labels.gpkg")
    store.mark(Mark(_item(), "mining"))
    con = sqlite3.connect(store.path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute(f"DELETE FROM {HISTORY}")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute(f"UPDATE {HISTORY} SET label = 'unsure'")
    con.close()
    assert len(store.history()) == 1


def test_the_file_is_a_geopackage_gis_tools_read(tmp_path):
    store = LabelStore(tmp_path / "labels.gpkg")
    store.mark(Mark(_item(1), "mining", probability=0.9))
    store.mark(Mark(_item(2), "not_mining"))
    store.mark(Mark(_item(1), "unsure"))
    layers = {str(name): kind for name, kind in pyogrio.list_layers(store.path)}
    assert layers == {LAYER: "Point", HISTORY: None}
    info = pyogrio.read_info(store.path, layer=LAYER)
    assert info["driver"] == "GPKG" and info["crs"] == "EPSG:4326" and info["features"] == 2
    gdf = pyogrio.read_dataframe(store.path, layer=LAYER)
    by_id = {r.item_id: r for r in gdf.itertuples()}
    assert by_id["egp-0001"].label == "unsure" and by_id["egp-0002"].label == "not_mining"
    assert by_id["egp-0001"].geometry.x == pytest.approx(_item(1).lon)
    assert by_id["egp-0001"].geometry.y == pytest.approx(_item(1).lat)
    hist = pyogrio.read_dataframe(store.path, layer=HISTORY, read_geometry=False)
    assert list(hist["label"]) == ["mining", "not_mining", "unsure"]
    con = sqlite3.connect(store.path)
    assert con.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47
    con.close()


def test_point_blobs_are_read_as_points_by_a_gis(tmp_path):
    import geopandas as gpd

    frame = gpd.GeoDataFrame({"n": [1]}, geometry=gpd.points_from_xy([-61.25], [6.5]), crs="EPSG:4326")
    path = tmp_path / "ref.gpkg"
    frame.to_file(path, layer="p", driver="GPKG")  # GDAL's own blob of the same point
    con = sqlite3.connect(path)
    (gdal_blob,) = con.execute("SELECT geom FROM p").fetchone()
    con.close()
    flags_env = (gdal_blob[3] >> 1) & 0x07  # GDAL may write an envelope; the point WKB follows it
    offset = 8 + {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}[flags_env]
    assert point_blob(-61.25, 6.5)[:2] == b"GP" and point_blob(-61.25, 6.5)[8:] == gdal_blob[offset:]


_WRITER = """
import sys
from asgm.data.labels import Item, LabelStore, Mark
store = LabelStore(sys.argv[1], timeout_s=30)
who = sys.argv[2]
for i in range(40):
    item = Item("store", "demo", f"{who}-{i % 10}", -70.0, -12.0 + i / 1000)
    store.mark(Mark(item, ("mining", "not_mining", "unsure")[i % 3], note=f"{who} {i}", reviewer=who))
"""


def test_two_processes_write_at_once_without_losing_a_row(tmp_path):
    path = tmp_path / "labels.gpkg"
    LabelStore(path).mark(Mark(_item(), "mining"))  # the schema exists before both start
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), who], cwd=REPO) for who in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    store = LabelStore(path)
    hist = store.history()
    assert len(hist) == 1 + 2 * 40
    cur = {r["item"]: r for r in store.current()}
    assert len(cur) == 1 + 2 * 10
    for who in ("a", "b"):
        for k in range(10):
            key = f"store:demo:{who}-{k}"
            last = [h for h in hist if h["item"] == key][-1]
            assert cur[key]["label"] == last["label"] and cur[key]["history_fid"] == last["fid"]


def test_a_locked_database_is_one_clear_error_and_nothing_is_written(tmp_path):
    store = LabelStore(tmp_path / "labels.gpkg", timeout_s=0.2)
    store.mark(Mark(_item(), "mining"))
    holder = sqlite3.connect(store.path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # what an editing GIS session does while it saves
    try:
        with pytest.raises(LabelsLockedError, match="locked by another program.*QGIS.*Nothing was written"):
            store.mark(Mark(_item(2), "not_mining"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert [r["item_id"] for r in store.current()] == ["egp-0001"]
    store.mark(Mark(_item(2), "not_mining"))
    assert len(store.current()) == 2


def test_a_failed_batch_writes_nothing(tmp_path):
    store = LabelStore(tmp_path / "labels.gpkg")
    good = Mark(_item(1), "mining")
    bad = Mark(Item("store", "demo", "x", 500.0, 0.0), "mining")
    with pytest.raises(LabelsError, match="coordinates"):
        store.mark_many([good, bad])
    assert store.current() == [] and store.history() == []


def test_a_file_that_is_not_a_label_database_is_refused(tmp_path):
    junk = tmp_path / "labels.gpkg"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LabelsError, match="not a readable label database"):
        LabelStore(junk).mark(Mark(_item(), "mining"))
    other = tmp_path / "other.gpkg"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    with pytest.raises(LabelsError, match="without the label tables"):
        LabelStore(other).mark(Mark(_item(), "mining"))


@pytest.mark.parametrize("fmt", ["geojson", "csv", "kml", "gpkg"])
def test_export_import_round_trip(tmp_path, fmt):
    src = LabelStore(tmp_path / "a.gpkg")
    src.mark(Mark(_item(1), "mining", note="pit, ponds & <tailings>", run_id="run-a", probability=0.93, reviewer="ana"))
    src.mark(Mark(_item(2, kind="scan", source="madre"), "not_mining", note="sandbar", reviewer="ana"))
    src.mark(Mark(_item(3, kind="amw", source="amw-2023"), "unsure"))
    out = src.export(fmt, tmp_path / f"labels.{fmt}")
    marks = read_label_file(out)
    dst = LabelStore(tmp_path / "b.gpkg")
    dst.mark_many(marks, via="import")
    keep = ("item", "label", "note", "source_kind", "source", "item_id", "imagery", "year", "run_id", "reviewer")
    a = [{k: r[k] for k in keep} for r in src.current()]
    b = [{k: r[k] for k in keep} for r in dst.current()]
    assert a == b
    for ra, rb in zip(src.current(), dst.current(), strict=True):
        assert rb["lon"] == pytest.approx(ra["lon"]) and rb["lat"] == pytest.approx(ra["lat"])
        assert (rb["probability"] is None) == (ra["probability"] is None)
    assert {r["via"] for r in dst.history()} == {"import"}


def test_geojson_to_gpkg_to_csv_chain(tmp_path):
    """GeoJSON -> GeoPackage -> CSV: the same labels at every step."""
    src = LabelStore(tmp_path / "a.gpkg")
    for i in range(5):
        src.mark(Mark(_item(i), ("mining", "not_mining", "unsure")[i % 3]))
    gj = src.export("geojson", tmp_path / "a.geojson")
    mid = LabelStore(tmp_path / "mid.gpkg")
    mid.mark_many(read_label_file(gj))
    csv_path = mid.export("csv", tmp_path / "mid.csv")
    end = LabelStore(tmp_path / "end.gpkg")
    end.mark_many(read_label_file(csv_path))
    assert [(r["item"], r["label"]) for r in end.current()] == [(r["item"], r["label"]) for r in src.current()]


def _csv(tmp_path, body: str) -> Path:
    path = tmp_path / "in.csv"
    path.write_text("source_kind,source,item_id,lon,lat,label\n" + body, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "body, message",
    [
        ("store,demo,a,-70,-12,2\n", r"row 1: label is '2'"),
        ("store,demo,a,-70,-12,yes\n", r"row 1: label is 'yes'"),
        ("store,demo,a,-70,-12,mining\nstore,demo,b,-70,-12,\n", r"row 2: label is ''"),
        ("store,demo,a,,-12,mining\n", r"row 1 has no coordinates"),
        ("store,demo,a,-70,abc,mining\n", r"row 1 has no coordinates"),
        ("store,demo,a,-270,-12,mining\n", r"row 1: .*coordinates lon=-270"),
        (",,,-70,-12,mining\n", r"row 1 names no item"),
        ("field,demo,a,-70,-12,mining\n", r"source kind 'field'"),
    ],
)
def test_bad_imports_name_the_row(tmp_path, body, message):
    with pytest.raises(LabelsError, match=message):
        read_label_file(_csv(tmp_path, body))


def test_import_accepts_0_1_and_spellings(tmp_path):
    marks = read_label_file(
        _csv(
            tmp_path,
            "store,demo,a,-70,-12,1\nstore,demo,b,-70,-12,0\n"
            "store,demo,c,-70,-12,Not Mining\nstore,demo,d,-70,-12,UNSURE\n",
        )
    )
    assert [m.label for m in marks] == ["mining", "not_mining", "not_mining", "unsure"]


def test_an_unknown_item_is_refused_before_anything_is_written(tmp_path):
    def known(item: Item) -> None:
        if item.item_id != "a":
            raise LabelsError(f"no patch {item.item_id!r} in store {item.source!r}")

    path = _csv(tmp_path, "store,demo,a,-70,-12,1\nstore,demo,zz,-70,-12,0\n")
    with pytest.raises(LabelsError, match=r"row 2: no patch 'zz'"):
        read_label_file(path, check_item=known)


def test_bad_geojson_and_missing_geometry(tmp_path):
    path = tmp_path / "in.geojson"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(LabelsError, match="not valid GeoJSON"):
        read_label_file(path)
    feat = {
        "type": "Feature",
        "geometry": None,
        "properties": {"source_kind": "store", "source": "demo", "item_id": "a", "label": "mining"},
    }
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feat]}), encoding="utf-8")
    with pytest.raises(LabelsError, match="row 1 has no coordinates"):
        read_label_file(path)
    other = tmp_path / "labels.txt"
    other.write_text("x", encoding="utf-8")
    with pytest.raises(LabelsError, match="expected a .geojson"):
        read_label_file(other)
