"""Fixtures for the OSM tests: a private data dir, a local Overpass stand-in over real HTTP, and
small patch stores on real UTM grids of the study's points."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from osm_testdata import SAMPLE_OSM
from overpass_standin import FakeOverpass, osm_xml_elements, serve_overpass


@pytest.fixture
def osm_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private ASGM_DATA_DIR (caches, stores) for one test; the upstream mirror stays as set."""
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("ASGM_DATA_DIR", str(data))
    monkeypatch.delenv("ASGM_OVERPASS_URL", raising=False)
    return data


@pytest.fixture
def overpass() -> Iterator[FakeOverpass]:
    """A FakeOverpass serving bolivar_sample.osm on 127.0.0.1; ``.url`` is the API base URL."""
    with serve_overpass(FakeOverpass(osm_xml_elements(SAMPLE_OSM))) as fake:
        yield fake


@pytest.fixture
def make_store(osm_env: Path) -> Callable[..., Any]:
    """Factory: a patch store of real UTM grids at the given points (pixel values are irrelevant here)."""
    from asgm.config import RGB_BANDS
    from asgm.data.store import Patch, PatchStore, StoreMeta
    from asgm.grid import patch_grid

    def make(
        name: str, rows: list[dict[str, Any]], size: int = 48, source: str = "gee", date_end: str = "2021-12-31"
    ) -> PatchStore:
        meta = StoreMeta(
            name=name,
            source=source,
            bands=RGB_BANDS,
            size=size,
            product_level="L1C",
            date_start="2021-01-01",
            date_end=date_end,
            synthetic=source == "synthetic",
        )
        store = PatchStore.create(meta)
        data = np.full((len(RGB_BANDS), size, size), 1000, dtype=np.uint16)
        for r in rows:
            store.write_patch(
                Patch(
                    sample_id=r["sample_id"],
                    label=int(r["label"]),
                    set=r.get("set", "positives" if r["label"] else "random"),
                    lon=r["lon"],
                    lat=r["lat"],
                    grid=patch_grid(r["lon"], r["lat"], size),
                    data=data,
                    bands=RGB_BANDS,
                    source=source,
                    date_start="2021-01-01",
                    date_end=date_end,
                    product_level="L1C",
                )
            )
        return store

    return make
