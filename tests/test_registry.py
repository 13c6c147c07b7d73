import shutil

import pytest

from asgm import registry
from asgm.registry import DataFetchError


def test_every_file_reads_from_mirror_and_verifies(mirror):
    for key, f in registry.FILES.items():
        path = registry.get(key)
        assert path.resolve() == (mirror / f.relpath).resolve()
        assert path.stat().st_size == f.size


def test_checksum_mismatch_names_file_url_and_fix(tmp_path, monkeypatch, mirror):
    f = registry.FILES["caroni_holdout"]
    bad = tmp_path / f.relpath
    bad.parent.mkdir(parents=True)
    shutil.copy(mirror / f.relpath, bad)
    bad.write_bytes(bad.read_bytes() + b" ")
    monkeypatch.setenv("ASGM_DATA_MIRROR", str(tmp_path))
    with pytest.raises(DataFetchError) as err:
        registry.get("caroni_holdout")
    msg = str(err.value)
    assert "checksum mismatch" in msg and f.url in msg and str(bad) in msg


def test_missing_mirror_file_is_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("ASGM_DATA_MIRROR", str(tmp_path))
    with pytest.raises(DataFetchError) as err:
        registry.get("study_positives")
    assert "not in the mirror" in str(err.value) and registry.FILES["study_positives"].url in str(err.value)


def test_no_network_download_is_clear(tmp_path, monkeypatch):
    # Without a mirror the registry downloads with pooch; an unreachable host (a closed local port)
    # must give a clear error and leave no file in the cache.
    monkeypatch.delenv("ASGM_DATA_MIRROR", raising=False)
    monkeypatch.setenv("ASGM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ASGM_DATA_BASE_URL", "http://127.0.0.1:9/")
    with pytest.raises(DataFetchError) as err:
        registry.get("caroni_holdout")
    assert "could not download" in str(err.value) and "ASGM_DATA_MIRROR" in str(err.value)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_unknown_key():
    with pytest.raises(DataFetchError, match="unknown data file"):
        registry.get("nope")


@pytest.fixture
def http_mirror(mirror):
    """Serve the mirror over HTTP on 127.0.0.1 (the transport pooch really uses); yields (base_url, server)."""
    import functools
    import http.server
    import threading

    class Handler(http.server.SimpleHTTPRequestHandler):
        truncate = False

        def log_message(self, *args):
            pass

        def copyfile(self, source, outputfile):
            data = source.read()
            # Simulate a connection cut mid-download: send half the body, then close.
            outputfile.write(data[: len(data) // 2] if self.truncate else data)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(mirror)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", Handler
    server.shutdown()


def test_download_over_http_verifies_and_caches(tmp_path, monkeypatch, http_mirror):
    base, _ = http_mirror
    monkeypatch.delenv("ASGM_DATA_MIRROR", raising=False)
    monkeypatch.setenv("ASGM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ASGM_DATA_BASE_URL", base)
    path = registry.get("caroni_holdout")
    assert path.is_relative_to(tmp_path) and registry._sha256(path) == registry.FILES["caroni_holdout"].sha256
    assert registry.get("caroni_holdout") == path  # second call: cache hit


def test_download_cut_midway_leaves_no_file(tmp_path, monkeypatch, http_mirror):
    base, handler = http_mirror
    handler.truncate = True
    monkeypatch.delenv("ASGM_DATA_MIRROR", raising=False)
    monkeypatch.setenv("ASGM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ASGM_DATA_BASE_URL", base)
    with pytest.raises(DataFetchError) as err:
        registry.get("study_positives")
    assert registry.FILES["study_positives"].url in str(err.value)  # the URL of the server named by the variable
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_status_hashes_a_file_again_only_when_it_changed(data_env, monkeypatch, mirror):
    f = registry.FILES["caroni_holdout"]
    copy = data_env / "mirror" / f.relpath
    copy.parent.mkdir(parents=True)
    shutil.copy(mirror / f.relpath, copy)
    monkeypatch.setenv("ASGM_DATA_MIRROR", str(data_env / "mirror"))
    hashed = []
    real = registry._sha256
    monkeypatch.setattr(registry, "_sha256", lambda p: hashed.append(p) or real(p))  # counts, still hashes

    def row():
        return next(r for r in registry.status() if r["key"] == "caroni_holdout")

    assert row()["verified"] and hashed == [copy]  # only the one file present is hashed
    assert row()["verified"] and hashed == [copy]  # remembered: not hashed again
    copy.write_bytes(copy.read_bytes() + b" ")  # damaged: size and time change
    assert row()["present"] and not row()["verified"] and len(hashed) == 2
    shutil.copy(mirror / f.relpath, copy)  # repaired
    (data_env / "data" / "cache" / "verified.json").write_text("{not json")  # a damaged memo is ignored
    assert row()["verified"] and len(hashed) == 3
