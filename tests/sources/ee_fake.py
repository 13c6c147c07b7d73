"""A stand-in for the Earth Engine REST API and Google's OAuth token endpoint on a ``LocalServer``.

It serves what ``ee.Initialize`` fetches (the discovery document and the algorithm list that
earthengine-api ships for its own tests), checks the service-account JWT signature at ``/token``,
requires the bearer token on API calls, and answers ``image:computePixels`` with a NumPy (.npy)
structured array built from the request's grid — or with scripted errors (429, 403, ...).

The pixel answer has the shape of the real service's, as GDAL's Earth Engine driver tests record it
(``OSGeo/gdal``, ``autotest/gdrivers/eedai.py``, ``test_eedai_2``: the ``:getPixels`` answer to a request with
``"fileFormat": "NPY"``): an NPY version 1.0 file holding a structured array of shape ``(height, width)`` with
one ``'<u2'`` field per requested band, in the request's ``bandIds`` order, pixels interleaved — see
``npy_structured``. A request that does not ask for ``NPY`` on the wire is refused as the API would.
"""

from __future__ import annotations

import json
import struct
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import ee
import numpy as np
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from localhttp import LocalServer, Response

EE_TESTDATA = Path(ee.__file__).parent / "tests"
ACCESS_TOKEN = "ya29.local-test-token"
PROJECT = "asgm-test-project"


def service_account_key(token_uri: str, project_id: str | None = PROJECT) -> tuple[dict[str, Any], bytes]:
    """A fresh service-account key (JSON fields) and its public key PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    info = {
        "type": "service_account",
        "private_key_id": "test-key-1",
        "private_key": pem.decode(),
        "client_email": f"asgm@{project_id or 'x'}.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
    if project_id:
        info["project_id"] = project_id
    return info, pub


def npy_structured(arrays: dict[str, np.ndarray]) -> bytes:
    """An NPY 1.0 file of one structured (height, width) array, one little-endian field per band in
    ``arrays`` order, laid out as GDAL's eedai test builds the service's answer: magic, version 1.0, a 2-byte
    header length, the header dict without padding, then the pixel records row by row."""
    first = next(iter(arrays.values()))
    height, width = first.shape
    fields = [(name, a.dtype.newbyteorder("<").str) for name, a in arrays.items()]
    header = f"{{'descr': {fields!r}, 'fortran_order': False, 'shape': ({height}, {width}), }}".encode("ascii")
    records = np.zeros((height, width), dtype=fields)
    for name, a in arrays.items():
        records[name] = a
    return b"\x93NUMPY" + bytes([1, 0]) + struct.pack("<H", len(header)) + header + records.tobytes()


def band_values(band_index: int, size: int) -> np.ndarray:
    """What the fake returns for band ``band_index`` (distinct per band and pixel)."""
    rows, cols = np.mgrid[0:size, 0:size]
    return (1000 + 100 * band_index + (rows * 7 + cols * 3) % 97).astype(np.uint16)


class FakeEarthEngine:
    """Routes of the fake; ``script`` holds responses to return to the next computePixels calls."""

    def __init__(self, server: LocalServer):
        self.server = server
        self.public_key: bytes | None = None
        self.token_error: dict[str, Any] | None = None
        self.algorithms_error: tuple[int, str] | None = None
        self.script: list[Response] = []
        self.zero_pixels = False
        self.field_order: list[str] | None = None  # band order of the returned structured array
        self.jwt_claims: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._discovery = (EE_TESTDATA / "cloud_api_discovery_document.json").read_bytes()
        self._algorithms = (EE_TESTDATA / "algorithms.json").read_bytes()
        server.route("POST", "/token", self._token)
        server.route("GET", r"/\$discovery/rest", lambda r: Response(200, self._discovery))
        server.route("GET", r"/v1[a-z0-9]*/projects/[^/]+/algorithms", self._algos)
        server.route("POST", r"/v1[a-z0-9]*/projects/[^/]+/image:computePixels", self._pixels)

    @property
    def url(self) -> str:
        return self.server.url

    def pixel_requests(self) -> list[Any]:
        return self.server.requests("POST", r"image:computePixels$")

    def _token(self, req: Any) -> Response:
        form = {k: v[0] for k, v in parse_qs(req.body.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Response.of_json({"error": "unsupported_grant_type"}, 400)
        if self.token_error:
            return Response.of_json(self.token_error, 400)
        from google.auth import jwt

        try:  # the signature must verify with the key's public half
            claims = jwt.decode(
                form["assertion"],
                certs={"test-key-1": self.public_key.decode()},
                audience=["https://oauth2.googleapis.com/token", self.url + "/token"],
            )
        except Exception as exc:  # noqa: BLE001 — any failure is an invalid grant
            return Response.of_json({"error": "invalid_grant", "error_description": f"bad JWT: {exc}"}, 400)
        with self._lock:
            self.jwt_claims.append(claims)
        return Response.of_json({"access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"})

    def _authorized(self, req: Any) -> Response | None:
        if req.headers.get("authorization") != f"Bearer {ACCESS_TOKEN}":
            return Response.of_json(
                {
                    "error": {
                        "code": 401,
                        "message": "Request had invalid authentication credentials.",
                        "status": "UNAUTHENTICATED",
                    }
                },
                401,
            )
        return None

    def _algos(self, req: Any) -> Response:
        denied = self._authorized(req)
        if denied:
            return denied
        if self.algorithms_error:
            code, message = self.algorithms_error
            return Response.of_json({"error": {"code": code, "message": message, "status": "PERMISSION_DENIED"}}, code)
        return Response(200, self._algorithms)

    def _pixels(self, req: Any) -> Response:
        denied = self._authorized(req)
        if denied:
            return denied
        with self._lock:
            scripted = self.script.pop(0) if self.script else None
        if scripted is not None:
            return scripted
        body = req.json()
        if body.get("fileFormat") != "NPY":  # the wire name GDAL sends and earthengine-api's converter asks for
            return error(400, f"Invalid fileFormat {body.get('fileFormat')!r} for this request.", "INVALID_ARGUMENT")
        dims = body["grid"]["dimensions"]
        height, width = dims["height"], dims["width"]
        names = self.field_order or body["bandIds"]
        arrays = {
            b: np.zeros((height, width), "<u2")
            if self.zero_pixels
            else band_values(body["bandIds"].index(b), max(height, width))[:height, :width]
            for b in names
        }
        return Response(200, npy_structured(arrays), "application/octet-stream")


def error(code: int, message: str, status: str) -> Response:
    return Response.of_json({"error": {"code": code, "message": message, "status": status}}, code)


def walk_expression(expr: dict[str, Any]) -> tuple[list[str], list[Any]]:
    """Every function name and constant in a serialized Earth Engine expression graph."""
    names: list[str] = []
    constants: list[Any] = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if "functionInvocationValue" in node:
                names.append(node["functionInvocationValue"].get("functionName", ""))
            if "constantValue" in node:
                constants.append(node["constantValue"])
            for v in node.values():
                visit(v)
        elif isinstance(node, list):
            for v in node:
                visit(v)

    visit(expr)
    return names, constants


def dumps_key(info: dict[str, Any]) -> str:
    return json.dumps(info)


def configured(server: LocalServer, monkeypatch: Any) -> FakeEarthEngine:
    """The stand-in on ``server``, with a service-account key, project and URL in the environment as a user would
    configure them (``fake.key_info`` holds the key)."""
    fake = FakeEarthEngine(server)
    info, pub = service_account_key(fake.url + "/token")
    fake.public_key = pub
    fake.key_info = info
    monkeypatch.setenv("ASGM_EE_SERVICE_ACCOUNT_JSON", json.dumps(info))
    monkeypatch.setenv("ASGM_EE_PROJECT", PROJECT)
    monkeypatch.setenv("ASGM_EE_URL", fake.url)
    return fake
