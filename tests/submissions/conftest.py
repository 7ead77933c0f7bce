"""Fixtures for intake tests: a local HTTP server standing in for Jotform's upload host, images,
and the hand-written Jotform payloads (raw multipart bodies, CRLF line ends as on the wire)."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from testkit.xrays import xray_image as drawn_xray

FIXTURES = Path(__file__).parent / "fixtures"
JOTFORM_UPLOAD = "https:\\/\\/www.jotform.com\\/uploads\\/drsouza\\/231234567890123\\/5812345678901234567\\/"
JOTFORM_SUBMISSION_ID = "5812345678901234567"


def xray_image(size: tuple[int, int] = (256, 192), fmt: str = "PNG", mode: str = "L", seed: int = 0) -> bytes:
    """A small X-ray of ``size`` with one implant drawn the catalogue's way (``testkit.xrays``: the
    worker's finder finds it), distinct per seed, in ``fmt`` and ``mode``."""
    img = drawn_xray(seed, size)
    if mode != "L":
        img = img.convert(mode)
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


@dataclass
class UploadHost:
    """A local stand-in for Jotform's upload host: path -> (status, body, headers)."""

    port: int
    routes: dict[str, tuple[int, bytes, dict[str, str]]] = field(default_factory=dict)
    requests: list[dict] = field(default_factory=list)

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"http://{self.netloc}{path}"

    def serve(self, path: str, body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> str:
        self.routes[path] = (status, body, headers or {"Content-Type": "image/png"})
        return self.url(path)


@pytest.fixture
def upload_host(settings) -> Iterator[UploadHost]:
    """A ThreadingHTTPServer on 127.0.0.1, allowed as Jotform's (and the webhook's) file host."""
    host = UploadHost(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            host.requests.append({"path": self.path, "headers": dict(self.headers)})
            status, body, headers = host.routes.get(self.path, (404, b"not found", {}))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    host.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.JOTFORM_FILE_HOSTS = [host.netloc]
    settings.RAIOX_WEBHOOK_FILE_HOSTS = [host.netloc]
    settings.RAIOX_ALLOW_HTTP_DOWNLOADS = True
    yield host
    server.shutdown()
    server.server_close()


def _boundary(body: bytes) -> str:
    return body.split(b"\r\n", 1)[0][2:].decode()


def load_multipart(name: str) -> tuple[bytes, str]:
    body = (FIXTURES / name).read_bytes()
    return body, f"multipart/form-data; boundary={_boundary(body)}"


def jotform_payload(
    *, upload_base: str | None = None, submission_id: str | None = None, name: str = "jotform_webhook.multipart"
) -> tuple[bytes, str]:
    """The recorded Jotform delivery, its upload URL pointed at ``upload_base`` (e.g. the local host)."""
    body, content_type = load_multipart(name)
    if upload_base is not None:
        body = body.replace(JOTFORM_UPLOAD.encode(), upload_base.replace("/", "\\/").encode())
    if submission_id is not None:
        body = body.replace(JOTFORM_SUBMISSION_ID.encode(), submission_id.encode())
    return body, content_type


def replace_part(body: bytes, name: str, value: bytes) -> bytes:
    """Replace the value of one text part of a multipart body."""
    marker = f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
    start = body.index(marker) + len(marker)
    end = body.index(b"\r\n--", start)
    return body[:start] + value + body[end:]


def remove_part(body: bytes, name: str) -> bytes:
    boundary = body.split(b"\r\n", 1)[0]
    parts = body.split(boundary + b"\r\n")
    kept = [p for p in parts if f'name="{name}"'.encode() not in p.split(b"\r\n", 1)[0]]
    return (boundary + b"\r\n").join(kept)


def plain_form(file_bytes: bytes, **overrides: bytes) -> tuple[bytes, str]:
    body, content_type = load_multipart("plain_form.multipart")
    body = body.replace(b"@@FILE_BYTES@@", file_bytes)
    for key, value in overrides.items():
        if key == "filename":
            body = body.replace(b'filename="radiografia.png"', b'filename="' + value + b'"')
        elif value is None:
            body = remove_part(body, key)
        else:
            body = replace_part(body, key, value)
    return body, content_type
