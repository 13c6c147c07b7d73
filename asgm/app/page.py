"""What every page shares: page setup, the selected run (sidebar picker), error boxes and links."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st
from streamlit.errors import StreamlitAPIException

from asgm import CREDITS
from asgm.app import assets, follow
from asgm.app.loaders import completed_runs, encoding_note, product_level_note, store_problems
from asgm.app.prepare import auto_prepare, prepare_state
from asgm.config import RGB_BANDS, ExperimentConfig
from asgm.errors import AsgmError
from asgm.model import runs


@dataclass(frozen=True)
class PageSpec:
    """One page of the menu: its script (relative to the app's folder), menu title and URL path."""

    script: str
    title: str
    url_path: str


HOME = PageSpec("pages/1_Home.py", "Home", "home")
MAP = PageSpec("pages/2_Map.py", "Map", "Map")
PATCH_VIEWER = PageSpec("pages/3_Patch_viewer.py", "Patch viewer", "Patch_viewer")
SCAN = PageSpec("pages/4_Scan.py", "Region scan", "Scan")
PLACES = PageSpec("pages/5_Places.py", "Places", "Places")
DATA = PageSpec("pages/6_Data.py", "Data", "Data")
TRAIN = PageSpec("pages/7_Train.py", "Train", "Train")
COMPARE = PageSpec("pages/8_Compare.py", "Compare", "Compare")
#: The menu, in the order it reads (the files are numbered in the same order); Home is the default page.
MENU: tuple[PageSpec, ...] = (HOME, MAP, PATCH_VIEWER, SCAN, PLACES, DATA, TRAIN, COMPARE)


def page_setup(title: str, follow_jobs: bool = True) -> None:
    """Common first lines of every page: page config, local map assets, first-start preparation, and (unless
    ``follow_jobs`` is off: Home follows them in its own panel) a refresh when a background job ends."""
    # Streamlit's own favicon (served locally): any image icon goes through Streamlit's ``image_to_url``,
    # which imports numpy and PIL (~0.3-0.45 s of the first page on a cold server); an emoji or material
    # icon would be fetched from a CDN, which fails offline.
    st.set_page_config(page_title=f"{title} · ASGM Explorer", layout="wide")
    menu()
    try:
        _static_once()
    except OSError as exc:  # a read-only checkout must not take the app down; only the map suffers
        st.warning(f"Could not copy the local map assets into {assets.VENDOR_DIR} ({exc}); maps need the network.")
    auto_prepare()
    if follow_jobs:
        follow.follow_jobs()  # after auto_prepare: a page opened first on a fresh start follows the job it began


def no_store_warning(consequence: str = "") -> None:
    """What a page says when there is no patch store yet: the demo being prepared (the page refreshes when it is
    ready), else how to get one."""
    from asgm.app.loaders import stores_without_meta

    broken = stores_without_meta()
    for message in broken:  # not "no store": one whose store.json is gone
        st.warning(f"No readable patch store{consequence}: {message}.")
    if broken:
        return
    prep = prepare_state()
    if prep.get("state") == "running":
        st.info(
            f"No patch store yet{consequence}: the demo store is being prepared in the background "
            f"({prep.get('message', '')}). This page refreshes when it is ready."
        )
    else:
        st.warning(
            f"No patch store yet{consequence}. Go to **Home** and click **Prepare the demo** "
            "(or run `asgm demo build`)."
        )


def menu() -> None:
    """The app's menu in the sidebar: every page of ``MENU``, in order."""
    with st.sidebar:
        for target in MENU:
            page_link(target, target.title)
        st.divider()


@st.cache_resource
def _static_once() -> Path:
    return assets.ensure_static_assets()


def page_link(target: PageSpec, label: str, query: dict[str, str] | None = None) -> None:
    """A link to another page of the app (``query`` in the query string)."""
    from urllib.parse import urlencode

    try:
        st.page_link(target.script, label=label, query_params=query)
    except (StreamlitAPIException, KeyError):  # page not registered (a page run on its own, e.g. in tests)
        st.markdown(f"[{label}]({target.url_path}{'?' + urlencode(query) if query else ''})")


def patch_viewer_link(store_name: str, sid: str) -> None:
    """A link to the patch viewer for one patch (store and sample carried in the query string)."""
    page_link(PATCH_VIEWER, "Open in the patch viewer →", {"store": store_name, "sample": sid})


def scan_window_link(scan: str, window: str, label: str = "Open this window in the patch viewer →") -> None:
    """A link to the patch viewer for one window of a region scan (``?scan=NAME&window=I,J``)."""
    page_link(PATCH_VIEWER, label, {"scan": scan, "window": window})


def scan_page_link(label: str = "Scan this area for mining →") -> None:
    """A link to the Region scan page (which reads the drawn area from session state)."""
    page_link(SCAN, label)


def show_error(exc: AsgmError, way_out: str = "") -> None:
    """One user-facing error box for an ``AsgmError``: what went wrong and what to do. Anything else is a
    bug: pages let it reach Streamlit's own error display instead of dressing it up as guidance."""
    st.error(f"{exc}" + (f"\n\n**What to do:** {way_out}" if way_out else ""))


def classify_way_out(exc: AsgmError, store_name: str) -> str:
    """What to do when classifying one patch failed: mend the patch when the patch is the problem (a damaged,
    cut or wrong-band file), else the run."""
    from asgm.data.store import PatchStoreError
    from asgm.model.inputs import DatasetError

    if isinstance(exc, (PatchStoreError, DatasetError)):
        return (
            f"Re-fetch or rebuild this patch; `asgm patches check --store {store_name}` lists every unusable file. "
            "The other patches still classify."
        )
    return "Retrain the run on the Train page, or pick another run in the sidebar."


def seconds_since(stamp: Any) -> float | None:
    """Seconds since an ISO timestamp (or epoch seconds); None when absent or unparsable."""
    if isinstance(stamp, (int, float)):
        return time.time() - float(stamp)
    import pandas as pd  # here, not at the top: the sidebar of every page is drawn without pandas

    try:
        return time.time() - pd.Timestamp(stamp).timestamp()
    except (TypeError, ValueError):
        return None


def run_label(r: Any) -> str:
    c = r.config
    osm = "+OSM(" + ",".join(c.osm_layers) + ")" if c.osm_layers else "RGB" if tuple(c.bands) == RGB_BANDS else "bands"
    f1 = (r.metrics or {}).get("f1")
    f1s = f" F1 {f1:.2f}" if isinstance(f1, (int, float)) else ""
    return f"{r.run_id} · {c.name or c.store} · {c.store} {c.patch_size}px {osm}{f1s}"


def selected_run_id(sidebar: bool = True) -> str | None:
    """The run the pages classify with (``st.session_state['run_id']``), picked in the sidebar.

    Defaults to ``asgm.model.runs.default_choice`` (the committed ``models/DEFAULT``; the newest completed run
    only when that names no completed run, said in the sidebar); kept across page
    switches in session state."""
    done = completed_runs()
    ids = [r.run_id for r in done]
    linked = st.query_params.get("run")
    chosen = st.session_state.get("run_id")
    instead = "showing the selected run instead." if done else "no trained run is available."
    # Say so rather than silently showing another run.
    if linked and linked not in ids:
        st.warning(
            f"The link names run {linked!r}, but {runs.unusable_reason(linked) or 'it cannot be read'}; {instead}"
        )
    elif chosen and chosen not in ids:
        st.warning(
            f"Run {chosen!r} can no longer be used: {runs.unusable_reason(chosen) or 'it cannot be read'}; "
            f"retrain it or pick another run. {instead.capitalize()}"
        )
    if not done:
        if sidebar:
            st.sidebar.info("No trained run yet. The default model trains on first start; see **Home** or **Train**.")
        return None
    if st.query_params.get("run") in ids and st.session_state.get("_run_from_url") != st.query_params["run"]:
        # A shared link names its run (?run=ID): adopt it once, then the sidebar picker rules.
        st.session_state["run_id"] = st.session_state["_run_from_url"] = st.query_params["run"]
    current = st.session_state.get("run_id")
    if current not in ids:
        current = runs.default_run_id() or ids[0]
        current = current if current in ids else ids[0]
        st.session_state["run_id"] = current
    if sidebar:
        labels = {r.run_id: run_label(r) for r in done}

        def _pick() -> None:
            st.session_state["run_id"] = st.session_state["_run_picker"]

        st.sidebar.selectbox(
            "Model (run)",
            ids,
            index=ids.index(current),
            format_func=lambda rid: labels[rid],
            key="_run_picker",
            on_change=_pick,
        )
        default_id, why = runs.default_choice()
        if st.session_state["run_id"] == default_id:
            st.sidebar.caption(f"Active: the default model, {default_id} ({why}).")
        else:
            st.sidebar.caption(f"Active: {st.session_state['run_id']}, your choice (default: {default_id}, {why}).")
    return st.session_state["run_id"]


def selected_run(run_id: str | None) -> Any:
    """The selected run's RunInfo, or None (with the reason shown) when there is none or it cannot be read."""
    if not run_id:
        return None
    try:
        return runs.get_run(run_id)
    except AsgmError as exc:
        show_error(exc, "Pick another run in the sidebar.")
        return None


def run_can_classify(run_id: str, run_config: ExperimentConfig, store_name: str) -> bool:
    """Show why a run cannot classify a store's patches (or a product-level caution); True when it can."""
    problems = store_problems(run_config, store_name)
    if problems:
        st.warning(f"Run {run_id} cannot classify this store: " + "; ".join(problems) + ".")
        return False
    if note := product_level_note(run_config, store_name):
        st.warning(note)
    if note := encoding_note(run_config, store_name):
        st.caption(note)
    return True


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A markdown table of ``rows`` (``columns``, by default every key in first-seen order; a missing or
    None cell is blank, True/False read yes/no).

    Why not ``st.dataframe``: Streamlit converts a dataframe through pandas and pyarrow, about a second of
    imports on a cold server, and Home (the first page) shows only a few short rows."""
    columns = list(columns or dict.fromkeys(k for r in rows for k in r))

    def cell(v: Any) -> str:
        text = "" if v is None else "yes" if v is True else "no" if v is False else str(v)
        return " ".join(text.split()).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def credits_markdown() -> str:
    """Credits and licences, for the Home page footer."""
    return "\n".join(f"- {v}" for v in CREDITS.values())
