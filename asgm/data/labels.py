"""The label store: an analyst's marks (mining / not mining / unsure) in one GeoPackage per data folder.

``<data>/labels/labels.gpkg`` is a real GeoPackage (OGC 12-128r18) that QGIS, ``pyogrio`` and ``ogr2ogr`` open:

    labels          point layer (EPSG:4326): the current label of every reviewed item, one row per item
    label_history   attribute table: every change as a new row, never updated nor deleted

An item is something a reviewer looked at: a patch of a store (``store``, the store name, its sample_id), a
window of a region scan (``scan``, the scan name, ``"i,j"``) or a detection of an Amazon Mining Watch layer
(``amw``, the layer name, its id). Each row holds the point, the label, a note, the imagery (date window and
year), the model run and probability shown at review time, the reviewer, the time and how it came (``via``).

Writes are SQLite transactions (``BEGIN IMMEDIATE`` with a busy timeout): a history row and the labels row
change together or not at all, and two writers (two browser tabs, the app and the CLI) wait for each other.
A database another program keeps locked (QGIS editing the layer) is a ``LabelsLockedError`` after the timeout.
The GeoPackage container (``asgm.data.gpkg``) is written with the standard library (GPKG point blobs are a
short header + WKB), so no GDAL triggers or SpatiaLite functions are needed to write.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from asgm import atomic
from asgm.config import data_dir
from asgm.data import gpkg
from asgm.errors import AsgmError, one_line

#: The labels a reviewer gives.
LABELS: tuple[str, ...] = ("mining", "not_mining", "unsure")
#: What an item belongs to: a patch store, a region scan, an Amazon Mining Watch layer.
SOURCE_KINDS: tuple[str, ...] = ("store", "scan", "amw")
#: How a mark came in.
VIAS: tuple[str, ...] = ("app", "cli", "import")
#: Spellings an import file may use, lower-cased, for each label.
LABEL_SPELLINGS: dict[str, str] = {
    "mining": "mining",
    "1": "mining",
    "1.0": "mining",
    "not_mining": "not_mining",
    "not mining": "not_mining",
    "not": "not_mining",
    "0": "not_mining",
    "0.0": "not_mining",
    "unsure": "unsure",
}
#: Share of the reviewed items, newest first, that training with them holds out to measure what they taught.
HOLDOUT_FRACTION = 0.2
EXPORT_FORMATS: tuple[str, ...] = ("geojson", "csv", "kml", "gpkg")
BUSY_TIMEOUT_S = 5.0

LAYER = "labels"
HISTORY = "label_history"
#: Columns of both tables after ``fid`` (and before ``geom`` in ``labels``), in order.
FIELDS: tuple[str, ...] = (
    "item",
    "label",
    "note",
    "source_kind",
    "source",
    "item_id",
    "lon",
    "lat",
    "imagery",
    "year",
    "run_id",
    "probability",
    "reviewer",
    "via",
    "time",
)
_SQL_TYPES = {"lon": "DOUBLE", "lat": "DOUBLE", "probability": "DOUBLE", "year": "INTEGER"}
# SQLite's primary result codes for a busy / locked database, a full disk, a failed write and a file that is no
# database.
_BUSY, _LOCKED, _FULL, _IOERR, _CORRUPT, _NOTADB, _READONLY, _CANTOPEN = 5, 6, 13, 10, 11, 26, 8, 14


class LabelsError(AsgmError):
    """A label, an import file or the label database that cannot be used; the message says what to do."""


class LabelsLockedError(LabelsError):
    """Another program holds the label database (QGIS editing it, a stuck writer)."""


def default_path() -> Path:
    """``<data>/labels/labels.gpkg`` of the data folder in use."""
    return data_dir() / "labels" / "labels.gpkg"


def now() -> str:
    """UTC time with microseconds: history rows of one second stay in order when sorted by time."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def normalise_label(value: Any, where: str = "label") -> str:
    """``mining`` / ``not_mining`` / ``unsure`` for a value of ``LABEL_SPELLINGS`` (any case), else ``LabelsError``."""
    if isinstance(value, bool) or value is None or (isinstance(value, float) and math.isnan(value)):
        text = ""
    else:
        text = str(value).strip().lower()
    if text not in LABEL_SPELLINGS:
        raise LabelsError(f"{where} is {value!r}; a label is mining (or 1), not_mining (or not, 0) or unsure")
    return LABEL_SPELLINGS[text]


@dataclass(frozen=True)
class Item:
    """Something a reviewer marks: where it is and which imagery they saw."""

    source_kind: str
    source: str
    item_id: str
    lon: float
    lat: float
    imagery: str = ""
    year: int | None = None

    @property
    def key(self) -> str:
        """``kind:source:item_id``, unique in the ``labels`` layer."""
        return item_key(self.source_kind, self.source, self.item_id)

    def check(self) -> Item:
        """The item itself, or ``LabelsError`` for an unknown kind, an empty name or id, or bad coordinates."""
        if self.source_kind not in SOURCE_KINDS:
            raise LabelsError(f"source kind {self.source_kind!r} is not one of {', '.join(SOURCE_KINDS)}")
        if not str(self.source).strip() or not str(self.item_id).strip():
            raise LabelsError(
                f"an item of a {self.source_kind} needs its name and id (got {self.source!r}, {self.item_id!r})"
            )
        if not (_finite(self.lon) and _finite(self.lat) and -180 <= self.lon <= 180 and -90 <= self.lat <= 90):
            raise LabelsError(
                f"item {self.key} has coordinates lon={self.lon!r}, lat={self.lat!r}; expected WGS 84 "
                "lon in [-180, 180] and lat in [-90, 90]"
            )
        return self


def item_key(source_kind: str, source: str, item_id: str) -> str:
    return f"{source_kind}:{source}:{item_id}"


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class Mark:
    """One review decision about an item."""

    item: Item
    label: str
    note: str = ""
    run_id: str | None = None
    probability: float | None = None
    reviewer: str = ""

    def row(self, via: str, time: str) -> dict[str, Any]:
        """The table row of this mark (``FIELDS``)."""
        it = self.item.check()
        label = normalise_label(self.label)
        if via not in VIAS:
            raise LabelsError(f"via {via!r} is not one of {', '.join(VIAS)}")
        prob = self.probability
        if prob is not None and not (_finite(prob) and 0.0 <= prob <= 1.0):
            raise LabelsError(f"probability {prob!r} of {it.key} is not a number in [0, 1]")
        return {
            "item": it.key,
            "label": label,
            "note": (self.note or "").strip(),
            "source_kind": it.source_kind,
            "source": it.source,
            "item_id": it.item_id,
            "lon": float(it.lon),
            "lat": float(it.lat),
            "imagery": it.imagery or "",
            "year": int(it.year) if it.year is not None else None,
            "run_id": self.run_id or None,
            "probability": None if prob is None else float(prob),
            "reviewer": (self.reviewer or "").strip(),
            "via": via,
            "time": time,
        }


@dataclass(frozen=True)
class MarkResult:
    """What ``LabelStore.mark`` did: ``changed`` is False for a repeat of the current label (a double click)."""

    item: str
    label: str
    changed: bool
    history_fid: int


def _sql_error(exc: sqlite3.Error, path: Path) -> AsgmError:
    """The user's error for a SQLite failure on the label database (or the error itself when it is a bug)."""
    code = getattr(exc, "sqlite_errorcode", None)
    code = code & 0xFF if isinstance(code, int) else None
    if code in (_BUSY, _LOCKED):
        return LabelsLockedError(
            f"the label database {path} is locked by another program (QGIS editing the layer, or another writer); "
            "save or close the layer there (or wait for the other write) and try again. Nothing was written"
        )
    if code == _FULL:
        return atomic.DiskFullError(
            f"no space left to write {path}; free disk space and try again. The label database is unchanged"
        )
    if code == _IOERR:  # a write refused by the system (a file size limit, a disk full mid-write, a failing drive)
        return atomic.DiskFullError(
            f"no space left to write {path}, or the disk refused the write (SQLite: {one_line(exc)}); free disk "
            "space and try again. The label database is unchanged"
        )
    if code in (_CORRUPT, _NOTADB):
        return LabelsError(
            f"{path} is not a readable label database ({one_line(exc)}); move it away (a new one is "
            "made) or restore it from a backup"
        )
    if code in (_READONLY, _CANTOPEN):
        return LabelsError(f"cannot write the label database {path} ({one_line(exc)}); check the folder's permissions")
    return LabelsError(f"the label database {path} failed: {one_line(exc)}")


class LabelStore:
    """The label GeoPackage of a data folder. Every method opens its own connection: safe across threads,
    processes and Streamlit reruns."""

    def __init__(self, path: str | Path | None = None, timeout_s: float | None = None):
        self.path = Path(path) if path is not None else default_path()
        self.timeout_s = BUSY_TIMEOUT_S if timeout_s is None else timeout_s

    # -- connections ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _connect(self, write: bool) -> Iterator[sqlite3.Connection]:
        """A connection in autocommit mode (transactions are explicit); SQLite errors become user errors."""
        if not write and not self.path.is_file():
            raise FileNotFoundError(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
        except sqlite3.Error as exc:
            raise _sql_error(exc, self.path) from None
        try:
            con.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
            yield con
        except sqlite3.Error as exc:
            raise _sql_error(exc, self.path) from None
        finally:
            con.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``: the write lock is taken at once, so two writers queue
        instead of failing half-way); rolled back on any error."""
        with self._connect(write=True) as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                self._ensure_schema(con)
                yield con
                con.execute("COMMIT")
            except BaseException:
                # SQLite may have rolled back already (a full disk during COMMIT): the original error counts.
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise

    def _ensure_schema(self, con: sqlite3.Connection) -> None:
        """Create the GeoPackage tables on first use; refuse a database that is some other file."""
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if {LAYER, HISTORY, "gpkg_contents"} <= tables:
            return
        if tables - {"sqlite_sequence"}:
            raise LabelsError(
                f"{self.path} is a database without the label tables ({', '.join(sorted(tables)[:5])}); "
                "move it away or point ASGM_DATA_DIR at another data folder"
            )
        gpkg.create_container(con)
        cols = ", ".join(
            f"{f} {_SQL_TYPES.get(f, 'TEXT')}" + (" NOT NULL" if f in ("item", "label", "time") else "") for f in FIELDS
        )
        check = f"CHECK (label IN ({', '.join(repr(x) for x in LABELS)}))"
        con.execute(
            f"CREATE TABLE {LAYER} (fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, {cols}, "
            f"history_fid INTEGER NOT NULL, geom POINT, UNIQUE (item), {check})"
        )
        con.execute(f"CREATE TABLE {HISTORY} (fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, {cols}, {check})")
        con.execute(f"CREATE INDEX {HISTORY}_item ON {HISTORY} (item)")
        gpkg.register(con, LAYER, "current label of every reviewed item", geometry="POINT")
        gpkg.register(con, HISTORY, "every label change, oldest first")
        # Forbid changing the history from any program that honours triggers (GDAL, QGIS and sqlite3 all do).
        for op in ("UPDATE", "DELETE"):
            con.execute(
                f"CREATE TRIGGER {HISTORY}_no_{op.lower()} BEFORE {op} ON {HISTORY} "
                f"BEGIN SELECT RAISE(ABORT, 'label_history is append-only'); END"
            )

    # -- writing -------------------------------------------------------------------------------------
    def mark(self, mark: Mark, via: str = "app") -> MarkResult:
        """Record one mark: a new history row and the item's current label, in one transaction. Repeating the
        item's current label, note and reviewer writes nothing (``changed`` False)."""
        return self.mark_many([mark], via=via)[0]

    def mark_many(self, marks: Sequence[Mark], via: str = "import") -> list[MarkResult]:
        """Record many marks in one transaction (all or none), in order."""
        time = now()
        rows = [m.row(via, time) for m in marks]  # every mark is validated before anything is written
        out: list[MarkResult] = []
        with self._write() as con:
            for row in rows:
                out.append(self._write_row(con, row))
            if any(r.changed for r in out):
                con.execute(
                    "UPDATE gpkg_contents SET last_change = strftime('%Y-%m-%dT%H:%M:%fZ','now'), "
                    "min_x = (SELECT min(lon) FROM labels), min_y = (SELECT min(lat) FROM labels), "
                    "max_x = (SELECT max(lon) FROM labels), max_y = (SELECT max(lat) FROM labels) "
                    "WHERE table_name IN (?, ?)",
                    (LAYER, HISTORY),
                )
        return out

    @staticmethod
    def _write_row(con: sqlite3.Connection, row: dict[str, Any]) -> MarkResult:
        cur = con.execute(
            f"SELECT label, note, reviewer, history_fid FROM {LAYER} WHERE item = ?", (row["item"],)
        ).fetchone()
        if cur is not None and tuple(cur[:3]) == (row["label"], row["note"], row["reviewer"]):
            return MarkResult(row["item"], row["label"], False, int(cur[3]))
        names = ", ".join(FIELDS)
        marks = ", ".join("?" for _ in FIELDS)
        values = [row[f] for f in FIELDS]
        hid = con.execute(f"INSERT INTO {HISTORY} ({names}) VALUES ({marks})", values).lastrowid
        con.execute(
            f"INSERT INTO {LAYER} ({names}, history_fid, geom) VALUES ({marks}, ?, ?) "
            f"ON CONFLICT (item) DO UPDATE SET "
            + ", ".join(f"{f} = excluded.{f}" for f in FIELDS)
            + ", history_fid = excluded.history_fid, geom = excluded.geom",
            [*values, hid, gpkg.point_blob(row["lon"], row["lat"])],
        )
        return MarkResult(row["item"], row["label"], True, int(hid or 0))

    # -- reading -------------------------------------------------------------------------------------
    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        try:
            with self._connect(write=False) as con:
                con.row_factory = sqlite3.Row
                tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                if not {LAYER, HISTORY} <= tables:
                    if tables:
                        raise LabelsError(
                            f"{self.path} is a database without the label tables; move it away or "
                            "point ASGM_DATA_DIR at another data folder"
                        )
                    return []
                return [dict(r) for r in con.execute(sql, args)]
        except FileNotFoundError:
            return []

    def current(self, source_kind: str | None = None, source: str | None = None) -> list[dict[str, Any]]:
        """The current label of every reviewed item (optionally of one store / scan / layer), oldest first."""
        where, args = _where(source_kind, source)
        return self._rows(f"SELECT {', '.join(FIELDS)}, history_fid FROM {LAYER}{where} ORDER BY history_fid", args)

    def history(self, item: str | None = None) -> list[dict[str, Any]]:
        """Every change (of one item, by its key), oldest first."""
        where, args = (" WHERE item = ?", [item]) if item else ("", [])
        return self._rows(f"SELECT fid, {', '.join(FIELDS)} FROM {HISTORY}{where} ORDER BY fid", args)

    def get(self, item: str) -> dict[str, Any] | None:
        """The current label row of one item (by key), or None when it was never marked."""
        rows = self._rows(f"SELECT {', '.join(FIELDS)}, history_fid FROM {LAYER} WHERE item = ?", [item])
        return rows[0] if rows else None

    def counts(self, source_kind: str | None = None, source: str | None = None) -> dict[str, int]:
        """Current labels per label (every label present, zeros included)."""
        out = dict.fromkeys(LABELS, 0)
        for r in self.current(source_kind, source):
            out[r["label"]] += 1
        return out

    # -- files ---------------------------------------------------------------------------------------
    def export(self, fmt: str, target: str | Path, source_kind: str | None = None, source: str | None = None) -> Path:
        """Write the current labels as GeoJSON, CSV, KML or a copy of the GeoPackage (atomically)."""
        fmt = fmt.lower()
        if fmt not in EXPORT_FORMATS:
            raise LabelsError(f"export format {fmt!r} is not one of {', '.join(EXPORT_FORMATS)}")
        target = Path(target)
        if fmt == "gpkg":
            with atomic.atomic_path(target, suffix=".gpkg") as tmp, self._connect(write=True) as con:
                self._ensure_schema(con)
                out = sqlite3.connect(tmp)
                try:
                    con.backup(out)
                finally:
                    out.close()
            return target
        atomic.write_bytes(target, render(self.current(source_kind, source), fmt))
        return target


def _where(source_kind: str | None, source: str | None) -> tuple[str, list[Any]]:
    parts, args = [], []
    if source_kind:
        parts.append("source_kind = ?")
        args.append(source_kind)
    if source:
        parts.append("source = ?")
        args.append(source)
    return (" WHERE " + " AND ".join(parts), args) if parts else ("", [])


# -- export formats -----------------------------------------------------------------------------------------
def render(rows: Iterable[dict[str, Any]], fmt: str) -> bytes:
    """Current label rows as a GeoJSON FeatureCollection, a CSV (lon, lat and every field) or KML."""
    rows = [{f: r.get(f) for f in FIELDS} for r in rows]
    if fmt == "geojson":
        feats = [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]}, "properties": r}
            for r in rows
        ]
        return (json.dumps({"type": "FeatureCollection", "features": feats}, indent=1) + "\n").encode("utf-8")
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(FIELDS), lineterminator="\n")
        w.writeheader()
        w.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
        return buf.getvalue().encode("utf-8")
    if fmt == "kml":
        marks = []
        for r in rows:
            data = "".join(
                f'<Data name="{f}"><value>{escape("" if r[f] is None else str(r[f]))}</value></Data>' for f in FIELDS
            )
            marks.append(
                f"<Placemark><name>{escape(r['label'])}</name><ExtendedData>{data}</ExtendedData>"
                f"<Point><coordinates>{r['lon']!r},{r['lat']!r}</coordinates></Point></Placemark>"
            )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2"><Document>'
            "<name>ASGM Explorer labels</name>" + "".join(marks) + "</Document></kml>\n"
        ).encode("utf-8")
    raise LabelsError(f"format {fmt!r} is not one of geojson, csv, kml")
