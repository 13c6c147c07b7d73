"""Constants shared by the OSM tests (a uniquely named module, so it never clashes with tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE_OSM = FIXTURES / "bolivar_sample.osm"
#: The study's first mining positive (pos-0000), around which bolivar_sample.osm is drawn.
POS0 = (-60.39708136077541, 7.897061937382876)
