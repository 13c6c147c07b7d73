"""``asgm osm ...`` end to end, in process, against the local Overpass stand-in."""

from __future__ import annotations

import json

import pytest
from osm_testdata import POS0, SAMPLE_OSM

from asgm.cli import main
from asgm.config import OSM_LAYERS


def run(capsys, *argv: str) -> tuple[int, dict | str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    try:
        return code, json.loads(out), err
    except json.JSONDecodeError:
        return code, out, err


@pytest.mark.parametrize("sub", ["fetch", "rasterize", "coverage"])
def test_help(capsys, sub):
    with pytest.raises(SystemExit) as e:
        main(["osm", sub, "--help"])
    assert e.value.code == 0 and "--json" in capsys.readouterr().out


def test_fetch_rasterize_coverage(osm_env, overpass, make_store, capsys):
    make_store(
        "cli",
        [
            {"sample_id": "pos-0000", "label": 1, "lon": POS0[0], "lat": POS0[1]},
            {"sample_id": "rnd-0000", "label": 0, "set": "random", "lon": -64.133309, "lat": 7.338377},
        ],
    )
    code, rep, _ = run(capsys, "osm", "fetch", "--xml", str(SAMPLE_OSM), "--json")
    assert code == 0 and rep["features"] == 7 and rep["snapshot_date"] == "2021-06-01T00:00:00Z"

    code, rep, err = run(capsys, "osm", "fetch", "--store", "cli", "--overpass-url", overpass.url, "--json")
    assert code == 0 and not rep["cached"] and rep["requests"] == 2 and rep["snapshot_date"] == "2021-12-31T00:00:00Z"
    assert all('[date:"2021-12-31T00:00:00Z"]' in q for q in overpass.queries)
    code, rep, _ = run(capsys, "osm", "fetch", "--store", "cli", "--overpass-url", overpass.url, "--json")
    assert code == 0 and rep["cached"] and len(overpass.queries) == 2

    code, rep, _ = run(capsys, "osm", "rasterize", "--store", "cli", "--exclude", "landuse=quarry", "--json")
    assert code == 0 and rep["layers"] == list(OSM_LAYERS) and rep["patches_with_any"] == 1
    assert rep["filters"]["exclude"] == {"landuse": ["quarry"]}

    code, rep, _ = run(capsys, "osm", "coverage", "--store", "cli", "--json")
    assert code == 0
    assert rep["groups"]["mining"]["keys"]["any"] == {"patches_with": 1, "share": 1.0}
    assert rep["groups"]["non-mining"]["keys"]["any"] == {"patches_with": 0, "share": 0.0}
    quarry = [v for v in rep["groups"]["mining"]["tag_values"]["landuse"] if v["value"] == "quarry"]
    assert quarry and quarry[0]["excluded"] is True

    code, text, _ = run(capsys, "osm", "coverage", "--store", "cli")
    assert code == 0 and "mining (n=1)" in text and "any 100.0%" in text


def test_errors_are_one_clear_line(osm_env, overpass, make_store, capsys):
    code, _, err = run(capsys, "osm", "rasterize", "--store", "nope")
    assert code == 1 and "no patch store 'nope'" in err
    make_store("bare", [{"sample_id": "pos-0000", "label": 1, "lon": POS0[0], "lat": POS0[1]}])
    code, _, err = run(capsys, "osm", "rasterize", "--store", "bare")
    assert code == 1 and "asgm osm fetch --store bare" in err
    overpass.fail_always = (503, "<p>overloaded</p>")
    code, _, err = run(
        capsys,
        "osm",
        "fetch",
        "--bbox",
        "-60.41",
        "7.89",
        "-60.39",
        "7.91",
        "--overpass-url",
        overpass.url,
        "--retries",
        "1",
        "--backoff",
        "0",
    )
    assert code == 1 and "failed 2 time(s)" in err and "503" in err and len(overpass.queries) == 2
    code, _, err = run(capsys, "osm", "rasterize", "--store", "bare", "--exclude", "landuse")
    assert code == 1 and "KEY=VALUE" in err
