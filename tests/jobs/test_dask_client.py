"""The Dask client's local workers start from any parent, also one whose ``__main__`` is a page script."""

from __future__ import annotations

import sys
import types


def test_local_workers_start_when_main_is_a_streamlit_page(tmp_path, monkeypatch):
    """Streamlit (and AppTest) make the page script the process's ``__main__``; spawned workers re-run that
    file, and a page run outside Streamlit crashes them (it took down a scan test after the page tests)."""
    from asgm.jobs.dask_client import dask_client

    page = tmp_path / "page.py"
    page.write_text("raise SystemExit('a page script ran in a Dask worker')\n")
    main = types.ModuleType("__main__")
    main.__file__ = str(page)
    monkeypatch.setitem(sys.modules, "__main__", main)
    with dask_client("local", workers=1) as client:
        assert client.submit(sum, [1, 2]).result(timeout=60) == 3
    assert sys.modules["__main__"] is main
