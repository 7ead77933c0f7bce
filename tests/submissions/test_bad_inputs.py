"""A catalogue of bad deliveries: each is answered 4xx (JSON error in Portuguese) and leaves nothing
behind — no Submission row, no stored file."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from collections.abc import Callable

import pytest

from submissions.models import Submission
from testkit.dicom import dicom_file
from testkit.images import plain_image, png_chunk, xray_file
from testkit.payloads import jotform_payload, plain_form, remove_part, replace_part
from tests.builders.storage import storage_keys

ALLOWED_UPLOAD = "https://www.jotform.com/uploads/drsouza/231234567890123/5812345678901234567/"


def decompression_bomb() -> bytes:
    """A few hundred bytes of PNG declaring a 30000 × 30000 canvas (900 megapixels)."""
    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\0" * 30001 * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b"")


def image(size: tuple[int, int], fmt: str = "PNG") -> bytes:
    return plain_image(size, 128, fmt=fmt)


SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="500" height="500">'
    b"<script>alert(1)</script></svg>"
)
HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
# A GIFAR-style polyglot: a GIF header followed by a ZIP (a Java archive) and HTML.
GIFAR = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04" + b"PK\x03\x04" + b"\0" * 64 + HTML
# A JPEG start-of-image marker in front of HTML: the magic is right, the content is not.
JPEG_HTML = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + HTML
FAKE_DICOM = b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\x04\x00junk" + b"\xde\xad" * 200
FAKE_HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 500
PDF = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF"
GOOD = xray_file()


def dicom_bomb() -> bytes:
    """A DICOM declaring 30000 × 30000 pixels with almost no pixel data."""
    return dicom_file(rows=30000, columns=30000, pixel_data=b"\0" * 64)


TEN_KB = ("A" * 10_240).encode()

Case = Callable[[], tuple[str, bytes, str]]


def form(file_bytes: bytes = GOOD, **overrides: bytes | None) -> Case:
    def build() -> tuple[str, bytes, str]:
        body, content_type = plain_form(file_bytes, **overrides)
        return "/jotform", body, content_type

    return build


def jotform(edit: Callable[[bytes], bytes] = lambda b: b, raw: bytes | None = None, **parts: bytes | None) -> Case:
    def build() -> tuple[str, bytes, str]:
        body, content_type = jotform_payload()
        if raw is not None:
            body = replace_part(body, "rawRequest", raw)
        for name, value in parts.items():
            body = remove_part(body, name) if value is None else replace_part(body, name, value)
        return "/jotform", edit(body), content_type

    return build


def raw_edit(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    def edit(body: bytes) -> bytes:
        assert old in body
        return body.replace(old, new)

    return edit


def webhook_json(payload: object, raw: bytes | None = None) -> Case:
    def build() -> tuple[str, bytes, str]:
        return "/webhook", raw if raw is not None else json.dumps(payload).encode(), "application/json"

    return build


GOOD_JSON = {"nome": "Ana", "email": "ana@example.com", "dente": "36", "file": base64.b64encode(GOOD).decode()}

CASES: dict[str, Case] = {
    # Files that are not (acceptable) images, whatever their names say.
    "text-named-jpg": form(b"just some text, not an image", filename=b"raio-x.jpg"),
    "html-named-png": form(HTML, filename=b"raio-x.png"),
    "pdf-named-jpg": form(PDF, filename=b"raio-x.jpg"),
    "svg": form(SVG, filename=b"raio-x.svg"),
    "gif-unsupported-format": form(image((200, 200), "GIF"), filename=b"raio-x.gif"),
    "polyglot-gifar": form(GIFAR, filename=b"raio-x.gif"),
    "polyglot-jpeg-header-html": form(JPEG_HTML, filename=b"raio-x.jpg"),
    "fake-dicom": form(FAKE_DICOM, filename=b"raio-x.dcm"),
    "fake-heic": form(FAKE_HEIC, filename=b"raio-x.heic"),
    "random-bytes": form(bytes(range(256)) * 40, filename=b"raio-x.png"),
    "zero-byte-file": form(b""),
    "truncated-png": form(GOOD[: len(GOOD) // 2]),
    "truncated-jpeg": form(xray_file(fmt="JPEG")[:400], filename=b"raio-x.jpg"),
    "decompression-bomb": form(decompression_bomb()),
    "dicom-decompression-bomb": form(dicom_bomb(), filename=b"raio-x.dcm"),
    "oversized-file": form(image((600, 600), "BMP"), filename=b"grande.bmp"),  # > 200 kB cap set below
    "one-pixel-image": form(image((1, 1))),
    "too-small-image": form(image((32, 32))),
    "hostile-name-not-an-image": form(b"root:x:0:0:root:/root:/bin/bash\n", filename=b"../../etc/passwd"),
    # Missing or invalid fields (the old form).
    "missing-file": form(file=None),
    "missing-email": form(email=None),
    "missing-name": form(nome=None),
    "invalid-email": form(email=b"not-an-email"),
    "email-with-header-injection": form(email=b"ana@example.com\r\nBcc: all@example.com"),
    "tooth-99": form(dente=b"99"),
    "tooth-letters": form(dente=b"3a"),
    "tooth-deciduous-out-of-range": form(dente=b"56"),
    "ten-kb-name": form(nome=TEN_KB),
    "ten-kb-patient": form(paciente=TEN_KB),
    "control-characters-in-name": form(nome=b"Ana\x00\x1b[31mSouza"),
    "bidi-override-in-patient": form(paciente="Jo\u202eão".encode()),
    # Jotform's shape, broken.
    "raw-request-not-json": jotform(raw=b"q3_nome=Ana&q4_email=ana@example.com"),
    "raw-request-truncated-json": jotform(raw=b'{"q3_nome":{"first":"Ana","last":"Souza"},"q4_email":"ana@'),
    "raw-request-json-list": jotform(raw=b'["q3_nome","q4_email"]'),
    "raw-request-deeply-nested": jotform(raw=b"[" * 100_000 + b"]" * 100_000),
    "missing-submission-id": jotform(submissionID=None),
    "hostile-submission-id-path": jotform(submissionID=b"../../etc/passwd"),
    "ten-kb-submission-id": jotform(submissionID=TEN_KB),
    "missing-upload-url": jotform(raw_edit(b',"file":["https', b',"other":["https')),
    "upload-url-empty-list": jotform(raw_edit(b'"file":["https:', b'"file":[],"x":["https:')),
    "upload-url-not-a-string": jotform(raw_edit(b'"file":["https:', b'"file":[{"url":1},"https:')),
    "upload-url-javascript": jotform(raw_edit(b'"file":["https:', b'"file":["javascript:alert(1)","https:')),
    "upload-url-other-host": jotform(
        raw_edit(b'"file":["https:\\/\\/www.jotform.com', b'"file":["https:\\/\\/evil.example')
    ),
    "upload-url-http": jotform(raw_edit(b'"file":["https:', b'"file":["http:')),
    "jotform-invalid-email": jotform(raw_edit(b"ana.souza@example.com", b"ana.souza(at)example")),
    "jotform-tooth-99": jotform(raw_edit(b'"q6_dente":"36"', b'"q6_dente":"99"')),
    "jotform-name-as-list": jotform(raw_edit(b'"q3_nome":{"first":"Ana","last":"Souza"}', b'"q3_nome":["Ana"]')),
    "jotform-missing-name": jotform(raw_edit(b'"q3_nome":{"first":"Ana","last":"Souza"}', b'"q3_nome":{"first":""}')),
    "jotform-ten-kb-patient": jotform(raw_edit(b'"q5_paciente":"', b'"q5_paciente":"' + TEN_KB)),
    "jotform-control-characters": jotform(raw_edit(b'"first":"Ana"', b'"first":"Ana\\u0000\\u0007"')),
    # The generic webhook.
    "webhook-malformed-json": webhook_json(None, raw=b'{"nome": "Ana", '),
    "webhook-json-not-object": webhook_json(["nome", "Ana"]),
    "webhook-file-not-base64": webhook_json({**GOOD_JSON, "file": "%%% not base64 %%%"}),
    "webhook-file-and-url": webhook_json({**GOOD_JSON, "image_url": "https://files.example/x.png"}),
    "webhook-url-when-none-allowed": webhook_json({**GOOD_JSON, "file": None, "image_url": "https://files.example/x"}),
    "webhook-svg-base64": webhook_json({**GOOD_JSON, "file": base64.b64encode(SVG).decode()}),
    "webhook-tooth-number-99": webhook_json({**GOOD_JSON, "dente": 99}),
    "webhook-name-object": webhook_json({**GOOD_JSON, "nome": {"first": "x"}}),
    "webhook-text-plain": lambda: ("/webhook", b"nome=Ana", "text/plain"),
    "malformed-multipart": lambda: (
        "/jotform",
        b"--xyz\r\nContent-Disposition: form-data; name=",
        "multipart/form-data",
    ),
}


# The reason given for some of them (the others are printed by the assertion when they fail).
EXPECTED_CODES = {
    "zero-byte-file": "empty_file",
    "truncated-png": "corrupt_image",
    "decompression-bomb": "too_many_pixels",
    "dicom-decompression-bomb": "too_many_pixels",
    "oversized-file": "file_too_large",
    "one-pixel-image": "image_too_small",
    "svg": "not_an_image",
    "polyglot-gifar": "not_an_image",
    "tooth-99": "invalid_tooth",
    "invalid-email": "invalid_email",
    "ten-kb-name": "too_long",
    "control-characters-in-name": "control_characters",
    "raw-request-not-json": "invalid_payload",
    "upload-url-other-host": "url_not_allowed",
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_and_leaves_nothing(client, settings, case):
    settings.RAIOX_MAX_UPLOAD_BYTES = 200_000
    settings.JOTFORM_FILE_HOSTS = ["www.jotform.com"]
    settings.RAIOX_WEBHOOK_FILE_HOSTS = []
    path, body, content_type = CASES[case]()
    rows_before, keys_before = Submission.objects.count(), storage_keys()

    response = client.generic("POST", path, body, content_type=content_type)

    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    error = response.json()
    assert error["error"] and set(error) == {"error", "field", "code"}
    assert error["code"] == EXPECTED_CODES.get(case, error["code"])
    assert Submission.objects.count() == rows_before == 0
    assert storage_keys() == keys_before == []


def test_catalogue_is_large_enough():
    assert len(CASES) >= 30


@pytest.mark.django_db
def test_the_valid_versions_of_the_catalogue_are_accepted(client, settings):
    """The cases above fail for the stated reason, not because the base request was broken."""
    settings.JOTFORM_FILE_HOSTS = ["www.jotform.com"]
    body, content_type = jotform_payload()
    assert client.generic("POST", "/jotform", body, content_type=content_type).status_code == 201
    body, content_type = plain_form(GOOD)
    assert client.generic("POST", "/jotform", body, content_type=content_type).status_code == 201
    response = client.generic("POST", "/webhook", json.dumps(GOOD_JSON).encode(), content_type="application/json")
    assert response.status_code == 201
    assert Submission.objects.count() == 3
