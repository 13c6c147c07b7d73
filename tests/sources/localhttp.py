"""Local HTTP server for the source tests: a STAC API over small COGs, and an Earth Engine stand-in.

Everything runs on 127.0.0.1 with real HTTP, so the project's code (pystac-client, rasterio/GDAL
range reads, earthengine-api, google-auth token exchange) is exercised at the transport boundary.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

Handler = Callable[["Request"], "Response | None"]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of_json(cls, obj: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(obj).encode(), "application/json")


class LocalServer:
    """A threaded HTTP server on 127.0.0.1: static files with Range support plus handler functions."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.handlers: list[tuple[str, re.Pattern[str], Handler]] = []
        self.log: list[Request] = []
        self.down = False  # when True every request gets its connection dropped
        self._lock = threading.Lock()
        server = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in separate writes

            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlparse(self.path)
                req = Request(
                    self.command, url.path, parse_qs(url.query), {k.lower(): v for k, v in self.headers.items()}, body
                )
                with server._lock:
                    server.log.append(req)
                    down = server.down
                if down:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                resp = server._dispatch(req)
                self.send_response(resp.status)
                self.send_header("Content-Type", resp.content_type)
                for k, v in resp.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(resp.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(resp.body)

            do_GET = do_POST = do_HEAD = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.handlers.append((method, re.compile(pattern), handler))

    def requests(self, method: str | None = None, pattern: str = "") -> list[Request]:
        with self._lock:
            return [r for r in self.log if (method is None or r.method == method) and re.search(pattern, r.path)]

    def _dispatch(self, req: Request) -> Response:
        for method, pattern, handler in self.handlers:
            if method in (req.method, "*") and pattern.fullmatch(req.path):
                resp = handler(req)
                if resp is not None:
                    return resp
        if req.path in self.files:
            return _range_response(self.files[req.path], req.headers.get("range"))
        if req.method == "HEAD" and req.path in ("", "/"):
            return Response(200)
        return Response.of_json({"error": {"code": 404, "message": f"no route for {req.method} {req.path}"}}, 404)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _range_response(data: bytes, header: str | None) -> Response:
    """Serve ``data``, honouring a single ``Range: bytes=a-b`` as GDAL's /vsicurl/ sends."""
    if not header:
        return Response(200, data, "image/tiff", {"Accept-Ranges": "bytes"})
    m = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if not m:
        return Response(416, b"", "text/plain")
    a, b = m.groups()
    start = int(a) if a else max(0, len(data) - int(b))
    end = min(int(b), len(data) - 1) if (a and b) else len(data) - 1
    if start >= len(data):
        return Response(416, b"", "text/plain", {"Content-Range": f"bytes */{len(data)}"})
    return Response(
        206,
        data[start : end + 1],
        "image/tiff",
        {"Accept-Ranges": "bytes", "Content-Range": f"bytes {start}-{end}/{len(data)}"},
    )
