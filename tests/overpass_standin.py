"""A local Overpass stand-in over real HTTP (the OSM tests, the app and browser tests share it)."""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs


def osm_xml_elements(path: Path) -> list[dict[str, Any]]:
    """An OSM XML file as Overpass JSON elements (what a real Overpass answers with out:json)."""
    out = []
    for el in ET.parse(path).getroot():
        tags = {t.get("k"): t.get("v") for t in el.findall("tag")}
        if el.tag == "node":
            d = {"type": "node", "id": int(el.get("id")), "lat": float(el.get("lat")), "lon": float(el.get("lon"))}
        elif el.tag == "way":
            d = {"type": "way", "id": int(el.get("id")), "nodes": [int(n.get("ref")) for n in el.findall("nd")]}
        else:
            continue
        if tags:
            d["tags"] = tags
        out.append(d)
    return out


class FakeOverpass:
    """Answers ``GET /api/status`` and ``POST /api/interpreter`` like Overpass, from a list of elements.

    It honours the query's ``poly:`` area (by its bounding box) and the keys asked for, records every
    query text, and can be told to fail: ``failures`` is a queue of (status, body) answers used before
    normal service; ``fail_always`` answers every request with one; ``delay_s`` stalls each answer.
    """

    def __init__(self, elements: list[dict[str, Any]], osm_base: str = "2025-04-01T06:00:00Z") -> None:
        self.elements = elements
        self.osm_base = osm_base
        self.queries: list[str] = []
        self.status_hits = 0
        self.failures: list[tuple[int, str]] = []
        self.fail_always: tuple[int, str] | None = None
        self.fail_after: int | None = None  # fail every request once this many have succeeded
        self.served = 0
        self.delay_s = 0.0
        self.slot_line = "2 slots available now."  # line 5 of /status, as Overpass words it
        self.lock = threading.Lock()
        self.url = ""

    def answer(self, query: str) -> tuple[int, str, str]:
        with self.lock:
            self.queries.append(query)
            if self.failures:
                code, body = self.failures.pop(0)
                return code, body, "text/html"
            if self.fail_always or (self.fail_after is not None and self.served >= self.fail_after):
                code, body = self.fail_always or (503, "<p>overloaded</p>")
                return code, body, "text/html"
            self.served += 1
        coords = [float(v) for v in re.findall(r"-?\d+\.?\d*", " ".join(re.findall(r"poly:'([^']*)'", query)))]
        lats, lons = coords[0::2], coords[1::2]
        keys = set(re.findall(r"\['(\w+)'\]", query))
        nodes = {e["id"]: e for e in self.elements if e["type"] == "node"}

        def inside(n: dict[str, Any]) -> bool:
            return bool(lats) and min(lats) <= n["lat"] <= max(lats) and min(lons) <= n["lon"] <= max(lons)

        picked: dict[tuple[str, int], dict[str, Any]] = {}
        for e in self.elements:
            if not keys & set(e.get("tags", {})):
                continue
            if e["type"] == "node" and inside(e):
                picked[("node", e["id"])] = e
            elif e["type"] == "way" and any(inside(nodes[r]) for r in e["nodes"]):
                picked[("way", e["id"])] = e
                for r in e["nodes"]:
                    picked[("node", r)] = nodes[r]
        body = {
            "version": 0.6,
            "generator": "Overpass API (fake, tests/osm)",
            "osm3s": {"timestamp_osm_base": self.osm_base, "copyright": "© OpenStreetMap contributors (ODbL)"},
            "elements": [json.loads(json.dumps(e)) for e in picked.values()],
        }
        return 200, json.dumps(body), "application/json"


@contextlib.contextmanager
def serve_overpass(fake: FakeOverpass) -> Iterator[FakeOverpass]:
    """Serve ``fake`` on 127.0.0.1 (real HTTP) while the block runs; sets ``fake.url`` to the API base URL."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def _send(self, code: int, body: str, ctype: str) -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/api/status"):
                fake.status_hits += 1
                text = (
                    "Connected as: 2130706433\nCurrent time: 2025-04-01T06:00:00Z\nAnnounced endpoint: none\n"
                    f"Rate limit: 2\n{fake.slot_line}\nCurrently running queries (pid, space limit, time limit, start time):\n"  # noqa: E501
                )
                self._send(200, text, "text/plain")
            else:
                self._send(404, "not found", "text/plain")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            if not self.path.rstrip("/").endswith("/api/interpreter") or "data" not in form:
                self._send(400, "<p><strong>Error</strong>: no query</p>", "text/html")
                return
            code, body, ctype = fake.answer(form["data"][0])
            if fake.delay_s:
                time.sleep(fake.delay_s)
            try:
                self._send(code, body, ctype)
            except (BrokenPipeError, ConnectionResetError):  # the client timed out and hung up
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/api"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
