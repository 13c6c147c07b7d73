"""The README's test command on a machine without the data mirror: the suite downloads the pinned upstream
files once (here from a local HTTP server on 127.0.0.1 holding them in the upstream layout, named by
``ASGM_DATA_BASE_URL``) and passes; with neither mirror nor network it stops in one line."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def _pytest(env_extra: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_extra, "ASGM_DATA_MIRROR": ""}  # empty: no mirror, not even ../shared/data
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_without_a_mirror_the_tests_fetch_the_pinned_files(mirror, tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(mirror)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cache = tmp_path / "cache"
        env = {"ASGM_DATA_BASE_URL": f"http://127.0.0.1:{server.server_port}/", "ASGM_TEST_DATA_CACHE": str(cache)}
        proc = _pytest(env, "tests/data/test_points.py")
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert " passed" in proc.stdout.splitlines()[-1]
        from asgm import registry

        for f in registry.FILES.values():  # every pinned file, verified, in the upstream layout
            assert (cache / f.relpath).is_file(), f.relpath
    finally:
        server.shutdown()


def test_without_mirror_or_network_the_tests_stop_in_one_line(tmp_path):
    env = {"ASGM_DATA_BASE_URL": "http://127.0.0.1:9/", "ASGM_TEST_DATA_CACHE": str(tmp_path / "cache")}
    proc = _pytest(env, "tests/data/test_points.py")
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = (proc.stdout + proc.stderr).strip().splitlines()
    lines = [ln for ln in out if "pinned upstream data files" in ln]
    assert len(lines) == 1 and "ASGM_DATA_MIRROR" in lines[0] and "Traceback" not in proc.stderr
    assert len(out) <= 2, out  # the reason, and at most pytest's own "Exit:" framing


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)
