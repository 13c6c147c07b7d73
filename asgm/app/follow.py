"""Pages that wait for a background job refresh when it ends: while a job of ``asgm.jobs.runner`` runs (the
first-start preparation, a training run, a fetch, a scan), a small fragment polls the job store every few
seconds and redraws the whole page when the situation changed — a job ended or started, a patch store or a
completed run appeared. Home's preparation panel uses the same check (``rerun_if_changed``)."""

from __future__ import annotations

import streamlit as st

from asgm.app.loaders import completed_runs
from asgm.data.store import list_stores

#: Session key of the situation the page was last drawn in.
SITUATION = "_jobs_situation"
#: Seconds between two polls of the job store while a job runs.
EVERY_S = 3


def situation() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """What background jobs change that a page's content depends on: the active jobs, the patch stores on
    disk, the completed runs."""
    from asgm.jobs import runner as jobs

    return (
        tuple(sorted(j.job_id for j in jobs.active_jobs())),
        tuple(list_stores()),
        tuple(sorted(r.run_id for r in completed_runs())),
    )


def remember() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Record the situation this page run draws (call it before reading stores and runs); returns it."""
    now = st.session_state[SITUATION] = situation()
    return now


def rerun_if_changed() -> None:
    """Redraw the whole page when the situation differs from the one it was drawn in."""
    if situation() != st.session_state.get(SITUATION):
        st.rerun(scope="app")


def follow_jobs() -> None:
    """On a page drawn while background jobs run: say so in the sidebar, poll every ``EVERY_S`` seconds, and
    redraw the page when one ends (or a store or completed run appears). Nothing polls when no job runs."""
    if remember()[0]:
        with st.sidebar:
            _watch()


@st.fragment(run_every=EVERY_S)
def _watch() -> None:
    from asgm.jobs import runner as jobs

    active = jobs.active_jobs()
    for j in active[:3]:
        message = j.progress.get("message")
        st.caption(f"Running in the background: {j.title}" + (f" ({message})" if message else "") + ".")
    if active:
        st.caption("This page refreshes when it ends.")
    rerun_if_changed()
