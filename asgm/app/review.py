"""App glue for reviewing: mark an item mining / not mining / unsure with a note (buttons, and keys m / n / u in
the Patch viewer), the review queue's progress, the labels' downloads. Facts and writes go through
``asgm.review`` and ``asgm.data.labels``; on a public deployment only the owner (passcode) may write."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from asgm.app import jobs as aj
from asgm.app import page
from asgm.data.labels import LABELS, Item, LabelStore
from asgm.errors import AsgmError
from asgm.review import items
from asgm.review.queue import ORDERS, ReviewQueue

REVIEWER_KEY = "reviewer_name"
#: Button text per label; with shortcuts the key is added in brackets (the script finds buttons by text).
BUTTONS = {"mining": ("Mining", "m"), "not_mining": ("Not mining", "n"), "unsure": ("Unsure", "u")}
NEXT_BUTTON = "Next to review (→)"
ORDER_NAMES = {"uncertain": "most uncertain first", "confident": "highest probability first"}


def can_write() -> bool:
    """May this session write labels (not public, or the owner unlocked it)?"""
    return aj.jobs_allowed()


def reviewer_box() -> str:
    """The reviewer's name (free text, kept for the session), in the sidebar."""
    return str(
        st.sidebar.text_input(
            "Reviewer name",
            key=REVIEWER_KEY,
            placeholder="your name",
            help="Stored with every label you give (free text).",
        )
    )


def button_text(label: str, shortcuts: bool) -> str:
    text, key = BUTTONS[label]
    return f"{text} ({key})" if shortcuts else text


def record_mark(
    item: Item, label: str, *, note: str, run_id: str | None, probability: float | None, msg_key: str
) -> bool:
    """Write one mark from this session (its reviewer name, ``via`` app) and leave what happened for the panel in
    ``st.session_state[msg_key]``; False when it was refused (read-only deployment, or the store said no). The
    one way the pages write a label: the panel's buttons, the Patch viewer's keys and the Map's popup."""
    if not can_write():
        st.session_state[msg_key] = (
            "error",
            "This public deployment is read-only: only the owner (passcode) may label.",
        )
        return False
    try:
        res = items.mark(
            item,
            label,
            note=note,
            run_id=run_id,
            probability=probability,
            reviewer=str(st.session_state.get(REVIEWER_KEY) or ""),
            via="app",
        )
    except AsgmError as exc:
        st.session_state[msg_key] = ("error", str(exc))
        return False
    st.session_state[msg_key] = (
        "success",
        f"`{item.item_id}` marked **{label.replace('_', ' ')}**"
        + ("" if res.changed else " (already its label: nothing new written)"),
    )
    return True


def _mark(
    item: Item,
    label: str,
    note_key: str,
    run_id: str | None,
    probability: float | None,
    msg_key: str,
    after: Callable[[], None] | None,
) -> None:
    """Button callback: write the mark, say what happened, then move on (``after``)."""
    note = str(st.session_state.get(note_key) or "")
    if record_mark(item, label, note=note, run_id=run_id, probability=probability, msg_key=msg_key) and after:
        after()


def panel_message_key(key: str) -> str:
    """The session key where ``mark_panel(key=key)`` finds the message of the last mark."""
    return f"_{key}_msg"


def panel_note(key: str, item: Item) -> str:
    """The note typed in ``mark_panel(key=key)``'s box for ``item`` ("" when none)."""
    return str(st.session_state.get(_note_key(key, item)) or "")


def _note_key(key: str, item: Item) -> str:
    return f"{key}_note_{item.key}"


def mark_panel(
    item: Item,
    *,
    key: str,
    run_id: str | None = None,
    probability: float | None = None,
    after: Callable[[], None] | None = None,
    shortcuts: bool = False,
) -> None:
    """The item's current label and the three mark buttons with a note box. ``after`` runs once a mark is
    written (e.g. go to the next item of the queue); ``shortcuts`` adds keys m / n / u (and → with ``after``)."""
    msg_key = panel_message_key(key)
    try:
        current = LabelStore().get(item.key)
    except AsgmError as exc:
        page.show_error(exc, "Close the label layer in QGIS (or the other program holding it) and reload.")
        return
    if current:
        who = f" by {current['reviewer']}" if current["reviewer"] else ""
        st.markdown(
            f"Reviewed: **{current['label'].replace('_', ' ')}**{who} at {current['time'][:16]}"
            + (f" — _{current['note']}_" if current["note"] else "")
        )
    else:
        st.caption("Not reviewed yet.")
    note_key = _note_key(key, item)
    st.text_input("Note (optional)", key=note_key, placeholder="e.g. sandbar, cloud remnant, new pit")
    writable = can_write()
    cols = st.columns(len(LABELS))
    for col, label in zip(cols, LABELS, strict=True):
        col.button(
            button_text(label, shortcuts),
            key=f"{key}_{label}",
            width="stretch",
            disabled=not writable,
            type="primary" if current and current["label"] == label else "secondary",
            on_click=_mark,
            args=(item, label, note_key, run_id, probability, msg_key, after),
        )
    if not writable:
        st.caption("This public deployment is read-only: only the owner (passcode) may label.")
    msg = st.session_state.pop(msg_key, None)
    if msg:
        (st.success if msg[0] == "success" else st.error)(msg[1])
    if shortcuts:
        keyboard_shortcuts(
            {k: button_text(label, True) for label, (_, k) in BUTTONS.items()}
            | ({"ArrowRight": NEXT_BUTTON} if after is not None else {})
        )


# The listener is created in the page's own realm (parent.eval): Streamlit re-creates this component's iframe on
# reruns, and a listener of a removed iframe would stop working.
_KEYS_JS = """<script>
window.parent.__asgmKeys = %s;
window.parent.eval(`if (!window.__asgmKeysOn) {
  window.__asgmKeysOn = true;
  document.addEventListener("keydown", (e) => {
    const t = e.target;
    if (e.ctrlKey || e.metaKey || e.altKey || (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" ||
        t.isContentEditable))) return;
    const text = (window.__asgmKeys || {})[e.key];
    if (!text) return;
    const button = Array.from(document.querySelectorAll("button")).find((b) => b.innerText.trim() === text &&
        !b.disabled);
    if (button) { e.preventDefault(); button.click(); }
  });
}`);
</script>"""


def keyboard_shortcuts(keys: dict[str, str]) -> None:
    """Keys that click the button with the given text (a zero-height component; no CDN, no package). Keys typed
    in a text box are left alone."""
    import streamlit.components.v1 as components

    components.html(_KEYS_JS % json.dumps(keys), height=0)


def queue_progress(q: ReviewQueue) -> None:
    """Done / left of a queue as a progress bar."""
    frac = q.done / q.total if q.total else 0.0
    st.progress(frac, text=f"Review queue ({ORDER_NAMES[q.order]}): {q.done} reviewed, {q.left} left of {q.total}")


def order_picker(key: str) -> str:
    """The queue order (radio)."""
    return str(
        st.radio(
            "Queue order",
            ORDERS,
            format_func=ORDER_NAMES.get,
            key=key,
            horizontal=True,
            help="Most uncertain first teaches the model most; highest first cleans a map of detections.",
        )
    )


def downloads(key: str, source_kind: str | None = None, source: str | None = None) -> None:
    """Download buttons for the current labels (all, or of one store / scan) as GeoJSON, CSV, KML, and the whole
    GeoPackage."""
    from asgm.data.labels import render

    labels = LabelStore()
    try:
        rows = labels.current(source_kind, source)
    except AsgmError as exc:
        page.show_error(exc, "Close the label layer in the program holding it and reload.")
        return
    if not rows:
        st.caption("No labels to download yet.")
        return
    stem = f"labels-{source}" if source else "labels"
    mimes = {"geojson": "application/geo+json", "csv": "text/csv", "kml": "application/vnd.google-earth.kml+xml"}
    cols = st.columns(4)
    for col, (fmt, mime) in zip(cols, mimes.items(), strict=False):
        col.download_button(
            f"{fmt.upper()}", render(rows, fmt), file_name=f"{stem}.{fmt}", mime=mime, key=f"{key}_dl_{fmt}"
        )
    cols[3].download_button(
        "GPKG (all labels)",
        _gpkg_bytes(labels),
        file_name="labels.gpkg",
        mime="application/geopackage+sqlite3",
        key=f"{key}_dl_gpkg",
        help="The whole database with its history table, as QGIS opens it.",
    )
    st.caption(f"{len(rows)} label(s). The whole database is `{labels.path}` (a GeoPackage QGIS opens).")


def _gpkg_bytes(labels: LabelStore) -> bytes:
    """A consistent copy of the whole label database (SQLite's backup, so a write in progress is not torn)."""
    with tempfile.TemporaryDirectory() as tmp:
        return labels.export("gpkg", Path(tmp) / "labels.gpkg").read_bytes()


def current_rows() -> list[dict[str, Any]]:
    """Every current label ([] when the database cannot be read: the map still works)."""
    try:
        return LabelStore().current()
    except AsgmError:
        return []
