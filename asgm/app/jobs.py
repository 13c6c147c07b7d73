"""App glue for background jobs: the owner passcode of a public deployment, its limits, and the jobs panel.

A deployment is **public** (read-only for visitors) when ``st.secrets`` holds ``owner_passcode`` (or
``public = true``, or ``ASGM_PUBLIC=1`` is set). Everyone can view, click, toggle and compare; starting a
fetch or a training job needs the owner passcode, compared in constant time and never shown or logged.
A public app also runs one job at a time and caps a store's size (``max_store_patches``, default 500).
Without any of these settings (a laptop) every job can be started and no cap applies.
"""

from __future__ import annotations

import hmac
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import streamlit as st

from asgm.jobs import commands
from asgm.jobs import runner as jobs

PASSCODE_KEY = "owner_passcode"
DEFAULT_PUBLIC_CAP = 500
_UNLOCKED = "_asgm_owner_unlocked"
#: Job kinds whose commands resume where they stopped (stored patches, cached OSM parts, scanned tiles are kept).
RESUMABLE = ("patches", "osm", "scan")


def _secret(name: str) -> Any:
    """A value from ``st.secrets`` (root or the ``[asgm]`` table), None when absent or there are no secrets."""
    try:
        if name in st.secrets:
            return st.secrets[name]
        section = st.secrets.get("asgm")
        return section.get(name) if section is not None else None
    except Exception:  # no secrets.toml at all
        return None


def _passcode() -> str | None:
    value = _secret(PASSCODE_KEY)
    return str(value) if value else None


def public_mode() -> bool:
    """True on a public deployment: jobs need the owner passcode."""
    flag = _secret("public")
    return bool(_passcode()) or flag is True or str(flag).lower() == "true" or os.environ.get("ASGM_PUBLIC") == "1"


def jobs_allowed() -> bool:
    """May this session start jobs (not public, or the owner unlocked it)?"""
    return not public_mode() or bool(st.session_state.get(_UNLOCKED))


def max_active_jobs() -> int | None:
    """One job at a time on a public deployment; no limit otherwise."""
    return 1 if public_mode() else None


def store_cap() -> int | None:
    """Most patches a store may hold (``max_store_patches`` secret or ``ASGM_MAX_STORE_PATCHES``); a public
    deployment defaults to 500, a laptop has no cap."""
    raw = _secret("max_store_patches") or os.environ.get("ASGM_MAX_STORE_PATCHES")
    if raw:
        try:
            return max(1, int(raw))
        except (TypeError, ValueError):
            st.warning(f"max_store_patches={raw!r} is not a whole number; using {DEFAULT_PUBLIC_CAP}.")
            return DEFAULT_PUBLIC_CAP
    return DEFAULT_PUBLIC_CAP if public_mode() else None


def passcode_gate() -> bool:
    """On a public deployment, a passcode box that unlocks job launching for this session. True when jobs
    may be started."""
    if jobs_allowed():
        if public_mode():
            st.caption("Owner mode: you can start jobs in this session (one at a time).")
        return True
    secret = _passcode()
    if not secret:
        st.info(
            "This is a public, read-only deployment: viewing, clicking, toggling and comparing work for "
            "everyone; fetching data and training are turned off (no owner passcode is configured)."
        )
        return False
    st.info(
        "This is a public deployment: viewing, clicking, toggling and comparing work for everyone. Starting "
        "fetch or training jobs needs the owner passcode."
    )
    with st.form("owner_passcode_form", clear_on_submit=True):
        entered = st.text_input("Owner passcode", type="password", key="_owner_passcode_input")
        if st.form_submit_button("Unlock jobs"):
            if hmac.compare_digest(entered.encode("utf-8"), secret.encode("utf-8")):
                st.session_state[_UNLOCKED] = True
                st.rerun()
            st.error("Wrong passcode; jobs stay locked.")
    return False


def launch(command: list[str], **kwargs: Any) -> jobs.JobInfo | None:
    """Start a job if this session may (public limits applied); shows the outcome. None when refused."""
    if not jobs_allowed():
        st.error("Starting jobs needs the owner passcode on this public deployment.")
        return None
    try:
        job = jobs.launch(command, max_active=max_active_jobs(), **kwargs)
    except jobs.JobError as exc:
        st.error(str(exc))
        return None
    st.success(f"Started job **{job.job_id}**: {job.title}. It runs in the background; follow it under **Jobs**.")
    return job


# -- what the Data page starts ---------------------------------------------------------------------------
def validate_upload(name: str, data: bytes, label_column: str = "label", label: int | None = None) -> Any:
    """Read an uploaded GeoJSON/CSV with the checks of ``asgm points`` (``PointsError`` naming the upload).
    Nothing is kept: the file is read from a temporary folder that is removed."""
    from asgm.data.points import PointsError, read_labelled_points

    safe = Path(name).name or "upload.geojson"
    if Path(safe).suffix.lower() not in (".geojson", ".json", ".csv"):
        raise PointsError(f"{safe}: expected a .geojson, .json or .csv file")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / safe
        path.write_bytes(data)
        try:
            return read_labelled_points(path, label_column=label_column or "label", label=label)
        except PointsError as exc:
            raise PointsError(str(exc).replace(str(path), safe)) from None


def save_upload(points: Any, name: str) -> Path:
    """Keep validated points under ``<data>/points/uploads/<set>.geojson`` for the fetch job. An upload of
    the same name with other points is refused (their sample ids would collide in a store)."""
    from asgm.config import data_dir
    from asgm.data.points import PointsError, read_labelled_points, write_points_file

    set_name = str(points["set"].iloc[0])
    target = data_dir() / "points" / "uploads" / f"{set_name}.geojson"
    if target.exists():
        old = read_labelled_points(target)
        same = (
            len(old) == len(points)
            and (old[["lon", "lat", "label"]].to_numpy() == points[["lon", "lat", "label"]].to_numpy()).all()
        )
        if not same:
            raise PointsError(f"an upload named {name!r} with other points exists already; rename your file")
        return target
    return write_points_file(points, target)


def check_fetch_request(store: str, start: str, end: str) -> tuple[str, str]:
    """``AsgmError`` for a store name that is not a plain folder name or an empty date range; the ISO dates."""
    from asgm.data.store import check_name
    from asgm.sources.common import parse_date_range

    check_name(store)
    return parse_date_range(start, end)


def fetch_patches_command(
    *,
    source: str,
    store: str,
    size: int,
    start: str,
    end: str,
    point_sets: list[str] | None = None,
    points_file: Path | None = None,
    limit: int | None = None,
) -> list[str]:
    """The ``asgm patches fetch`` command of a Data page request; a bad store name or date range is refused
    here (``check_fetch_request``), before any job starts."""
    start, end = check_fetch_request(store, start, end)
    return commands.fetch_patches(
        source=source,
        store=store,
        size=size,
        start=start,
        end=end,
        point_sets=point_sets or [],
        points_file=points_file,
        limit=limit,
    )


def osm_commands(
    *,
    store: str,
    date: str,
    keys: list[str],
    buffer_m: float,
    all_touched: bool,
    exclude: Sequence[str],
    include: Sequence[str] = (),
) -> tuple[list[str], list[str]]:
    """``asgm osm fetch --store`` then ``asgm osm rasterize`` for a Data page request (a bad store name is
    refused here)."""
    from asgm.data.store import check_name

    check_name(store)
    return (
        commands.osm_fetch(store, date, keys),
        commands.osm_rasterize(store, keys, buffer_m, all_touched, exclude, include),
    )


def earth_engine_account() -> tuple[bool, str]:
    """(usable, description) of Earth Engine credentials in the environment or ``st.secrets``: the project and
    the service account's e-mail, never the key."""
    from asgm.sources import gee

    try:
        s = gee.load_settings()
    except Exception as exc:  # a malformed key: say so, and keep Earth Engine off
        return False, f"Earth Engine credentials are configured but unusable: {exc}"
    if not s.key_info:
        return False, (
            "Earth Engine: no credentials found (set ASGM_EE_SERVICE_ACCOUNT_JSON / "
            "GOOGLE_APPLICATION_CREDENTIALS or the [ee_service_account] secret; docs/sources.md)"
        )
    who = s.key_info.get("client_email") or "service account"
    return True, f"Earth Engine: project `{s.project or '?'}`, account `{who}` (from {s.key_source})"


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"ETA {seconds / 60:.0f} min" if seconds >= 120 else f"ETA {seconds:.0f} s"


def job_line(job: jobs.JobInfo) -> str:
    """One line: title, status, done/total, message, ETA."""
    p = job.progress
    bits = [f"**{job.title}** ({job.status})"]
    if isinstance(p.get("done"), (int, float)) and isinstance(p.get("total"), (int, float)):
        bits.append(f"{p['done']:.0f}/{p['total']:.0f} {p.get('message') or ''}".strip())
    elif p.get("message"):
        bits.append(str(p["message"]))
    if eta := _eta(job.eta_s):
        bits.append(eta)
    return " · ".join(bits)


def jobs_panel(kinds: tuple[str, ...] | None = None, recent: int = 8) -> None:
    """Running jobs with live progress, ETA and Cancel; finished ones; failed ones with the error and log.
    Refreshes itself every 2 s (only this fragment reruns)."""

    @st.fragment(run_every=2)
    def _panel() -> None:
        all_jobs = [j for j in jobs.list_jobs() if kinds is None or j.kind in kinds]
        active = [j for j in all_jobs if j.active]
        st.markdown("**Running**" if active else "_No job running._")
        for j in active:
            c1, c2 = st.columns([6, 1])
            c1.progress(j.fraction or 0.0, text=job_line(j))
            if c2.button("Cancel", key=f"cancel_job_{j.job_id}", disabled=not jobs_allowed()):
                try:
                    jobs.cancel(j.job_id)
                    st.toast(f"Cancel requested for {j.job_id}")
                except jobs.JobError as exc:
                    st.error(str(exc))
        done = [j for j in all_jobs if not j.active][:recent]
        # Failures first: under load a refresh can be cut short by the next one, and the table after them
        # is the least urgent part (and the slowest to draw).
        for j in done:
            if j.status == "failed":
                st.error(f"Job **{j.job_id}** ({j.title}) failed: {j.error or 'no error recorded'}")
                with st.expander(f"Log of {j.job_id}"):
                    st.code(j.log_tail() or "(empty log)", language="text")
            if (
                j.status in ("failed", "cancelled")
                and j.kind in RESUMABLE
                and st.button(
                    f"Resume {j.job_id}",
                    key=f"resume_{j.job_id}",
                    disabled=not jobs_allowed(),
                    help="Start it again; what was already fetched is kept and skipped.",
                )
            ):
                try:
                    new = jobs.relaunch(j.job_id, max_active=max_active_jobs())
                    st.toast(f"Started {new.job_id}")
                except jobs.JobError as exc:
                    st.error(str(exc))
        if done:
            st.markdown("**Finished**")
            st.dataframe(
                [
                    {
                        "job": j.job_id,
                        "what": j.title,
                        "status": j.status,
                        "finished": j.finished,
                        "error": j.error or "",
                    }
                    for j in done
                ],
                hide_index=True,
                width="stretch",
            )

    _panel()
